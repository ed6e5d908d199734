"""The vision models' patch embedding as one matrix product (the path CUDA tensors take) against nn.Conv2d."""

from __future__ import annotations

import pytest
import torch

from lion_hf import LionConfig
from lion_hf.modeling.modeling_lion import LionPatchEmbeddings


def rel(x, ref):
    x, ref = x.double(), ref.double()
    return ((x - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("patch,height,width", [(16, 64, 48), (4, 12, 20), (8, 8, 8)])
def test_patch_product_equals_the_convolution(patch, height, width, seed):
    config = LionConfig(modality="vision", image_size=max(height, width), patch_size=patch, hidden_size=24,
                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    embed = LionPatchEmbeddings(config)
    pixels = torch.randn(3, 3, height, width, requires_grad=True)
    assert embed._patch_product()
    mine = embed._as_matmul(pixels)
    conv = embed.projection(pixels).flatten(2).transpose(1, 2)
    assert mine.shape == conv.shape == (3, (height // patch) * (width // patch), 24)
    assert rel(mine, conv) < 1e-6
    grad = torch.randn_like(mine)
    weight_grad, pixel_grad = torch.autograd.grad(mine, (embed.projection.weight, pixels), grad)
    ref_weight_grad, ref_pixel_grad = torch.autograd.grad(conv, (embed.projection.weight, pixels), grad)
    assert rel(weight_grad, ref_weight_grad) < 1e-6 and rel(pixel_grad, ref_pixel_grad) < 1e-6


def test_other_convolutions_keep_nn_conv2d():
    config = LionConfig(modality="vision", image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32)
    embed = LionPatchEmbeddings(config)
    embed.projection = torch.nn.Conv2d(3, 24, kernel_size=8, stride=4)  # overlapping patches: not a product
    assert not embed._patch_product()
    hooked = LionPatchEmbeddings(config)
    hooked.projection.register_forward_hook(lambda module, args, out: out)
    assert not hooked._patch_product()
