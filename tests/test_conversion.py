"""Converted original checkpoints compute what the reference models compute (fp32, 1e-5 relative)."""

import re

import pytest
import torch

from lion_hf import LionForImageClassification, LionForMaskedLM
from lion_hf.cli import convert_main
from lion_hf.conversion import convert_original_mlm, convert_original_vision
from tests.reference_lion import reference_mlm_logits, reference_vision_logits

DIM, HEADS, DEPTH, CLASSES, PATCH, IMAGE = 24, 3, 2, 5, 4, 16


def original_vision_state_dict(mask_type, order, pos_emb, std=0.3):
    """A random state dict in the layout of ``models_lion.py`` (timm names)."""
    g = lambda *shape: torch.randn(*shape) * std  # noqa: E731
    tokens = (IMAGE // PATCH) ** 2 + 1
    sd = {"cls_token": g(1, 1, DIM), "patch_embed.proj.weight": g(DIM, 3, PATCH, PATCH),
          "patch_embed.proj.bias": g(DIM), "norm.weight": 1 + g(DIM), "norm.bias": g(DIM),
          "head.weight": g(CLASSES, DIM), "head.bias": g(CLASSES)}
    if pos_emb:
        sd["pos_embed"] = g(1, tokens, DIM)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        sd.update({p + "norm1.weight": 1 + g(DIM), p + "norm1.bias": g(DIM), p + "norm2.weight": 1 + g(DIM),
                   p + "norm2.bias": g(DIM), p + "attn.qkv.weight": g(3 * DIM, DIM), p + "attn.qkv.bias": g(3 * DIM),
                   p + "attn.proj.weight": g(DIM, DIM), p + "attn.proj.bias": g(DIM),
                   p + "mlp.fc1.weight": g(4 * DIM, DIM), p + "mlp.fc1.bias": g(4 * DIM),
                   p + "mlp.fc2.weight": g(DIM, 4 * DIM), p + "mlp.fc2.bias": g(DIM)})
        for name in (["a_i", "a2_i"] if order == "S" else ["a_i"]):
            if mask_type == "Decay":
                sd[p + f"attn.{name}"] = torch.randn(HEADS)
            elif mask_type == "Selective":
                sd[p + f"attn.{name}.weight"] = g(HEADS, DIM)
                sd[p + f"attn.{name}.bias"] = g(HEADS)
    return sd


VARIANTS = [("Lit", "Normal"), ("Decay", "Normal"), ("Decay", "S"), ("Selective", "Normal"), ("Selective", "S")]


@pytest.mark.parametrize("mask_type, order", VARIANTS)
@pytest.mark.parametrize("pos_emb, cls_tok", [(True, False), (False, True), (False, False)])
def test_vision_conversion_matches_reference_in_every_form(seed, mask_type, order, pos_emb, cls_tok):
    sd = original_vision_state_dict(mask_type, order, pos_emb)
    pixels = torch.randn(2, 3, IMAGE, IMAGE)
    kwargs = dict(num_heads=HEADS, mask_type=mask_type, order=order, pos_emb=pos_emb, cls_tok=cls_tok,
                  patch_size=PATCH)
    with torch.no_grad():
        expected = reference_vision_logits(sd, pixels, **kwargs)
        model = convert_original_vision({"model": sd}, img_size=IMAGE, **kwargs)
        for form in ("attention", "chunk", "recurrent"):
            model.set_attention_form(form, chunk_size=4)
            logits = model(pixel_values=pixels).logits
            err = ((logits - expected).abs().max() / expected.abs().max()).item()
            assert err <= 1e-5, f"{mask_type}/{order}/{form}: relative error {err:.2e} (seed {seed})"


def test_converted_selective_gate_trains(seed):
    """The reference detaches its LION-S gate; ours must receive gradients."""
    model = convert_original_vision(original_vision_state_dict("Selective", "S", False), num_heads=HEADS,
                                    mask_type="Selective", order="S", pos_emb=False, img_size=IMAGE, patch_size=PATCH)
    model.train()
    model(pixel_values=torch.randn(2, 3, IMAGE, IMAGE), labels=torch.tensor([0, 1])).loss.backward()
    for layer in model.lion.layers:
        assert layer.attention.gate.weight.grad is not None
        assert layer.attention.gate.weight.grad.abs().sum() > 0


def test_vision_conversion_rejects_mismatched_arguments():
    sd = original_vision_state_dict("Decay", "Normal", True)
    with pytest.raises(ValueError, match="mask_type must be one of"):
        convert_original_vision(sd, num_heads=HEADS, mask_type="decay", img_size=IMAGE, patch_size=PATCH)
    with pytest.raises(ValueError, match="pos_emb=False"):
        convert_original_vision(sd, num_heads=HEADS, mask_type="Decay", pos_emb=False, img_size=IMAGE, patch_size=PATCH)
    with pytest.raises(ValueError, match="patch_size"):
        convert_original_vision(sd, num_heads=HEADS, mask_type="Decay", img_size=IMAGE, patch_size=8)
    with pytest.raises(ValueError, match="has no 'blocks.0.attn.a2_i'"):
        convert_original_vision(sd, num_heads=HEADS, mask_type="Decay", order="S", img_size=IMAGE, patch_size=PATCH)


VOCAB, TEXT_DIM, TEXT_HEADS = 50, 32, 4


def original_mlm_state_dict(arch_type, std=0.3):
    g = lambda *shape: torch.randn(*shape) * std  # noqa: E731
    sd = {"bert.embeddings.word_embeddings.weight": g(VOCAB, TEXT_DIM),
          "bert.embeddings.token_type_embeddings.weight": g(2, TEXT_DIM),
          "bert.embeddings.LayerNorm.weight": 1 + g(TEXT_DIM), "bert.embeddings.LayerNorm.bias": g(TEXT_DIM),
          "cls.predictions.transform.dense.weight": g(TEXT_DIM, TEXT_DIM),
          "cls.predictions.transform.dense.bias": g(TEXT_DIM),
          "cls.predictions.transform.LayerNorm.weight": 1 + g(TEXT_DIM),
          "cls.predictions.transform.LayerNorm.bias": g(TEXT_DIM), "cls.predictions.bias": g(VOCAB)}
    if arch_type == "lion-lit":
        sd["bert.embeddings.position_embeddings.weight"] = g(64, TEXT_DIM)
    for i in range(2):
        p = f"bert.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            sd[p + f"attention.self.{n}.weight"] = g(TEXT_DIM, TEXT_DIM)
            sd[p + f"attention.self.{n}.bias"] = g(TEXT_DIM)
        for n, shape in (("attention.output.dense", (TEXT_DIM, TEXT_DIM)), ("intermediate.dense", (64, TEXT_DIM)),
                         ("output.dense", (TEXT_DIM, 64))):
            sd[p + n + ".weight"] = g(*shape)
            sd[p + n + ".bias"] = g(shape[0])
        for n in ("attention.output.LayerNorm", "output.LayerNorm") + (
                ("attention.self.layer_norm",) if arch_type == "lion-lit" else ()):
            sd[p + n + ".weight"] = 1 + g(TEXT_DIM)
            sd[p + n + ".bias"] = g(TEXT_DIM)
        if arch_type == "lion-d":
            sd[p + "attention.self.ai"] = torch.randn(TEXT_HEADS)
        if arch_type == "lion-s":
            sd[p + "attention.self.Wa_i.weight"] = g(TEXT_HEADS, TEXT_DIM)
            sd[p + "attention.self.Wa_i.bias"] = g(TEXT_HEADS)
    return sd


@pytest.mark.parametrize("arch_type", ["lion-lit", "lion-d", "lion-s"])
def test_mlm_conversion_matches_reference(seed, arch_type):
    sd = original_mlm_state_dict(arch_type)
    ids = torch.randint(0, VOCAB, (2, 13))
    mask = torch.ones(2, 13, dtype=torch.long)
    mask[1, 9:] = 0
    with torch.no_grad():
        expected = reference_mlm_logits(sd, ids, mask, num_heads=TEXT_HEADS, arch_type=arch_type)
        model = convert_original_mlm({"state": {"model": {"model." + k: v for k, v in sd.items()}}},
                                     num_heads=TEXT_HEADS, arch_type=arch_type)
        assert model.lm_head.decoder.weight.data_ptr() == model.lion.embeddings.word_embeddings.weight.data_ptr()
        for form in ("attention", "chunk", "recurrent"):
            model.set_attention_form(form, chunk_size=4)
            logits = model(input_ids=ids, attention_mask=mask).logits
            # Padded query positions are not defined by either model; compare real tokens.
            real = mask.bool()
            err = ((logits[real] - expected[real]).abs().max() / expected[real].abs().max()).item()
            assert err <= 1e-5, f"{arch_type}/{form}: relative error {err:.2e} (seed {seed})"


def test_convert_command_writes_loadable_folders(tmp_path):
    vision_ckpt, mlm_ckpt = tmp_path / "vision.pth", tmp_path / "mlm.pt"
    sd = original_vision_state_dict("Selective", "Normal", True)
    torch.save({"model": sd}, vision_ckpt)
    convert_main(["vision", str(vision_ckpt), str(tmp_path / "v"), "--num_heads", str(HEADS),
                  "--mask_type", "Selective", "--img_size", str(IMAGE), "--patch_size", str(PATCH)])
    loaded = LionForImageClassification.from_pretrained(tmp_path / "v").eval()
    pixels = torch.randn(1, 3, IMAGE, IMAGE)
    with torch.no_grad():
        expected = reference_vision_logits(sd, pixels, num_heads=HEADS, mask_type="Selective", patch_size=PATCH)
        assert torch.allclose(loaded(pixel_values=pixels).logits, expected, rtol=1e-5, atol=1e-5)
    assert (tmp_path / "v" / "preprocessor_config.json").exists()
    assert (tmp_path / "v" / "model.safetensors").exists()

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]))
    torch.save(original_mlm_state_dict("lion-d"), mlm_ckpt)
    convert_main(["mlm", str(mlm_ckpt), str(tmp_path / "t"), "--num_heads", str(TEXT_HEADS),
                  "--arch_type", "nova", "--tokenizer", str(vocab)])
    mlm = LionForMaskedLM.from_pretrained(tmp_path / "t")
    assert mlm.config.mask_type == "decay"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "t")
    assert tokenizer.mask_token == "[MASK]" and tokenizer.convert_tokens_to_ids("w3") == 8


# ---------------------------------------------------------------------------------------------------
# Reading checkpoint files safely (issue 14, items 1 and 21)
# ---------------------------------------------------------------------------------------------------
class _WritesAFile:
    """Unpickling this calls ``pathlib.Path.touch`` on a marker: the crafted-file case."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _vision_argv(checkpoint, output_dir, *extra):
    return ["vision", str(checkpoint), str(output_dir), "--num_heads", str(HEADS), "--mask_type", "Decay",
            "--img_size", str(IMAGE), "--patch_size", str(PATCH), *extra]


@pytest.mark.parametrize("legacy", [False, True])
def test_crafted_checkpoint_runs_no_code(tmp_path, capsys, legacy):
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "crafted.pth"
    torch.save({"model": original_vision_state_dict("Decay", "Normal", True), "payload": _WritesAFile(marker)},
               checkpoint, _use_new_zipfile_serialization=not legacy)
    assert convert_main(_vision_argv(checkpoint, tmp_path / "out")) == 2
    assert not marker.exists()
    err = capsys.readouterr().err
    assert err.startswith("lion-convert: error:") and "--allow-global" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_reference_training_checkpoint_with_namespace_loads(tmp_path):
    """DeiT's checkpoints hold the command line as an argparse.Namespace: on the allow-list."""
    import argparse

    from lion_hf.conversion import load_original_checkpoint

    sd = original_vision_state_dict("Decay", "Normal", True)
    checkpoint = tmp_path / "deit.pth"
    torch.save({"model": sd, "args": argparse.Namespace(lr=5e-4, model="lion"), "epoch": 299,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]}}, checkpoint)
    loaded = load_original_checkpoint(checkpoint)
    assert loaded["args"].lr == 5e-4 and torch.equal(loaded["model"]["cls_token"], sd["cls_token"])
    assert convert_main(_vision_argv(checkpoint, tmp_path / "out")) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_allow_global_lets_a_trusted_class_through(tmp_path, capsys):
    from fractions import Fraction

    checkpoint = tmp_path / "extra.pth"
    torch.save({"model": original_vision_state_dict("Decay", "Normal", True), "ratio": Fraction(1, 3)}, checkpoint)
    assert convert_main(_vision_argv(checkpoint, tmp_path / "refused")) == 2
    assert "fractions.Fraction" in capsys.readouterr().err
    assert convert_main(_vision_argv(checkpoint, tmp_path / "out", "--allow-global", "fractions.Fraction")) == 0
    assert convert_main(_vision_argv(checkpoint, tmp_path / "o2", "--allow-global", "nope.Nothing")) == 2
    assert "no importable object" in capsys.readouterr().err


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is not a file"),
    (lambda p: p.write_bytes(b"garbage, not a checkpoint"), "not a checkpoint written by torch.save"),
    (lambda p: p.write_bytes(b""), "not a readable PyTorch checkpoint"),
    (lambda p: torch.save([torch.ones(2)], p), "not a state dict"),
    (lambda p: torch.save({"epoch": 3}, p), "no tensors found"),
])
def test_bad_checkpoint_files_give_one_line_errors(tmp_path, capsys, make, message):
    checkpoint = tmp_path / "model.pth"
    make(checkpoint)
    assert convert_main(_vision_argv(checkpoint, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert err.startswith("lion-convert: error:") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_convert_refuses_a_non_empty_output_folder_and_a_missing_vocab(tmp_path, capsys):
    checkpoint = tmp_path / "v.pth"
    torch.save(original_vision_state_dict("Decay", "Normal", True), checkpoint)
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    assert convert_main(_vision_argv(checkpoint, out)) == 2
    assert "not empty" in capsys.readouterr().err and (out / "README.md").read_text() == "my notes"
    assert convert_main(_vision_argv(checkpoint, out, "--overwrite")) == 0
    mlm = tmp_path / "m.pt"
    torch.save(original_mlm_state_dict("lion-d"), mlm)
    assert convert_main(["mlm", str(mlm), str(tmp_path / "t"), "--num_heads", str(TEXT_HEADS), "--arch_type",
                         "lion-d", "--tokenizer", str(tmp_path / "missing-vocab.txt")]) == 2
    assert "no such vocabulary file" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_safetensors_checkpoints_convert(tmp_path):
    from safetensors.torch import save_file

    sd = original_vision_state_dict("Decay", "Normal", True)
    save_file({k: v.contiguous() for k, v in sd.items()}, tmp_path / "v.safetensors")
    assert convert_main(_vision_argv(tmp_path / "v.safetensors", tmp_path / "out")) == 0


def test_convert_flags_are_case_insensitive_and_validated(tmp_path, capsys):
    checkpoint = tmp_path / "v.pth"
    torch.save(original_vision_state_dict("Decay", "S", True), checkpoint)
    argv = ["vision", str(checkpoint), str(tmp_path / "out"), "--num_heads", str(HEADS), "--mask_type", "decay",
            "--order", "s", "--img_size", str(IMAGE), "--patch_size", str(PATCH)]
    assert convert_main(argv) == 0
    assert LionForImageClassification.from_pretrained(tmp_path / "out").config.patch_order == "s"
    for bad in (["--num_heads", "0"], ["--mask_type", "gated"]):
        with pytest.raises(SystemExit) as exit_info:
            convert_main(argv[:3] + [a for a in argv[3:]] + bad)
        assert exit_info.value.code == 2
    assert "must be a positive integer" in capsys.readouterr().err
    help_text = _help(["vision", "--help"])
    assert help_text.count("(default: 224)") == 1 and help_text.count("(default: Normal)") == 1


def _help(argv):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        convert_main(argv)
    return buffer.getvalue()


def _without(sd, *names):
    return {k: v for k, v in sd.items() if k not in names}


@pytest.mark.parametrize("kind, edit, message", [
    ("vision", lambda sd: _without(sd, "norm.weight"), "no tensor 'norm.weight'"),
    ("vision", lambda sd: _without(sd, "head.bias"), "no tensor 'head.bias'"),
    ("vision", lambda sd: _without(sd, "blocks.0.mlp.fc1.weight"), "no tensor 'blocks.0.mlp.fc1.weight'"),
    ("vision", lambda sd: {k: v for k, v in sd.items() if not k.startswith("blocks.")}, "no blocks.N layers"),
    ("vision", lambda sd: {**sd, "blocks.3.norm1.weight": sd["blocks.0.norm1.weight"]}, r"layer\(s\) \[2\] are missing"),
    ("vision", lambda sd: {**sd, "blocks.0.attn.a_i": torch.randn(7)}, "tensor shapes do not fit"),
    ("vision", lambda sd: {**sd, "blocks.0.attn.qkv.weight": torch.randn(5, 5)}, "tensor shapes do not fit"),
    ("vision", lambda sd: {**sd, "blocks.0.attn.a_i": torch.full((HEADS,), float("nan"))}, "NaN or infinite"),
    ("mlm", lambda sd: _without(sd, "bert.encoder.layer.0.attention.self.query.weight"), "no tensor"),
    ("mlm", lambda sd: _without(sd, "bert.embeddings.token_type_embeddings.weight"), "no tensor"),
    ("mlm", lambda sd: _without(sd, "bert.encoder.layer.1.attention.self.ai"), "no tensor"),
])
def test_damaged_state_dicts_give_one_line_errors(tmp_path, capsys, kind, edit, message):
    checkpoint = tmp_path / "damaged.pth"
    if kind == "vision":
        torch.save(edit(original_vision_state_dict("Decay", "Normal", True)), checkpoint)
        argv = _vision_argv(checkpoint, tmp_path / "out")
    else:
        torch.save(edit(original_mlm_state_dict("lion-d")), checkpoint)
        argv = ["mlm", str(checkpoint), str(tmp_path / "out"), "--num_heads", str(TEXT_HEADS), "--arch_type", "lion-d"]
    assert convert_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lion-convert: error:") and re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path, capsys):
    checkpoint = tmp_path / "m.pt"
    torch.save(original_mlm_state_dict("lion-d"), checkpoint)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB + 10)]))
    assert convert_main(["mlm", str(checkpoint), str(tmp_path / "t"), "--num_heads", str(TEXT_HEADS), "--arch_type",
                         "lion-d", "--tokenizer", str(vocab)]) == 2
    assert f"but the checkpoint's vocabulary has {VOCAB}" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_overwrite_never_writes_through_a_symlink(tmp_path, capsys):
    import os

    checkpoint = tmp_path / "v.pth"
    torch.save(original_vision_state_dict("Decay", "Normal", True), checkpoint)
    victim = tmp_path / "victim.json"
    victim.write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "config.json")
    assert convert_main(_vision_argv(checkpoint, out, "--overwrite")) == 2
    assert "symbolic links (config.json)" in capsys.readouterr().err and victim.read_text() == "{}"


def test_a_whole_pickled_model_is_refused_with_a_way_out(tmp_path, capsys):
    checkpoint = tmp_path / "whole.pth"
    torch.save(torch.nn.Linear(2, 2), checkpoint)
    assert convert_main(_vision_argv(checkpoint, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "torch.nn.modules.linear.Linear" in err and "obj.state_dict()" in err and err.count("\n") == 1
