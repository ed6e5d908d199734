"""The chunk form's state pass split into segments (``LAUNCH["chunk_state_segments"]``, ``chunk.py``'s module
doc): every state it stores equals the one-program walk's, for each kind of pass the layer runs (key side with
the denominator's vector and LION-D's first moments, query side with a vector bias, the mask's transpose, a key
mask, a scan order, value slices, the decay weights of their own launch or in the loop, the g'/c preparation),
and the chunk form through it equals the float64 reference, values and gradients. Interpreter (CPU) tests."""

from __future__ import annotations

import os

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import lion_attention, naive_lion_attention  # noqa: E402
from lion_hf.kernels.triton.utils import decay_strides, triton_available  # noqa: E402

from tests.test_kernels_triton import leaves, make_inputs, padding, rel, run_and_grad  # noqa: E402

pytestmark = [pytest.mark.skipif(not triton_available(), reason="triton is not installed"),
              pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")]

CHUNK = 16


def _states(monkeypatch, segments, weights, bv, x, z, a, **kw):
    from lion_hf.kernels.triton import chunk as tch
    from lion_hf.kernels.triton.tuning import LAUNCH

    monkeypatch.setitem(LAUNCH, "chunk_state_segments", segments)
    monkeypatch.setitem(LAUNCH, "chunk_state", (bv, 4, 3, int(weights)))
    batch, heads, length, _ = x.shape
    return tch.chunk_states(x, z, decay_strides(a, batch, heads, length), CHUNK, **kw)


@pytest.mark.parametrize("segments", [(2, 2), (2, 3), (5, 4)])
@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
@pytest.mark.parametrize("side", ["keys", "queries", "prep"])
def test_segmented_state_pass_stores_the_same_states(segments, mask, side, seed, monkeypatch):
    """99 positions = 7 chunks of 16 (the last partial): 2-, 3- and 4-chunk segments, the last one shorter;
    (5, 4): segments from 5 chunks on. The one-program walk is the reference (fp32: equal to rounding)."""
    from lion_hf.kernels.triton.chunk import _key_mask, _order

    batch, heads, length, d = 2, 2, 99, 32
    q, k, v, a = make_inputs(batch, heads, length, d, d, mask)
    order = _order(torch.randperm(length).to(torch.int32), length) if side != "prep" else None
    if side == "keys":
        x, z = k, v.transpose(1, 2).contiguous().transpose(1, 2)  # token-major value rows
        kw = dict(vec=True, moment=mask == "decay", key_mask=_key_mask(padding(batch, length)), order=order)
        variants = [(weights, bv) for weights in (0, 1) for bv in (0, 16)]
    elif side == "queries":
        x, z = q, v
        kw = dict(vec=True, vec_bias=torch.randn(batch, heads, length), transposed=True, order=order)
        variants = [(0, 0), (1, 16)]
    else:
        x, z = q, torch.randn_like(v)  # z: the output's gradient, g' and c formed by the pass
        out, den = torch.randn_like(v), torch.rand(batch, heads, length) + 0.5
        variants = [(0, 0), (1, 0)]
    for weights, bv in variants:
        if side == "prep":
            results = []
            for segs in ((0, 1), segments):
                g, c = torch.zeros_like(v), torch.zeros(batch, heads, length)
                st = _states(monkeypatch, segs, weights, bv, x, z, a, vec=True, vec_bias=c, transposed=True,
                             prep=(out, den, 1e-3, g))
                results.append((*st[:2], g, c))
            one, split = results
        else:
            one = _states(monkeypatch, (0, 1), weights, bv, x, z, a, **kw)
            split = _states(monkeypatch, segments, weights, bv, x, z, a, **kw)
        assert len(one) == len(split)
        for name, ref, got in zip(["S", "S_vec", "S_mom / g'", "S_mom_vec / c"], one, split):
            assert (ref is None) == (got is None), name
            if ref is not None:
                assert rel(got, ref) < 1e-5, (name, weights, bv, rel(got, ref))


@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
def test_chunk_form_through_segments_matches_reference(mask, seed, monkeypatch):
    """The whole chunk form (forward, both state passes of the backward, d log_decay) with 2-chunk segments,
    padding and a partial last chunk, against the float64 reference."""
    from lion_hf.kernels.triton.tuning import LAUNCH

    monkeypatch.setitem(LAUNCH, "chunk_state_segments", (2, 2))
    q, k, v, a = make_inputs(2, 2, 75, 32, 32, mask)
    pad = padding(2, 75)
    outs, grads = run_and_grad(lambda q, k, v, a: lion_attention(
        q, k, v, a, form="chunk", chunk_size=CHUNK, key_padding_mask=pad, eps=1e-3, backend="triton"),
        leaves(q, k, v, a))
    ref_outs, ref_grads = run_and_grad(lambda q, k, v, a: naive_lion_attention(
        q, k, v, a, key_padding_mask=pad, eps=1e-3), leaves(q, k, v, a, dtype=torch.float64))
    assert rel(outs[0], ref_outs[0]) < 2e-5
    for name, g, r in zip(["dq", "dk", "dv", "dlog_decay"], grads, ref_grads):
        bound = 1e-4 if name == "dlog_decay" and mask == "decay" else 2e-5  # as the unsegmented chunk tests
        assert rel(g, r) < bound, (name, rel(g, r))
