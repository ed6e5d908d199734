"""Issue 14, items 17 and 27: config fields are type- and range-checked wherever a config is made (constructor,
``from_pretrained`` overrides, fields changed before a model is built, ``save_pretrained``), and the text models
refuse bad position ids clearly and accept inputs on the meta device."""

from __future__ import annotations

import math
import re

import pytest
import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from lion_hf import LionConfig, LionForImageClassification, LionForMaskedLM
from lion_hf.modeling.configuration_lion import (
    BOOL_FIELDS,
    NON_NEGATIVE_FIELDS,
    POSITIVE_INT_FIELDS,
    RATE_FIELDS,
    LionConfigError,
)

TEXT = dict(modality="text", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            vocab_size=50, max_position_embeddings=16)


def text_config(**overrides) -> LionConfig:
    return LionConfig(**{**TEXT, **overrides})


@pytest.mark.parametrize("field,value,expected", [
    ("attention_eps", "x", r"attention_eps must be a finite number >= 0, got 'x' \(str\); pass a number such as"),
    ("attention_eps", -1e-6, r"attention_eps must be a finite number >= 0, got -1e-06"),
    ("attention_eps", math.nan, r"attention_eps must be a finite number >= 0, got nan"),
    ("layer_norm_eps", -1e-12, r"layer_norm_eps must be a finite number > 0"),
    ("layer_norm_eps", 0.0, r"layer_norm_eps must be a finite number > 0"),
    ("layer_norm_eps", True, r"layer_norm_eps must be a finite number > 0, got True \(bool\)"),
    ("initializer_range", "0.02", r"initializer_range must be a finite number >= 0, got '0.02' \(str\)"),
    ("qkv_bias", "false", r"qkv_bias must be True or False, got 'false' \(str\); pass a Python bool"),
    ("qkv_bias", 0, r"qkv_bias must be True or False, got 0 \(int\)"),
    ("normalize_attention", "yes", r"normalize_attention must be True or False"),
    ("tie_word_embeddings", 1, r"tie_word_embeddings must be True or False"),
    ("hidden_dropout_prob", "0.1", r"hidden_dropout_prob must be in \[0, 1\), got '0.1' \(str\)"),
    ("classifier_dropout", 1.5, r"classifier_dropout must be in \[0, 1\)"),
    ("hidden_act", "gelo", r"hidden_act must name an activation .*did you mean 'gelu'"),
    ("pad_token_id", 50, r"pad_token_id must lie in \[0, vocab_size=50\)"),
    ("pad_token_id", "0", r"pad_token_id must be an int or None"),
    ("mask_type", "selctive", r"mask_type must be one of \('lit', 'decay', 'selective'\), got 'selctive'; "
                              r"did you mean 'selective'"),
    ("num_hidden_layers", 2.0, r"num_hidden_layers must be a positive int, got 2.0 \(float\)"),
])
def test_constructor_refuses_bad_fields(field, value, expected):
    with pytest.raises(LionConfigError, match=rf"LionConfig\.{expected}"):
        text_config(**{field: value})


def test_error_is_a_value_and_type_error_and_lists_every_bad_field():
    with pytest.raises(ValueError) as caught:
        text_config(attention_eps="x", qkv_bias="false", layer_norm_eps=-1.0)
    assert isinstance(caught.value, TypeError)
    message = str(caught.value)
    assert message.startswith("3 LionConfig fields are invalid")
    for field in ("attention_eps", "qkv_bias", "layer_norm_eps"):
        assert f"- LionConfig.{field} must" in message


def test_every_checked_field_accepts_its_default():
    """The checks are not vacuous: each listed field exists, and the defaults of both modalities pass."""
    for config in (LionConfig(), LionConfig(modality="text"), LionConfig(modality="text", mask_type="lit")):
        for name in (*POSITIVE_INT_FIELDS, *BOOL_FIELDS, *RATE_FIELDS, *NON_NEGATIVE_FIELDS):
            assert hasattr(config, name), name
        assert config.field_problems() == []


def test_good_values_still_accepted():
    config = text_config(attention_eps=0, layer_norm_eps=1e-5, qkv_bias=False, classifier_dropout=None,
                         pad_token_id=None, hidden_act="silu")
    assert config.attention_eps == 0 and config.qkv_bias is False


def test_from_pretrained_overrides_are_validated(tmp_path):
    LionForMaskedLM(text_config()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="LionConfig.mask_type must be one of .*did you mean 'selective'"):
        LionForMaskedLM.from_pretrained(tmp_path, mask_type="selctive")
    with pytest.raises(ValueError, match="LionConfig.qkv_bias must be True or False"):
        AutoConfig.from_pretrained(tmp_path, qkv_bias="false")
    with pytest.raises(ValueError, match="LionConfig.attention_eps must be a finite number"):
        AutoModelForMaskedLM.from_pretrained(tmp_path, attention_eps="x")
    # a valid override is applied, and builds the layers it asks for
    model = AutoModelForMaskedLM.from_pretrained(tmp_path, mask_type="selective")
    assert model.config.mask_type == "selective" and model.lion.layers[0].attention.gate is not None
    # overrides of transformers' own fields still work, and unknown keywords still come back as unused
    config, unused = LionConfig.from_pretrained(tmp_path, num_labels=5, return_unused_kwargs=True, not_a_field=1)
    assert config.num_labels == 5 and unused == {"not_a_field": 1}


def test_fields_changed_after_construction_are_checked_before_a_model_is_built():
    config = text_config()
    config.mask_type = "selctive"
    with pytest.raises(ValueError, match="LionConfig.mask_type must be one of"):
        LionForMaskedLM(config)
    config = LionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        image_size=16, patch_size=4)
    config.attention_eps = -1.0
    with pytest.raises(ValueError, match="LionConfig.attention_eps must be a finite number >= 0"):
        LionForImageClassification(config)


def test_lit_position_ids_out_of_range_raise_a_clear_error():
    model = LionForMaskedLM(text_config(mask_type="lit")).eval()
    ids = torch.randint(0, 50, (2, 4))
    good = model(input_ids=ids, position_ids=torch.tensor([[3, 4, 5, 15]])).logits
    assert good.shape == (2, 4, 50)
    for bad in (torch.tensor([[0, 1, 2, 16]]), torch.tensor([[0, -1, 2, 3]])):
        with pytest.raises(ValueError, match=r"position_ids must lie in \[0, 16\) \(config.max_position_embeddings\)"):
            model(input_ids=ids, position_ids=bad)
    with pytest.raises(ValueError, match=r"position_ids must have shape \[2, 4\] or \[1, 4\]"):
        model(input_ids=ids, position_ids=torch.arange(5)[None])


def test_text_shapes_are_checked():
    model = LionForMaskedLM(text_config()).eval()
    with pytest.raises(ValueError, match=r"input_ids must be \[batch, length\], got shape \(4,\)"):
        model(input_ids=torch.randint(0, 50, (4,)))
    with pytest.raises(ValueError, match=r"token_type_ids must have shape \[2, 4\]"):
        model(input_ids=torch.randint(0, 50, (2, 4)), token_type_ids=torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"inputs_embeds must be \[batch, length, hidden_size=32\]"):
        model(inputs_embeds=torch.randn(2, 4, 31))


@pytest.mark.parametrize("mask_type", ["lit", "decay", "selective"])
def test_text_models_run_on_the_meta_device(mask_type):
    with torch.device("meta"):
        model = LionForMaskedLM(text_config(mask_type=mask_type))
    ids = torch.randint(0, 50, (2, 7), device="meta")
    kwargs = {"token_type_ids": torch.zeros(2, 7, dtype=torch.long, device="meta")}
    if mask_type == "lit":
        kwargs["position_ids"] = torch.arange(7, device="meta")[None]
    out = model(input_ids=ids, attention_mask=torch.ones(2, 7, dtype=torch.long, device="meta"), labels=ids, **kwargs)
    assert out.logits.shape == (2, 7, 50) and out.logits.device.type == "meta" and out.loss.device.type == "meta"


# ---- found in the sweep -------------------------------------------------------------------------------------
def test_problem_type_typo_is_refused():
    """An unknown problem_type used to fall through to the multi-label loss without a word."""
    with pytest.raises(ValueError, match=r"LionConfig.problem_type must be one of .*did you mean 'regression'"):
        text_config(num_labels=1, problem_type="regresion")
    assert text_config(num_labels=1, problem_type="regression").problem_type == "regression"


def test_misspelt_field_is_reported(tmp_path):
    """A misspelt LION field was kept as an extra attribute while the real one silently kept its default."""
    from transformers.testing_utils import CaptureLogger

    from lion_hf.modeling import configuration_lion

    with CaptureLogger(configuration_lion.logger) as captured:
        config = text_config(mask_typ="lit", bos_token_id=2, my_note="kept", num_label=4, depth=6, use_cache=True)
    assert config.mask_type == "decay" and config.my_note == "kept" and config.num_hidden_layers == 2
    assert "'mask_typ'" in captured.out and "did you mean 'mask_type'" in captured.out
    assert "did you mean 'num_labels'" in captured.out and "'depth'" in captured.out
    assert "did you mean 'num_hidden_layers'" in captured.out
    for quiet in ("bos_token_id", "my_note", "use_cache"):
        assert quiet not in captured.out
    LionForMaskedLM(text_config()).save_pretrained(tmp_path)
    with CaptureLogger(configuration_lion.logger) as captured:  # a saved config's own keys are no near misses
        LionConfig.from_pretrained(tmp_path)
    assert captured.out == ""


def test_set_attention_form_refuses_a_bool_chunk_size():
    """chunk_size=True passed the int check and then made the model unsaveable."""
    model = LionForMaskedLM(text_config())
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got True"):
        model.set_attention_form("chunk", chunk_size=True)
    assert model.config.chunk_size is None


def test_another_architectures_config_is_refused(tmp_path):
    """transformers only warns when a BERT config.json is read into a LionConfig; the result described a
    default vision LION model with some BERT fields."""
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'bert', not 'lion'"):
        LionConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'bert', not 'lion'"):
        LionForMaskedLM.from_pretrained(tmp_path, modality="text")
    assert LionConfig.from_dict({"model_type": "lion", "modality": "text"}).modality == "text"


def test_a_hand_edited_config_json_names_the_checkpoint(tmp_path):
    import json

    LionForMaskedLM(text_config()).save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "qkv_bias": "false"}))
    with pytest.raises(ValueError, match=rf"the config of '{re.escape(str(tmp_path))}' \(its config.json .*"
                                         r"LionConfig.qkv_bias must be True or False"):
        LionForMaskedLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="LionConfig.qkv_bias must be True or False"):
        AutoModelForMaskedLM.from_pretrained(tmp_path)
