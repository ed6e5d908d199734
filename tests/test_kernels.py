"""The PyTorch forms of the LION operator against the float64 naive reference.

Tolerances: fp32 inputs are compared with the float64 reference at 1e-5 relative (fp32 accumulation
over at most ~100 terms); float64 runs (used for gradients, to isolate the algebra from rounding) at
1e-9; fp16/bf16 inputs at 1e-2 (their own 8-11 bit mantissas dominate).
"""

import pytest
import torch
import torch.nn.functional as F

from lion_hf.kernels import (
    combine_parts,
    lion_attention,
    lion_attention_parts,
    naive_lion_attention,
    naive_lion_parts,
    resolve_form,
)
from lion_hf.kernels.naive import naive_decay_mask

FORMS = ["attention", "chunk", "recurrent"]
MASKS = ["lit", "decay", "selective"]


def make_inputs(batch, heads, length, dk=8, dv=6, mask="selective", dtype=torch.float32, positive=True,
                decay_scale=1.0):
    q = torch.randn(batch, heads, length, dk, dtype=torch.float64)
    k = torch.randn(batch, heads, length, dk, dtype=torch.float64)
    if positive:  # positive features keep the normaliser away from zero, as the models' feature maps do
        q, k = F.elu(q) + 1, F.elu(k) + 1
    v = torch.randn(batch, heads, length, dv, dtype=torch.float64)
    if mask == "lit":
        log_decay = None
    elif mask == "decay":
        log_decay = F.logsigmoid(decay_scale * torch.randn(heads, dtype=torch.float64))
    else:
        log_decay = F.logsigmoid(decay_scale * torch.randn(batch, heads, length, dtype=torch.float64))
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    return cast(q), cast(k), cast(v), cast(log_decay)


def assert_rel_close(actual, expected, rtol, seed, what=""):
    scale = expected.abs().max().clamp_min(1e-30)
    err = (actual.double() - expected.double()).abs().max() / scale
    assert err <= rtol, f"{what}: relative error {err:.3e} > {rtol:.0e} (seed {seed})"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("length", [1, 7, 33, 64])
def test_forward_fp32_matches_naive(seed, form, mask, normalize, length):
    q, k, v, log_decay = make_inputs(2, 3, length, mask=mask)
    out = lion_attention(q, k, v, log_decay, normalize=normalize, form=form, chunk_size=16)
    ref = naive_lion_attention(q, k, v, log_decay, normalize=normalize)
    assert out.dtype == torch.float32 and out.shape == (2, 3, length, 6)
    assert_rel_close(out, ref, 1e-5, seed, f"{form}/{mask}/normalize={normalize}/L={length}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("normalize", [True, False])
def test_gradients_match_naive(seed, form, mask, normalize):
    length = 21  # odd, and not a multiple of the chunk size
    inputs = make_inputs(2, 2, length, mask=mask, dtype=torch.float64)
    ours = [None if t is None else t.clone().requires_grad_(True) for t in inputs]
    theirs = [None if t is None else t.clone().requires_grad_(True) for t in inputs]
    grad_out = torch.randn(2, 2, length, 6, dtype=torch.float64)
    out = lion_attention(*ours, normalize=normalize, form=form, chunk_size=8, eps=1e-3)
    ref = naive_lion_attention(*theirs, normalize=normalize, eps=1e-3)
    (out * grad_out).sum().backward()
    (ref * grad_out).sum().backward()
    for name, a, b in zip("qkv", ours[:3], theirs[:3]):
        assert_rel_close(a.grad, b.grad, 1e-9, seed, f"d{name} {form}/{mask}")
    if mask != "lit":
        assert_rel_close(ours[3].grad, theirs[3].grad, 1e-9, seed, f"dlog_decay {form}/{mask}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(seed, form, dtype):
    q, k, v, log_decay = make_inputs(2, 2, 40, mask="selective", dtype=dtype)
    out = lion_attention(q, k, v, log_decay, form=form, chunk_size=16)
    ref = naive_lion_attention(q, k, v, log_decay)
    assert out.dtype == dtype
    assert_rel_close(out, ref, 1e-2, seed, f"{form}/{dtype}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("side", ["right", "left"])
def test_padding_equals_unpadded_sequence(seed, form, mask, side):
    real, padded_length = 19, 27
    q, k, v, log_decay = make_inputs(1, 2, padded_length, mask=mask)
    keep = torch.zeros(1, padded_length, dtype=torch.bool)
    span = slice(0, real) if side == "right" else slice(padded_length - real, padded_length)
    keep[:, span] = True
    # Garbage in the padded keys and values (even non-finite) must not leak into real positions.
    k = torch.where(keep[:, None, :, None], k, torch.full_like(k, float("inf")))
    v = torch.where(keep[:, None, :, None], v, torch.full_like(v, float("nan")))
    out = lion_attention(q, k, v, log_decay, form=form, chunk_size=8, key_padding_mask=keep)
    sliced_decay = log_decay if (log_decay is None or log_decay.dim() == 1) else log_decay[..., span]
    ref = lion_attention(q[..., span, :], k[..., span, :], v[..., span, :], sliced_decay, form=form, chunk_size=8)
    assert_rel_close(out[..., span, :], ref, 1e-5, seed, f"{form}/{mask}/{side} padding")


@pytest.mark.parametrize("form", FORMS)
def test_natural_order_combination(seed, form):
    """Two scan orders, each with its own decays, combine as (num_1 + num_2) / (den_1 + den_2)."""
    length = 17
    q, k, v, _ = make_inputs(2, 2, length, dtype=torch.float64)
    decays = [F.logsigmoid(torch.randn(2, 2, length, dtype=torch.float64)) for _ in range(2)]
    perms = [torch.arange(length), torch.randperm(length)]
    parts = []
    expected_mask = torch.zeros(2, 2, length, length, dtype=torch.float64)
    for perm, log_decay in zip(perms, decays):
        inverse = torch.argsort(perm)
        num, den = lion_attention_parts(q[:, :, perm], k[:, :, perm], v[:, :, perm], log_decay,
                                        form=form, chunk_size=4)
        parts.append((num[:, :, inverse], den[:, :, inverse]))
        # mask of this order, built in scan order and mapped back to token order
        expected_mask += naive_decay_mask(log_decay, 2, 2, length)[:, :, inverse][:, :, :, inverse]
    out = combine_parts(parts)
    scores = (q @ k.transpose(-1, -2)) * expected_mask
    expected = (scores @ v) / scores.sum(-1, keepdim=True)
    assert_rel_close(out, expected, 1e-10, seed, f"natural orders, {form}")


def test_parts_match_naive_parts(seed):
    q, k, v, log_decay = make_inputs(2, 3, 30, mask="decay", dtype=torch.float64)
    for form in FORMS:
        num, den = lion_attention_parts(q, k, v, log_decay, form=form, chunk_size=8)
        ref_num, ref_den = naive_lion_parts(q, k, v, log_decay)
        assert_rel_close(num, ref_num, 1e-10, seed, f"num {form}")
        assert_rel_close(den, ref_den, 1e-10, seed, f"den {form}")


@pytest.mark.parametrize("mask", ["lit", "strong"])
def test_long_sequence_stays_finite(seed, mask):
    """Exponents are sums of log-decays (<= 0): no overflow at long L, forward or backward."""
    length = 4096
    q, k, v, _ = make_inputs(1, 2, length, dk=16, dv=16)
    log_decay = None if mask == "lit" else torch.full((2,), -0.6931, requires_grad=True)  # lambda = 0.5
    q.requires_grad_(True)
    out = lion_attention(q, k, v, log_decay, form="chunk", chunk_size=64)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(q.grad).all()
    if log_decay is not None:
        assert torch.isfinite(log_decay.grad).all()
    # Spot-check against the recurrent form (independent arithmetic) on the same long input.
    with torch.no_grad():
        ref = lion_attention(q, k, v, None if log_decay is None else log_decay.detach(), form="recurrent")
    assert_rel_close(out.detach(), ref, 1e-4, seed, f"chunk vs recurrent at L={length}")


def test_chunk_size_does_not_change_the_result(seed):
    q, k, v, log_decay = make_inputs(1, 2, 50, mask="selective", dtype=torch.float64)
    outs = [lion_attention(q, k, v, log_decay, form="chunk", chunk_size=c) for c in (1, 3, 16, 64, 128)]
    for other in outs[1:]:
        assert_rel_close(other, outs[0], 1e-10, seed, "chunk sizes")


def test_attention_dropout_scales_masked_scores(seed):
    q, k, v, log_decay = make_inputs(1, 1, 12, mask="decay")
    plain = lion_attention(q, k, v, log_decay, form="attention")
    assert torch.equal(lion_attention(q, k, v, log_decay, form="attention", dropout_p=0.0), plain)
    dropped = lion_attention(q, k, v, log_decay, form="attention", dropout_p=0.5)
    assert not torch.allclose(dropped, plain)
    # With v = 1 the normalised output is the row sum of dropout(A / den): 2 x (kept share of the row).
    ones = torch.ones_like(v)
    row = lion_attention(q, k, ones, log_decay, form="attention", dropout_p=0.5)[..., 0]
    assert (row >= 0).all() and (row <= 2.0 + 1e-5).all() and not torch.allclose(row, torch.ones_like(row))


def test_auto_form_resolution():
    assert resolve_form("auto", 197) == "attention"
    assert resolve_form("auto", 100_000) == "chunk"
    assert resolve_form("recurrent", 5) == "recurrent"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: {**a, "q": a["q"][0]}, "4-D"),
        (lambda a: {**a, "k": a["k"][:, :, :-1]}, "same shape"),
        (lambda a: {**a, "log_decay": torch.zeros(5)}, "log_decay must be"),
        (lambda a: {**a, "log_decay": torch.full((2,), 0.5)}, "<= 0"),
        (lambda a: {**a, "form": "fast"}, "form must be one of"),
        (lambda a: {**a, "chunk_size": 0}, "chunk_size"),
        (lambda a: {**a, "key_padding_mask": torch.ones(1, 9)}, "key_padding_mask"),
        (lambda a: {**a, "form": "chunk", "dropout_p": 0.1}, "dropout_p"),
        (lambda a: {**a, "q": a["q"].long(), "k": a["k"].long()}, "floating-point"),
    ],
)
def test_bad_arguments_raise_clear_errors(change, message):
    q, k, v, _ = make_inputs(1, 2, 9)
    args = change({"q": q, "k": k, "v": v, "log_decay": None, "form": "auto", "chunk_size": None,
                   "key_padding_mask": None, "dropout_p": 0.0})
    with pytest.raises(ValueError, match=message):
        lion_attention(args.pop("q"), args.pop("k"), args.pop("v"), args.pop("log_decay"), **args)


class _LargestTensor(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the element count of the largest tensor any operator produces."""

    largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("form", ["chunk", "recurrent"])
def test_linear_forms_never_build_an_l_by_l_tensor(form):
    length = 1024
    q, k, v, log_decay = make_inputs(1, 1, length, dk=8, dv=8, mask="selective")
    q.requires_grad_(True)
    with _LargestTensor() as recorder:
        out = lion_attention(q, k, v, log_decay, form=form, chunk_size=32)
        out.sum().backward()
    assert recorder.largest < length * length // 16, f"{form}: a tensor of {recorder.largest} elements"
    with _LargestTensor() as recorder:
        lion_attention(q, k, v, log_decay, form="attention")
    assert recorder.largest >= length * length  # the recorder does see quadratic tensors
