"""The LayerNorm kernels (Triton interpreter on CPU) against float64, and where the models use them.

``LayerNormFunction`` computes in fp32 and writes its result in a given dtype; values and the three gradients
are compared with ``F.layer_norm`` in float64 on random inputs (fresh seeds, odd row counts and widths,
strided inputs, with and without weight and bias). The models hand a pre-norm LayerNorm's result to the
kernels only under autocast on the Triton backend, and only where Linear layers alone read it.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

from lion_hf import LionConfig, LionForImageClassification, LionForMaskedLM  # noqa: E402
from lion_hf.kernels import layer_norm as layer_norm_module  # noqa: E402
from lion_hf.kernels.layer_norm import layer_norm_into_linear, layer_norm_reference  # noqa: E402
from lion_hf.kernels.triton.tuning import LAUNCH  # noqa: E402
from lion_hf.kernels.triton.utils import triton_available  # noqa: E402

pytestmark = [pytest.mark.skipif(not triton_available(), reason="triton is not installed"),
              pytest.mark.skipif(HAS_CUDA, reason="interpreter tests run on machines without CUDA (CI)")]


@pytest.fixture(autouse=True)
def kernels_at_every_size(monkeypatch):
    """The kernels for every input size (the table's default leaves small LayerNorms to PyTorch)."""
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (1, 0))


def rel(x: torch.Tensor, ref: torch.Tensor) -> float:
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all(), "non-finite values"
    return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def kernel_layer_norm(x, weight, bias, eps, out_dtype):
    from lion_hf.kernels.triton.layer_norm import LayerNormFunction

    return LayerNormFunction.apply(x, weight, bias, eps, out_dtype)


@pytest.mark.parametrize("in_dtype,out_dtype", [(torch.float32, torch.float32), (torch.float16, torch.float16),
                                                (torch.float32, torch.float16), (torch.float16, torch.float32)])
@pytest.mark.parametrize("affine", ["weight_bias", "weight", "none"])
@pytest.mark.parametrize("rows,width,strided", [(37, 48, False), (5, 33, True), (1, 16, False), (12, 20, True)])
def test_kernels_against_float64(in_dtype, out_dtype, affine, rows, width, strided, seed):
    base = torch.randn(rows, width + (7 if strided else 0)) * 3.0 + torch.randn(rows, 1) * 2.0
    x = (base[:, 3:3 + width] if strided else base).to(in_dtype).requires_grad_(True)
    weight = torch.randn(width).requires_grad_(True) if affine != "none" else None
    bias = torch.randn(width).requires_grad_(True) if affine == "weight_bias" else None
    eps = 1e-6
    y = kernel_layer_norm(x, weight, bias, eps, out_dtype)
    assert y.dtype == out_dtype and y.shape == x.shape
    grad = torch.randn(rows, width).to(out_dtype)
    y.backward(grad)
    assert x.grad.dtype == in_dtype

    leaves = [t.detach().double().requires_grad_(True) if t is not None else None for t in (x, weight, bias)]
    ref = F.layer_norm(leaves[0], (width,), leaves[1], leaves[2], eps)
    ref.backward(grad.double())
    out_tol = 1e-6 if out_dtype == torch.float32 else 1e-3
    assert rel(y, ref) < out_tol
    # the result is the fp32 LayerNorm rounded to out_dtype: off by at most one rounding step where fp32 sums differ
    expected = layer_norm_reference(x.detach(), weight, bias, eps, out_dtype)
    if out_dtype == torch.float16:
        assert (y.float() - expected.float()).abs().max() <= expected.float().abs().max() * 2 ** -10
    else:
        assert rel(y, expected) < 1e-6
    grad_tol = 1e-5 if in_dtype == torch.float32 else 2e-3
    assert rel(x.grad, leaves[0].grad) < grad_tol
    for param, ref_param in ((weight, leaves[1]), (bias, leaves[2])):
        if param is not None:
            assert param.grad.dtype == param.dtype
            assert rel(param.grad, ref_param.grad) < 1e-5


def test_backward_sums_every_program_once(seed):
    """Rows spread over several programs with a partial last block: a row summed twice or dropped (in dx, dw
    or db) shows in the float64 comparison."""
    rows, width = 67, 24  # 4 programs of 2-row blocks in the interpreter: 17 rows each, the last 16
    x = torch.randn(rows, width, requires_grad=True)
    weight = torch.randn(width, requires_grad=True)
    bias = torch.randn(width, requires_grad=True)
    y = kernel_layer_norm(x, weight, bias, 1e-5, torch.float32)
    grad = torch.randn(rows, width)
    y.backward(grad)
    ref_leaves = [t.detach().double().requires_grad_(True) for t in (x, weight, bias)]
    F.layer_norm(ref_leaves[0], (width,), ref_leaves[1], ref_leaves[2], 1e-5).backward(grad.double())
    for mine, ref in zip((x.grad, weight.grad, bias.grad), ref_leaves):
        assert rel(mine, ref.grad) < 1e-5


def test_into_linear_dispatch(seed):
    norm = nn.LayerNorm(24)
    x = torch.randn(3, 5, 24)
    calls = []
    original = layer_norm_module._kernel_dtype

    def counting(*args):
        out = original(*args)
        calls.append(out)
        return out

    layer_norm_module._kernel_dtype = counting
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            y = layer_norm_into_linear(norm, x, "triton")
            assert y.dtype == torch.float16 and calls[-1] == torch.float16
            assert rel(y, F.layer_norm(x.double(), (24,), norm.weight.double(), norm.bias.double())) < 1e-3
            assert layer_norm_into_linear(norm, x, "torch").dtype == norm(x).dtype and calls[-1] is None
            hooked = nn.LayerNorm(24)
            hooked.register_forward_hook(lambda module, args, out: out * 2)
            assert torch.equal(layer_norm_into_linear(hooked, x, "triton"), hooked(x)) and calls[-1] is None
            # the default backend ("auto") takes Triton only for CUDA tensors
            layer_norm_into_linear(norm, x, "auto")
            assert calls[-1] is None
            # the meta device (no autocast there): nn.LayerNorm's
            meta = torch.empty(3, 5, 24, device="meta")
            meta_norm = nn.LayerNorm(24, device="meta")
            assert layer_norm_into_linear(meta_norm, meta, "triton").device.type == "meta" and calls[-1] is None
        # no autocast: nn.LayerNorm's own result (dtype included)
        assert torch.equal(layer_norm_into_linear(norm, x, "triton"), norm(x)) and calls[-1] is None
    finally:
        layer_norm_module._kernel_dtype = original


def test_small_inputs_stay_with_nn_layer_norm(monkeypatch):
    """Below the table's element count the LayerNorm is nn.LayerNorm's (its launches cost the host less)."""
    norm = nn.LayerNorm(24)
    x = torch.randn(3, 5, 24)
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (1, x.numel() + 1))
    with torch.autocast("cpu", dtype=torch.float16):
        assert layer_norm_module._kernel_dtype(norm, x, "triton") is None
        monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (1, x.numel()))
        assert layer_norm_module._kernel_dtype(norm, x, "triton") == torch.float16
        monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (0, 0))
        assert layer_norm_module._kernel_dtype(norm, x, "triton") is None


def _count_kernel_calls(monkeypatch) -> list:
    from lion_hf.kernels.triton import layer_norm as triton_layer_norm

    calls = []
    original = triton_layer_norm.LayerNormFunction.apply

    def counting(*args):
        calls.append(args[0].shape)
        return original(*args)

    monkeypatch.setattr(triton_layer_norm.LayerNormFunction, "apply", counting)
    return calls


def _vision_model(**extra):
    config = LionConfig(modality="vision", mask_type="decay", image_size=32, patch_size=8, hidden_size=64,
                        num_hidden_layers=2, num_attention_heads=2, intermediate_size=96, num_labels=5,
                        attention_backend="triton", **extra)
    return LionForImageClassification(config).eval()


def _step(model, inputs, labels):
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.float16):
        out = model(**inputs, labels=labels)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach().float(), grads


def test_vision_model_same_with_and_without_the_kernels(monkeypatch, seed):
    model = _vision_model()
    pixels = torch.randn(2, 3, 32, 32)
    labels = torch.randint(0, 5, (2,))
    calls = _count_kernel_calls(monkeypatch)
    logits, grads = _step(model, {"pixel_values": pixels}, labels)
    # norm1 and norm2 of both layers; the final norm's result is the model's output and stays nn.LayerNorm's
    assert len(calls) == 4
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (0, 0))
    ref_logits, ref_grads = _step(model, {"pixel_values": pixels}, labels)
    assert len(calls) == 4
    assert rel(logits, ref_logits) < 5e-3
    assert grads.keys() == ref_grads.keys()
    flat = torch.cat([g.flatten() for g in grads.values()])
    assert rel(flat, torch.cat([ref_grads[n].flatten() for n in grads])) < 1e-2
    for name in ("lion.layers.0.norm1.weight", "lion.layers.1.norm2.bias", "lion.layers.0.attention.qkv.weight"):
        assert rel(grads[name], ref_grads[name]) < 2e-2, name


def test_models_keep_nn_layer_norm_where_others_read_it(monkeypatch, seed):
    calls = _count_kernel_calls(monkeypatch)
    pixels = torch.randn(1, 3, 32, 32)
    # MD-TPE mixes norm1's result before the projection: only norm2 goes through the kernels
    with torch.autocast("cpu", dtype=torch.float16):
        _vision_model(position_encoding="md_tpe")(pixel_values=pixels)
    assert len(calls) == 2
    # the PyTorch backend keeps nn.LayerNorm everywhere
    with torch.autocast("cpu", dtype=torch.float16):
        model = _vision_model()
        model.set_attention_form("auto", backend="torch")
        model(pixel_values=pixels)
    assert len(calls) == 2
    # text models are post-norm: norm(stream + branch) of both blocks per layer, and LION-LIT's output norm (it
    # feeds out_proj alone); the embeddings' LayerNorm stays nn.LayerNorm's
    text = LionForMaskedLM(LionConfig(modality="text", mask_type="lit", vocab_size=50, hidden_size=32,
                                      num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
                                      attention_backend="triton")).eval()
    with torch.autocast("cpu", dtype=torch.float16):
        text(input_ids=torch.randint(0, 50, (2, 7)))
    assert len(calls) == 2 + 2 * 3


@pytest.mark.parametrize("branch_dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("rows,width,strided", [(23, 40, True), (6, 17, False)])
def test_sum_kernels_against_float64(branch_dtype, rows, width, strided, seed):
    """``norm(stream + branch)`` (post-norm): an fp32 stream, a branch in half or full precision; the sum in fp32,
    the result fp32, each input's gradient in its own dtype."""
    base = torch.randn(rows, width + 5) * 2.0
    stream = (base[:, 2:2 + width] if strided else base[:, :width]).requires_grad_(True)
    branch = (torch.randn(rows, width) * 3.0 + 1.0).to(branch_dtype).requires_grad_(True)
    weight = torch.randn(width).requires_grad_(True)
    bias = torch.randn(width).requires_grad_(True)
    from lion_hf.kernels.triton.layer_norm import LayerNormFunction

    y = LayerNormFunction.apply(stream, weight, bias, 1e-5, torch.float32, branch)
    assert y.dtype == torch.float32
    grad = torch.randn(rows, width)
    y.backward(grad)
    assert stream.grad.dtype == torch.float32 and branch.grad.dtype == branch_dtype
    ref = [t.detach().double().requires_grad_(True) for t in (stream, branch, weight, bias)]
    F.layer_norm(ref[0] + ref[1], (width,), ref[2], ref[3], 1e-5).backward(grad.double())
    assert rel(y, F.layer_norm((stream + branch).double(), (width,), weight.double(), bias.double(), 1e-5)) < 1e-6
    assert rel(stream.grad, ref[0].grad) < 1e-5
    assert rel(branch.grad, ref[1].grad) < (1e-5 if branch_dtype == torch.float32 else 1e-3)
    assert rel(weight.grad, ref[2].grad) < 1e-5 and rel(bias.grad, ref[3].grad) < 1e-5


@pytest.mark.parametrize("mask", ["lit", "selective"])
def test_text_model_same_with_and_without_the_kernels(mask, monkeypatch, seed):
    calls = _count_kernel_calls(monkeypatch)
    model = LionForMaskedLM(LionConfig(modality="text", mask_type=mask, vocab_size=60, hidden_size=64,
                                       num_hidden_layers=2, num_attention_heads=2, intermediate_size=96,
                                       attention_backend="triton", hidden_dropout_prob=0.0,
                                       attention_probs_dropout_prob=0.0))
    ids = torch.randint(0, 60, (2, 11))
    labels = ids.clone()
    labels[:, ::2] = -100
    logits, grads = _step(model, {"input_ids": ids}, labels)
    assert len(calls) == 2 * (3 if mask == "lit" else 2)
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (0, 0))
    ref_logits, ref_grads = _step(model, {"input_ids": ids}, labels)
    assert rel(logits, ref_logits) < 5e-3
    flat = torch.cat([g.flatten() for g in grads.values()])
    assert rel(flat, torch.cat([ref_grads[n].flatten() for n in grads])) < 1e-2
