"""Issue 14, item 16: every ``save_pretrained`` folder is self-contained (``auto_map`` + flat modeling code), so it
loads with ``trust_remote_code=True`` where ``lion_hf`` cannot be imported, and without that flag transformers'
standard "contains custom code" message is what the user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lion_hf import LionConfig, LionForImageClassification, LionForMaskedLM
from lion_hf.hub.bundle import AUTO_MAP, build_bundle, check_bundle

from .fake_hub import (
    TEXT_WORDS,
    VISION_LABELS,
    make_inputs,
    make_text_run,
    make_vision_run,
    reference_logits,
    run_load_script,
    subprocess_env,
)

#: Run in a child Python that cannot import lion_hf (a meta-path finder refuses it).
CHILD = r'''
import json, sys
import torch

args = json.loads(sys.argv[1])


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lion_hf":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, _Blocker())
try:
    import lion_hf  # noqa: F401
    result = {"lion_hf_importable": True}
except ImportError:
    result = {"lion_hf_importable": False}
from transformers import AutoConfig, AutoModelForImageClassification, AutoModelForMaskedLM

for auto, folder in ((AutoConfig, args["vision"]), (AutoModelForImageClassification, args["vision"])):
    try:
        auto.from_pretrained(folder)
        result["untrusted_" + auto.__name__] = "loaded"
    except ValueError as error:
        result["untrusted_" + auto.__name__] = str(error)
vision = AutoModelForImageClassification.from_pretrained(args["vision"], trust_remote_code=True).eval()
text = AutoModelForMaskedLM.from_pretrained(args["text"], trust_remote_code=True).eval()
result["vision_class"] = type(vision).__module__ + "." + type(vision).__name__
result["config_only_class"] = type(AutoConfig.from_pretrained(args["config_only"], trust_remote_code=True)).__name__
inputs = torch.load(args["inputs"])
with torch.no_grad():
    outputs = {"vision": vision(**inputs["vision"]).logits, "text": text(**inputs["text"]).logits}
    # a folder re-saved by the remote-code model is self-contained as well
    vision.save_pretrained(args["resaved"])
    again = AutoModelForImageClassification.from_pretrained(args["resaved"], trust_remote_code=True).eval()
    outputs["resaved"] = again(**inputs["vision"]).logits
result["resaved_auto_map"] = sorted(json.load(open(args["resaved"] + "/config.json"))["auto_map"])
torch.save(outputs, args["out"])
print("\nRESULT " + json.dumps(result))
'''


def tiny_vision() -> LionForImageClassification:
    config = LionConfig(mask_type="selective", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, image_size=16, patch_size=4, num_labels=3)
    return LionForImageClassification(config).eval()


def tiny_text() -> LionForMaskedLM:
    config = LionConfig(modality="text", mask_type="decay", hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, vocab_size=50, max_position_embeddings=16)
    return LionForMaskedLM(config).eval()


def test_saved_folder_has_auto_map_and_code(tmp_path):
    model = tiny_vision()
    model.config.auto_map = {"AutoModelForCausalLM": "other_module.OtherModel"}  # someone else's entry is kept
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["auto_map"] == {**AUTO_MAP, "AutoModelForCausalLM": "other_module.OtherModel"}
    assert set(build_bundle()) <= {path.name for path in tmp_path.glob("*.py")}
    assert check_bundle(tmp_path) == []
    # the model's own config is not left changed by the save
    assert model.config.auto_map == {"AutoModelForCausalLM": "other_module.OtherModel"}
    fresh = tiny_vision()
    fresh.save_pretrained(tmp_path / "fresh")
    assert "auto_map" not in fresh.config.__dict__


def test_saved_folders_load_without_lion_hf(tmp_path):
    torch.manual_seed(0)
    vision, text = tiny_vision(), tiny_text()
    vision.save_pretrained(tmp_path / "vision")
    text.save_pretrained(tmp_path / "text")
    text.config.save_pretrained(tmp_path / "config-only")
    inputs = {"vision": {"pixel_values": torch.randn(2, 3, 16, 16)},
              "text": {"input_ids": torch.randint(0, 50, (2, 7)), "attention_mask": torch.ones(2, 7, dtype=torch.long)}}
    inputs["text"]["attention_mask"][1, 5:] = 0
    torch.save(inputs, tmp_path / "inputs.pt")
    args = {"vision": str(tmp_path / "vision"), "text": str(tmp_path / "text"),
            "config_only": str(tmp_path / "config-only"), "resaved": str(tmp_path / "resaved"),
            "inputs": str(tmp_path / "inputs.pt"), "out": str(tmp_path / "out.pt")}
    (tmp_path / "child.py").write_text(CHILD)
    proc = subprocess.run([sys.executable, str(tmp_path / "child.py"), json.dumps(args)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env=subprocess_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["lion_hf_importable"] is False
    for key in ("untrusted_AutoConfig", "untrusted_AutoModelForImageClassification"):
        assert "contains custom code" in result[key] and "trust_remote_code=True" in result[key], result[key]
    assert result["vision_class"].startswith("transformers_modules.")
    assert result["vision_class"].endswith("modeling_lion.LionForImageClassification")
    assert result["config_only_class"] == "LionConfig"
    assert result["resaved_auto_map"] == sorted(AUTO_MAP)
    remote = torch.load(tmp_path / "out.pt")
    with torch.no_grad():
        assert torch.equal(remote["vision"], vision(**inputs["vision"]).logits)
        assert torch.equal(remote["text"], text(**inputs["text"]).logits)
        assert torch.equal(remote["resaved"], vision(**inputs["vision"]).logits)


def test_config_save_refuses_fields_broken_after_construction(tmp_path):
    config = tiny_vision().config
    config.mask_type = "selctive"
    with pytest.raises(ValueError, match="LionConfig.mask_type must be one of .*did you mean 'selective'"):
        config.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()


def test_package_loads_saved_folder_without_remote_code(tmp_path):
    """With lion_hf imported, a self-contained folder still loads through the registered classes."""
    from transformers import AutoModelForImageClassification

    tiny_vision().save_pretrained(tmp_path)
    assert type(AutoModelForImageClassification.from_pretrained(tmp_path)) is LionForImageClassification



def test_plain_saved_folders_serve_every_head_and_pipeline_without_lion_hf(tmp_path):
    """Folders written by model.save_pretrained plus a processor or tokenizer (no lion-publish): with lion_hf
    hidden, every Auto head resolves through auto_map and both pipelines run, with the package's logits."""
    vision = make_vision_run(tmp_path / "vision", with_metrics=False)
    text = make_text_run(tmp_path / "text", with_metrics=False)
    inputs = make_inputs(text, tmp_path / "inputs.pt")
    forms = ["attention", "chunk"]
    result, remote = run_load_script(Path(sys.executable), tmp_path, vision=str(vision), text=str(text),
                                     inputs_path=tmp_path / "inputs.pt", forms=forms, pipelines=True,
                                     block=("lion_hf",))
    assert result["lion_hf_importable"] is False
    assert result["vision_heads"]["AutoModel"] == "LionModel"
    assert result["text_heads"]["AutoModelForTokenClassification"] == "LionForTokenClassification"
    assert result["image_classification"][0]["label"] in VISION_LABELS
    assert result["fill_mask"][0]["token_str"] in (*TEXT_WORDS, "##s", ".", ",", "[UNK]", "[PAD]", "[CLS]", "[SEP]")
    local = reference_logits(vision, text, inputs, forms)
    for key, value in local.items():
        assert torch.equal(remote[key], value), key


def test_register_for_auto_class_does_not_break_saving(tmp_path):
    """transformers' custom-code hook would copy modeling_lion.py alone and crash on its package imports
    (FileNotFoundError for '.kernels.py'); the package classes need no registration."""
    model = tiny_vision()
    type(model).register_for_auto_class("AutoModelForImageClassification")
    LionConfig.register_for_auto_class()
    model.save_pretrained(tmp_path)
    assert check_bundle(tmp_path) == []
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == AUTO_MAP
    assert (tmp_path / "modeling_lion.py").read_text().startswith("# This file was generated by lion_hf.hub.bundle")


def test_saving_into_a_file_path_is_refused(tmp_path):
    target = tmp_path / "model.bin"
    target.write_text("not a folder")
    with pytest.raises(ValueError, match="is a file; save_pretrained writes a folder"):
        tiny_vision().config.save_pretrained(target)
    assert target.read_text() == "not a folder"


PUSH_CHILD = r'''
import sys
from pathlib import Path

from lion_hf import LionConfig, LionForImageClassification

config = LionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=16,
                    patch_size=4, num_labels=3)
model = LionForImageClassification(config)
tmp = Path(sys.argv[1])
model.push_to_hub("user/pushed", token="hf_test")
model.save_pretrained(tmp / "saved", push_to_hub=True, repo_id="user/saved", token="hf_test")
config.save_pretrained(tmp / "config", push_to_hub=True, repo_id="user/config", token="hf_test")
print("PUSHED")
'''


def test_pushed_repositories_are_self_contained(tmp_path):
    """push_to_hub (through a temporary folder), save_pretrained(push_to_hub=True) and the config's own push all
    upload the modeling code with the auto_map that names it."""
    from .fake_hub import serve_fake_hub

    (tmp_path / "push.py").write_text(PUSH_CHILD)
    with serve_fake_hub(max_lifetime=200) as hub:
        proc = subprocess.run([sys.executable, str(tmp_path / "push.py"), str(tmp_path)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
                              env=subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_test"))
        assert proc.returncode == 0 and "PUSHED" in proc.stdout, proc.stderr[-4000:]
        bundle = set(build_bundle())
        for repo_id, weights in (("user/pushed", True), ("user/saved", True), ("user/config", False)):
            repo = hub.repos[repo_id]
            files = repo.commits[repo.resolve("main")]
            assert bundle <= set(files), (repo_id, sorted(bundle - set(files)))
            assert json.loads(files["config.json"])["auto_map"] == AUTO_MAP
            assert ("model.safetensors" in files) is weights
