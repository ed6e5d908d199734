"""lion-publish offline: staging, completeness checks, clear refusals, the command line."""

from __future__ import annotations

import json
import shutil

import pytest
from huggingface_hub import ModelCard

import lion_hf.hub
from lion_hf.hub.bundle import AUTO_MAP
from lion_hf.cli import publish_main as main
from lion_hf.hub.publish import find_checkpoint, stage_checkpoint, validate_card_remote

from .fake_hub import make_text_run, make_vision_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish_runs")
    return {"vision": make_vision_run(root / "vision-run"), "text": make_text_run(root / "text-run")}


def _copy(run, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


def test_dry_run_stages_a_complete_repository(runs, tmp_path):
    result = lion_hf.hub.publish(runs["vision"], "me/tiny-vision", dry_run=True, staging_dir=tmp_path / "staged",
                                 dataset="cifar10", dataset_name="CIFAR-10 (tiny test)")
    staged = result.staged.folder
    assert result.commit_url is None  # nothing was sent
    names = set(result.staged.files)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "modeling_lion.py",
            "configuration_lion.py", "lion_kernels.py", "all_results.json"} <= names
    assert names == {p.name for p in staged.iterdir()}
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)
    assert (staged / "model.safetensors").read_bytes() == (runs["vision"] / "model.safetensors").read_bytes()
    config = json.loads((staged / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP and config["architectures"] == ["LionForImageClassification"]
    card = ModelCard.load(staged / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "image-classification" and data["datasets"] == ["cifar10"]
    metric = data["model-index"][0]["results"][0]
    assert metric["dataset"] == {"name": "CIFAR-10 (tiny test)", "type": "cifar10", "split": "validation"}
    assert metric["metrics"][0]["value"] == 0.4167  # a custom model: eval_accuracy as the run measured it
    assert "3 optimisation steps" in card.text  # the run's trainer_state.json
    assert 'from_pretrained("me/tiny-vision", trust_remote_code=True)' in card.text


def test_preset_family_is_matched_and_keeps_the_paper_reference(tmp_path):
    """A checkpoint shaped like a planned family gets that family's card, with the run's numbers."""
    from transformers import ViTImageProcessorPil

    from lion_hf import LionConfig, LionForImageClassification

    folder = tmp_path / "tiny-preset"
    LionForImageClassification(LionConfig.from_preset("lion-d-tiny-patch16-224")).save_pretrained(folder)
    ViTImageProcessorPil(size={"height": 224, "width": 224}).save_pretrained(folder)
    (folder / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.7012}))
    staged = stage_checkpoint(folder, tmp_path / "staged", repo_id="me/lion-d-tiny", dataset="ILSVRC/imagenet-1k")
    assert staged.family.name == "lion-d-tiny-patch16-224"
    data = staged.card.data.to_dict()
    result = data["model-index"][0]["results"][0]
    assert result["dataset"]["type"] == "ILSVRC/imagenet-1k" and result["metrics"][0]["value"] == 70.12
    assert "not yet measured" not in staged.card.text  # the measured row replaced the empty one
    assert "LION-D tiny" in staged.card.text and data["datasets"] == ["ILSVRC/imagenet-1k"]


def test_family_that_does_not_match_the_config_is_refused(runs, tmp_path):
    """A tiny model must not be published under a family card carrying the paper's large-model numbers."""
    with pytest.raises(ValueError, match="does not match the family 'lion-d-large-mlm'"):
        stage_checkpoint(runs["text"], tmp_path / "staged", repo_id="me/x", family="lion-d-large-mlm",
                         dataset="allenai/c4")


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "config.json").unlink(), r"config\.json is missing"),
    (lambda d: (d / "model.safetensors").unlink(), r"model\.safetensors is missing"),
    (lambda d: ((d / "model.safetensors").rename(d / "pytorch_model.bin")), r"only pickle weights \(pytorch_model\.bin\)"),
    (lambda d: (d / "model.safetensors").write_bytes(b"not safetensors"), "not a readable safetensors"),
    (lambda d: (d / "preprocessor_config.json").unlink(), r"preprocessor_config\.json is missing"),
    (lambda d: _edit_json(d / "config.json", architectures=None), "'architectures' is missing"),
    (lambda d: _edit_json(d / "config.json", model_type="bert"), "not 'lion'"),
    (lambda d: _edit_json(d / "config.json", id2label=None), "'id2label' is missing"),
    (lambda d: _edit_json(d / "config.json", mask_type="nonsense"), "not a valid LionConfig"),
    (lambda d: (d / "all_results.json").write_text("{oops"), "not valid JSON"),
])
def test_incomplete_vision_folder_is_refused(runs, tmp_path, breakage, message):
    folder = _copy(runs["vision"], tmp_path)
    breakage(folder)
    with pytest.raises(ValueError, match=message):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="cifar10")
    assert not (tmp_path / "staged" / "README.md").exists()


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "tokenizer_config.json").unlink(), r"tokenizer_config\.json is missing"),
    (lambda d: _edit_json(d / "tokenizer_config.json", tokenizer_class=None), "'tokenizer_class' is missing"),
    (lambda d: (d / "tokenizer.json").unlink(), "no vocabulary"),
])
def test_incomplete_text_folder_is_refused(runs, tmp_path, breakage, message):
    folder = _copy(runs["text"], tmp_path)
    breakage(folder)
    with pytest.raises(ValueError, match=message):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="allenai/c4")


def test_metrics_without_a_dataset_are_refused(runs, tmp_path):
    with pytest.raises(ValueError, match="pass dataset="):
        stage_checkpoint(runs["vision"], tmp_path / "staged", repo_id="me/x")  # custom size: no family dataset


def test_bad_repo_id_and_unknown_family(runs, tmp_path):
    with pytest.raises(ValueError, match="owner/name"):
        lion_hf.hub.publish(runs["vision"], "no-owner", dry_run=True)
    with pytest.raises(ValueError, match="unknown LION checkpoint family"):
        stage_checkpoint(runs["vision"], tmp_path / "s", repo_id="me/x", family="lion-xl", dataset="cifar10")


def test_training_run_folder_resolves_to_its_checkpoint(runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for step in (2, 10):
        shutil.copytree(runs["vision"], run / f"checkpoint-{step}")
    assert find_checkpoint(run) == run / "checkpoint-10"  # the last one
    (run / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": "out/checkpoint-2"}))
    assert find_checkpoint(run) == run / "checkpoint-2"  # the best one when the run recorded it
    staged = stage_checkpoint(run, tmp_path / "staged", repo_id="me/x", dataset="cifar10")
    assert staged.checkpoint_dir == run / "checkpoint-2"
    # a top-level save_model() wins over checkpoints
    shutil.copytree(runs["vision"], run, dirs_exist_ok=True)
    assert find_checkpoint(run) == run


def test_remote_validation_is_skipped_offline(monkeypatch):
    from huggingface_hub import constants

    card = ModelCard.load(__import__("pathlib").Path(__file__).parent.parent / "model_cards" / "lion-d-base-mlm.md")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert validate_card_remote(card) is False
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # an explicit endpoint other than the configured one is not asked (the upload validates there)
    assert validate_card_remote(card, endpoint="http://127.0.0.1:9") is False


def test_command_line(runs, tmp_path, capsys):
    assert main([str(runs["text"]), "me/tiny-text", "--dry-run", "--staging-dir", str(tmp_path / "s"),
                 "--dataset", "allenai/c4", "--tag", "tiny"]) == 0
    assert "staged" in capsys.readouterr().out
    assert "tiny" in ModelCard.load(tmp_path / "s" / "README.md").data.tags
    broken = _copy(runs["text"], tmp_path)
    (broken / "config.json").unlink()
    assert main([str(broken), "me/x", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "lion-publish: error:" in err and "config.json is missing" in err and "save_pretrained" in err


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def test_metrics_come_from_the_run_not_from_a_neighbouring_folder(runs, tmp_path):
    # a save_pretrained folder: a stray metrics file next to it is not its run's
    parent = tmp_path / "parent"
    model = _copy(runs["vision"], parent, "model")
    (model / "all_results.json").unlink()
    (parent / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.99}))
    staged = stage_checkpoint(model, tmp_path / "s1", repo_id="me/x", dataset="cifar10")
    assert staged.metrics == {} and "model-index" not in staged.card.data.to_dict()
    # a Trainer run: checkpoint-N has no metrics, the run's top level has them
    run = tmp_path / "run"
    checkpoint = _copy(runs["vision"], run, "checkpoint-4")
    (checkpoint / "all_results.json").unlink()
    (run / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.5}))
    staged = stage_checkpoint(run, tmp_path / "s2", repo_id="me/x", dataset="cifar10")
    assert staged.metrics == {"eval_accuracy": 0.5} and (tmp_path / "s2" / "all_results.json").is_file()
