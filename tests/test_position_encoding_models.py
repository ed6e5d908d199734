"""MD-LRPE and MD-TPE (``LionConfig.position_encoding``) in LION and LightNet models, vision and text.

* Each layer (LION-LIT/D/S, D♮, LightNet; vision and text; every encoding) equals a float64 reference written from
  the formulas, values and gradients: feature maps and LightNet's softmax written out, rotations as explicit
  block-diagonal matrices and MD-TPE as an explicit ``L x L`` operator (the references of ``test_positional.py``),
  LION's mask from its definition (``naive_decay_mask``), the rule "rotated numerator / unrotated denominator".
* The Triton kernels (interpreter on CPU) agree with the PyTorch backend on whole models, forward and backward.
* Padded texts equal the unpadded ones; other resolutions run and the encodings follow the grid; save/load,
  meta-device initialisation, ``trust_remote_code`` without ``lion_hf``; config errors.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageClassification

from lion_hf import LionConfig, LionConfigError, LionForImageClassification, LionForMaskedLM, LionModel
from lion_hf.kernels.naive import naive_decay_mask
from lion_hf.kernels.triton.utils import triton_available
from lion_hf.modeling.modeling_lion import LionLayer
from lion_hf.modeling.scan_order import natural_scan_orders
from tests.test_positional import ref_coords, ref_rotate, ref_tpe
from tests.child_python import HIDE_LION_HF, run_without_lion_hf

F64 = torch.float64
ENCODINGS = ["md_lrpe", "md_tpe", "md_lrpe_tpe"]
needs_triton = pytest.mark.skipif(not triton_available(), reason="triton is not installed")


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-30))


def make_config(modality: str, variant: str, encoding: str, **overrides) -> LionConfig:
    """Tiny configs: head_dim 32 (a Triton head size); vision 16 px / patch 4 (a 4 x 4 grid + class token)."""
    fields = {"lit": {"mask_type": "lit"}, "d": {"mask_type": "decay"}, "s": {"mask_type": "selective"},
              "d-natural": {"mask_type": "decay", "patch_order": "s"},
              "s-natural": {"mask_type": "selective", "patch_order": "s"},
              "lightnet": {"attention_type": "lightnet"}}[variant]
    common = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 96,
              "position_encoding": encoding, "tpe_feature_dim": 8, "tpe_num_layers": 1,
              "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if modality == "vision":
        common.update(image_size=16, patch_size=4, num_labels=3)
    else:
        common.update(vocab_size=50)
    return LionConfig(modality=modality, **{**common, **fields, **overrides})


def randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Non-default weights everywhere (LayerNorms and decays included), so no test passes on an initialisation."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("theta"):
                p.mul_(torch.empty_like(p).uniform_(0.5, 2.0))
            elif "decay_logits" in name:
                p.copy_(torch.randn_like(p) + 1.0)
            else:
                p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.2) + (1.0 if "norm" in name and
                                                                              name.endswith("weight") else 0.0))
    return module


# --------------------------------------------------------------------------------------------------
# Float64 reference of one layer, from the formulas
# --------------------------------------------------------------------------------------------------
def ref_linear(layer, x):
    return x @ layer.weight.T + (0.0 if layer.bias is None else layer.bias)


def ref_layer_norm(layer, x):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + layer.eps) * layer.weight + layer.bias


def ref_feature_map(name, x):
    if name == "elu_plus_one":
        return torch.where(x > 0, x + 1, torch.exp(x))
    if name == "silu_l2":
        y = x * torch.sigmoid(x) + 0.5
        return y / torch.sqrt((y * y).sum(-1, keepdim=True))
    assert name == "identity"
    return x


def ref_positions(config, length, mask, grid):
    """[B or 1, L, m] coordinates: vision the raster grid after the class token (scaled to the training grid with
    interpolation); text the count of real tokens before each one (0 for padding), by an explicit loop."""
    if config.modality == "vision":
        coords = ref_coords(grid, 1)[None]
        if config.position_scaling == "interpolate":
            train = config.image_size // config.patch_size
            coords = coords * torch.tensor([train / n for n in grid], dtype=F64)
        return coords
    if mask is None:
        return torch.arange(length, dtype=F64)[None, :, None]
    rows = []
    for row in mask.tolist():
        count, positions = 0, []
        for real in row:
            positions.append(float(count) if real else 0.0)
            count += int(bool(real))
        rows.append(positions)
    return torch.tensor(rows, dtype=F64)[..., None]


def ref_rotary(attention, x, coords):
    if attention.rotary is None:
        return x
    theta = attention.rotary.theta
    num_special = 1 if attention.config.modality == "vision" else 0
    return ref_rotate(x, coords, attention.rotary.num_axes, attention.rotary.base, theta, num_special)


def ref_attention(attention, h, mask, grid, captured=None):
    """The mixer ``[B, L, W] -> [B, L, W]`` in float64 from the formulas (rotations of ``ref_rotate``).
    ``captured``: a dict that receives LION-S's gate input ``h`` and, in the backward, its logits' gradient."""
    config = attention.config
    batch, length, width = h.shape
    heads, dim = config.num_attention_heads, config.head_dim
    qkv = ref_linear(attention.qkv, h).reshape(batch, length, 3, heads, dim)
    q_raw, k_raw, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, L, H, D]
    keep = torch.ones(batch, length, dtype=F64) if mask is None else mask.to(F64)
    coords = ref_positions(config, length, mask, grid)
    if config.attention_type == "lightnet":
        q = q_raw * torch.sigmoid(q_raw)
        weights = torch.exp(k_raw - k_raw.max(dim=1, keepdim=True).values.detach()) * keep[:, :, None, None]
        k = weights / weights.sum(dim=1, keepdim=True)
        qr, kr = ref_rotary(attention, q, coords), ref_rotary(attention, k, coords)
        o = torch.einsum("bihd,bjhd,bj,bjhe->bihe", qr, kr, keep, v).reshape(batch, length, width)
        o = o / torch.sqrt((o * o).mean(-1, keepdim=True) + attention.norm.eps) * attention.norm.weight
        gate_pre = ref_linear(attention.gate_up, ref_linear(attention.gate_down, h))
        gate = torch.sigmoid(gate_pre) if config.lightnet_gate_activation == "sigmoid" else F.silu(gate_pre)
        return ref_linear(attention.out_proj, o * gate)
    q, k = ref_feature_map(config.feature_map, q_raw), ref_feature_map(config.feature_map, k_raw)
    qr, kr = ref_rotary(attention, q, coords), ref_rotary(attention, k, coords)
    orders = config.num_scan_orders
    # the models form log-decays in fp32 (whatever the weights' dtype): so does the reference, then float64
    if config.mask_type == "decay":
        log_decays = [F.logsigmoid(attention.decay_logits[o].float()).double() for o in range(orders)]
    elif config.mask_type == "selective":
        z = ref_linear(attention.gate, h).reshape(batch, length, orders, heads)
        if captured is not None and z.requires_grad:
            captured["gate_input"] = h
            z.register_hook(lambda grad: captured.__setitem__("gate_logits_grad", grad.reshape(batch, length, -1)))
        log_decays = [F.logsigmoid(-z[:, :, o].float()).double().transpose(1, 2) for o in range(orders)]  # [B, H, L]
        if config.modality == "vision":
            log_decays = [torch.cat([torch.zeros_like(a[..., :1]), a[..., 1:]], dim=-1) for a in log_decays]
    else:
        log_decays = [None]
    perms = [None] if orders == 1 else [perm for perm, _ in natural_scan_orders(*grid)]
    scale = dim ** -0.5
    num = den = 0.0
    for log_decay, perm in zip(log_decays, perms):
        if perm is None:
            m = naive_decay_mask(log_decay, batch, heads, length)
        else:  # the mask of the scan order, read back in token order: M[i, j] = M_perm[pos(i), pos(j)]
            a = log_decay if log_decay is None or log_decay.dim() == 1 else log_decay[..., perm]
            position = torch.argsort(perm)
            m = naive_decay_mask(a, batch, heads, length)[:, :, position][:, :, :, position]
        m = m * keep[:, None, None, :]
        num = num + torch.einsum("bihd,bjhd,bhij,bjhe->bihe", qr, kr, m, v)
        den = den + torch.einsum("bihd,bjhd,bhij->bih", q, k, m)
    if config.normalize_attention:
        out = num / (den + config.attention_eps * orders / scale)[..., None]
    else:
        out = scale * num
    out = out.reshape(batch, length, width)
    if attention.output_norm is not None:
        out = ref_layer_norm(attention.output_norm, out)
    return ref_linear(attention.out_proj, out)


def ref_layer(layer, x, mask, grid, captured=None):
    config = layer.attention.config
    special = 1 if config.modality == "vision" else 0
    tpe_grid = grid if config.modality == "vision" else (x.shape[1],)
    scales = None
    if config.position_scaling == "interpolate":
        scales = [config.image_size // config.patch_size / n for n in grid]

    def mixer_input(h):
        return h if layer.tpe is None else h + ref_tpe(layer.tpe, h, tpe_grid, special, mask, scales)

    def mlp(h):
        u = ref_linear(layer.mlp.fc1, h)
        return ref_linear(layer.mlp.fc2, 0.5 * u * (1 + torch.erf(u / math.sqrt(2))))

    if config.layer_norm_position == "pre":
        y = x + ref_attention(layer.attention, mixer_input(ref_layer_norm(layer.norm1, x)), mask, grid, captured)
        return y + mlp(ref_layer_norm(layer.norm2, y))
    y = ref_layer_norm(layer.norm1, x + ref_attention(layer.attention, mixer_input(x), mask, grid, captured))
    return ref_layer_norm(layer.norm2, y + mlp(y))


VISION_VARIANTS = ["lit", "d", "s", "d-natural", "s-natural", "lightnet"]
TEXT_VARIANTS = ["lit", "d", "s", "lightnet"]
LAYER_CASES = ([("vision", v, e) for v in VISION_VARIANTS for e in ENCODINGS]
               + [("text", v, e) for v in TEXT_VARIANTS for e in ENCODINGS])


@pytest.mark.parametrize("modality, variant, encoding", LAYER_CASES)
def test_layer_matches_float64_reference(modality, variant, encoding, seed):
    """The layer in float64 (PyTorch backend) against the reference: values and gradients (input and every
    parameter); vision on a non-square grid with the class token, text with left and right padding."""
    overrides = {"lrpe_learnable_theta": True} if variant in ("d", "lightnet") else {}
    if modality == "vision" and variant in ("s", "d-natural"):
        overrides["position_scaling"] = "interpolate"  # coordinates scaled to the 4 x 4 training grid
    config = make_config(modality, variant, encoding, attention_backend="torch", **overrides)
    layer = randomize(LionLayer(config)).double()
    if modality == "vision":
        grid, mask = (3, 5), None
        x = torch.randn(2, 1 + 15, 64, dtype=F64)
    else:
        grid = None
        mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3, [0] * 2 + [1] * 7])
        x = torch.randn(3, 9, 64, dtype=F64)
    x.requires_grad_(True)
    params = [x, *layer.parameters()]
    out = layer(x, mask, grid)
    captured = {}
    expected = ref_layer(layer, x, mask, grid, captured)
    assert rel_err(out, expected) < 1e-9
    weight = torch.randn_like(expected)
    got = torch.autograd.grad((out * weight).sum(), params, allow_unused=True)
    want = torch.autograd.grad((expected * weight).sum(), params, allow_unused=True)
    names = ["x", *(n for n, _ in layer.named_parameters())]
    assert any("tpe" in n for n in names) == ("tpe" in encoding)
    assert any("rotary.theta" in n for n in names) == ("lrpe" in encoding and "lrpe_learnable_theta" in overrides)
    # gradients that pass through the log-decays (formed in fp32, as the models do) carry fp32 rounding
    tol = 1e-8 if config.attention_type == "lightnet" or config.mask_type == "lit" else 1e-6
    for name, a, b in zip(names, got, want):
        if b is None:  # e.g. the class-token-free text path: the parameter does not enter
            assert a is None or not a.abs().max() > 0, name
            continue
        if name in ("attention.gate.bias", "attention.gate.weight"):
            # sums over every token of the logits' gradients, each rounded to fp32 on its way through the
            # log-decays: they cancel (a term of ~50 in a sum of ~1 is usual), so their error is bounded by the
            # terms' magnitudes, not by the sums
            logits_grad = captured["gate_logits_grad"].abs()
            if name.endswith("bias"):
                magnitude = logits_grad.sum(dim=(0, 1))
            else:
                magnitude = torch.einsum("blo,bli->oi", logits_grad, captured["gate_input"].detach().abs())
            assert ((a - b).abs() <= tol * magnitude).all(), (name, ((a - b).abs() / magnitude).max().item())
            continue
        assert rel_err(a, b) < (tol if config.mask_type == "selective" or "decay_logits" in name else 1e-8), name


def test_the_rule_matters_and_the_encodings_change_the_function(seed):
    """Guards against references that cannot fail: the rotated denominator, or no rotation at all, would differ."""
    config = make_config("vision", "d", "md_lrpe", attention_backend="torch")
    layer = randomize(LionLayer(config)).double()
    x = torch.randn(2, 17, 64, dtype=F64)
    out = layer(x, None, (4, 4))
    plain = LionLayer(make_config("vision", "d", "none")).double()
    plain.load_state_dict(layer.state_dict())
    assert rel_err(plain(x, None, (4, 4)), out) > 1e-4
    tpe = randomize(LionLayer(make_config("vision", "lightnet", "md_tpe"))).double()
    no_tpe = LionLayer(make_config("vision", "lightnet", "none")).double()
    no_tpe.load_state_dict({k: v for k, v in tpe.state_dict().items() if ".tpe." not in k and not k.startswith("tpe.")})
    assert rel_err(no_tpe(x, None, (4, 4)), tpe(x, None, (4, 4))) > 1e-4


# --------------------------------------------------------------------------------------------------
# Models: backends, zero angles, padding, resolutions
# --------------------------------------------------------------------------------------------------
@needs_triton
@pytest.mark.parametrize("modality, variant", [("vision", "lit"), ("vision", "d"), ("vision", "s"),
                                               ("vision", "d-natural"), ("vision", "lightnet"), ("text", "d"),
                                               ("text", "lightnet")])
def test_triton_matches_torch_forward_and_backward(modality, variant, seed, monkeypatch):
    from lion_hf.kernels import interface
    from lion_hf.kernels.triton import fused as triton_fused

    calls = []
    for module, name in ((interface, "_triton_call"), (triton_fused, "lion_layer")):
        def spy(*args, _original=getattr(module, name), **kwargs):
            calls.append(name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(module, name, spy)
    config = make_config(modality, variant, "md_lrpe_tpe", attention_form="attention")
    head = LionForImageClassification if modality == "vision" else LionForMaskedLM
    model = randomize(head(config)).train()
    if modality == "vision":
        inputs = {"pixel_values": torch.randn(2, 3, 16, 16)}
    else:
        inputs = {"input_ids": torch.randint(5, 50, (2, 9)), "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4])}
    runs = [("torch", "attention"), ("triton", "attention")] + ([("triton", "chunk")] if variant == "d" else [])
    results = {}
    for backend, form in [("float64", "attention"), *runs]:
        run_model = copy.deepcopy(model).double() if backend == "float64" else model
        run_model.set_attention_form(form, backend="torch" if backend == "float64" else backend)
        run_model.zero_grad()
        calls.clear()
        logits = run_model(**inputs).logits
        (logits.square().mean()).backward()
        assert bool(calls) == (backend == "triton"), (backend, calls)  # the kernels really ran (or not)
        results[backend, form] = (logits.detach(), {n: p.grad.clone() for n, p in run_model.named_parameters()
                                                    if p.grad is not None})
    exact_logits, exact_grads = results.pop(("float64", "attention"))
    fp32_grads = results["torch", "attention"][1]
    for key, (logits, grads) in results.items():
        assert rel_err(logits, exact_logits) < 2e-5, key
        assert grads.keys() == exact_grads.keys()
        for name, grad in grads.items():
            # against float64; a gradient whose terms cancel (LION-D's decay logits: a sum over every token pair)
            # may be off by up to a few times the fp32 torch path's own rounding
            error = (grad.double() - exact_grads[name]).abs().max().item()
            allowed = max(2e-4 * exact_grads[name].abs().max().item(),
                          4 * (fp32_grads[name].double() - exact_grads[name]).abs().max().item())
            assert error <= allowed, (key, name, error, allowed)


@pytest.mark.parametrize("variant", ["d", "d-natural"])
def test_zero_angles_give_the_unencoded_model_dropout_included(variant, seed):
    """With learned frequencies set to 0 the rotation is the identity: the MD-LRPE path (split q/k/v, parts with
    an unrotated denominator, the ♮ orders summed) equals the fused path, in training with attention dropout
    (on the numerator's scores only, as the operator does)."""
    config = make_config("vision", variant, "md_lrpe", lrpe_learnable_theta=True, attention_probs_dropout_prob=0.3,
                         attention_backend="torch", attention_form="attention")
    model = randomize(LionForImageClassification(config)).train()
    with torch.no_grad():
        for layer in model.lion.layers:
            layer.attention.rotary.theta.zero_()
    plain = LionForImageClassification(make_config("vision", variant, "none", attention_probs_dropout_prob=0.3,
                                                   attention_backend="torch", attention_form="attention")).train()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "rotary" not in k})
    pixels = torch.randn(2, 3, 16, 16)
    torch.manual_seed(seed)
    encoded = model(pixel_values=pixels).logits
    torch.manual_seed(seed)
    expected = plain(pixel_values=pixels).logits
    torch.manual_seed(seed + 1)
    other_draw = plain(pixel_values=pixels).logits
    assert rel_err(encoded, expected) < 1e-5
    assert rel_err(other_draw, expected) > 1e-4  # the dropout is really on


@pytest.mark.parametrize("variant", TEXT_VARIANTS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_text_padding_equals_the_unpadded_sequence(variant, encoding, seed):
    # float64: the padded and short sequences take differently ordered sums (MD-TPE's Toeplitz products over
    # other lengths), whose fp32 rounding reached 2e-5 of the logits
    model = randomize(LionForMaskedLM(make_config("text", variant, encoding))).double().eval()
    assert model.config.use_position_embeddings is False
    ids = torch.randint(5, 50, (1, 7))
    pad = torch.zeros(1, 4, dtype=torch.long)
    short = model(input_ids=ids).logits
    right = model(input_ids=torch.cat([ids, pad], 1), attention_mask=torch.tensor([[1] * 7 + [0] * 4])).logits
    left = model(input_ids=torch.cat([pad, ids], 1), attention_mask=torch.tensor([[0] * 4 + [1] * 7])).logits
    assert rel_err(right[:, :7], short) < 1e-10
    assert rel_err(left[:, 4:], short) < 1e-10
    shifted = model(input_ids=torch.cat([pad, ids], 1)).logits  # unmasked: the positions really move
    assert rel_err(shifted[:, 4:], short) > 1e-4


@pytest.mark.parametrize("variant", ["lit", "d-natural", "s", "lightnet"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_other_resolutions_follow_the_grid(variant, encoding, seed):
    """A model built at 16 px (4 x 4 patches) runs at 24 and 32 px and non-square sizes without a flag; its layer
    at a 6 x 5 grid is the float64 reference at that grid (the angles and Toeplitz offsets of the new grid)."""
    model = randomize(LionForImageClassification(make_config("vision", variant, encoding))).eval()
    for size in ((24, 24), (32, 32), (24, 20)):
        logits = model(pixel_values=torch.randn(2, 3, *size)).logits
        assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    layer = model.lion.layers[0].double()
    x = torch.randn(1, 31, 64, dtype=F64)
    assert rel_err(layer(x, None, (6, 5)), ref_layer(layer, x, None, (6, 5))) < 1e-9
    with pytest.raises(ValueError, match="grid"):
        layer(x, None, (5, 5))  # the grid must describe the tokens


@pytest.mark.parametrize("variant", ["d", "lightnet"])
def test_interpolation_is_identity_at_the_training_size(variant, seed):
    """``position_scaling='interpolate'`` scales coordinates by training / current grid: the same function as
    integer coordinates at the training size, a different one at 224 -> 384 and 512 px (patch 32: fast)."""
    sizes = {"image_size": 224, "patch_size": 32, "num_hidden_layers": 1}
    scaled = randomize(LionForImageClassification(make_config("vision", variant, "md_lrpe_tpe",
                                                              position_scaling="interpolate", **sizes))).eval()
    integer = LionForImageClassification(make_config("vision", variant, "md_lrpe_tpe", **sizes)).eval()
    integer.load_state_dict(scaled.state_dict())
    pixels = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(scaled(pixel_values=pixels).logits, integer(pixel_values=pixels).logits)
    for size in (384, 512):
        pixels = torch.randn(1, 3, size, size)
        a, b = scaled(pixel_values=pixels).logits, integer(pixel_values=pixels).logits
        assert torch.isfinite(a).all() and rel_err(a, b) > 1e-5, size


# --------------------------------------------------------------------------------------------------
# Save / load, initialisation, remote code
# --------------------------------------------------------------------------------------------------
def test_save_load_round_trip_and_meta_initialisation(tmp_path, seed):
    config = make_config("vision", "d", "md_lrpe_tpe", lrpe_learnable_theta=True, position_scaling="interpolate")
    model = randomize(LionForImageClassification(config)).eval()
    keys = set(model.state_dict())
    assert {"lion.layers.0.tpe.decay_logits", "lion.layers.1.attention.rotary.theta"} <= keys
    model.save_pretrained(tmp_path / "m")
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / "m").eval()
    assert (loaded.config.position_encoding, loaded.config.position_scaling, loaded.config.lrpe_learnable_theta) == \
        ("md_lrpe_tpe", "interpolate", True)
    pixels = torch.randn(2, 3, 24, 24)
    torch.testing.assert_close(loaded(pixel_values=pixels).logits, model(pixel_values=pixels).logits, rtol=0, atol=0)
    # a checkpoint without the encodings' decay logits and frequencies: _init_weights gives their initial values
    weights = load_file(tmp_path / "m" / "model.safetensors")
    dropped = {k: v for k, v in weights.items() if not k.endswith(("tpe.decay_logits", "rotary.theta"))}
    assert len(dropped) < len(weights)
    save_file(dropped, tmp_path / "m" / "model.safetensors", metadata={"format": "pt"})
    partial = LionForImageClassification.from_pretrained(tmp_path / "m")
    for layer in partial.lion.layers:
        torch.testing.assert_close(layer.attention.rotary.theta, layer.attention.rotary.initial_theta())
        torch.testing.assert_close(layer.tpe.decay_logits, torch.full((2, 64), math.log(0.99 / 0.01)))
    fresh = LionForImageClassification(config)
    torch.testing.assert_close(fresh.lion.layers[0].attention.rotary.theta,
                               fresh.lion.layers[0].attention.rotary.initial_theta())
    torch.testing.assert_close(fresh.lion.layers[0].tpe.decay_logits, torch.full((2, 64), math.log(0.99 / 0.01)))


def test_without_an_encoding_nothing_changes(seed):
    """``position_encoding='none'`` (the default) builds no new module or parameter and keeps the fused path."""
    for variant in ("d", "lightnet"):
        for modality in ("vision", "text"):
            config = make_config(modality, variant, "none")
            model = LionModel(config)
            assert all(layer.tpe is None and layer.attention.rotary is None for layer in model.layers)
            assert not any("tpe" in k or "rotary" in k for k in model.state_dict())
    assert LionConfig().position_encoding == "none"
    assert LionConfig(attention_type="lightnet").use_position_embeddings is True
    assert LionConfig(attention_type="lightnet", position_encoding="md_lrpe_tpe").use_position_embeddings is False
    assert LionConfig(modality="text", mask_type="lit", position_encoding="md_tpe").use_position_embeddings is False
    assert LionConfig(attention_type="lightnet", position_encoding="md_tpe",
                      use_position_embeddings=True).use_position_embeddings is True


_REMOTE_SCRIPT = HIDE_LION_HF + r'''
import torch
from transformers import AutoModelForImageClassification, AutoModelForMaskedLM
args = json.loads(sys.argv[1])
vision = AutoModelForImageClassification.from_pretrained(args["vision"], trust_remote_code=True).eval()
text = AutoModelForMaskedLM.from_pretrained(args["text"], trust_remote_code=True).eval()
inputs = torch.load(args["inputs"])
with torch.no_grad():
    out = {"vision": vision(pixel_values=inputs["pixels"]).logits,
           "vision_24": vision(pixel_values=inputs["pixels_24"]).logits,
           "text": text(input_ids=inputs["ids"], attention_mask=inputs["mask"]).logits}
torch.save(out, args["out"])
print(json.dumps({"lion_hf": "lion_hf" in sys.modules, "module": type(vision).__module__,
                  "tpe": type(vision.lion.layers[0].tpe).__name__,
                  "rotary": type(text.lion.layers[0].attention.rotary).__name__}))
'''


def test_trust_remote_code_without_lion_hf(tmp_path, seed):
    vision = randomize(LionForImageClassification(make_config("vision", "s-natural", "md_lrpe_tpe",
                                                              lrpe_learnable_theta=True))).eval()
    text = randomize(LionForMaskedLM(make_config("text", "lightnet", "md_lrpe_tpe"))).eval()
    vision.save_pretrained(tmp_path / "v")
    text.save_pretrained(tmp_path / "t")
    assert "positional.py" in {p.name for p in (tmp_path / "v").iterdir()}
    inputs = {"pixels": torch.randn(2, 3, 16, 16), "pixels_24": torch.randn(1, 3, 24, 24),
              "ids": torch.randint(5, 50, (2, 7)), "mask": torch.tensor([[1] * 7, [1] * 4 + [0] * 3])}
    torch.save(inputs, tmp_path / "inputs.pt")
    args = {"vision": str(tmp_path / "v"), "text": str(tmp_path / "t"), "inputs": str(tmp_path / "inputs.pt"),
            "out": str(tmp_path / "out.pt")}
    result = run_without_lion_hf(_REMOTE_SCRIPT, args, tmp_path)
    assert result["lion_hf"] is False and result["module"].startswith("transformers_modules.")
    assert (result["tpe"], result["rotary"]) == ("MultiDimToeplitzMixer", "MultiDimRotaryEncoding")
    remote = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        torch.testing.assert_close(remote["vision"], vision(pixel_values=inputs["pixels"]).logits)
        torch.testing.assert_close(remote["vision_24"], vision(pixel_values=inputs["pixels_24"]).logits)
        torch.testing.assert_close(remote["text"], text(input_ids=inputs["ids"], attention_mask=inputs["mask"]).logits)


# --------------------------------------------------------------------------------------------------
# Config errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("modality, fields, message", [
    ("text", {"position_encoding": "md_tpe", "position_scaling": "interpolate"}, "position_scaling='none' for modality='text'"),
    ("vision", {"position_scaling": "interpolate"}, "no effect without a positional encoding"),
    ("vision", {"position_encoding": "md_lrep"}, "did you mean 'md_lrpe'"),
    ("vision", {"position_encoding": "md_lrpe", "position_scaling": "bilinear"}, "position_scaling must be one of"),
    ("vision", {"position_encoding": "md_lrpe", "hidden_size": 8, "num_attention_heads": 4}, "position_encoding='md_tpe'"),
    ("text", {"position_encoding": "md_lrpe_tpe", "hidden_size": 8, "num_attention_heads": 8}, "head_dim >= 2"),
    ("vision", {"tpe_feature_dim": 7}, "tpe_feature_dim must be an even int"),
    ("vision", {"tpe_num_layers": -1}, "tpe_num_layers must be an int >= 0"),
    ("vision", {"tpe_decay_init": 1.0}, "tpe_decay_init must lie in"),
    ("vision", {"lrpe_base": 1}, "lrpe_base must be a finite number > 1"),
    ("vision", {"lrpe_learnable_theta": "yes"}, "lrpe_learnable_theta must be True or False"),
    ("vision", {"tpe_use_decay": 1}, "tpe_use_decay must be True or False"),
    ("vision", {"tpe_method": "conv"}, "tpe_method must be one of"),
])
def test_config_errors(modality, fields, message):
    base = {"hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 64}
    if modality == "vision":
        base.update(image_size=16, patch_size=4)
    with pytest.raises(LionConfigError, match=message):
        LionConfig(modality=modality, **{**base, **fields})
    config = LionConfig(modality=modality, **base)
    for name, value in fields.items():
        setattr(config, name, value)  # changed after construction: refused when a model is built
    with pytest.raises(LionConfigError, match=message):
        LionModel(config)
    for attention_type in ("lightnet",):
        with pytest.raises(LionConfigError, match=message):
            LionConfig(modality=modality, attention_type=attention_type, **{**base, **fields})
