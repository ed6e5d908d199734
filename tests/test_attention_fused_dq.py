"""The attention-form backward's three arrangements (``LAUNCH["attn_bwd_fused"]``, ``["attn_bwd_row_stats"]``):
``dq`` inside the key-tile kernel through fp32 atomics; ``dq`` in its own launch with LION-D/S's d log_decay
statistics formed in the key-tile kernel; or both in the dq launch.

Each is compared with autograd through the float64 reference (every mask, padding, odd lengths,
non-contiguous inputs) and with the others where no reference exists in this form (two scan orders
accumulated, dropout regenerated from the same seed). Runs under the Triton interpreter on CPU (fp32).
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import lion_attention, naive_lion_attention, resolve_backend  # noqa: E402
from lion_hf.kernels.triton import tuning  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not triton_available(), reason="triton is not installed"),
              pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")]

FUSED = (1, 1 << 30)
SEPARATE = (0, 0)
#: attn_bwd_fused, attn_bwd_row_stats: the backward's three arrangements
SETTINGS = {"fused": (FUSED, (1, 1)), "stats-in-dkv": (SEPARATE, (1, 1)), "stats-in-dq": (SEPARATE, (0, 0))}


def use(monkeypatch, name):
    fused, stats = SETTINGS[name]
    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused", fused)
    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_row_stats", stats)


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def token_major(t: torch.Tensor) -> torch.Tensor:
    """``t`` [B, H, L, D] stored as [B, L, H, D] (the models' layout, a non-contiguous view)."""
    return t.transpose(1, 2).contiguous().transpose(1, 2)


def inputs(batch, heads, length, dim, mask):
    q = token_major(F.elu(torch.randn(batch, heads, length, dim)) + 1)
    k = token_major(F.elu(torch.randn(batch, heads, length, dim)) + 1)
    v = token_major(torch.randn(batch, heads, length, dim))
    a = {"lit": None, "decay": -(0.05 + torch.rand(heads)),
         "selective": F.logsigmoid(torch.randn(batch, heads, length) + 1.0)}[mask]
    return q, k, v, a


def grads(fn, tensors, seed=7):
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    gen = torch.Generator().manual_seed(seed)
    (out.double() * torch.randn(out.shape, generator=gen, dtype=torch.float64)).sum().backward()
    return out, [t.grad for t in leaves if t is not None]


def gradients_vs_reference(q, k, v, a, pad):
    """Relative differences of (dq, dk, dv[, dlog_decay]) of the Triton attention form against float64 autograd."""

    def kernel(q, k, v, a):
        assert resolve_backend("triton", q, v) == "triton"  # not the PyTorch fallback
        return lion_attention(q, k, v, a, form="attention", key_padding_mask=pad, eps=1e-3, backend="triton")

    def reference(q, k, v, a):
        return naive_lion_attention(q.double(), k.double(), v.double(), None if a is None else a.double(),
                                    key_padding_mask=pad, eps=1e-3)

    _, got = grads(kernel, (q, k, v, a))
    _, want = grads(reference, (q, k, v, a))
    return {name: rel(g, r) for name, g, r in zip(["dq", "dk", "dv", "dlog_decay"], got, want)}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
@pytest.mark.parametrize("length", [16, 21, 37, 48])
def test_every_backward_matches_the_reference(setting, mask, length, seed, monkeypatch):
    use(monkeypatch, setting)
    q, k, v, a = inputs(2, 2, length, 32, mask)  # 32: the smallest head dim the kernels take
    pad = torch.ones(2, length, dtype=torch.bool)
    pad[1, length - 5:] = False
    for name, err in gradients_vs_reference(q, k, v, a, pad).items():
        # LION-D's [H] gradient sums signed position-weighted statistics (see test_kernels_triton)
        bound = 1e-4 if name == "dlog_decay" and mask == "decay" else 2e-5
        assert err < bound, (name, err)


@pytest.mark.parametrize("tiles", [(16, 32), (32, 16)])
@pytest.mark.parametrize("setting", ["stats-in-dq", "stats-in-dkv"])
def test_selective_statistics_with_unequal_tiles(tiles, setting, seed, monkeypatch):
    """LION-S's statistics where query and key tiles differ in size: two tiles cross the diagonal per tile of the
    other kind (and the key-tile kernel's row partials cover query tiles of another width)."""
    from lion_hf.kernels.triton import attention as tat

    use(monkeypatch, setting)
    monkeypatch.setattr(tat, "INTERPRETER_ATTENTION_TILES", (*tiles, 1, 1))
    length = 45
    q, k, v, a = inputs(2, 2, length, 32, "selective")
    pad = torch.ones(2, length, dtype=torch.bool)
    pad[0, length - 7:] = False
    for name, err in gradients_vs_reference(q, k, v, a, pad).items():
        assert err < 2e-5, (name, err)


def _backward(setting, monkeypatch, q, k, v, a, g, c, **kw):
    from lion_hf.kernels.triton.attention import attention_backward

    use(monkeypatch, setting)
    return attention_backward(q, k, v, a, g, c, a is not None, **kw)


@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
def test_arrangements_agree_with_orders_dropout_and_accumulation(mask, seed, monkeypatch):
    """Two scan orders (the second accumulating into the first's gradients, as the natural variants do),
    dropout from the same seed, padding: every arrangement of the backward gives the same gradients and
    statistics."""
    from lion_hf.kernels.triton.utils import empty_blhd

    batch, heads, length, dim = 2, 2, 29, 16
    q, k, v, a = inputs(batch, heads, length, dim, mask)
    g = token_major(torch.randn(batch, heads, length, dim))
    c = torch.randn(batch, heads, length)
    pad = torch.ones(batch, length, dtype=torch.bool)
    pad[0, :3] = False
    order = torch.randperm(length).to(torch.int32)
    seed_t = torch.tensor([seed % (1 << 31)], dtype=torch.int64)
    results = []
    for setting in SETTINGS:
        buffers = tuple(empty_blhd(batch, heads, length, dim, torch.float32, q.device) for _ in range(3))
        stats = []
        for i, perm in enumerate((None, order)):
            a_i = a if a is None or a.dim() == 1 else (a if perm is None else a.index_select(-1, perm.long()))
            *_, dlog = _backward(setting, monkeypatch, q, k, v, a_i, g, c, key_mask=pad, order=perm,
                                 grads=buffers, accumulate=i > 0, dropout_p=0.25, seed=seed_t,
                                 return_stats=a is not None and a.dim() == 3)
            stats.append(dlog)
        results.append((buffers, stats))
    first, first_stats = results[0]
    assert pad.logical_not().any() and first[1][0, :, :3].abs().max() == 0  # padded keys: no dk
    for other, other_stats in results[1:]:
        for name, x, y in zip(["dq", "dk", "dv"], first, other):
            assert rel(x, y) < 1e-5, name
        for x, y in zip(first_stats, other_stats):
            assert (x is None) == (y is None)
            for xi, yi in zip(x if isinstance(x, tuple) else (x,), y if isinstance(y, tuple) else (y,)):
                if xi is not None:
                    assert rel(xi, yi) < 1e-5


def test_fused_dq_follows_the_table_and_is_skipped_under_deterministic_algorithms(monkeypatch):
    from lion_hf.kernels.triton.attention import fused_dq

    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused", FUSED)
    assert fused_dq(1024)
    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused", (1, 512))
    assert not fused_dq(1024) and fused_dq(512)
    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused", SEPARATE)
    monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused_dropout", (256,))
    assert not fused_dq(256) and fused_dq(256, dropout=True) and not fused_dq(257, dropout=True)
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert not fused_dq(256, dropout=True)
        monkeypatch.setitem(tuning.LAUNCH, "attn_bwd_fused", (1, 512))
        assert not fused_dq(512)
    finally:
        torch.use_deterministic_algorithms(previous)


@pytest.mark.parametrize("mask", ["decay", "selective"])
@pytest.mark.parametrize("setting", ["stats-in-dkv", "stats-in-dq", "fused"])
def test_both_orders_in_one_launch_equal_a_launch_per_order(mask, setting, seed, monkeypatch):
    """``second`` (both scan orders in one launch each way, tiles of tokens) against one launch per order (the
    second adding the first's parts and gradients) on random orders with padding: outputs, denominators, the three
    gradients and each order's d log_decay agree; the atomic-dq arrangement and bad arguments are refused."""
    from lion_hf.kernels.triton.attention import attention_backward, attention_forward
    from lion_hf.kernels.triton.common import NORMALIZED, PARTS
    from lion_hf.kernels.triton.utils import empty_blhd

    use(monkeypatch, setting)
    batch, heads, length, dim = 2, 2, 29, 16
    q, k, v, _ = inputs(batch, heads, length, dim, mask)
    perms = [torch.randperm(length).to(torch.int32) for _ in range(2)]
    positions = torch.stack([torch.argsort(p.long()) for p in perms]).to(torch.int32).contiguous()
    decays = [inputs(batch, heads, length, dim, mask)[3] for _ in range(2)]  # each given in its scan order
    pad = torch.ones(batch, length, dtype=torch.bool)
    pad[1, -4:] = False
    g = token_major(torch.randn(batch, heads, length, dim))
    c = torch.randn(batch, heads, length)
    second = (positions, decays[1], None)
    out, den = attention_forward(q, k, v, decays[0], NORMALIZED, True, 1.0, 1e-6, key_mask=pad, second=second)
    prev = attention_forward(q, k, v, decays[0], PARTS, True, 1.0, 0.0, key_mask=pad, order=perms[0])
    ref, ref_den = attention_forward(q, k, v, decays[1], NORMALIZED, True, 1.0, 1e-6, key_mask=pad, order=perms[1],
                                     prev=prev)
    assert rel(out, ref) < 1e-5 and rel(den, ref_den) < 1e-5
    if setting == "fused":
        with pytest.raises(ValueError, match="fused_dq"):
            attention_backward(q, k, v, decays[0], g, c, True, key_mask=pad, second=second)
        return
    dq, dk, dv, dlogs = attention_backward(q, k, v, decays[0], g, c, True, key_mask=pad, second=second)
    buffers = tuple(empty_blhd(batch, heads, length, dim, torch.float32, q.device) for _ in range(3))
    ref_dlogs = [attention_backward(q, k, v, decays[i], g, c, True, key_mask=pad, order=perms[i], grads=buffers,
                                    accumulate=i > 0)[3] for i in range(2)]
    for name, x, y in zip(["dq", "dk", "dv"], (dq, dk, dv), buffers):
        assert rel(x, y) < 1e-5, name
    for i in range(2):
        error = rel(dlogs[i], ref_dlogs[i])
        assert dlogs[i].shape == decays[i].shape and error < 1e-4, (i, error)
    with pytest.raises(ValueError, match="dropout"):
        attention_forward(q, k, v, decays[0], NORMALIZED, True, 1.0, 1e-6, second=second, dropout_p=0.1,
                          seed=torch.tensor([1]))
    with pytest.raises(ValueError, match="int32"):
        attention_forward(q, k, v, decays[0], NORMALIZED, True, 1.0, 1e-6,
                          second=(positions.long(), decays[1], None))
    other_mask = -torch.rand(batch, heads, length) if mask == "decay" else -torch.rand(heads)
    with pytest.raises(ValueError, match="one mask"):
        attention_forward(q, k, v, decays[0], NORMALIZED, True, 1.0, 1e-6, second=(positions, other_mask, None))
