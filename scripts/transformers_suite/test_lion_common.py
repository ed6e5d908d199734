# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""transformers' common model and config tests, applied to the LION models (text and vision).

Run through ``scripts/run_transformers_common_tests.py``, which places this file next to the
sdist's ``test_modeling_common.py``. Every skip below says why the common test cannot apply.
"""

import unittest

import torch
from transformers import is_torch_available

import lion_hf  # noqa: F401  (registers the Auto classes)
from lion_hf import (
    LionConfig,
    LionForImageClassification,
    LionForMaskedLM,
    LionForSequenceClassification,
    LionForTokenClassification,
    LionModel,
)

from .test_configuration_common import ConfigTester
from .test_modeling_common import ModelTesterMixin, floats_tensor, ids_tensor

assert is_torch_available()

# Deterministic labels (like transformers' own): tests compare two calls prepared separately.
HEAD_LABELS = {
    LionForMaskedLM: lambda t: torch.arange(t.batch_size * t.seq_length).view(t.batch_size, -1) % t.vocab_size,
    LionForSequenceClassification: lambda t: torch.arange(t.batch_size) % t.num_labels,
    LionForTokenClassification: lambda t: torch.arange(t.batch_size * t.seq_length).view(t.batch_size, -1) % t.num_labels,
    LionForImageClassification: lambda t: torch.arange(t.batch_size) % t.num_labels,
}


class _LabelsMixin:
    """transformers picks labels from its built-in MODEL_FOR_*_MAPPING_NAMES, which do not know
    out-of-tree classes; give each LION head its labels here."""

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = dict(inputs_dict)
        if return_labels and model_class in HEAD_LABELS:
            inputs_dict["labels"] = HEAD_LABELS[model_class](self.model_tester).to(torch_device())
        return inputs_dict

    def test_training(self):
        for model_class in self.all_model_classes:
            if model_class not in HEAD_LABELS:
                continue  # the bare backbone has no loss
            config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
            model = model_class(config).train()
            loss = model(**self._prepare_for_class(inputs, model_class, return_labels=True)).loss
            loss.backward()
            self.assertTrue(torch.isfinite(loss))

    def check_training_gradient_checkpointing(self, gradient_checkpointing_kwargs=None):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            if model_class not in HEAD_LABELS:
                continue
            model = model_class(config).train()
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)
            loss = model(**self._prepare_for_class(inputs, model_class, return_labels=True)).loss
            loss.backward()
            self.assertTrue(all(p.grad is not None for p in model.parameters() if p.requires_grad))


def torch_device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class LionTextModelTester:
    def __init__(self, parent, batch_size=3, seq_length=9, vocab_size=99, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=37, num_labels=3, mask_type="selective"):
        self.parent = parent
        self.batch_size, self.seq_length, self.vocab_size = batch_size, seq_length, vocab_size
        self.hidden_size, self.num_hidden_layers = hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.num_labels, self.mask_type = num_labels, mask_type
        self.is_training = True

    def get_config(self):
        return LionConfig(modality="text", mask_type=self.mask_type, vocab_size=self.vocab_size,
                          hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                          num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
                          max_position_embeddings=64, num_labels=self.num_labels,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

    def prepare_config_and_inputs_for_common(self):
        ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        mask = torch.ones(self.batch_size, self.seq_length, dtype=torch.long, device=ids.device)
        mask[0, -2:] = 0
        return self.get_config(), {"input_ids": ids, "attention_mask": mask,
                                   "token_type_ids": ids_tensor([self.batch_size, self.seq_length], 2)}


class LionVisionModelTester:
    def __init__(self, parent, batch_size=3, image_size=16, patch_size=4, num_channels=3, hidden_size=32,
                 num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, num_labels=3):
        self.parent = parent
        self.batch_size, self.image_size, self.patch_size = batch_size, image_size, patch_size
        self.num_channels, self.hidden_size = num_channels, hidden_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.intermediate_size, self.num_labels = intermediate_size, num_labels
        self.seq_length = (image_size // patch_size) ** 2 + 1
        self.vocab_size = 0
        self.is_training = True

    def get_config(self):
        return LionConfig(modality="vision", mask_type="selective", patch_order="s", image_size=self.image_size,
                          patch_size=self.patch_size, num_channels=self.num_channels, hidden_size=self.hidden_size,
                          num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                          intermediate_size=self.intermediate_size, num_labels=self.num_labels,
                          use_position_embeddings=True)

    def prepare_config_and_inputs_for_common(self):
        pixels = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size])
        return self.get_config(), {"pixel_values": pixels}


class LionTextModelTest(_LabelsMixin, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (LionModel, LionForMaskedLM, LionForSequenceClassification, LionForTokenClassification)
    # LION has no softmax attention matrix to return: its forms never build one (chunk/recurrent).
    has_attentions = False

    def setUp(self):
        self.model_tester = LionTextModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, hidden_size=37, num_attention_heads=1,
                                          modality="text")

    def test_config(self):
        self.config_tester.run_common_tests()


class LionVisionModelTest(_LabelsMixin, ModelTesterMixin, unittest.TestCase):
    all_model_classes = (LionModel, LionForImageClassification)
    has_attentions = False
    test_resize_embeddings = False  # patch embeddings are a convolution, not a token table

    def setUp(self):
        self.model_tester = LionVisionModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, has_text_modality=False, hidden_size=37,
                                          num_attention_heads=1, modality="vision")

    def test_config(self):
        self.config_tester.run_common_tests()

    @unittest.skip("the common test expects nn.Embedding input embeddings; vision inputs go through a Conv2d")
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip("inputs_embeds is a text-model argument; vision models take pixel_values")
    def test_inputs_embeds(self):
        pass

    @unittest.skip("inputs_embeds is a text-model argument; vision models take pixel_values")
    def test_inputs_embeds_matches_input_ids(self):
        pass


# LightNet (LionConfig(attention_type="lightnet")): the same models with LightNet's mixer in every layer;
# ``extra_config``: further config fields of a subclass (the positional encodings below).
class LightNetTextModelTester(LionTextModelTester):
    extra_config: dict = {}

    def get_config(self):
        return LionConfig(modality="text", attention_type="lightnet", vocab_size=self.vocab_size,
                          hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
                          num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
                          max_position_embeddings=64, num_labels=self.num_labels,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **self.extra_config)


class LightNetVisionModelTester(LionVisionModelTester):
    extra_config: dict = {}

    def get_config(self):
        return LionConfig(modality="vision", attention_type="lightnet", image_size=self.image_size,
                          patch_size=self.patch_size, num_channels=self.num_channels, hidden_size=self.hidden_size,
                          num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                          intermediate_size=self.intermediate_size, num_labels=self.num_labels, **self.extra_config)


class LightNetTextModelTest(LionTextModelTest):
    def setUp(self):
        self.model_tester = LightNetTextModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, hidden_size=37, num_attention_heads=1,
                                          modality="text", attention_type="lightnet")


class LightNetVisionModelTest(LionVisionModelTest):
    def setUp(self):
        self.model_tester = LightNetVisionModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, has_text_modality=False, hidden_size=37,
                                          num_attention_heads=1, modality="vision", attention_type="lightnet")


# LightNet with the paper's positional encodings (MD-LRPE with learned frequencies, MD-TPE; vision interpolated to
# the training grid): the new parameters (rotary theta, the Toeplitz encoders and decays) through the common tests.
_POSITIONAL = {"position_encoding": "md_lrpe_tpe", "lrpe_learnable_theta": True, "tpe_feature_dim": 8,
               "tpe_num_layers": 1}


class LightNetPositionalTextModelTester(LightNetTextModelTester):
    extra_config = _POSITIONAL


class LightNetPositionalVisionModelTester(LightNetVisionModelTester):
    extra_config = {"position_scaling": "interpolate", **_POSITIONAL}


class LightNetPositionalTextModelTest(LionTextModelTest):
    def setUp(self):
        self.model_tester = LightNetPositionalTextModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, hidden_size=37, num_attention_heads=1,
                                          modality="text", attention_type="lightnet", **_POSITIONAL)


class LightNetPositionalVisionModelTest(LionVisionModelTest):
    def setUp(self):
        self.model_tester = LightNetPositionalVisionModelTester(self)
        self.config_tester = ConfigTester(self, config_class=LionConfig, has_text_modality=False, hidden_size=37,
                                          num_attention_heads=1, modality="vision", attention_type="lightnet",
                                          position_scaling="interpolate", **_POSITIONAL)
