"""The operator at the edges of its domain, on both backends (Triton through the interpreter on CPU).

* ``log_decay = -inf`` is a hard cut (lambda = 0): every form and backend computes that limit;
  NaN log-decays are refused (where values are checked: CPU inputs).
* A sequence without any real key (fully padded) and ``eps = 0`` gives zeros and finite gradients.
* Batch, heads or length 0 give empty results and empty gradients.
* fp16 inputs whose scores exceed fp16's range while the output fits stay exact.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf.kernels import lion_attention, lion_attention_parts, naive_lion_attention  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402

BACKENDS = ["torch"] + (["triton"] if triton_available() and not torch.cuda.is_available() else [])
FORMS = ["attention", "chunk", "recurrent"]


def rel(x, ref):
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all()
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def features(*shape):
    return F.elu(torch.randn(*shape)) + 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("mask", ["decay", "selective"])
def test_minus_infinity_is_a_hard_cut_in_every_form(backend, form, mask, seed):
    batch, heads, length, dim = 2, 2, 40, 32
    q, k, v = features(batch, heads, length, dim), features(batch, heads, length, dim), torch.randn(batch, heads, length, dim)
    if mask == "decay":
        a = F.logsigmoid(torch.randn(heads))
        a[1] = float("-inf")  # head 1: every token sees only itself
    else:
        a = F.logsigmoid(torch.randn(batch, heads, length) + 1)
        a[:, :, 17] = float("-inf")  # nothing crosses token 17 (in either direction)
    out = lion_attention(q, k, v, a, form=form, chunk_size=16, backend=backend)
    # the exact limit, in float64: lambda = 0 there
    ref = naive_lion_attention(q.double(), k.double(), v.double(), a.double().clamp_min(-1e4))
    assert rel(out, ref) < 1e-4
    if mask == "decay":
        assert rel(out[:, 1], v[:, 1]) < 1e-5  # q.k / q.k * v: each token's own value


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_log_decay_is_refused(backend):
    q = features(1, 2, 8, 32)
    a = torch.full((2,), -0.5)
    a[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lion_attention(q, q, q, a, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", FORMS)
def test_fully_padded_sequence_gives_zeros_and_finite_gradients(backend, form, seed):
    batch, heads, length, dim = 2, 2, 20, 32
    leaves = [features(batch, heads, length, dim).requires_grad_(), features(batch, heads, length, dim).requires_grad_(),
              torch.randn(batch, heads, length, dim, requires_grad=True)]
    a = F.logsigmoid(torch.randn(batch, heads, length)).requires_grad_()
    pad = torch.ones(batch, length, dtype=torch.bool)
    pad[1] = False  # the second sequence has no real token at all
    out = lion_attention(*leaves, a, normalize=True, eps=0.0, form=form, chunk_size=16, key_padding_mask=pad,
                         backend=backend)
    assert torch.isfinite(out).all() and out[1].abs().max() == 0
    ref = naive_lion_attention(*(t[:1].double() for t in leaves), a[:1].double())
    assert rel(out[:1], ref) < 2e-5
    if form != "recurrent" or backend == "torch":
        out.square().sum().backward()
        for t in leaves + [a]:
            assert torch.isfinite(t.grad).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 2, 8), (2, 0, 8), (2, 2, 0)])
def test_empty_inputs_give_empty_results(backend, shape):
    batch, heads, length = shape
    q, k, v = (torch.randn(batch, heads, length, 32, requires_grad=True) for _ in range(3))
    a = torch.full((batch, heads, length), -0.1)
    for form in FORMS:
        out = lion_attention(q, k, v, a, form=form, backend=backend)
        assert out.shape == (batch, heads, length, 32)
        num, den = lion_attention_parts(q, k, v, a, form=form, backend=backend)
        assert num.shape == (batch, heads, length, 32) and den.shape == (batch, heads, length)
        (out.sum() + num.sum()).backward()
        assert q.grad.shape == q.shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("form", ["attention", "chunk"])
def test_fp16_scores_beyond_fp16_range(backend, form, seed):
    """Scores of ~1e5 (above fp16's 65504) with outputs of order 1: the products keep fp32 range."""
    batch, heads, length, dim = 1, 2, 24, 32
    q = torch.full((batch, heads, length, dim), 60.0) + torch.rand(batch, heads, length, dim)
    k = torch.full((batch, heads, length, dim), 60.0) + torch.rand(batch, heads, length, dim)
    v = torch.randn(batch, heads, length, dim)
    ref = naive_lion_attention(q.double(), k.double(), v.double())
    out = lion_attention(q.half(), k.half(), v.half(), form=form, chunk_size=16, backend=backend)
    assert out.dtype == torch.float16
    assert rel(out, ref) < 5e-3
