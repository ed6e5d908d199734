"""The models' glue on a CUDA device (``-m gpu``): the LayerNorm kernels in bf16 and fp16 at the models' widths
against float64, the patch embedding as a matrix product against cuDNN's convolution, and a LION vision model
under CUDA autocast with and without both."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lion_hf import LionConfig, LionForImageClassification
from lion_hf.kernels.layer_norm import layer_norm_reference
from lion_hf.kernels.triton.tuning import LAUNCH

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

OFF = {"layer_norm_kernels": (0, 0), "patch_embedding_as_matmul": (0,)}


@pytest.fixture(autouse=True)
def kernels_at_every_size(monkeypatch):
    """The LayerNorm kernels for every input size (the table's default leaves small ones to PyTorch)."""
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", (1, 0))


def _training_step(model, **inputs):
    """A bf16-autocast forward and backward of ``model`` on ``inputs``: ``(logits fp32, every gradient flat)``."""
    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(**inputs)
        out.loss.backward()
        return out.logits.float(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return step


def rel(x, ref):
    x, ref = x.double(), ref.double()
    assert torch.isfinite(x).all()
    return ((x - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("rows,width", [(128 * 197, 768), (8 * 4097 + 3, 768), (64 * 512, 1024), (999, 1280)])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gpu_layer_norm_kernels(rows, width, dtype, seed):
    from lion_hf.kernels.triton.layer_norm import LayerNormFunction

    x = (torch.randn(rows, width, device="cuda") * 2 + torch.randn(rows, 1, device="cuda")).to(dtype)
    x.requires_grad_(True)
    weight = (torch.randn(width, device="cuda") * 0.2 + 1).requires_grad_(True)
    bias = (torch.randn(width, device="cuda") * 0.1).requires_grad_(True)
    y = LayerNormFunction.apply(x, weight, bias, 1e-6, dtype)
    grad = torch.randn(rows, width, device="cuda").to(dtype)
    y.backward(grad)
    leaves = [t.detach().double().requires_grad_(True) for t in (x, weight, bias)]
    ref = F.layer_norm(leaves[0], (width,), leaves[1], leaves[2], 1e-6)
    ref.backward(grad.double())
    expected = layer_norm_reference(x.detach(), weight, bias, 1e-6, dtype)
    # the same fp32 values rounded once: equal but where the fp32 sums round differently (one step)
    assert (y.float() - expected.float()).abs().max() <= expected.float().abs().max() * 2 ** -7
    assert (y == expected).float().mean() > 0.99
    assert rel(y, ref) < 1e-2
    assert rel(x.grad, leaves[0].grad) < 1e-2
    assert rel(weight.grad, leaves[1].grad) < 1e-4 and rel(bias.grad, leaves[2].grad) < 1e-4


@pytest.mark.parametrize("rows,width", [(64 * 512, 1024), (8 * 128 + 5, 768)])
def test_gpu_layer_norm_of_sum(rows, width, seed):
    """Post-norm ``norm(stream + branch)``: fp32 stream, bf16 branch, fp32 result, each gradient in its dtype."""
    from lion_hf.kernels.triton.layer_norm import LayerNormFunction

    stream = torch.randn(rows, width, device="cuda", requires_grad=True)
    branch = torch.randn(rows, width, device="cuda").to(torch.bfloat16).requires_grad_(True)
    weight = (torch.randn(width, device="cuda") * 0.2 + 1).requires_grad_(True)
    bias = (torch.randn(width, device="cuda") * 0.1).requires_grad_(True)
    y = LayerNormFunction.apply(stream, weight, bias, 1e-12, torch.float32, branch)
    grad = torch.randn(rows, width, device="cuda")
    y.backward(grad)
    ref = [t.detach().double().requires_grad_(True) for t in (stream, branch, weight, bias)]
    out = F.layer_norm(ref[0] + ref[1], (width,), ref[2], ref[3], 1e-12)
    out.backward(grad.double())
    assert y.dtype == stream.grad.dtype == torch.float32 and branch.grad.dtype == torch.bfloat16
    assert rel(y, out) < 1e-5 and rel(stream.grad, ref[0].grad) < 1e-5 and rel(branch.grad, ref[1].grad) < 1e-2
    assert rel(weight.grad, ref[2].grad) < 1e-4 and rel(bias.grad, ref[3].grad) < 1e-4


def test_gpu_text_model_with_and_without(monkeypatch, seed):
    from lion_hf import LionForMaskedLM

    config = LionConfig(modality="text", mask_type="lit", vocab_size=1000, hidden_size=256, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=512, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = LionForMaskedLM(config).cuda()
    ids = torch.randint(0, 1000, (4, 128), device="cuda")
    step = _training_step(model, input_ids=ids, labels=ids)
    logits, grads = step()
    monkeypatch.setitem(LAUNCH, "layer_norm_kernels", OFF["layer_norm_kernels"])
    ref_logits, ref_grads = step()
    assert rel(logits, ref_logits) < 1e-2 and rel(grads, ref_grads) < 2e-2


@pytest.mark.parametrize("resolution,batch", [(224, 8), (1024, 2)])
def test_gpu_patch_embedding_as_matmul(resolution, batch, seed):
    from lion_hf.modeling.modeling_lion import LionPatchEmbeddings

    config = LionConfig(modality="vision", image_size=resolution, patch_size=16, hidden_size=768,
                        num_hidden_layers=1, num_attention_heads=12, intermediate_size=32)
    embed = LionPatchEmbeddings(config).cuda()
    pixels = torch.randn(batch, 3, resolution, resolution, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mine = embed(pixels)
        conv = embed.projection(pixels).flatten(2).transpose(1, 2)
    assert mine.dtype == conv.dtype == torch.bfloat16
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mine.float().square().sum().backward()
    weight_grad = embed.projection.weight.grad.clone()
    embed.zero_grad()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        conv.float().square().sum().backward()
    ref = F.conv2d(pixels.double(), embed.projection.weight.double(), embed.projection.bias.double(), stride=16)
    ref = ref.flatten(2).transpose(1, 2)
    assert rel(mine, ref) < 1e-2 and rel(conv, ref) < 1e-2
    assert rel(weight_grad, embed.projection.weight.grad) < 2e-2


@pytest.mark.parametrize("entry", ["layer_norm_kernels", "patch_embedding_as_matmul"])
def test_gpu_vision_model_with_and_without(entry, monkeypatch, seed):
    config = LionConfig(modality="vision", mask_type="selective", image_size=64, patch_size=16, hidden_size=256,
                        num_hidden_layers=3, num_attention_heads=4, intermediate_size=512, num_labels=10)
    model = LionForImageClassification(config).cuda()
    step = _training_step(model, pixel_values=torch.randn(8, 3, 64, 64, device="cuda"),
                          labels=torch.randint(0, 10, (8,), device="cuda"))
    logits, grads = step()
    monkeypatch.setitem(LAUNCH, entry, OFF[entry])
    ref_logits, ref_grads = step()
    assert rel(logits, ref_logits) < 1e-2
    assert rel(grads, ref_grads) < 2e-2
