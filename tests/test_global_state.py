"""Global-state Triton form of LION-LIT (``lion_hf.kernels.triton.global_state``) against the float64 reference.

On a machine without CUDA the kernels run under Triton's interpreter (``TRITON_INTERPRET=1``, set here at
import, before ``lion_hf.kernels.triton`` is first imported). Under the interpreter a reduction program
covers ``INTERPRETER_LAUNCH[0]`` = 32 positions, so L = 37 and 300 span 2 and 10 partial states.

Tolerances (relative Frobenius error, as in ``tests/test_kernels_triton.py``): 2e-5 for fp32 inputs,
5e-3 for fp16 inputs; on the GPU, bf16 2e-2 for values and 4e-2 for gradients.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import naive_lion_parts  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402

pytestmark = pytest.mark.skipif(not triton_available(), reason="triton is not installed")
interpret_only = pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")

PARTS, NORMALIZED, SCALED = 0, 1, 2
MODES = {"parts": PARTS, "normalized": NORMALIZED, "scaled": SCALED}


def gs():
    from lion_hf.kernels.triton import global_state

    return global_state


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def make_inputs(batch, heads, length, dk, dv, dtype=torch.float32, device="cpu"):
    """Positive feature-mapped q, k (as the models feed them) and Gaussian v."""
    q = F.elu(torch.randn(batch, heads, length, dk, device=device)) + 1
    k = F.elu(torch.randn(batch, heads, length, dk, device=device)) + 1
    v = torch.randn(batch, heads, length, dv, device=device)
    return q.to(dtype), k.to(dtype), v.to(dtype)


def padding(batch, length, device="cpu"):
    pad = torch.ones(batch, length, dtype=torch.bool, device=device)
    pad[-1, length - length // 3:] = False  # right padding on the last sequence
    return pad


def poison(t: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """``t`` with NaN in the padded rows (what an earlier layer may leave there)."""
    return torch.where(pad[:, None, :, None], t, torch.full_like(t, float("nan")))


def reference(q, k, v, mode, scale, eps, pad=None):
    """Float64 ``(out, den)`` of the three modes; padded keys are zeroed first (they may hold NaN)."""
    q, k, v = (t.double() for t in (q, k, v))
    if pad is not None:
        keep = pad[:, None, :, None]
        k, v = torch.where(keep, k, 0.0), torch.where(keep, v, 0.0)
    num, den = naive_lion_parts(q, k, v, key_padding_mask=pad)
    if mode == PARTS:
        return num, den
    if mode == NORMALIZED:
        return num / (den + eps)[..., None], den
    return num * scale, den


def run_and_grad(fn, inputs, mode, seed=123, with_den=True):
    """``(out, den)`` of ``fn(*inputs)`` and the gradients of a fixed random projection of them (``den``
    enters the loss only in ``PARTS`` with ``with_den``, the one mode whose kernels take its gradient)."""
    out, den = fn(*inputs)
    gen = torch.Generator().manual_seed(seed)
    proj = lambda t: (t.double() * torch.randn(t.shape, generator=gen, dtype=torch.float64).to(t.device)).sum()  # noqa: E731
    loss = proj(out) + (proj(den) if mode == PARTS and with_den else 0.0)
    loss.backward()
    return (out, den), [t.grad for t in inputs]


def leaves(*tensors, dtype=None):
    return [t.detach().clone().to(dtype or t.dtype).requires_grad_() for t in tensors]


def check(q, k, v, mode, pad=None, tol=2e-5, scale=0.3, eps=1e-3, with_den=True):
    """Values and gradients of ``LionGlobalFunction`` against the float64 reference."""
    fn = lambda q, k, v: gs().LionGlobalFunction.apply(q, k, v, mode, with_den, scale, eps, pad)  # noqa: E731
    (out, den), grads = run_and_grad(fn, leaves(q, k, v), mode, with_den=with_den)
    ref_fn = lambda q, k, v: reference(q, k, v, mode, scale, eps, pad)  # noqa: E731
    (ref_out, ref_den), ref_grads = run_and_grad(ref_fn, leaves(q, k, v, dtype=torch.float64), mode,
                                                  with_den=with_den)
    assert out.shape == ref_out.shape
    assert out.dtype == (torch.float32 if mode == PARTS else q.dtype)
    assert rel(out, ref_out) < tol, ("out", rel(out, ref_out))
    if with_den or mode == NORMALIZED:
        assert den.dtype == torch.float32 and rel(den, ref_den) < tol, ("den", rel(den, ref_den))
    else:
        assert den is None
    for name, g, r in zip(("dq", "dk", "dv"), grads, ref_grads):
        assert g.dtype == q.dtype and g.shape == r.shape
        assert rel(g, r) < tol, (name, rel(g, r))
    if pad is not None:  # padded keys: exactly zero gradients
        keep = pad[:, None, :, None]
        assert (grads[1].masked_fill(keep, 0) == 0).all() and (grads[2].masked_fill(keep, 0) == 0).all()
    return out, den, grads


# --------------------------------------------------------------------------------------------------
# CPU, Triton interpreter
# --------------------------------------------------------------------------------------------------

@interpret_only
def test_kernels_are_interpreted():
    """Guard: compiled kernels on CPU tensors would fail obscurely."""
    assert type(gs()._state_kernel).__name__ == "InterpretedFunction"


@interpret_only
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length,padded", [(37, False), (37, True), (300, True)])
@pytest.mark.parametrize("vector_mma", [0, 1])
def test_values_and_gradients(mode, length, padded, vector_mma, seed, monkeypatch):
    """All three modes, odd lengths over several reduction programs (2 and 10), right padding with NaN in
    the padded keys and values; the reductions' vector states as column sums (0) or by a matrix product (1,
    ``LAUNCH["chunk_state_vector_mma"]``)."""
    from lion_hf.kernels.triton.tuning import LAUNCH

    monkeypatch.setitem(LAUNCH, "chunk_state_vector_mma", (vector_mma,))
    q, k, v = make_inputs(2, 2, length, 32, 32)
    pad = padding(2, length) if padded else None
    if padded:
        k, v = poison(k, pad), poison(v, pad)
    check(q, k, v, MODES[mode], pad=pad)


@interpret_only
@pytest.mark.parametrize("mode", MODES)
def test_without_denominator(mode, seed):
    """``with_den=False``: PARTS and SCALED give no den (NORMALIZED always has one)."""
    q, k, v = make_inputs(1, 2, 45, 32, 32)
    out, den, _ = check(q, k, v, MODES[mode], with_den=False)
    assert (den is None) == (MODES[mode] != NORMALIZED)


@interpret_only
def test_mixed_head_dims(seed):
    """dk != dv (64 and 128; 32 everywhere else)."""
    q, k, v = make_inputs(1, 1, 21, 64, 128)
    pad = padding(1, 21)
    check(q, k, poison(v, pad), NORMALIZED, pad=pad)
    check(q, k, v, PARTS)


@interpret_only
@pytest.mark.parametrize("mode", MODES)
def test_non_contiguous_inputs(mode, seed):
    """q, k, v as permuted views of one fused [B, L, 3, H, D] projection, read through their strides;
    outputs and gradients in token-major memory."""
    batch, length, heads, dim = 2, 50, 2, 32
    qkv = F.elu(torch.randn(batch, length, 3, heads, dim)) + 1
    qkv[:, :, 2] -= 1  # values of both signs
    q, k, v = (qkv[:, :, i].permute(0, 2, 1, 3) for i in range(3))
    assert not q.is_contiguous() and q.stride(-1) == 1
    pad = padding(batch, length)
    mode = MODES[mode]
    leaf = qkv.detach().clone().requires_grad_()

    def fn(leaf):
        views = [leaf[:, :, i].permute(0, 2, 1, 3) for i in range(3)]
        return gs().LionGlobalFunction.apply(*views, mode, True, 0.3, 1e-3, pad)

    (out, den), (grad,) = run_and_grad(fn, [leaf], mode)
    assert out.transpose(1, 2).is_contiguous()  # [B, L, H, D] in memory, as empty_blhd lays out
    (ref_out, ref_den), ref_grads = run_and_grad(lambda q, k, v: reference(q, k, v, mode, 0.3, 1e-3, pad),
                                                 leaves(q, k, v, dtype=torch.float64), mode)
    assert rel(out, ref_out) < 2e-5 and rel(den, ref_den) < 2e-5
    for i, (name, r) in enumerate(zip(("dq", "dk", "dv"), ref_grads)):
        g = grad[:, :, i].permute(0, 2, 1, 3)
        assert rel(g, r) < 2e-5, (name, rel(g, r))


@interpret_only
@pytest.mark.parametrize("mode", MODES)
def test_fp16_inputs(mode, seed):
    q, k, v = make_inputs(2, 2, 77, 32, 32, dtype=torch.float16)
    pad = padding(2, 77)
    check(q, poison(k, pad), poison(v, pad), MODES[mode], pad=pad, tol=5e-3)


@interpret_only
def test_fp16_large_states_do_not_overflow(seed):
    """States and numerators beyond fp16's 65504 (S entries ~ 300 * 2.5 * 100) where the outputs fit:
    the states stay fp32 and multiply in fp32."""
    shape = (1, 1, 300, 32)
    q, k = (2.0 + torch.rand(shape) for _ in range(2))
    v = 100.0 + torch.rand(shape)
    q, k, v = (t.half() for t in (q, k, v))
    assert (k.double().transpose(-1, -2) @ v.double()).min() > 65504
    for mode, scale in ((NORMALIZED, 1.0), (SCALED, 1e-4)):
        out, den = gs().global_forward(q, k, v, mode, True, scale, 0.0)
        ref_out, ref_den = reference(q, k, v, mode, scale, 0.0)
        assert out.dtype == torch.float16
        assert rel(out, ref_out) < 5e-3 and rel(den, ref_den) < 5e-3


@interpret_only
def test_fully_padded_sequence_and_zero_length(seed):
    """A sequence with no real key: NORMALIZED gives 0 (not NaN) there, gradients stay finite; L = 0."""
    q, k, v = make_inputs(2, 2, 40, 32, 32)
    pad = torch.ones(2, 40, dtype=torch.bool)
    pad[1] = False
    k, v = poison(k, pad), poison(v, pad)
    q_, k_, v_ = leaves(q, k, v)
    out, den = gs().LionGlobalFunction.apply(q_, k_, v_, NORMALIZED, False, 1.0, 0.0, pad)
    assert (out[1] == 0).all() and (den[1] == 0).all()
    ref_out, _ = reference(q, k, v, NORMALIZED, 1.0, 0.0, pad)
    assert rel(out[0], ref_out[0]) < 2e-5
    out.double().pow(2).sum().backward()
    for t in (q_, k_, v_):
        assert torch.isfinite(t.grad).all()
    assert (k_.grad[1] == 0).all() and (v_.grad[1] == 0).all() and (q_.grad[1] == 0).all()
    # zero length
    q0, k0, v0 = leaves(*make_inputs(1, 2, 0, 32, 32))
    for mode in MODES.values():
        out, den = gs().LionGlobalFunction.apply(q0, k0, v0, mode, True, 1.0, 0.0, None)
        assert out.shape == (1, 2, 0, 32) and den.shape == (1, 2, 0)
        out.sum().backward()
        assert q0.grad.shape == q0.shape and k0.grad.shape == k0.shape and v0.grad.shape == v0.shape


@interpret_only
def test_split_invariance_and_determinism(monkeypatch, seed):
    """Any number of positions per reduction program computes the same function; repeated runs are
    bitwise identical (fixed-order sums, no atomics). The plain launch functions (states computed inside)
    with a given g' (non-contiguous) and c, against the backward formulas from their definition."""
    mod = gs()
    q, k, v = make_inputs(1, 2, 70, 32, 32)
    pad = padding(1, 70)
    g = torch.randn(1, 70, 2, 32).transpose(1, 2)  # g' through its strides
    c = torch.randn(1, 2, 70)
    results = []
    for positions in (16, 32, 128):
        monkeypatch.setattr(mod, "INTERPRETER_LAUNCH", (positions, 1))
        out, den = mod.global_forward(q, k, v, PARTS, True, 1.0, 0.0, key_mask=pad)
        results.append((out, den, *mod.global_backward(q, k, v, g, c, key_mask=pad)))
    again = mod.global_backward(q, k, v, g, c, key_mask=pad)
    for a, b in zip(results[-1][2:], again):
        assert torch.equal(a, b)
    for other in results[:-1]:
        for a, b in zip(other, results[-1]):
            assert rel(a, b) < 2e-6
    # backward formulas, straight from the definition dA_ij = g_i . v_j + c_i
    qd, kd, vd = (t.double() for t in (q, k, v))
    keep = pad[:, None, :, None]
    kd, vd = torch.where(keep, kd, 0.0), torch.where(keep, vd, 0.0)
    da = g.double() @ vd.transpose(-1, -2) + c.double()[..., None]
    da = da * pad[:, None, None, :]
    ref = (da @ kd, (da.transpose(-1, -2) @ qd) * keep, (qd @ kd.transpose(-1, -2)).transpose(-1, -2) @ g.double())
    for name, x, r in zip(("dq", "dk", "dv"), results[-1][2:], ref):
        assert rel(x, r * (keep if name == "dv" else 1)) < 2e-5, name


# --------------------------------------------------------------------------------------------------
# GPU
# --------------------------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_cuda
def test_gpu_bf16_long_vs_float64(seed):
    """bf16 at L = 16384 against float64, values (normalised and scaled) and gradients."""
    length = 16384
    q, k, v = make_inputs(1, 4, length, 64, 64, dtype=torch.bfloat16, device="cuda")

    def ref64(q, k, v, mode, scale, eps):
        s = k.transpose(-1, -2) @ v  # [B, H, Dk, Dv]
        num, den = q @ s, q @ k.sum(-2)[..., None]
        den = den[..., 0]
        return (num / (den + eps)[..., None] if mode == NORMALIZED else num * scale), den

    for mode in (NORMALIZED, SCALED):
        fn = lambda q, k, v: gs().LionGlobalFunction.apply(q, k, v, mode, False, 0.125, 1e-6, None)  # noqa: E731
        (out, _), grads = run_and_grad(fn, leaves(q, k, v), mode)
        (ref_out, _), ref_grads = run_and_grad(lambda q, k, v: ref64(q, k, v, mode, 0.125, 1e-6),
                                               leaves(q, k, v, dtype=torch.float64), mode)
        assert out.dtype == torch.bfloat16
        assert rel(out, ref_out) < 2e-2, (mode, rel(out, ref_out))
        for name, g, r in zip(("dq", "dk", "dv"), grads, ref_grads):
            assert rel(g, r) < 4e-2, (mode, name, rel(g, r))
