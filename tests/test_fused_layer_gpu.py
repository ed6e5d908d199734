"""The fused LION layer on a CUDA device in bf16, against the unfused float64 reference (``-m gpu``).

Tolerances: bf16 inputs, 2e-2 for values and 4e-2 for gradients (see ``test_kernels_triton.py``); LION-D's
d log_decay, a sum that cancels, against its terms' magnitudes (``decay_terms``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lion_hf.kernels.fused import lion_fused_attention, silu_l2, unfused_attention
from lion_hf.modeling.scan_order import natural_scan_orders
from tests.test_kernels_triton import decay_terms

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def rel(x, ref):
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all()
    return ((x - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("length, form", [(197, "attention"), (1025, "attention"), (1025, "chunk"), (4097, "chunk"),
                                          (16385, "chunk")])
@pytest.mark.parametrize("mask", ["lit", "decay", "selective", "gate"])
@pytest.mark.parametrize("natural", [False, True])
def test_gpu_fused_layer_bf16(length, form, mask, natural, seed):
    """``gate``: LION-S from its gate's raw logits (the models' path: log-decays, prefix sums and d logits in
    the kernels, zero decay on the class token)."""
    from lion_hf.kernels.fused import selective_log_decays

    if natural and (mask == "lit" or length > 5000):
        pytest.skip("the natural variants have a decay; their float64 reference at 16385 tokens takes too long")
    batch, heads, dim = (2, 4, 64) if length > 2000 else (4, 6, 64)
    qkv = torch.randn(batch, length, 3, heads, dim, device="cuda", dtype=torch.bfloat16)
    orders, n = None, 1
    if natural:
        rows = int((length - 1) ** 0.5)
        orders, n = natural_scan_orders(rows, rows, "cuda"), 2
    decays = []
    for _ in range(n):
        if mask == "lit":
            decays.append(None)
        elif mask == "decay":
            decays.append(F.logsigmoid(torch.randn(heads, device="cuda") + 2))
        elif mask == "selective":
            decays.append(F.logsigmoid(-torch.randn(batch, heads, length, device="cuda") + 2))
    gate = (torch.randn(batch, length, n * heads, device="cuda") - 2).to(torch.bfloat16) if mask == "gate" else None
    fmap = "elu_plus_one" if mask == "lit" else "silu_l2"
    options = dict(feature_map=fmap, normalize=True, scale=dim ** -0.5, eps=1e-6 * dim ** 0.5, chunk_size=None,
                   key_padding_mask=None, dropout_p=0.0, orders=orders)
    leaves = [qkv.detach().requires_grad_()] + [a.detach().requires_grad_() for a in decays if a is not None]
    leaves += [gate.detach().requires_grad_()] if gate is not None else []
    ref_leaves = [t.detach().double().requires_grad_() for t in leaves]

    def split(ts):
        it = iter(ts[1:])
        return ts[0], [None if a is None else next(it) for a in decays]

    x, a = split(leaves)
    if gate is not None:
        out = lion_fused_attention(x, None, form=form, backend="triton", gate_logits=leaves[1], cls_zero=True,
                                   **options)
    else:
        out = lion_fused_attention(x, a, form=form, backend="triton", **options)
    xr, ar = split(ref_leaves)
    if gate is not None:
        ar = selective_log_decays(ref_leaves[1], n, True)
    ref = unfused_attention(xr, ar, form="chunk" if length > 2000 else "attention", backend="torch", **options)
    assert out.dtype == torch.bfloat16
    assert rel(out, ref) < 2e-2
    g = torch.randn_like(ref)
    out.backward(g.to(out.dtype))
    ref.backward(g)
    for i, (t, r) in enumerate(zip(leaves, ref_leaves)):
        if mask == "decay" and i > 0:
            # LION-D's d log_decay, a sum over every token pair that cancels: within 2e-3 of its terms'
            # magnitudes (bf16 features' rounding, ~4e-3 of each term, averages out over the terms)
            q_ref, k_ref, v_ref = xr.detach().permute(2, 0, 3, 1, 4)
            weight = g.unflatten(-1, (heads, dim)).transpose(1, 2)
            terms = decay_terms(silu_l2(q_ref), silu_l2(k_ref), v_ref, ar, weight, orders=orders,
                                eps=options["eps"])
            signed, magnitude = terms[i - 1]
            assert rel(signed, r.grad) < 1e-9, "decay_terms does not add up to the reference gradient"
            error = ((t.grad.double() - r.grad).abs() / magnitude).max().item()
            assert error < 2e-3, (i, error, rel(t.grad, r.grad))
            continue
        assert rel(t.grad, r.grad) < 4e-2


@pytest.mark.parametrize("length, form", [(197, "attention"), (1025, "chunk")])
@pytest.mark.parametrize("natural", [False, True])
def test_gpu_fused_layer_from_one_projection_bf16(length, form, natural, seed):
    """LION-S as the models run it: q, k, v and the gate logits as column slices of one bf16 projection
    (``projection=``, padded to a multiple of 16 columns); its gradient in the used columns against float64,
    zero in the padding."""
    from lion_hf.kernels.fused import selective_log_decays

    batch, heads, dim = 4, 6, 64
    n = 2 if natural else 1
    rows = int((length - 1) ** 0.5)
    orders = natural_scan_orders(rows, rows, "cuda") if natural else None
    qkv_width, gate_width = 3 * heads * dim, n * heads
    width = qkv_width + gate_width + (-(qkv_width + gate_width) % 16)
    projection = torch.randn(batch, length, width, device="cuda").to(torch.bfloat16)
    projection[..., qkv_width:] -= 2
    options = dict(feature_map="silu_l2", normalize=True, scale=dim ** -0.5, eps=1e-6 * dim ** 0.5, chunk_size=None,
                   key_padding_mask=None, dropout_p=0.0, orders=orders)

    def split(p):
        return p[..., :qkv_width].unflatten(-1, (3, heads, dim)), p[..., qkv_width:qkv_width + gate_width]

    leaf = projection.detach().requires_grad_()
    ref_leaf = projection.detach().double().requires_grad_()
    qkv, gate = split(leaf)
    out = lion_fused_attention(qkv, None, form=form, backend="triton", gate_logits=gate, cls_zero=True,
                               projection=leaf, **options)
    ref_qkv, ref_gate = split(ref_leaf)
    ref = unfused_attention(ref_qkv, selective_log_decays(ref_gate, n, True), form="attention", backend="torch",
                            **options)
    assert rel(out, ref) < 2e-2
    g = torch.randn_like(ref)
    out.backward(g.to(out.dtype))
    ref.backward(g)
    for cols in (slice(0, qkv_width), slice(qkv_width, qkv_width + gate_width)):
        assert rel(leaf.grad[..., cols], ref_leaf.grad[..., cols]) < 4e-2
    assert (leaf.grad[..., qkv_width + gate_width:] == 0).all()
