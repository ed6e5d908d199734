"""The chunk-form launchers' layout, key-mask, scan-order and accumulation arguments against float64.

``chunk_forward(..., key_mask=, order=, prev=, out_layout=)`` and ``chunk_backward(..., key_mask=, order=,
grads=, accumulate=)`` (``lion_hf.kernels.triton.chunk``), called directly as the fused layer calls them:

* (a) q, k, v as permuted views of one ``[B, L, 3, H, D]`` tensor (no copies) give what contiguous
  inputs give; outputs go to token-major buffers, gradients straight into slices of ``d qkv``;
* (b) a key mask: padded keys hold NaN and still count as exact zeros; their dk, dv are zero;
* (c) two scan orders (the natural variants): order 1 in ``PARTS``, order 2 ``NORMALIZED`` with
  ``prev=``, against :func:`lion_hf.kernels.combine_parts` of the float64 parts of the permuted
  sequences mapped back (as :func:`lion_hf.kernels.fused.unfused_attention` combines them), and the two
  backward launches (the second accumulating) against float64 autograd, both log-decays included;
* (d) lengths shorter than a chunk and partial last chunks, with every argument at once.

Interpreter tests (CPU, ``TRITON_INTERPRET=1``), fp32 against float64 at 2e-5 as in
``test_kernels_triton.py``. Head dim 32 and chunk 16 keep the interpreter cheap.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import combine_parts, naive_lion_attention, naive_lion_parts  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402

pytestmark = pytest.mark.skipif(not triton_available(), reason="triton is not installed")
interpret_only = pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")

MASKS = ["lit", "decay", "selective"]
TOL = 2e-5
# a per-head d log_decay sums P_ij |i - j| over every pair of positions, terms of both signs: its fp32 rounding is
# ~1e-5 of the terms' size, which read 3.4e-5 of the result for one draw (LION_TEST_SEED=3521612498, 33 tokens)
HEAD_DECAY_TOL = 1e-4
EPS = 1e-3


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def make_decay(batch, heads, length, mask):
    if mask == "lit":
        return None
    if mask == "decay":
        return -(0.05 + torch.rand(heads))
    return F.logsigmoid(torch.randn(batch, heads, length) + 1.0)


def make_qkv(batch, heads, length, dim):
    """q, k, v as ``[B, H, L, D]`` views of one ``[B, L, 3, H, D]`` tensor (positive q, k)."""
    qkv = torch.randn(batch, length, 3, heads, dim)
    qkv[:, :, :2] = F.elu(qkv[:, :, :2]) + 1
    return qkv, tuple(t.transpose(1, 2) for t in qkv.unbind(2))


def kernels():
    from lion_hf.kernels.triton import chunk, common

    return chunk, common


def zero_padded(k, v, pad):
    """k, v with padded keys replaced by exact zeros (``where``: NaN does not leak)."""
    if pad is None:
        return k, v
    keep = pad[:, None, :, None]
    return torch.where(keep, k, torch.zeros_like(k)), torch.where(keep, v, torch.zeros_like(v))


def with_nan_pads(k, v, pad):
    keep = pad[:, None, :, None]
    nan = torch.full_like(k, float("nan"))
    return torch.where(keep, k, nan), torch.where(keep, v, torch.full_like(v, float("nan")))


def leaves64(*tensors):
    return [None if t is None else t.detach().double().requires_grad_() for t in tensors]


def backward_inputs(mode, out, den, grad_out, grad_den):
    _, common = kernels()
    return common.grad_inputs(mode, grad_out, grad_den if mode == common.PARTS else None, out, den, 1.0, EPS,
                              grad_out, torch.float32)


# --------------------------------------------------------------------------------------------------
# (a) strides
# --------------------------------------------------------------------------------------------------

@interpret_only
@pytest.mark.parametrize("mask", MASKS)
def test_strided_inputs_and_given_buffers(mask, seed):
    chunk, common = kernels()
    from lion_hf.kernels.triton.utils import empty_blhd

    batch, heads, length, dim = 2, 2, 45, 32
    qkv, (q, k, v) = make_qkv(batch, heads, length, dim)
    assert not q.is_contiguous() and q.stride(-1) == 1
    a = make_decay(batch, heads, length, mask)
    qc, kc, vc = q.contiguous(), k.contiguous(), v.contiguous()
    moment = mask == "decay"

    out_s, den_s, states = chunk.chunk_forward(q, k, v, a, common.NORMALIZED, True, 1.0, EPS, 16,
                                               keep_states=True, moment=moment, out_layout="blhd")
    out_c, den_c = chunk.chunk_forward(qc, kc, vc, a, common.NORMALIZED, True, 1.0, EPS, 16)
    # the default keeps today's contiguous outputs; "blhd" is token-major
    assert out_c.is_contiguous()
    assert out_s.stride() == empty_blhd(batch, heads, length, dim, torch.float32, "cpu").stride()
    q64, k64, v64, a64 = leaves64(q, k, v, a)
    ref = naive_lion_attention(q64, k64, v64, a64, eps=EPS)
    assert rel(out_s, out_c) < 1e-6 and rel(den_s, den_c) < 1e-6
    assert rel(out_s, ref) < TOL and rel(out_c, ref) < TOL

    # backward: g' and out through their strides, gradients written into the slices of one d qkv buffer
    grad_out = torch.randn(batch, length, heads, dim).transpose(1, 2)
    ref.backward(grad_out.double())
    g, c = backward_inputs(common.NORMALIZED, out_s, den_s, grad_out, None)
    d_qkv = torch.full_like(qkv, float("nan"))
    slots = tuple(t.transpose(1, 2) for t in d_qkv.unbind(2))
    returned = chunk.chunk_backward(q, k, v, a, g, c, a is not None, 16, states=states, grads=slots)
    assert all(r is s for r, s in zip(returned[:3], slots))
    dq_c, dk_c, dv_c, dlog_c = chunk.chunk_backward(qc, kc, vc, a, g.contiguous(), c, a is not None, 16)
    assert dq_c.is_contiguous() and dk_c.is_contiguous() and dv_c.is_contiguous()
    for name, got, plain, r in zip("qkv", slots, (dq_c, dk_c, dv_c), (q64.grad, k64.grad, v64.grad)):
        assert rel(got, r) < TOL, (name, rel(got, r))
        assert rel(got, plain) < 1e-6, name
    if a is not None:
        assert rel(returned[3], a64.grad) < TOL and rel(dlog_c, a64.grad) < TOL


# --------------------------------------------------------------------------------------------------
# (b) key mask
# --------------------------------------------------------------------------------------------------

def key_padding(batch, length):
    pad = torch.ones(batch, length, dtype=torch.bool)
    pad[0, 5:9] = False  # inside a chunk
    pad[0, 16:32] = False  # a whole chunk
    pad[-1, length - length // 3:] = False  # right padding, into the partial last chunk
    return pad


@interpret_only
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("mode", ["normalize", "parts"])
def test_key_mask(mask, mode, seed):
    chunk, common = kernels()
    batch, heads, length, dim = 2, 2, 45, 32
    _, (q, k, v) = make_qkv(batch, heads, length, dim)
    a = make_decay(batch, heads, length, mask)
    pad = key_padding(batch, length)
    k_nan, v_nan = with_nan_pads(k, v, pad)
    k_clean, v_clean = zero_padded(k, v, pad)
    kmode = common.NORMALIZED if mode == "normalize" else common.PARTS
    out, den = chunk.chunk_forward(q, k_nan, v_nan, a, kmode, True, 1.0, EPS, 16, key_mask=pad)

    q64, k64, v64, a64 = leaves64(q, k_clean, v_clean, a)
    if mode == "normalize":
        ref_out = naive_lion_attention(q64, k64, v64, a64, eps=EPS, key_padding_mask=pad)
        _, ref_den = naive_lion_parts(q64.detach(), k64.detach(), v64.detach(), a, key_padding_mask=pad)
    else:
        ref_out, ref_den = naive_lion_parts(q64, k64, v64, a64, key_padding_mask=pad)
    assert rel(out, ref_out) < TOL and rel(den, ref_den) < TOL

    grad_out = torch.randn_like(out)
    grad_den = torch.randn_like(den)
    loss = (ref_out * grad_out.double()).sum()
    if mode == "parts":
        loss = loss + (ref_den * grad_den.double()).sum()
    loss.backward()
    g, c = backward_inputs(kmode, out, den, grad_out, grad_den)
    dq, dk, dv, dlog = chunk.chunk_backward(q, k_nan, v_nan, a, g, c, a is not None, 16, key_mask=pad)
    padded = ~pad[:, None, :].expand(batch, heads, length)
    assert (dk[padded] == 0).all() and (dv[padded] == 0).all()
    for name, got, r in (("dq", dq, q64.grad), ("dk", dk, k64.grad), ("dv", dv, v64.grad)):
        assert rel(got, r) < TOL, (name, rel(got, r))
    if a is not None:
        assert rel(dlog, a64.grad) < TOL


# --------------------------------------------------------------------------------------------------
# (c) two scan orders, accumulated; (d) short and partial chunks
# --------------------------------------------------------------------------------------------------

def scan_decay(a, perm):
    """A log-decay in scan order (LION-S is per token; LION-D's [H] has no positions)."""
    return a[..., perm] if a is not None and a.dim() == 3 else a


def reference_two_orders(q, k, v, decays, perms, pad):
    """float64 output of the natural variants, combined as ``unfused_attention`` combines them."""
    k, v = zero_padded(k, v, pad)
    parts = []
    for perm, a in zip(perms, decays):
        inverse = torch.argsort(perm)
        num, den = naive_lion_parts(q[:, :, perm], k[:, :, perm], v[:, :, perm], scan_decay(a, perm))
        parts.append((num[:, :, inverse], den[:, :, inverse]))
    return combine_parts(parts, eps=EPS)


def check_two_orders(batch, heads, length, dim, mask, with_pad, size):
    chunk, common = kernels()
    qkv, (q, k, v) = make_qkv(batch, heads, length, dim)
    decays = [make_decay(batch, heads, length, mask) for _ in range(2)]
    perms = [torch.randperm(length), torch.randperm(length)]
    orders = [p.to(torch.int32) for p in perms]
    pad = key_padding(batch, length) if with_pad else None
    if with_pad and length < 32:
        pad = torch.ones(batch, length, dtype=torch.bool)
        pad[-1, length // 2:] = False
        pad[0, 1] = False
    k_in, v_in = with_nan_pads(k, v, pad) if with_pad else (k, v)
    moment = mask == "decay"
    kernel_decays = [scan_decay(a, p) for a, p in zip(decays, perms)]

    prev = chunk.chunk_forward(q, k_in, v_in, kernel_decays[0], common.PARTS, True, 1.0, 0.0, size,
                               keep_states=True, moment=moment, key_mask=pad, order=orders[0], out_layout="blhd")
    num1, den1, states = prev
    out, den = chunk.chunk_forward(q, k_in, v_in, kernel_decays[1], common.NORMALIZED, True, 1.0, EPS, size,
                                   key_mask=pad, order=orders[1], prev=(num1, den1))
    assert out.is_contiguous()

    q64, k64, v64, a1, a2 = leaves64(q, k, v, *decays)
    ref = reference_two_orders(q64, k64, v64, (a1, a2), perms, pad)
    assert rel(out, ref) < TOL, rel(out, ref)
    # the first order's parts alone are its float64 parts, by token
    k0, v0 = zero_padded(k.double(), v.double(), pad)
    inv0 = torch.argsort(perms[0])
    rn, rd = naive_lion_parts(q.double()[:, :, perms[0]], k0[:, :, perms[0]], v0[:, :, perms[0]],
                              scan_decay(decays[0], perms[0]) if decays[0] is not None else None)
    assert rel(num1, rn[:, :, inv0]) < TOL and rel(den1, rd[:, :, inv0]) < TOL

    grad_out = torch.randn_like(out)
    ref.backward(grad_out.double())
    g, c = backward_inputs(common.NORMALIZED, out, den, grad_out, None)
    d_qkv = torch.full_like(qkv, float("nan"))
    slots = tuple(t.transpose(1, 2) for t in d_qkv.unbind(2))
    dlogs = []
    for i in range(2):
        *_, dlog = chunk.chunk_backward(q, k_in, v_in, kernel_decays[i], g, c, decays[i] is not None, size,
                                        states=states if i == 0 else None, key_mask=pad, order=orders[i],
                                        grads=slots, accumulate=i > 0)
        if dlog is not None and dlog.dim() == 3:
            dlog = dlog.index_select(-1, torch.argsort(perms[i]))  # scan order -> token order
        dlogs.append(dlog)
    for name, got, r in zip(("dq", "dk", "dv"), slots, (q64.grad, k64.grad, v64.grad)):
        assert rel(got, r) < TOL, (name, rel(got, r))
    if with_pad:
        padded = ~pad[:, None, :].expand(batch, heads, length)
        assert (slots[1][padded] == 0).all() and (slots[2][padded] == 0).all()
    for i, leaf in enumerate((a1, a2)):
        if leaf is not None:
            assert dlogs[i].shape == leaf.shape
            tol = HEAD_DECAY_TOL if leaf.dim() == 1 else TOL
            assert rel(dlogs[i], leaf.grad) < tol, (i, rel(dlogs[i], leaf.grad))


@interpret_only
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("with_pad", [False, True])
def test_two_scan_orders_accumulate(mask, with_pad, seed):
    check_two_orders(2, 2, 45, 32, mask, with_pad, 16)


@interpret_only
@pytest.mark.parametrize("length,size", [(7, 16), (33, 16), (45, 32)])
def test_short_and_partial_chunks(length, size, seed):
    check_two_orders(1, 2, length, 32, "selective" if length != 33 else "decay", True, size)


@interpret_only
def test_argument_checks():
    chunk, common = kernels()
    _, (q, k, v) = make_qkv(1, 1, 8, 32)
    with pytest.raises(ValueError, match="out_layout"):
        chunk.chunk_forward(q, k, v, None, common.PARTS, True, 1.0, 0.0, 16, out_layout="bhld")
    with pytest.raises(ValueError, match="order"):
        chunk.chunk_forward(q, k, v, None, common.PARTS, True, 1.0, 0.0, 16, order=torch.arange(7))
    with pytest.raises(ValueError, match="accumulate"):
        chunk.chunk_backward(q, k, v, None, v, None, False, 16, accumulate=True)
