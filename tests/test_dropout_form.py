"""Attention dropout picks the attention form, or is skipped (with a warning) where the form is another one:
``lion_hf.kernels.dropout_form`` and the LION and LightNet layers that call it."""

import pytest
import torch
from transformers.testing_utils import CaptureLogger
from transformers.utils import logging

from lion_hf import LionConfig, LionForImageClassification
from lion_hf.kernels import dropout_form


def _probe(length: int) -> torch.Tensor:
    return torch.randn(2, length, 3, 8).transpose(1, 2)  # [B, H, L, D], a strided view as the layers pass


def test_dropout_form_chooses_the_attention_form_or_skips_the_dropout():
    assert dropout_form("auto", "torch", 0.0, _probe(16)) == ("auto", 0.0)
    assert dropout_form("auto", "torch", 0.1, _probe(16)) == ("attention", 0.1)
    assert dropout_form("attention", "torch", 0.25, _probe(16)) == ("attention", 0.25)
    logger = logging.get_logger("lion_hf.kernels.interface")
    logger.warning_once.cache_clear()
    with CaptureLogger(logger) as captured:
        assert dropout_form("chunk", "torch", 0.1, _probe(16)) == ("chunk", 0.0)
    assert "skipped outside the attention form" in captured.out
    # "auto" past the crossover is not the attention form either
    assert dropout_form("auto", "torch", 0.1, _probe(100_000)[:, :, :, :1]) == ("auto", 0.0)


@pytest.mark.parametrize("attention_type", ["lion", "lightnet"])
def test_layers_drop_only_in_the_attention_form(attention_type):
    torch.manual_seed(0)
    config = LionConfig(attention_type=attention_type, image_size=16, patch_size=4, hidden_size=32,
                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, num_labels=3,
                        attention_probs_dropout_prob=0.5, attention_backend="torch")
    model = LionForImageClassification(config).train()
    pixels = torch.randn(2, 3, 16, 16)
    model.set_attention_form("attention")
    first, second = model(pixel_values=pixels).logits, model(pixel_values=pixels).logits
    assert not torch.allclose(first, second), "two dropout draws"
    model.set_attention_form("chunk", chunk_size=4)
    first, second = model(pixel_values=pixels).logits, model(pixel_values=pixels).logits
    torch.testing.assert_close(first, second, msg="no dropout outside the attention form")
    model.eval()
    torch.testing.assert_close(model(pixel_values=pixels).logits, first, msg="the same as without dropout")
