"""Bidirectional LightNet (``attention_type="lightnet"``): the operator, the mixer and the models against float64
references written from the formulas (the additive recurrence), on the PyTorch and the Triton backends.

fp32 tolerance: 1e-5 relative to the largest reference value (the LION kernels' own budget is 2e-5).
"""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForImageClassification, AutoModelForMaskedLM

from lion_hf import (
    LionConfig,
    LionConfigError,
    LionForImageClassification,
    LionForMaskedLM,
    LionForSequenceClassification,
    LionForTokenClassification,
    LionModel,
    list_presets,
)
from lion_hf.kernels.lightnet import lightnet_fused_attention, softmax_over_positions
from lion_hf.kernels.lightnet_naive import naive_lightnet_attention, naive_lightnet_mixer_of
from lion_hf.kernels.triton.utils import triton_available
from lion_hf.modeling.lightnet import LightNetAttention
from tests.child_python import HIDE_LION_HF, run_without_lion_hf

FORMS = ["attention", "chunk", "recurrent"]
needs_triton = pytest.mark.skipif(not triton_available(), reason="triton is not installed")


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


def random_qkv(batch, length, heads, dim, *, view=False):
    """``[B, L, 3, H, D]`` raw q, k, v; ``view=True`` gives a non-contiguous view (every other token of a longer
    buffer, as a strided slice would)."""
    if view:
        base = torch.randn(batch, 2 * length, 3, heads, dim)
        return base[:, ::2]
    return torch.randn(batch, length, 3, heads, dim)


def padding_mask(batch, length, lengths):
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for b, n in enumerate(lengths):
        mask[b, :n] = True
    return mask


def reference(qkv, mask=None):
    q, k, v = qkv.unbind(2)
    batch, length, heads, dim = q.shape
    return naive_lightnet_attention(q, k, v, mask).reshape(batch, length, heads * dim)


def check_values_and_grads(backend, form, qkv, mask, chunk_size=None, tol=1e-5):
    leaf = qkv.detach().clone().requires_grad_(True)
    out = lightnet_fused_attention(leaf, form=form, chunk_size=chunk_size, key_padding_mask=mask, backend=backend)
    leaf64 = qkv.detach().double().requires_grad_(True)
    expected = reference(leaf64, mask)
    assert out.dtype == qkv.dtype and out.shape == expected.shape
    assert rel_err(out, expected) < tol
    weight = torch.randn_like(expected)
    (out.double() * weight).sum().backward()
    (expected * weight).sum().backward()
    assert torch.isfinite(leaf.grad).all()
    assert rel_err(leaf.grad, leaf64.grad) < tol


# --------------------------------------------------------------------------------------------------
# The operator
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("shape, lengths, view", [((2, 7, 2, 8), None, False), ((3, 13, 3, 16), (13, 5, 1), True),
                                                  ((1, 1, 1, 4), None, False), ((2, 33, 2, 8), (20, 33), False)])
def test_torch_operator_matches_the_additive_recurrence(form, shape, lengths, view, seed):
    batch, length, heads, dim = shape
    qkv = random_qkv(batch, length, heads, dim, view=view)
    mask = None if lengths is None else padding_mask(batch, length, lengths)
    check_values_and_grads("torch", form, qkv, mask, chunk_size=4)


@needs_triton
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("grad", [True, False])
def test_triton_operator_matches_the_additive_recurrence(form, grad, seed):
    """Triton (interpreter on CPU): the attention kernels, LIT's global-state kernels (chunk form; recurrent with
    gradients) and the recurrent inference kernel (recurrent without gradients)."""
    batch, length, heads, dim = 2, 19, 2, 32
    qkv = random_qkv(batch, length, heads, dim, view=True)
    mask = padding_mask(batch, length, (19, 11))
    if grad:
        check_values_and_grads("triton", form, qkv, mask)
    else:
        with torch.no_grad():
            out = lightnet_fused_attention(qkv, form=form, key_padding_mask=mask, backend="triton")
        assert rel_err(out, reference(qkv.double(), mask)) < 1e-5


def test_softmax_over_positions_excludes_padding_exactly(seed):
    k = torch.randn(3, 6, 2, 4) * 5
    mask = padding_mask(3, 6, (6, 2, 0))
    k[1, 2:] = float("nan")  # whatever a padded position holds stays out
    leaf = k.clone().requires_grad_(True)
    weights = softmax_over_positions(leaf, mask)
    assert torch.equal(weights[1, 2:], torch.zeros_like(weights[1, 2:]))
    assert torch.equal(weights[2], torch.zeros_like(weights[2]))  # no real token: zeros, not NaN
    sums = weights.sum(dim=1)
    torch.testing.assert_close(sums[:2], torch.ones_like(sums[:2]))
    expected = torch.softmax(k[1, :2].double(), dim=0)
    torch.testing.assert_close(weights[1, :2].double(), expected)
    (weights * torch.randn_like(weights)).sum().backward()
    assert torch.isfinite(leaf.grad).all() and not leaf.grad[1, 2:].any() and not leaf.grad[2].any()


def test_all_padding_sequence_gives_zeros_and_finite_gradients(seed):
    qkv = random_qkv(2, 5, 2, 8)
    mask = padding_mask(2, 5, (5, 0))
    for form in FORMS:
        leaf = qkv.clone().requires_grad_(True)
        out = lightnet_fused_attention(leaf, form=form, key_padding_mask=mask, backend="torch")
        assert torch.equal(out[1], torch.zeros_like(out[1])), form
        out.sum().backward()
        assert torch.isfinite(leaf.grad).all(), form


def test_padding_equals_the_unpadded_sequence(seed):
    qkv = random_qkv(1, 9, 2, 8)
    padded = torch.cat([qkv, torch.randn(1, 4, 3, 2, 8) * 100], dim=1)
    mask = padding_mask(1, 13, (9,))
    for form in FORMS:
        short = lightnet_fused_attention(qkv, form=form, backend="torch")
        long = lightnet_fused_attention(padded, form=form, key_padding_mask=mask, backend="torch")
        assert rel_err(long[:, :9], short) < 1e-6, form


def test_the_state_is_order_independent(seed):
    """Permuting the tokens permutes the outputs: one global state, no scan order (why patch_order='s' is refused)."""
    qkv = random_qkv(2, 11, 2, 8)
    perm = torch.randperm(11)
    out = lightnet_fused_attention(qkv, backend="torch")
    permuted = lightnet_fused_attention(qkv[:, perm], backend="torch")
    assert rel_err(permuted, out[:, perm]) < 1e-6


def test_empty_inputs(seed):
    for shape in ((0, 4, 3, 2, 8), (2, 0, 3, 2, 8)):
        qkv = torch.randn(shape, requires_grad=True)
        out = lightnet_fused_attention(qkv, backend="torch")
        assert out.shape == (shape[0], shape[1], 16)
        out.sum().backward()


# --------------------------------------------------------------------------------------------------
# The mixer
# --------------------------------------------------------------------------------------------------
def tiny_config(modality="vision", **overrides):
    fields = dict(modality=modality, attention_type="lightnet", hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=48, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0, attention_backend="torch", chunk_size=4)
    if modality == "vision":
        fields.update(image_size=32, patch_size=8, num_labels=3)
    else:
        fields.update(vocab_size=40, max_position_embeddings=64)
    return LionConfig(**{**fields, **overrides})


@pytest.mark.parametrize("activation, rank", [("sigmoid", None), ("silu", 5)])
@pytest.mark.parametrize("form", FORMS)
def test_mixer_matches_the_float64_reference(activation, rank, form, seed):
    config = tiny_config("text", lightnet_gate_activation=activation, lightnet_gate_rank=rank, attention_form=form)
    module = LightNetAttention(config)
    for parameter in module.parameters():  # away from the init (zero biases, unit norm weight)
        torch.nn.init.normal_(parameter, std=0.3)
    assert module.gate_down.out_features == (rank or config.num_attention_heads)
    hidden = torch.randn(3, 10, 32, requires_grad=True)
    mask = torch.tensor([[1] * 10, [1] * 6 + [0] * 4, [1] * 3 + [0] * 7])
    out, _ = module(hidden, mask)
    expected = naive_lightnet_mixer_of(module, hidden, mask)
    assert rel_err(out, expected) < 1e-5
    weight = torch.randn_like(expected)
    got = torch.autograd.grad((out.double() * weight).sum(), [hidden, *module.parameters()])
    want = torch.autograd.grad((expected * weight).sum(), [hidden, *module.parameters()])
    for name, a, b in zip(["hidden", *(n for n, _ in module.named_parameters())], got, want):
        assert rel_err(a, b) < 1e-5, name


@needs_triton
def test_triton_model_matches_torch_forward_and_backward(seed):
    """A whole LightNet ViT on the Triton kernels (interpreter) against the same weights on PyTorch."""
    config = tiny_config("vision", hidden_size=64, attention_backend="triton", attention_form="attention")
    model = LionForImageClassification(config).train()
    pixels = torch.randn(2, 3, 32, 32)
    results = {}
    for backend, form in (("torch", "attention"), ("triton", "attention"), ("triton", "chunk")):
        model.set_attention_form(form, backend=backend)
        model.zero_grad()
        logits = model(pixel_values=pixels).logits
        logits.square().sum().backward()
        results[backend, form] = (logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()})
    ref_logits, ref_grads = results["torch", "attention"]
    for key, (logits, grads) in results.items():
        assert rel_err(logits, ref_logits) < 2e-5, key
        for name, grad in grads.items():
            assert rel_err(grad, ref_grads[name]) < 2e-4, (key, name)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
def test_every_head_builds_and_the_forms_agree(seed):
    vision = LionForImageClassification(tiny_config("vision")).eval()
    assert all(isinstance(layer.attention, LightNetAttention) for layer in vision.lion.layers)
    pixels = torch.randn(2, 3, 32, 32)
    outs = []
    for form in FORMS:
        vision.set_attention_form(form, chunk_size=4)
        outs.append(vision(pixel_values=pixels).logits)
    assert all(rel_err(o, outs[0]) < 1e-5 for o in outs)
    ids = torch.randint(5, 40, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    for head in (LionModel, LionForMaskedLM, LionForSequenceClassification, LionForTokenClassification):
        model = head(tiny_config("text", num_labels=2)).eval()
        outs = []
        for form in FORMS:
            model.set_attention_form(form, chunk_size=4)
            out = model(input_ids=ids, attention_mask=mask)
            outs.append(out.last_hidden_state if head is LionModel else out.logits)
        assert all(rel_err(o, outs[0]) < 1e-5 for o in outs), head.__name__


def test_text_padding_equals_the_unpadded_sequence(seed):
    model = LionForMaskedLM(tiny_config("text")).eval()
    ids = torch.randint(5, 40, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(1, 7, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long)], dim=1)
    for form in FORMS:
        model.set_attention_form(form, chunk_size=4)
        short = model(input_ids=ids).logits
        long = model(input_ids=padded, attention_mask=mask).logits
        assert rel_err(long[:, :7], short) < 1e-5, form


def test_other_resolutions(seed):
    model = LionForImageClassification(tiny_config("vision")).eval()
    pixels = torch.randn(1, 3, 48, 40)
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(pixel_values=pixels)
    outs = []
    for form in FORMS:
        model.set_attention_form(form, chunk_size=4)
        outs.append(model(pixel_values=pixels, interpolate_pos_encoding=True).logits)
    assert outs[0].shape == (1, 3) and all(rel_err(o, outs[0]) < 1e-5 for o in outs)
    no_table = LionForImageClassification(tiny_config("vision", use_position_embeddings=False)).eval()
    assert no_table(pixel_values=pixels).logits.shape == (1, 3)  # any multiple of the patch size


def test_training_step_reduces_the_loss(seed):
    model = LionForImageClassification(tiny_config("vision")).train()
    pixels, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(pixel_values=pixels, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_save_load_and_auto_classes(tmp_path, seed):
    vision = LionForImageClassification(tiny_config("vision")).eval()
    vision.save_pretrained(tmp_path / "v")
    config = AutoConfig.from_pretrained(tmp_path / "v")
    assert config.attention_type == "lightnet" and config.mask_type == "lit"
    pixels = torch.randn(2, 3, 32, 32)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "v").eval()
    assert isinstance(loaded.lion.layers[0].attention, LightNetAttention)
    torch.testing.assert_close(loaded(pixel_values=pixels).logits, vision(pixel_values=pixels).logits,
                               rtol=0, atol=0)
    text = LionForMaskedLM(tiny_config("text")).eval()
    text.save_pretrained(tmp_path / "t")
    ids = torch.randint(5, 40, (2, 6))
    torch.testing.assert_close(AutoModelForMaskedLM.from_pretrained(tmp_path / "t").eval()(input_ids=ids).logits,
                               text(input_ids=ids).logits, rtol=0, atol=0)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "t"), LionModel)


def test_pipelines(tmp_path, seed):
    from PIL import Image
    from transformers import BertTokenizer, ViTImageProcessorPil, pipeline

    LionForImageClassification(tiny_config("vision", id2label={0: "a", 1: "b", 2: "c"},
                                           label2id={"a": 0, "b": 1, "c": 2})).save_pretrained(tmp_path / "v")
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "v")
    image = Image.fromarray((torch.rand(40, 40, 3) * 255).to(torch.uint8).numpy())
    result = pipeline("image-classification", model=str(tmp_path / "v"))(image, top_k=3)
    assert {r["label"] for r in result} == {"a", "b", "c"}
    folder = tmp_path / "t"
    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]
    (folder / "vocab.txt").write_text("\n".join(words + [f"tok{i}" for i in range(40 - len(words))]) + "\n")
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    LionForMaskedLM(tiny_config("text")).save_pretrained(folder)
    filled = pipeline("fill-mask", model=str(folder))("the cat [MASK] on the mat")
    assert len(filled) == 5 and all("sequence" in r for r in filled)


_REMOTE_SCRIPT = HIDE_LION_HF + r'''
import torch
from transformers import AutoModelForImageClassification, AutoModelForMaskedLM
args = json.loads(sys.argv[1])
vision = AutoModelForImageClassification.from_pretrained(args["vision"], trust_remote_code=True).eval()
text = AutoModelForMaskedLM.from_pretrained(args["text"], trust_remote_code=True).eval()
inputs = torch.load(args["inputs"])
out = {}
with torch.no_grad():
    for form in ("attention", "chunk", "recurrent"):
        vision.set_attention_form(form, chunk_size=4)
        text.set_attention_form(form, chunk_size=4)
        out["vision", form] = vision(pixel_values=inputs["pixels"]).logits
        out["text", form] = text(input_ids=inputs["ids"], attention_mask=inputs["mask"]).logits
torch.save(out, args["out"])
print(json.dumps({"lion_hf": "lion_hf" in sys.modules, "vision": type(vision).__module__,
                  "mixer": type(vision.lion.layers[0].attention).__name__}))
'''


def test_trust_remote_code_without_lion_hf(tmp_path, seed):
    """The saved folders carry the flat bundle, LightNet's modules included; a Python that cannot import lion_hf
    loads them with trust_remote_code=True and computes the same logits in every form."""
    vision = LionForImageClassification(tiny_config("vision")).eval()
    text = LionForMaskedLM(tiny_config("text")).eval()
    vision.save_pretrained(tmp_path / "v")
    text.save_pretrained(tmp_path / "t")
    files = {p.name for p in (tmp_path / "v").iterdir()}
    assert {"lightnet.py", "lion_kernels_lightnet.py"} <= files and "lion_kernels_lightnet_naive.py" not in files
    inputs = {"pixels": torch.randn(2, 3, 32, 32), "ids": torch.randint(5, 40, (2, 7)),
              "mask": torch.tensor([[1] * 7, [1] * 4 + [0] * 3])}
    torch.save(inputs, tmp_path / "inputs.pt")
    args = {"vision": str(tmp_path / "v"), "text": str(tmp_path / "t"), "inputs": str(tmp_path / "inputs.pt"),
            "out": str(tmp_path / "out.pt")}
    result = run_without_lion_hf(_REMOTE_SCRIPT, args, tmp_path)
    assert result == {"lion_hf": False, "vision": result["vision"], "mixer": "LightNetAttention"}
    assert result["vision"].startswith("transformers_modules.")
    remote = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        for form in FORMS:
            vision.set_attention_form(form, chunk_size=4)
            text.set_attention_form(form, chunk_size=4)
            torch.testing.assert_close(remote["vision", form], vision(pixel_values=inputs["pixels"]).logits)
            torch.testing.assert_close(remote["text", form],
                                       text(input_ids=inputs["ids"], attention_mask=inputs["mask"]).logits)


# --------------------------------------------------------------------------------------------------
# Config and presets
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, message", [
    ("mask_type", "decay", "no decay"), ("mask_type", "selective", "no decay"),
    ("patch_order", "s", "does not depend on the scan order"), ("feature_map", "silu_l2", "feature_map"),
    ("normalize_attention", True, "normalize_attention"), ("attention_output_norm", True, "attention_output_norm"),
    ("attention_eps", 1e-6, "no denominator"), ("lightnet_gate_rank", 0, "lightnet_gate_rank"),
    ("lightnet_gate_rank", 2.5, "lightnet_gate_rank"), ("lightnet_gate_activation", "tanh", "lightnet_gate_activation"),
    ("attention_type", "lightnett", "did you mean 'lightnet'"),
])
def test_options_without_meaning_for_lightnet_raise(field, value, message):
    with pytest.raises(LionConfigError, match=message):
        tiny_config("vision", **{field: value})
    config = tiny_config("vision")
    setattr(config, field, value)  # changed after construction: refused when a model is built
    with pytest.raises(LionConfigError, match=message):
        LionForImageClassification(config)


def test_defaults_and_lion_unchanged():
    lightnet = LionConfig(attention_type="lightnet")
    assert (lightnet.mask_type, lightnet.feature_map, lightnet.normalize_attention, lightnet.attention_eps,
            lightnet.use_position_embeddings) == ("lit", "identity", False, 0.0, True)
    lion = LionConfig()
    assert (lion.attention_type, lion.mask_type, lion.feature_map, lion.normalize_attention) == \
        ("lion", "decay", "silu_l2", True)
    assert LionConfig(modality="text").mask_type == "decay"
    assert LionConfig.from_dict({"model_type": "lion", "mask_type": "lit"}).attention_type == "lion"  # old configs


def test_presets():
    names = [n for n in list_presets() if n.startswith("lightnet")]
    assert names == ["lightnet-base-mlm", "lightnet-base-patch16-224", "lightnet-small-patch16-224",
                     "lightnet-tiny-patch16-224"]
    sizes = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
    for size, (hidden, heads) in sizes.items():
        config = LionConfig.from_preset(f"lightnet-{size}-patch16-224")
        assert (config.attention_type, config.hidden_size, config.num_attention_heads, config.patch_size,
                config.image_size, config.num_labels) == ("lightnet", hidden, heads, 16, 224, 1000)
    mlm = LionConfig.from_preset("lightnet-base-mlm")
    assert (mlm.modality, mlm.attention_type, mlm.hidden_size, mlm.num_hidden_layers) == ("text", "lightnet", 768, 12)
    with torch.device("meta"):
        model = LionForImageClassification(LionConfig.from_preset("lightnet-tiny-patch16-224"))
    assert isinstance(model.lion.layers[0].attention, LightNetAttention)


def test_autocast_keeps_the_compute_dtype(seed):
    """Under autocast the mixer's output keeps the autocast dtype (the softmax and RMSNorm statistics run in fp32
    and are cast back), and is close to the fp32 result."""
    module = LightNetAttention(tiny_config("text")).eval()
    hidden = torch.randn(2, 8, 32)
    reference_out, _ = module(hidden)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = module(hidden)
        qkv = module.qkv(hidden).view(2, 8, 3, 2, 16)
        context = lightnet_fused_attention(qkv, backend="torch")
    assert out.dtype == torch.bfloat16 and context.dtype == torch.bfloat16
    assert rel_err(out.float(), reference_out) < 5e-2
