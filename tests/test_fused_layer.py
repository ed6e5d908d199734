"""The fused LION layer (Triton, interpreter on CPU) against the unfused PyTorch path and float64.

``lion_fused_attention`` takes the ``qkv`` projection output: these tests draw it at random (fresh
seeds), as a non-contiguous view, with odd lengths and padding, and compare values and gradients
(``d qkv`` and ``d log_decay``) with the unfused reference run in float64 on the PyTorch backend.
fp32 kernels: relative error < 2e-5 (see ``test_kernels_triton.py`` for the tolerances' reasoning).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import fused as fused_module  # noqa: E402
from lion_hf.kernels.fused import lion_fused_attention, unfused_attention  # noqa: E402
from lion_hf.kernels.triton.tuning import LAUNCH  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402
from lion_hf.modeling.scan_order import natural_scan_orders  # noqa: E402

pytestmark = [pytest.mark.skipif(not triton_available(), reason="triton is not installed"),
              pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")]


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def make_qkv(batch, length, heads, dim, strided=True):
    """A random ``[B, L, 3, H, D]`` projection output; ``strided``: a non-contiguous view of a bigger one."""
    if strided:
        big = torch.randn(batch, length, 3, heads + 1, dim + 8)
        return big[:, :, :, 1:, 4:4 + dim]
    return torch.randn(batch, length, 3, heads, dim)


def make_decays(mask, batch, heads, length, orders=1, cls_zero=False):
    out = []
    for _ in range(orders):
        if mask == "lit":
            out.append(None)
        elif mask == "decay":
            out.append(F.logsigmoid(torch.randn(heads)))
        else:
            a = F.logsigmoid(-torch.randn(batch, heads, length))
            if cls_zero:
                a[..., 0] = 0.0
            out.append(a)
    return out


def run(fn, qkv, decays, gen_seed=7):
    """Output and gradients (qkv, each log-decay) of a fixed random projection of ``fn``'s output."""
    qkv = qkv.detach().clone().requires_grad_()
    decays = [None if a is None else a.detach().clone().requires_grad_() for a in decays]
    out = fn(qkv, decays)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(gen_seed), dtype=torch.float64)
    (out.double() * weight).sum().backward()
    return out, [qkv.grad] + [a.grad for a in decays if a is not None]


def compare(options, qkv, decays, tol=2e-5):
    def fused(x, a):
        return lion_fused_attention(x, a, backend="triton", **options)

    def reference(x, a):
        return unfused_attention(x.double(), [None if t is None else t.double() for t in a], backend="torch",
                                 **options)

    def fp32_reference(x, a):
        return unfused_attention(x.float(), [None if t is None else t.float() for t in a], backend="torch",
                                 **options)

    out, grads = run(fused, qkv, decays)
    ref, ref_grads = run(reference, qkv, decays)
    assert out.shape == ref.shape and out.dtype == qkv.dtype
    assert rel(out, ref) < tol
    assert len(grads) == len(ref_grads)
    # LION-D's d log_decay is a sum over every token pair that cancels: its fp32 error may reach a few times the
    # fp32 PyTorch path's own (a fresh seed put the chunk form at 4.8e-5 of it, the old code alike)
    fp32_grads = run(fp32_reference, qkv, decays)[1] if any(a is not None and a.dim() == 1 for a in decays) else None
    for i, (name, g, r) in enumerate(zip(["dqkv", "dlog_decay_1", "dlog_decay_2"], grads, ref_grads)):
        allowed = tol
        if i > 0 and fp32_grads is not None:
            allowed = max(tol, 4 * rel(fp32_grads[i], r))
        assert rel(g, r) < allowed, (name, rel(g, r), allowed)


def grid_inputs(rows: int, cols: int, heads: int, dim: int, natural: bool, padded: tuple[int, int]):
    """``(orders, number of orders, qkv, key padding mask)`` for a ``rows x cols`` patch grid and its class token:
    the natural scan orders or none, a strided projection, sequence ``padded[0]``'s last ``padded[1]`` keys padded."""
    length = 1 + rows * cols
    qkv = make_qkv(2, length, heads, dim)
    pad = torch.ones(2, length, dtype=torch.bool)
    pad[padded[0], -padded[1]:] = False
    return (natural_scan_orders(rows, cols) if natural else None), (2 if natural else 1), qkv, pad


def fused_and_reference(options: dict, gated: bool, orders: int):
    """``(fused, reference)`` of ``run``: the Triton layer and the float64 PyTorch path on the same inputs, with
    LION-S given by its gate logits (``gated``: one ``[B, L, orders*H]`` input, class token undecayed) or by the
    log-decays (``None`` for LIT)."""
    from lion_hf.kernels.fused import selective_log_decays

    def fused(x, a):
        if gated:
            return lion_fused_attention(x, None, backend="triton", gate_logits=a[0], cls_zero=True, **options)
        return lion_fused_attention(x, a, backend="triton", **options)

    def reference(x, a):
        decays = (selective_log_decays(a[0].double(), orders, True) if gated
                  else [t if t is None else t.double() for t in a])
        return unfused_attention(x.double(), decays, backend="torch", **options)

    return fused, reference


# positive features for the normalised (vision) outputs; identity features only unnormalised (text), where
# a denominator that can cross zero is never formed
CASES = [(mask, fmap, norm) for mask, fmap in (("lit", "elu_plus_one"), ("decay", "silu_l2"), ("selective", "silu_l2"))
         for norm in (True, False)] + [(mask, "identity", False) for mask in ("lit", "decay", "selective")]


@pytest.mark.parametrize("form", ["attention", "chunk"])
@pytest.mark.parametrize("mask, feature_map, normalize", CASES)
def test_fused_layer_matches_reference(form, mask, feature_map, normalize, seed):
    length = 37  # odd, several kernel tiles (16 in the interpreter) and chunks of 16
    qkv = make_qkv(2, length, 2, 32)
    decays = make_decays(mask, 2, 2, length)
    options = dict(feature_map=feature_map, normalize=normalize, scale=32 ** -0.5, eps=1e-3 if normalize else 0.0,
                   form=form, chunk_size=16, key_padding_mask=None, dropout_p=0.0)
    compare(options, qkv, decays)


@pytest.mark.parametrize("form", ["attention", "chunk"])
@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
def test_fused_layer_with_padding_equals_reference_and_unpadded(mask, form, seed):
    """Text layout (identity features, scaled output) with left and right padding, as the MLM models run."""
    batch, length, heads, dim = 3, 29, 2, 32
    qkv = make_qkv(batch, length, heads, dim)
    pad = torch.ones(batch, length, dtype=torch.bool)
    pad[0, 20:] = False  # right padding
    pad[1, :6] = False  # left padding
    qkv[0, 20:] = float("nan")  # whatever a padded position holds must not leak
    decays = make_decays(mask, batch, heads, length)
    options = dict(feature_map="identity", normalize=False, scale=dim ** -0.5, eps=0.0, form=form,
                   chunk_size=16, key_padding_mask=pad, dropout_p=0.0)
    out = lion_fused_attention(qkv, decays, backend="triton", **options)
    clean = torch.nan_to_num(qkv, nan=0.0)
    ref = unfused_attention(clean.double(), [None if a is None else a.double() for a in decays], backend="torch",
                            **options)
    real = pad[..., None]
    assert rel(torch.where(real, out, 0.0), torch.where(real, ref, 0.0)) < 2e-5
    # the first sequence's real tokens see exactly what they would without the padding
    alone = lion_fused_attention(qkv[:1, :20], [None if a is None else (a if a.dim() == 1 else a[:1, :, :20])
                                                for a in decays], backend="triton",
                                 **{**options, "key_padding_mask": None})
    assert rel(out[:1, :20], alone) < 2e-5
    compare(options, clean, decays)


@pytest.mark.parametrize("form, one_launch, grid", [("attention", 1, (5, 7)), ("attention", 1, (4, 6)),
                                                   ("attention", 0, (5, 7)), ("chunk", 1, (5, 7))])
@pytest.mark.parametrize("mask", ["decay", "selective"])
def test_fused_layer_two_scan_orders(mask, form, one_launch, grid, monkeypatch, seed):
    """The natural variants: both snake orders of a patch grid (+ class token: 36 or 25 tokens) in one call; the
    attention form runs them in one launch each way or one launch per order (``attn_orders_in_one_launch``)."""
    monkeypatch.setitem(LAUNCH, "attn_orders_in_one_launch", (one_launch,))
    (rows, cols), heads, dim = grid, 2, 32
    length = 1 + rows * cols
    orders = natural_scan_orders(rows, cols)
    qkv = make_qkv(2, length, heads, dim)
    decays = make_decays(mask, 2, heads, length, orders=2, cls_zero=True)
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=2e-6 * dim ** 0.5,
                   form=form, chunk_size=16, key_padding_mask=None, dropout_p=0.0, orders=orders)
    compare(options, qkv, decays)


@pytest.mark.parametrize("mask", ["decay", "selective"])
def test_two_scan_orders_in_half_precision(mask, monkeypatch, seed):
    """fp16 inputs (the kernels' non-fp32 path, where the one-launch kernels take ``F_i - F_j`` from the rounded
    prefix sums alone): both scan orders in one launch and one launch per order agree with float64 to fp16's
    precision, values and gradients (the projection's and the log-decays')."""
    rows, cols, heads, dim = 4, 6, 2, 32
    length = 1 + rows * cols
    qkv = make_qkv(2, length, heads, dim).half()
    decays = make_decays(mask, 2, heads, length, orders=2, cls_zero=True)
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=2e-6 * dim ** 0.5, form="attention",
                   chunk_size=None, key_padding_mask=None, dropout_p=0.0, orders=natural_scan_orders(rows, cols))
    ref, ref_grads = run(lambda x, a: unfused_attention(x.double(), [t.double() for t in a], backend="torch",
                                                        **options), qkv, decays)
    for one_launch in (1, 0):
        monkeypatch.setitem(LAUNCH, "attn_orders_in_one_launch", (one_launch,))
        out, grads = run(lambda x, a: lion_fused_attention(x, a, backend="triton", **options), qkv, decays)
        assert out.dtype == torch.float16 and rel(out, ref) < 1e-2, (one_launch, rel(out, ref))
        for name, g, r in zip(["dqkv", "dlog_decay_1", "dlog_decay_2"], grads, ref_grads):
            assert rel(g, r) < 2e-2, (one_launch, name, rel(g, r))


def _dropped_matrix(qkv, decays, p, torch_seed, options):
    """The dropped, masked, scaled scores the kernels used, read back through values = identity."""
    batch, length, _, heads, dim = qkv.shape
    probe = qkv.clone()
    probe[:, :, 2] = torch.eye(length, dim)[None, :, None, :].expand(batch, length, heads, dim)
    torch.manual_seed(torch_seed)
    out = lion_fused_attention(probe, decays, backend="triton", dropout_p=p, **options)
    return out.view(batch, length, heads, dim).transpose(1, 2)[..., :length]  # [B, H, L(query), L(key)]


def test_dropout_mask_keep_rate_and_gradients(seed):
    """In-kernel dropout: the forward's mask has the expected keep rate and 1/(1-p) scaling, the backward
    uses the same mask (gradients equal those of the function with that mask fixed), p = 0 is no dropout."""
    batch, length, heads, dim, p = 2, 27, 2, 32, 0.3
    qkv = make_qkv(batch, length, heads, dim, strided=False)
    decays = make_decays("selective", batch, heads, length)
    options = dict(feature_map="identity", normalize=False, scale=1.0, eps=0.0, form="attention",
                   chunk_size=None, key_padding_mask=None)
    full = _dropped_matrix(qkv, decays, 0.0, 0, options)
    dropped = _dropped_matrix(qkv, decays, p, 1234, options)
    again = _dropped_matrix(qkv, decays, p, 1234, options)
    other = _dropped_matrix(qkv, decays, p, 4321, options)
    assert torch.equal(dropped, again)  # the mask is a function of the seed torch's generator draws
    assert not torch.equal(dropped, other)
    kept = dropped != 0
    keep_rate = kept.double().mean().item()
    assert abs(keep_rate - (1 - p)) < 0.05, keep_rate  # 2304 draws: 5 sigma ~ 0.048
    assert rel(dropped[kept], full[kept] / (1 - p)) < 1e-5
    # gradients: the kernels' backward against autograd of the same function with the mask fixed
    from lion_hf.kernels.masks import log_mask

    keep = (_dropped_matrix(qkv, decays, p, 99, options) != 0).double() / (1 - p)

    def fixed_mask(x, a):
        q, k, v = (x.double()[:, :, i].transpose(1, 2) for i in range(3))
        scores = (q @ k.transpose(-1, -2)) * log_mask(a[0], torch.float64).exp() * keep
        return (scores @ v).transpose(1, 2).reshape(batch, length, heads * dim)

    torch.manual_seed(99)  # the same seed for the kernels' mask as in the probe above
    out, grads = run(lambda x, a: lion_fused_attention(x, a, backend="triton", dropout_p=p, **options), qkv, decays)
    ref, ref_grads = run(fixed_mask, qkv, decays)
    assert rel(out, ref) < 2e-5
    for g, r in zip(grads, ref_grads):
        assert rel(g, r) < 2e-5
    # p = 0: exactly the function without dropout
    no_drop = lion_fused_attention(qkv, decays, backend="triton", dropout_p=0.0, **options)
    assert rel(no_drop, unfused_attention(qkv.double(), [decays[0].double()], backend="torch", dropout_p=0.0,
                                          **options)) < 2e-5


@pytest.mark.parametrize("keys", [4, 8])
def test_dropout_draws_are_independent_per_key_at_the_keep_rate(keys, monkeypatch, seed):
    """Every way the kernels split one Philox draw over keys (``LAUNCH["attn_dropout_keys_per_draw"]``: 4 floats
    or 8 16-bit numbers) keeps entries at the rate 1 - p, with neighbouring keys and queries uncorrelated, and
    scales the kept ones to an unbiased mean."""

    monkeypatch.setitem(LAUNCH, "attn_dropout_keys_per_draw", (keys,))
    batch, length, heads, dim, p = 2, 64, 2, 64, 0.3
    qkv = make_qkv(batch, length, heads, dim, strided=False)
    decays = make_decays("lit", batch, heads, length)
    options = dict(feature_map="identity", normalize=False, scale=1.0, eps=0.0, form="attention",
                   chunk_size=None, key_padding_mask=None)
    full = _dropped_matrix(qkv, decays, 0.0, 0, options)  # the identity probe: entry (i, j) is the score
    dropped = _dropped_matrix(qkv, decays, p, seed % 100000, options)
    kept = (dropped != 0).double()
    draws = kept.numel()  # 16384
    assert abs(kept.mean().item() - (1 - p)) < 5 * (p * (1 - p) / draws) ** 0.5
    centred = kept - kept.mean()
    for lag in (1, 2, 3, 4, 7, 8):  # neighbours inside one draw and across draws
        corr = (centred[..., :-lag] * centred[..., lag:]).mean() / centred.var()
        assert abs(corr) < 0.06, (lag, corr)
    corr = (centred[..., :-1, :] * centred[..., 1:, :]).mean() / centred.var()
    assert abs(corr) < 0.06, corr
    factor = dropped[dropped != 0] / full[dropped != 0]
    assert (factor - factor.mean()).abs().max() < 1e-5 * factor.mean()  # one scale for every kept entry
    # 1 / (1 - p) up to the 16-bit rounding of p, which the scale follows (unbiased)
    assert abs(factor.mean().item() - 1 / (1 - p)) < 1e-5 / (1 - p)


@pytest.mark.parametrize("in_dq_launch", [1, 0])
def test_dropout_with_the_feature_map_and_the_normalised_output(in_dq_launch, monkeypatch, seed):
    """Dropout on the separate dq launch's path (``attn_bwd_fused_dropout`` off), where the feature map's backward
    and g'/c are formed in the dq and dkv launches or not (both launch-table choices): the gradients equal those of
    the vision layer's function (dropped numerator, undropped denominator) with the kernels' mask fixed."""
    from lion_hf.kernels.fused import silu_l2
    from lion_hf.kernels.masks import distance_log_mask

    monkeypatch.setitem(LAUNCH, "attn_bwd_fused_dropout", (0,))
    monkeypatch.setitem(LAUNCH, "layer_feature_grad_in_attention", (in_dq_launch,))
    monkeypatch.setitem(LAUNCH, "layer_grad_prep_in_backward", (in_dq_launch,))
    batch, length, heads, dim, p, eps = 2, 27, 2, 32, 0.3, 1e-4
    qkv = make_qkv(batch, length, heads, dim, strided=False)
    decays = make_decays("decay", batch, heads, length)
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=eps, form="attention",
                   chunk_size=None, key_padding_mask=None)
    keep = (_dropped_matrix(qkv, decays, p, 99, options) != 0).double() / (1 - p)  # the features are positive
    assert 0.5 < (keep != 0).double().mean().item() < 0.9

    def fixed_mask(x, a):
        q, k, v = (x.double()[:, :, i].transpose(1, 2) for i in range(3))
        scores = (silu_l2(q) @ silu_l2(k).transpose(-1, -2)) * distance_log_mask(a[0], length, torch.float64).exp()
        out = ((scores * keep) @ v) / (scores.sum(-1, keepdim=True) + eps)
        return out.transpose(1, 2).reshape(batch, length, heads * dim)

    torch.manual_seed(99)  # the probe's seed: the same mask
    out, grads = run(lambda x, a: lion_fused_attention(x, a, backend="triton", dropout_p=p, **options), qkv, decays)
    ref, ref_grads = run(fixed_mask, qkv, decays)
    assert rel(out, ref) < 2e-5
    for name, g, r in zip(["dqkv", "dlog_decay"], grads, ref_grads):
        assert rel(g, r) < 2e-5, (name, rel(g, r))


def test_kernels_see_the_projection_dtype_under_an_fp32_norm_policy(monkeypatch, seed):
    """CUDA autocast runs ``vector_norm`` in fp32; mimic that policy on CPU and check that the feature map
    still hands the operator q and k in the projection's dtype (fp16 here), and that the fused path's
    kernels get that dtype too."""
    real_norm = torch.linalg.vector_norm
    monkeypatch.setattr(torch.linalg, "vector_norm", lambda *a, **kw: real_norm(*a, **kw).float())
    seen = []
    real_op = fused_module.lion_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype))
        return real_op(q, k, v, *args, **kwargs)

    monkeypatch.setattr(fused_module, "lion_attention", spy)
    qkv = make_qkv(1, 17, 2, 32).half()
    decays = make_decays("selective", 1, 2, 17)
    options = dict(feature_map="silu_l2", normalize=True, scale=32 ** -0.5, eps=0.0, form="attention",
                   chunk_size=None, key_padding_mask=None, dropout_p=0.0)
    out = unfused_attention(qkv, decays, backend="triton", **options)
    assert seen == [(torch.float16,) * 3] and out.dtype == torch.float16
    from lion_hf.kernels.triton import fused as triton_fused

    launched = []
    real_forward = triton_fused.attention_forward

    def spy_forward(q, k, v, *args, **kwargs):
        launched.append((q.dtype, k.dtype, v.dtype))
        return real_forward(q, k, v, *args, **kwargs)

    monkeypatch.setattr(triton_fused, "attention_forward", spy_forward)
    fused_out = lion_fused_attention(qkv, decays, backend="triton", **options)
    assert launched == [(torch.float16,) * 3] and fused_out.dtype == torch.float16
    assert rel(fused_out, out) < 5e-3


VARIANTS = [("lit", "normal"), ("decay", "normal"), ("selective", "normal"), ("decay", "s"), ("selective", "s")]


def _one_layer(modality, mask, order="normal"):
    from lion_hf import LionConfig, LionForImageClassification, LionForMaskedLM

    if modality == "vision":
        config = LionConfig(modality="vision", mask_type=mask, patch_order=order, hidden_size=64,
                            num_attention_heads=2, intermediate_size=64, num_hidden_layers=1, image_size=40,
                            patch_size=8, num_labels=3, attention_backend="triton")
        return LionForImageClassification(config)
    config = LionConfig(modality="text", mask_type=mask, hidden_size=64, num_attention_heads=2, intermediate_size=64,
                        num_hidden_layers=1, vocab_size=50, max_position_embeddings=32,
                        attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0, attention_backend="triton")
    return LionForMaskedLM(config)


def _loss_and_grads(model, inputs, run=None):
    model.zero_grad(set_to_none=True)
    out = (run if run is not None else model)(**inputs)
    out.loss.backward()
    return out.logits.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("modality, mask, order", [("vision", m, o) for m, o in VARIANTS] + [("text", "selective", "normal")])
def test_compiled_model_trains_like_eager(modality, mask, order, seed):
    """``torch.compile(model, fullgraph=True)`` (inductor) of a one-layer LION model: forward and backward
    run through the kernels' custom operators (q, k, v are strided views of the projection) and equal eager."""
    torch.manual_seed(seed)
    model = _one_layer(modality, mask, order)
    if modality == "vision":
        inputs = {"pixel_values": torch.randn(2, 3, 40, 40), "labels": torch.tensor([0, 2])}
    else:
        mask_ = torch.ones(2, 13, dtype=torch.long)
        mask_[1, 9:] = 0
        inputs = {"input_ids": torch.randint(0, 50, (2, 13)), "attention_mask": mask_,
                  "labels": torch.randint(0, 50, (2, 13))}
    eager_logits, eager_grads = _loss_and_grads(model, inputs)
    compiled = torch.compile(model, fullgraph=True)
    logits, grads = _loss_and_grads(model, inputs, run=compiled)
    assert rel(logits, eager_logits) < 2e-5
    assert grads.keys() == eager_grads.keys()
    for name in grads:
        assert rel(grads[name], eager_grads[name]) < 1e-4, name


@pytest.mark.parametrize("form, natural, cls_zero, feature_map", [
    ("attention", False, True, "silu_l2"), ("attention", False, False, "silu_l2"), ("attention", True, True, "silu_l2"),
    ("chunk", False, True, "silu_l2"), ("chunk", False, False, "silu_l2"), ("chunk", True, True, "silu_l2"),
    ("attention", False, False, "identity"), ("chunk", False, True, "identity"),
    ("attention", True, True, "silu_l2-own-launches")])
def test_fused_layer_from_gate_logits(form, natural, cls_zero, feature_map, monkeypatch, seed):
    """LION-S given by its gate's raw logits: the kernels form logsigmoid(-z) (zero decay on the class token)
    and the float64 prefix sums, and return d z from their statistics, inside the feature map's launches (both
    scan orders in one) or, without a feature map, in their own launches; values and gradients (qkv and the
    logits) equal the reference built with ``selective_log_decays`` in float64."""
    from lion_hf.kernels.fused import selective_log_decays
    from lion_hf.kernels.triton import fused as triton_fused

    own = feature_map == "identity" or feature_map.endswith("-own-launches")
    if feature_map.endswith("-own-launches"):  # the launch table's other choice
        feature_map = feature_map.removesuffix("-own-launches")
        monkeypatch.setitem(LAUNCH, "layer_gate_in_feature_map", (0,))
    own_launches = []
    for name in ("selective_decay", "selective_decay_grad"):
        original = getattr(triton_fused, name)
        monkeypatch.setattr(triton_fused, name,
                            lambda *a, _name=name, _original=original: own_launches.append(_name) or _original(*a))
    rows, cols, heads, dim = 4, 6, 2, 32
    length = 1 + rows * cols
    orders = natural_scan_orders(rows, cols) if natural else None
    n = 2 if natural else 1
    qkv = make_qkv(2, length, heads, dim)
    gate = torch.randn(2, length + 3, n * heads)[:, 2:length + 2] * 2  # a strided view, as from a slice
    # without a feature map (the text models) the output is scaled, not normalised: q . k has either sign
    options = dict(feature_map=feature_map, normalize=feature_map != "identity", scale=dim ** -0.5, eps=1e-4,
                   form=form, chunk_size=16, key_padding_mask=None, dropout_p=0.0, orders=orders)

    def fused(x, z):
        return lion_fused_attention(x, None, backend="triton", gate_logits=z[0], cls_zero=cls_zero, **options)

    def reference(x, z):
        decays = selective_log_decays(z[0].double(), n, cls_zero)
        return unfused_attention(x.double(), [a.double() for a in decays], backend="torch", **options)

    out, grads = run(fused, qkv, [gate])
    assert own_launches == (["selective_decay"] * n + ["selective_decay_grad"] * n if own else [])
    ref, ref_grads = run(reference, qkv, [gate])
    assert rel(out, ref) < 2e-5
    for name, g, r in zip(["dqkv", "dgate"], grads, ref_grads):
        assert rel(g, r) < 2e-5, (name, rel(g, r))
    if cls_zero:
        assert grads[1][:, 0].abs().max() == 0  # the class token's logits do not act


@pytest.mark.parametrize("mask, natural", [("decay", False), ("decay", True), ("gate", True), ("selective", False)])
@pytest.mark.parametrize("in_state_pass", [1, 0])
def test_chunk_form_forms_the_row_gradients_in_its_state_pass(mask, natural, in_state_pass, monkeypatch, seed):
    """``LAUNCH["layer_grad_prep_in_backward"]`` in the chunk form: the query-side state pass of the first scan
    order forms g' and c (the gradient kernels and the second order read them) instead of ``grad_inputs``' launch;
    gradients equal float64's either way, padding included, over several chunks."""
    from lion_hf.kernels.triton import fused as triton_fused

    monkeypatch.setitem(LAUNCH, "layer_grad_prep_in_backward", (in_state_pass,))
    preparations = []
    original = triton_fused.grad_inputs
    monkeypatch.setattr(triton_fused, "grad_inputs", lambda *a: preparations.append(1) or original(*a))
    rows, cols, heads, dim = 5, 6, 2, 32
    length = 1 + rows * cols
    orders, n, qkv, pad = grid_inputs(rows, cols, heads, dim, natural, padded=(0, 5))
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=1e-4, form="chunk", chunk_size=16,
                   key_padding_mask=pad, dropout_p=0.0, orders=orders)
    gated = mask == "gate"
    inputs = [torch.randn(2, length, n * heads)] if gated else make_decays(mask, 2, heads, length, n)
    fused, reference = fused_and_reference(options, gated, n)
    out, grads = run(fused, qkv, inputs)
    assert len(preparations) == 1 - in_state_pass
    ref, ref_grads = run(reference, qkv, inputs)
    assert rel(out, ref) < 2e-5
    for name, g, r in zip(["dqkv", "d decay 1", "d decay 2"], grads, ref_grads):
        assert rel(g, r) < 2e-5, (name, rel(g, r))


def test_float64_projection_comes_back_in_float64(seed):
    """The kernels compute float64 inputs in fp32; the fused layer still returns (and differentiates) qkv's dtype,
    as its docstring says, within fp32's rounding of the float64 reference."""
    qkv = torch.randn(2, 9, 3, 2, 32, dtype=torch.float64)
    decays = [F.logsigmoid(torch.randn(2, dtype=torch.float64))]
    options = dict(feature_map="silu_l2", normalize=True, scale=32 ** -0.5, eps=1e-4, form="attention",
                   chunk_size=None, key_padding_mask=None, dropout_p=0.0)
    out, grads = run(lambda x, a: lion_fused_attention(x, a, backend="triton", **options), qkv, decays)
    ref, ref_grads = run(lambda x, a: unfused_attention(x, a, backend="torch", **options), qkv, decays)
    assert out.dtype == torch.float64 and grads[0].dtype == torch.float64
    assert rel(out, ref) < 2e-5
    for g, r in zip(grads, ref_grads):
        assert rel(g, r) < 2e-5


@pytest.mark.parametrize("backend, one_launch", [("torch", 1), ("triton", 1), ("triton", 0)])
def test_padded_keys_do_not_act_in_either_scan_order(backend, one_launch, monkeypatch, seed):
    """Two scan orders with a key padding mask: the padded tokens' q, k and v change nothing on the real rows
    (the mask is by token; the PyTorch path once applied it to scan positions instead); the Triton attention
    form with both orders in one launch or one per order."""
    monkeypatch.setitem(LAUNCH, "attn_orders_in_one_launch", (one_launch,))
    rows, cols, heads, dim = 3, 4, 2, 32
    length = 1 + rows * cols
    pad = torch.ones(2, length, dtype=torch.bool)
    pad[0, 2] = pad[1, -3:] = False
    qkv = make_qkv(2, length, heads, dim, strided=False)
    other = qkv.clone()
    other[~pad] = torch.randn_like(other[~pad]) * 3
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=1e-4, form="attention",
                   chunk_size=None, key_padding_mask=pad, dropout_p=0.0, orders=natural_scan_orders(rows, cols),
                   backend=backend)
    decays = make_decays("decay", 2, heads, length, 2)
    out = lion_fused_attention(qkv, decays, **options)
    moved = lion_fused_attention(other, decays, **options)
    assert rel(moved[pad], out[pad]) < 1e-6
    # without the mask the changed tokens do act on the real rows (the check above could fail)
    unmasked = {**options, "key_padding_mask": None}
    changed = lion_fused_attention(other, decays, **unmasked)[pad] - lion_fused_attention(qkv, decays, **unmasked)[pad]
    assert changed.abs().max() > 1e-2 * out[pad].abs().max()


@pytest.mark.parametrize("mask, natural", [("lit", False), ("decay", False), ("decay", True), ("gate", True),
                                           ("gate-own-launches", False)])
@pytest.mark.parametrize("in_attention", [1, 0, "atomic-dq"])
@pytest.mark.parametrize("prep_in_dq", [1, 0])
def test_feature_map_backward_in_the_attention_epilogues(mask, natural, in_attention, prep_in_dq, monkeypatch, seed):
    """``LAUNCH["layer_feature_grad_in_attention"]``: the attention form's dq and dkv kernels apply the feature
    map's backward to their own parts (both scan orders' parts add up in raw space), and the feature map's
    backward launch then runs only for LION-S's gate (its q/k programs left out), or not at all; the other
    choice, and the backward whose dq is summed atomically (``fused_dq``), keep that launch.
    ``LAUNCH["layer_grad_prep_in_backward"]``: the dq launch forms g' and c (before the dkv launch and the second scan
    order read them) instead of ``grad_inputs``' launch. Either way the gradients equal float64's, padding
    included."""
    from lion_hf.kernels.triton import fused as triton_fused

    table, atomic = {1: (1, False), 0: (0, False), "atomic-dq": (1, True)}[in_attention]
    monkeypatch.setitem(LAUNCH, "layer_feature_grad_in_attention", (table,))
    monkeypatch.setitem(LAUNCH, "layer_grad_prep_in_backward", (prep_in_dq,))
    preparations = []
    original_prep = triton_fused.grad_inputs
    monkeypatch.setattr(triton_fused, "grad_inputs", lambda *a: preparations.append(1) or original_prep(*a))
    if atomic:
        monkeypatch.setitem(LAUNCH, "attn_bwd_fused", (1, 4096))
    in_attention = table and not atomic
    if mask == "gate-own-launches":
        monkeypatch.setitem(LAUNCH, "layer_gate_in_feature_map", (0,))
    launches = []
    original = triton_fused.feature_backward
    monkeypatch.setattr(triton_fused, "feature_backward",
                        lambda *a, **k: launches.append(k.get("qk", True)) or original(*a, **k))
    rows, cols, heads, dim = 3, 5, 2, 32
    length = 1 + rows * cols
    orders, n, qkv, pad = grid_inputs(rows, cols, heads, dim, natural, padded=(1, 4))
    options = dict(feature_map="elu_plus_one" if mask == "lit" else "silu_l2", normalize=True, scale=dim ** -0.5,
                   eps=1e-4, form="attention", chunk_size=None, key_padding_mask=pad, dropout_p=0.0, orders=orders)
    gated = mask.startswith("gate")
    inputs = [torch.randn(2, length, n * heads)] if gated else make_decays(mask, 2, heads, length, n)
    fused, reference = fused_and_reference(options, gated, n)
    out, grads = run(fused, qkv, inputs)
    gate_launch = mask == "gate"  # d gate formed by the feature map's launch
    assert launches == ([True] if not in_attention else ([False] if gate_launch else []))
    assert len(preparations) == (0 if prep_in_dq and not atomic else 1)
    ref, ref_grads = run(reference, qkv, inputs)
    assert rel(out, ref) < 2e-5
    assert len(grads) == len(ref_grads)
    for name, g, r in zip(["dqkv", "d decay 1", "d decay 2"], grads, ref_grads):
        assert rel(g, r) < 2e-5, (name, rel(g, r))


@pytest.mark.parametrize("form, natural", [("attention", False), ("attention", True), ("chunk", True)])
def test_fused_layer_from_one_projection(form, natural, monkeypatch, seed):
    """q, k, v and LION-S's gate logits as column slices of one projection ``[B, L, W]`` (``projection=``):
    the fused layer differentiates the projection in one buffer, equal to the float64 reference in the q, k,
    v and gate columns and exactly zero in the columns it does not use; it does take that path."""
    from lion_hf.kernels.fused import selective_log_decays
    from lion_hf.kernels.triton import fused as triton_fused

    rows, cols, heads, dim = 3, 5, 2, 32
    length, n = 1 + rows * cols, 2 if natural else 1
    qkv_width, gate_width = 3 * heads * dim, n * heads
    width = qkv_width + gate_width + 5  # unused columns after the gate
    orders = natural_scan_orders(rows, cols) if natural else None
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=1e-4, form=form, chunk_size=16,
                   key_padding_mask=None, dropout_p=0.0, orders=orders)
    packings = []
    original = triton_fused.lion_layer
    monkeypatch.setattr(triton_fused, "lion_layer", lambda *a, **k: packings.append(k["packing"]) or original(*a, **k))

    def split(p):
        return p[..., :qkv_width].unflatten(-1, (3, heads, dim)), p[..., qkv_width:qkv_width + gate_width]

    def fused(p, _):
        qkv, gate = split(p)
        return lion_fused_attention(qkv, None, backend="triton", gate_logits=gate, cls_zero=True, projection=p,
                                    **options)

    def reference(p, _):
        qkv, gate = split(p.double())
        return unfused_attention(qkv, selective_log_decays(gate, n, True), backend="torch", **options)

    projection = torch.randn(2, length, width)
    out, (grad,) = run(fused, projection, [])
    assert packings == [(0, qkv_width, gate_width, heads, dim)]
    ref, (ref_grad,) = run(reference, projection, [])
    assert rel(out, ref) < 2e-5
    assert rel(grad[..., :qkv_width], ref_grad[..., :qkv_width]) < 2e-5
    assert rel(grad[..., qkv_width:qkv_width + gate_width], ref_grad[..., qkv_width:qkv_width + gate_width]) < 2e-5
    assert (grad[..., qkv_width + gate_width:] == 0).all()
    # slices of another tensor than the one given: not a packing, the slices' own path
    other = torch.randn(2, length, width)
    qkv, gate = split(projection)
    lion_fused_attention(qkv, None, backend="triton", gate_logits=gate, cls_zero=True, projection=other, **options)
    assert packings[-1] is None


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_selective_model_packs_its_gate_only_for_plain_linears(qkv_bias, seed):
    """LION-S's attention computes q, k, v and the gate in one product (the state dict keeps both Linears);
    with a hook on one of them (an adapter, a sharding wrapper) it calls the modules, and the result is the same."""
    model = _one_layer("vision", "selective")
    if not qkv_bias:
        from lion_hf import LionForImageClassification

        model = LionForImageClassification(model.config.__class__(**{**model.config.to_dict(), "qkv_bias": False}))
    model.eval()
    attention = model.lion.layers[0].attention
    assert (attention.qkv.bias is not None) == qkv_bias
    hidden = torch.randn(2, 26, 64)
    qkv, gate, projection = attention._projections(hidden)
    assert projection is not None and projection.shape[-1] % 16 == 0
    calls = []
    handle = attention.gate.register_forward_hook(lambda *_: calls.append("gate"))
    qkv2, gate2, projection2 = attention._projections(hidden)
    handle.remove()
    assert projection2 is None and calls == ["gate"]
    assert rel(qkv, qkv2) < 1e-6 and rel(gate, gate2) < 1e-6
    assert "lion.layers.0.attention.gate.weight" in model.state_dict()


def test_packed_projection_trains_after_an_inference_mode_call(monkeypatch, seed):
    """The packed product's zero padding is a cached constant: made during an ``inference_mode`` forward it still
    serves a later training step, whose gradients match the unpacked product's."""

    model = _one_layer("vision", "selective")
    pixels = torch.randn(2, 3, 24, 24)
    with torch.inference_mode():
        model(pixel_values=pixels)
    grads = []
    for packed in (1, 0):
        monkeypatch.setitem(LAUNCH, "layer_packed_gate", (packed,))
        model.zero_grad(set_to_none=True)
        model(pixel_values=pixels, labels=torch.tensor([0, 1])).loss.backward()
        attention = model.lion.layers[0].attention
        grads.append([p.grad.clone() for p in (attention.qkv.weight, attention.gate.weight, attention.gate.bias)])
    for packed_grad, own_grad in zip(*grads):
        assert rel(packed_grad, own_grad) < 1e-5


@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
def test_auto_form_of_a_layer_follows_the_layer_table(mask, monkeypatch, seed):
    """``form="auto"`` of a model's layer on the kernels takes the form ``LAUNCH["layer_attention_max_length"]``
    names for its length and mask (the attention form up to the limit, the chunk form beyond); attention
    dropout, an explicit form and the PyTorch backend keep their own rules; the output is the same either way."""
    from lion_hf.kernels.fused import layer_form
    from lion_hf.kernels.triton import fused as triton_fused

    monkeypatch.setitem(LAUNCH, "layer_attention_max_length", (9, 20))
    has_decay = mask != "lit"
    limit = 20 if has_decay else 9
    for length, expected in ((limit, "attention"), (limit + 1, "chunk")):
        qkv = make_qkv(1, length, 2, 32)
        assert layer_form("auto", qkv, "triton", 0.0, has_decay) == expected
        assert layer_form("attention", qkv, "triton", 0.0, has_decay) == "attention"
        assert layer_form("auto", qkv, "triton", 0.1, has_decay) == "auto"  # dropout: the operator decides
        assert layer_form("auto", qkv, "torch", 0.0, has_decay) == "auto"

    seen = []
    original = triton_fused.lion_layer
    monkeypatch.setattr(triton_fused, "lion_layer", lambda *a, **k: seen.append(a[3]) or original(*a, **k))
    length = limit + 1
    qkv = make_qkv(2, length, 2, 32)
    decays = make_decays(mask, 2, 2, length)
    fmap = "elu_plus_one" if mask == "lit" else "silu_l2"
    options = dict(feature_map=fmap, normalize=True, scale=32 ** -0.5, eps=1e-4, chunk_size=16)
    with torch.no_grad():
        auto = lion_fused_attention(qkv, decays, backend="triton", form="auto", **options)
        attention = lion_fused_attention(qkv, decays, backend="triton", form="attention", **options)
    assert seen == ["chunk", "attention"]
    assert rel(auto, attention) < 2e-5


def test_a_layers_choice_of_path_is_made_once_per_kind_of_call(monkeypatch, seed):
    """The fused layer's choice of form, path and chunk (``_layer_plan``) is kept per kind of call: the same call
    again reuses it; a new length, grad mode or launch table entry chooses anew (and the results follow it)."""
    from lion_hf.kernels import fused as fused_module

    monkeypatch.setattr(fused_module, "_PLANS", {})
    chosen = []
    original = fused_module._choose_plan
    monkeypatch.setattr(fused_module, "_choose_plan", lambda *a: chosen.append(a[0].shape[1]) or original(*a))
    options = dict(feature_map="silu_l2", normalize=True, scale=32 ** -0.5, eps=1e-4, chunk_size=16, backend="triton")
    qkv = make_qkv(1, 21, 2, 32)
    decays = make_decays("decay", 1, 2, 21)
    first = lion_fused_attention(qkv, decays, **options)
    again = lion_fused_attention(qkv, decays, **options)
    assert chosen == [21] and torch.equal(first, again)
    lion_fused_attention(make_qkv(1, 22, 2, 32), make_decays("decay", 1, 2, 22), **options)
    with torch.no_grad():
        lion_fused_attention(qkv, decays, **options)
    assert chosen == [21, 22, 21]
    monkeypatch.setitem(LAUNCH, "layer_attention_max_length", (9, 20))  # the length now takes the chunk form
    seen = []
    triton_fused = fused_module._triton_fused()
    layer = triton_fused.lion_layer
    monkeypatch.setattr(triton_fused, "lion_layer", lambda *a, **k: seen.append(a[3]) or layer(*a, **k))
    chunked = lion_fused_attention(qkv, decays, **options)
    assert chosen == [21, 22, 21, 21] and seen == ["chunk"] and rel(chunked, first) < 2e-5
