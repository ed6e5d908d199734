"""Hugging Face behaviour of the LION models: forms, save/load, Auto classes, pipelines, errors."""

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertTokenizer,
    ViTImageProcessorPil,
    pipeline,
)

import lion_hf  # noqa: F401  (registers the Auto classes)
from lion_hf import (
    LionConfig,
    LionForImageClassification,
    LionForMaskedLM,
    LionForSequenceClassification,
    LionForTokenClassification,
    LionModel,
    list_presets,
)

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
VISION_VARIANTS = [("lit", "normal"), ("decay", "normal"), ("decay", "s"), ("selective", "normal"),
                   ("selective", "s")]


def vision_config(mask="selective", order="normal", **overrides):
    fields = dict(modality="vision", mask_type=mask, patch_order=order, image_size=32, patch_size=8, num_labels=3,
                  id2label={0: "cat", 1: "dog", 2: "owl"}, label2id={"cat": 0, "dog": 1, "owl": 2}, **TINY)
    return LionConfig(**{**fields, **overrides})


def text_config(mask="decay", **overrides):
    return LionConfig(**{**dict(modality="text", mask_type=mask, vocab_size=40, max_position_embeddings=64,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **TINY), **overrides})


def write_tokenizer(folder):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    words += [f"tok{i}" for i in range(40 - len(words))]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(vocab=str(vocab))
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.mark.parametrize("mask, order", VISION_VARIANTS)
def test_vision_forms_agree_and_gradients_flow(seed, mask, order):
    model = LionForImageClassification(vision_config(mask, order)).eval()
    pixels = torch.randn(2, 3, 32, 32)
    logits = {}
    for form in ("attention", "chunk", "recurrent"):
        model.set_attention_form(form, chunk_size=4)
        with torch.no_grad():
            logits[form] = model(pixel_values=pixels).logits
    for form in ("chunk", "recurrent"):
        torch.testing.assert_close(logits[form], logits["attention"], rtol=1e-5, atol=1e-5)
    model.train().set_attention_form("chunk")
    model(pixel_values=pixels, labels=torch.tensor([0, 2])).loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), f"seed {seed}"
    attention = model.lion.layers[0].attention
    decay_param = attention.decay_logits if mask == "decay" else attention.gate.weight if mask == "selective" else None
    if decay_param is not None:
        assert decay_param.grad.abs().sum() > 0


@pytest.mark.parametrize("mask", ["lit", "decay", "selective"])
def test_text_padding_and_forms(seed, mask):
    model = LionForMaskedLM(text_config(mask)).eval()
    ids = torch.randint(5, 40, (2, 11))
    attention_mask = torch.ones(2, 11, dtype=torch.long)
    attention_mask[1, 6:] = 0
    for form in ("attention", "chunk", "recurrent"):
        model.set_attention_form(form, chunk_size=4)
        with torch.no_grad():
            padded = model(input_ids=ids, attention_mask=attention_mask).logits
            alone = model(input_ids=ids[1:, :6]).logits
        torch.testing.assert_close(padded[1, :6], alone[0], rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_is_exact_and_auto_classes_resolve(tmp_path, seed):
    vision = LionForImageClassification(vision_config("decay", "s")).eval()
    vision.save_pretrained(tmp_path / "v")
    assert (tmp_path / "v" / "model.safetensors").exists()
    reloaded = AutoModelForImageClassification.from_pretrained(tmp_path / "v").eval()
    assert isinstance(reloaded, LionForImageClassification)
    for name, tensor in vision.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(vision(pixel_values=pixels).logits, reloaded(pixel_values=pixels).logits)
        backbone = AutoModel.from_pretrained(tmp_path / "v")
        assert isinstance(backbone, LionModel) and backbone.main_input_name == "pixel_values"
        assert backbone(pixel_values=pixels).pooler_output.shape == (2, 32)

    text = LionForMaskedLM(text_config("selective")).eval()
    text.save_pretrained(tmp_path / "t")
    assert AutoConfig.from_pretrained(tmp_path / "t").mask_type == "selective"
    mlm = AutoModelForMaskedLM.from_pretrained(tmp_path / "t").eval()
    assert mlm.lm_head.decoder.weight.data_ptr() == mlm.lion.embeddings.word_embeddings.weight.data_ptr()
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        assert torch.equal(text(input_ids=ids).logits, mlm(input_ids=ids).logits)
        backbone = AutoModel.from_pretrained(tmp_path / "t")
        assert backbone.main_input_name == "input_ids"
        assert backbone(input_ids=ids).last_hidden_state.shape == (2, 9, 32)
    assert isinstance(AutoModelForSequenceClassification.from_pretrained(tmp_path / "t"), LionForSequenceClassification)
    assert isinstance(AutoModelForTokenClassification.from_pretrained(tmp_path / "t"), LionForTokenClassification)


def test_hidden_states_return_dict_and_tuple(seed):
    model = LionForImageClassification(vision_config()).eval()
    pixels = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = model(pixel_values=pixels, output_hidden_states=True)
        as_tuple = model(pixel_values=pixels, return_dict=False)
    assert len(out.hidden_states) == 3 and out.hidden_states[0].shape == (1, 17, 32)
    assert torch.equal(as_tuple[0], out.logits)


def test_gradient_checkpointing_matches_plain_backward(seed):
    model = LionForSequenceClassification(text_config("selective", num_labels=2))
    model.train()
    ids = torch.randint(0, 40, (2, 10))
    labels = torch.tensor([0, 1])
    model(input_ids=ids, labels=labels).loss.backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    model(input_ids=ids, labels=labels).loss.backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, plain[name], rtol=1e-5, atol=1e-6, msg=name)


def test_regression_and_token_classification_losses(seed):
    model = LionForSequenceClassification(text_config(num_labels=1))
    out = model(input_ids=torch.randint(0, 40, (3, 7)), labels=torch.tensor([0.5, 1.5, 4.0]))
    assert model.config.problem_type == "regression" and out.logits.shape == (3, 1)
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, 1.5, 4.0]))
    torch.testing.assert_close(out.loss, expected)
    tagger = LionForTokenClassification(text_config(num_labels=5))
    labels = torch.randint(0, 5, (2, 7))
    labels[:, -2:] = -100
    out = tagger(input_ids=torch.randint(0, 40, (2, 7)), labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-2].reshape(-1, 5), labels[:, :-2].reshape(-1))
    torch.testing.assert_close(out.loss, expected)


def test_resize_token_embeddings_keeps_the_decoder_tied(seed):
    model = LionForMaskedLM(text_config())
    model.resize_token_embeddings(48)
    assert model.config.vocab_size == 48
    assert model.lm_head.decoder.weight.shape == (48, 32)
    assert model.lm_head.decoder.weight.data_ptr() == model.lion.embeddings.word_embeddings.weight.data_ptr()
    assert model(input_ids=torch.tensor([[47, 3]])).logits.shape == (1, 2, 48)


def test_interpolate_pos_encoding_runs_other_resolutions(seed):
    model = LionForImageClassification(vision_config("selective", "s", use_position_embeddings=True)).eval()
    with pytest.raises(ValueError, match="interpolate_pos_encoding=True"):
        model(pixel_values=torch.randn(1, 3, 48, 32))
    with torch.no_grad():
        out = model(pixel_values=torch.randn(1, 3, 48, 32), interpolate_pos_encoding=True)
        same = model(pixel_values=torch.ones(1, 3, 32, 32), interpolate_pos_encoding=True).logits
        base = model(pixel_values=torch.ones(1, 3, 32, 32)).logits
    assert out.logits.shape == (1, 3)
    torch.testing.assert_close(same, base)  # at the native size the table is unchanged


def test_pipelines_on_saved_folders(tmp_path, seed):
    from PIL import Image

    vision = LionForImageClassification(vision_config())
    vision.save_pretrained(tmp_path / "v")
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "v")
    image = Image.fromarray((torch.rand(40, 40, 3) * 255).to(torch.uint8).numpy())
    result = pipeline("image-classification", model=str(tmp_path / "v"))(image, top_k=3)
    assert {r["label"] for r in result} == {"cat", "dog", "owl"}
    assert abs(sum(r["score"] for r in result) - 1.0) < 1e-4

    folder = tmp_path / "t"
    folder.mkdir()
    tokenizer = write_tokenizer(folder)
    LionForMaskedLM(text_config()).save_pretrained(folder)
    filled = pipeline("fill-mask", model=str(folder))("the cat [MASK] on the mat")
    assert len(filled) == 5 and all("sequence" in r for r in filled)
    features = pipeline("feature-extraction", model=str(folder))("the cat sat")
    assert torch.tensor(features).shape[-1] == 32
    LionForSequenceClassification(text_config(num_labels=2, id2label={0: "neg", 1: "pos"},
                                              label2id={"neg": 0, "pos": 1})).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    classified = pipeline("text-classification", model=str(folder))("a dog ran")
    assert classified[0]["label"] in {"neg", "pos"}


def test_presets_and_config_validation():
    names = list_presets()
    assert "lion-s-natural-base-patch16-224" in names and "lion-d-large-mlm" in names
    base = LionConfig.from_preset("lion-d-natural-small-patch16-224")
    assert (base.hidden_size, base.num_attention_heads, base.patch_order) == (384, 6, "s")
    mlm = LionConfig.from_preset("lion-lit-large-mlm")
    assert mlm.use_position_embeddings and mlm.attention_output_norm and mlm.layer_norm_position == "post"
    assert not LionConfig.from_preset("lion-s-base-mlm").use_position_embeddings
    vision_default = LionConfig()
    assert (vision_default.mask_type, vision_default.pooling, vision_default.use_position_embeddings) == \
        ("decay", "mean", False)
    for field, value, allowed in [("mask_type", "gated", "'lit', 'decay', 'selective'"),
                                  ("attention_form", "flash", "'auto', 'attention'"),
                                  ("patch_order", "zigzag", "'normal', 's'"),
                                  ("modality", "audio", "'vision', 'text'")]:
        with pytest.raises(ValueError, match=f"LionConfig.{field} must be one of .*{allowed}"):
            LionConfig(**{field: value})
    with pytest.raises(ValueError, match="LionConfig.chunk_size must be a positive int"):
        LionConfig(chunk_size="64")
    with pytest.raises(ValueError, match="LionConfig.hidden_size must be a positive int"):
        LionConfig(hidden_size=7.5)
    with pytest.raises(ValueError, match="unknown LION preset"):
        LionConfig.from_preset("lion-xl")
    with pytest.raises(ValueError, match="modality='vision'"):
        LionConfig(modality="text", patch_order="s")
    with pytest.raises(ValueError, match="attention form must be one of"):
        LionForMaskedLM(text_config()).set_attention_form("fast")
    with pytest.raises(ValueError, match="attention backend must be one of"):
        LionForMaskedLM(text_config()).set_attention_form("chunk", backend="cuda")
    with pytest.raises(ValueError, match="LionConfig.attention_backend must be one of"):
        LionConfig(attention_backend="cuda")


def test_bad_inputs_raise_clear_errors():
    vision = LionForImageClassification(vision_config())
    with pytest.raises(ValueError, match="3 channels|1 channels"):
        vision(pixel_values=torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="not divisible by the patch size 8"):
        vision(pixel_values=torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="pixel_values"):
        vision(pixel_values=None)
    with pytest.raises(ValueError, match="modality='text'"):
        LionForMaskedLM(vision_config())
    text = LionForMaskedLM(text_config("lit"))
    with pytest.raises(ValueError, match="exceeds the position table"):
        text(input_ids=torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 40\)"):
        text(input_ids=torch.tensor([[1, 40]]))
    with pytest.raises(ValueError, match="input_ids or inputs_embeds"):
        text(input_ids=None)
    with pytest.raises(ValueError, match="vision LION model"):
        LionModel(vision_config())(input_ids=torch.zeros(1, 3, dtype=torch.long))
    # Without a position table, LION-D/S text models take any length.
    long = LionForMaskedLM(text_config("decay"))(input_ids=torch.zeros(1, 100, dtype=torch.long))
    assert long.logits.shape == (1, 100, 40)


@pytest.mark.parametrize("seed", [0, 1])
def test_default_segment_equals_explicit_zero_segments(seed):
    # without token_type_ids the text embeddings add segment 0's row: same logits and gradients as zeros passed in
    torch.manual_seed(seed)
    model = LionForMaskedLM(text_config("selective", type_vocab_size=2))
    model.lion.embeddings.token_type_embeddings.weight.data.normal_()
    ids = torch.randint(0, 40, (2, 7))
    results = []
    for segments in (None, torch.zeros_like(ids)):
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, token_type_ids=segments)
        out.logits.square().mean().backward()
        results.append((out.logits.detach(), model.lion.embeddings.token_type_embeddings.weight.grad.clone(),
                        model.lion.embeddings.word_embeddings.weight.grad.clone()))
    for default, explicit in zip(*results):
        torch.testing.assert_close(default, explicit, rtol=1e-5, atol=1e-6)
    assert results[0][1][0].abs().sum() > 0 and results[0][1][1].abs().sum() == 0


def test_token_ids_on_cpu_are_checked_on_every_call():
    text = LionForMaskedLM(text_config("lit"))
    for _ in range(10):  # the accelerator-only limit on checked calls does not apply to CPU tensors
        text(input_ids=torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 40\)"):
        text(input_ids=torch.tensor([[1, 40]]))


@pytest.mark.parametrize("kind", ["dropout", "drop_path"])
def test_identity_dropouts_are_not_called_and_the_others_are(monkeypatch, kind):
    # a dropout that returns its input (rate 0, eval mode) is skipped (host time per call); a real rate, a hook or a
    # subclass still runs the module
    from torch import nn

    from lion_hf.modeling.modeling_lion import LionDropPath, _dropout

    cls = nn.Dropout if kind == "dropout" else LionDropPath
    calls = []
    original = cls.forward
    monkeypatch.setattr(cls, "forward", lambda self, x: calls.append(1) or original(self, x))
    x = torch.randn(64, 32)
    assert _dropout(cls(0.0).train(), x) is x and _dropout(cls(0.5).eval(), x) is x and not calls
    torch.manual_seed(0)
    dropped = _dropout(cls(0.5).train(), x)
    assert len(calls) == 1 and (dropped == 0).any() and not torch.equal(dropped, x)
    hooked = cls(0.0).train()
    seen = []
    hooked.register_forward_hook(lambda module, inputs, output: seen.append(1))
    _dropout(hooked, x)
    assert seen == [1] and len(calls) == 2

    class Custom(cls):
        pass

    _dropout(Custom(0.0).train(), x)
    assert len(calls) == 3
