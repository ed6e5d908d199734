"""Cards state what is true (issue 14, items 13 and 14): a run card says what the run did, family text and
paper numbers only for a checkpoint of that family, one unit per card, no counts as results, and every
claim about loading checked against the model itself."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from huggingface_hub import ModelCard

import lion_hf
from lion_hf.hub import RunMetric, render_run_card
from lion_hf.hub.cards import AUTO_CLASS_OF_HEAD, HEADS_OF_MODALITY
from lion_hf.hub.families import FAMILIES, render_card, results_from_metrics
from lion_hf.hub.publish import _choose_family, card_from_run_card, stage_checkpoint

from .fake_hub import make_vision_run

FAMILY_TEXT = ("ImageNet", "DeiT", "300 epochs", "224×224", "paper reports a training time", "C4",
               "not converted from the authors' release", "Paper values describe")


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    return make_vision_run(tmp_path_factory.mktemp("cards") / "vision-run")


def _digits_card(config, **overrides):
    """The card the image-classification script writes for a digits run (its build_card's arguments)."""
    options = dict(
        model_name="lion-s-digits", config=config, dataset_id="digits",
        dataset_name="scikit-learn digits (8x8, embedded)", eval_split="test",
        metrics=[RunMetric("accuracy", 0.9861, "Top-1 accuracy"), RunMetric("top5_accuracy", 0.9972, "Top-5 accuracy")],
        hyperparameters={"total batch size": 64, "learning rate": "0.003", "steps": 880},
        training_log=[{"step": 50, "epoch": 2, "loss": 1.2, "top1": 0.71}, {"step": 880, "epoch": 40, "loss": 0.3,
                                                                            "top1": 0.9861}],
        script="examples/image_classification/run_image_classification.py", hub_datasets=None,
        repo_id="lion-s-digits", tags=["image-classification"], num_parameters=1234)
    options.update(overrides)
    return render_run_card(**options)


def _run_with_card(vision_run, tmp_path, card=None):
    run = tmp_path / "run"
    shutil.copytree(vision_run, run)
    config = lion_hf.LionConfig.from_pretrained(run)
    (card or _digits_card(config)).save(run / "README.md")
    (run / "all_results.json").write_text(json.dumps({"eval_top1": 0.9861, "eval_top5": 0.9972, "eval_samples": 360,
                                                      "train_steps": 880, "train_loss": 0.3}))
    return run, config


# ---------------------------------------------------------------------------------------------------
# Item 13: the run card says what the run did
# ---------------------------------------------------------------------------------------------------
def test_publish_keeps_the_runs_own_card(vision_run, tmp_path):
    run, _ = _run_with_card(vision_run, tmp_path)
    staged = stage_checkpoint(run, tmp_path / "staged", repo_id="me/lion-s-digits")
    data, text = staged.card.data.to_dict(), staged.card.text
    result = data["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "test" and result["dataset"]["type"] == "digits"
    assert [(m["type"], m["value"]) for m in result["metrics"]] == [("accuracy", 0.9861), ("top5_accuracy", 0.9972)]
    assert "### Training log" in text and "| 880 | 40 | 0.3 | 0.9861 |" in text
    for phrase in FAMILY_TEXT:
        assert phrase not in text, phrase
    assert "custom_code" in data["tags"]
    assert 'from_pretrained("me/lion-s-digits", trust_remote_code=True)' in text
    assert 'from_pretrained("lion-s-digits")' not in text  # the loading snippets name the repository
    assert ModelCard.load(staged.folder / "README.md").data.to_dict() == data


def test_card_options_replace_the_run_card_without_family_text(vision_run, tmp_path):
    run, _ = _run_with_card(vision_run, tmp_path)
    staged = stage_checkpoint(run, tmp_path / "staged", repo_id="me/x", dataset="digits")
    assert staged.card.data.eval_results[0].dataset_split == "test"  # the split the run's card names
    text = staged.card.text
    for phrase in FAMILY_TEXT:
        assert phrase not in text, phrase
    metrics = staged.card.data.to_dict()["model-index"][0]["results"][0]["metrics"]
    assert [(m["type"], m["value"]) for m in metrics] == [("accuracy", 0.9861), ("top5_accuracy", 0.9972)]
    assert "Samples" not in text and "(%)" not in text  # a count is no result; fractions stay fractions
    assert "**Data:** digits" in text


def test_family_only_for_a_checkpoint_of_that_family():
    """An MLM run shaped like a preset but trained on a local file is no C4 checkpoint."""
    config = lion_hf.LionConfig.from_preset("lion-d-base-mlm", architectures=["LionForMaskedLM"])
    assert _choose_family(config, None, "text", None).preset is None
    assert _choose_family(config, None, None, None).preset is None
    assert _choose_family(config, None, "allenai/c4", None).name == "lion-d-base-mlm"
    with pytest.raises(ValueError, match="not text"):
        _choose_family(config, "lion-d-base-mlm", "text", None)
    custom = _choose_family(config, None, "text", None)
    card = render_card(custom, config=config, repo_id="me/mlm", datasets=[])
    for phrase in FAMILY_TEXT:
        assert phrase not in card.text, phrase


def test_results_are_never_counts_and_have_one_unit():
    metrics = {"eval_top1": 0.5, "eval_top5": 0.875, "eval_samples": 360, "eval_masked_tokens": 12345,
               "eval_accuracy": 0.25, "eval_f1": 0.5, "eval_perplexity": 7.5, "eval_runtime": 3.0, "eval_loss": 1.0,
               "eval_nan": float("nan"), "eval_mm_samples": 10}
    common = dict(task_type="image-classification", dataset_type="d", dataset_name="d")
    fractions = results_from_metrics(metrics, percent=False, **common)
    assert sorted(r.metric_type for r in fractions) == ["accuracy", "accuracy", "f1", "perplexity", "top5_accuracy"]
    assert not any("(%)" in r.metric_name for r in fractions)
    assert {r.metric_type: r.value for r in fractions if r.metric_name == "Top-5 accuracy"} == {"top5_accuracy": 0.875}
    percent = results_from_metrics(metrics, percent=True, **common)
    by_name = {r.metric_name: r.value for r in percent}
    assert by_name["Top-5 accuracy (%)"] == 87.5 and by_name["F1 (%)"] == 50.0 and by_name["Perplexity"] == 7.5


def test_run_metrics_on_a_family_card_are_percentages_like_the_paper_rows():
    config = lion_hf.LionConfig.from_preset("lion-d-base-patch16-224", architectures=["LionForImageClassification"])
    card = render_run_card(model_name="mine", config=config, family="lion-d-base-patch16-224", repo_id="me/mine",
                           metrics=[RunMetric("accuracy", 0.781, "Top-1 accuracy")], num_parameters=1)
    values = [m["value"] for r in card.data.to_dict()["model-index"][0]["results"] for m in r["metrics"]]
    assert values == [78.1]
    rows = [line for line in card.text.splitlines() if line.startswith("| Top-1")]
    assert rows and all("(%)" in row for row in rows) and not any("| 0.781 |" in row for row in rows)


# ---------------------------------------------------------------------------------------------------
# Item 14: no false statements, no paths of the training machine
# ---------------------------------------------------------------------------------------------------
def test_card_claims_about_loading_hold(vision_run, tmp_path):
    import transformers
    from transformers import AutoModelForImageClassification

    config = lion_hf.LionConfig.from_pretrained(vision_run)
    text = _digits_card(config).text
    assert "pip install lion_hf" not in text and "not on PyPI" in text
    assert "Any head loads" not in text
    listed = re.findall(r"`(AutoModel\w*)`", text.split("## How to load")[1].split("##")[0])
    assert set(listed) - {"AutoModelForImageClassification", "AutoImageProcessor"} == {"AutoModel"}
    for name in HEADS_OF_MODALITY["vision"]:
        getattr(transformers, name).from_pretrained(vision_run)  # every head the card lists loads
    for name in set(AUTO_CLASS_OF_HEAD.values()) - set(HEADS_OF_MODALITY["vision"]):
        with pytest.raises(ValueError):  # and the others refuse, as the card says
            getattr(transformers, name).from_pretrained(vision_run)
    model = AutoModelForImageClassification.from_pretrained(vision_run).eval()
    with torch.no_grad():
        output = model(pixel_values=torch.randn(1, 3, config.image_size, config.image_size), output_attentions=True)
    assert output.attentions is None and "`output_attentions=True` returns no attention maps" in text
    assert "materialises the L×L attention" not in text


def test_no_local_paths_in_run_cards(vision_run, tmp_path):
    config = lion_hf.LionConfig.from_pretrained(vision_run)
    local_base = tmp_path / "tmpab12cd" / "mlm-run"
    local_base.mkdir(parents=True)
    card = _digits_card(config, base_model=str(local_base), hyperparameters={"tokenizer": str(tmp_path / "tok")},
                        dataset_id=str(tmp_path / "corpus.txt"), dataset_name=str(tmp_path / "corpus.txt"))
    content = str(card)
    assert str(tmp_path) not in content
    assert "base_model" not in card.data.to_dict()
    assert "| Fine-tuned from | a local checkpoint (not on the Hub) |" in content
    assert "| tokenizer | a local path (not on the Hub) |" in content and "local data (corpus.txt)" in content
    hub = _digits_card(config, base_model="lion-hf/lion-s-tiny", hyperparameters={"tokenizer": "bert-base-uncased"})
    assert hub.data.base_model == "lion-hf/lion-s-tiny" and "| tokenizer | bert-base-uncased |" in hub.text


def test_cards_of_older_versions_are_corrected_on_publish(vision_run, tmp_path):
    config = lion_hf.LionConfig.from_pretrained(vision_run)
    old = str(_digits_card(config))
    old = old.replace("`lion_hf` is not on PyPI", "`pip install lion_hf`").replace(
        "- `output_attentions=True` returns no attention maps (`attentions` is None).",
        "- `output_attentions=True` materialises the L×L attention, so it needs the attention form.")
    old = old.replace("tags:\n", "base_model: /tmp/tmpab12cd/run\ntags:\n", 1)
    fixed = card_from_run_card(ModelCard(old), config=config, repo_id="me/digits")
    assert "pip install lion_hf" not in fixed.text and "materialises" not in fixed.text
    assert fixed.data.base_model is None and "/tmp/" not in str(fixed)
    assert "| 880 | 40 | 0.3 | 0.9861 |" in fixed.text  # the run's own content stays


def test_family_cards_state_heads_of_their_own_modality():
    for name in ("lion-d-base-patch16-224", "lion-d-base-mlm"):
        family = FAMILIES[name]
        text = render_card(family).text
        own, other = HEADS_OF_MODALITY[family.modality], set(AUTO_CLASS_OF_HEAD.values()) - set(
            HEADS_OF_MODALITY[family.modality])
        section = text.split("## How to load")[1].split("\n## ")[0]
        heads_line = next(line for line in section.splitlines() if "checkpoint loads into" in line)
        assert all(f"`{h}`" in heads_line for h in own) and not any(f"`{h}`" in heads_line for h in other)


def test_public_name_keeps_hub_ids_and_values(tmp_path):
    from lion_hf.hub.cards import hub_id_or_none, public_name

    for value in ("bert-base-uncased", "owner/name", "0.8 / 1.0 / 2", "cosine, 5 warm-up steps", "off", 3):
        assert public_name(value) == value
    for value in (str(tmp_path), "./run", "../x/y", "~/data", "C:\\\\runs\\\\x", "data/sub/file.txt"):
        assert public_name(value) == "a local path (not on the Hub)", value
    (tmp_path / "owner").mkdir()
    (tmp_path / "owner" / "name").mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert hub_id_or_none("owner/name") is None  # a folder here, not the Hub repository
        assert public_name("owner/name") == "a local path (not on the Hub)"
    finally:
        os.chdir(cwd)
    assert hub_id_or_none("owner/name") == "owner/name" and hub_id_or_none("a b") is None


def test_non_finite_metrics_stay_out_of_the_card(vision_run):
    config = lion_hf.LionConfig.from_pretrained(vision_run)
    card = _digits_card(config, metrics=[RunMetric("accuracy", float("nan"), "Top-1 accuracy"),
                                         RunMetric("top5_accuracy", 0.5, "Top-5 accuracy")])
    results = card.data.to_dict()["model-index"][0]["results"]
    assert [m["type"] for r in results for m in r["metrics"]] == ["top5_accuracy"]
    assert "nan" not in str(card.data.to_dict()).lower()


def test_a_runs_final_card_is_not_attached_to_an_earlier_checkpoint(vision_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copytree(vision_run, run / "checkpoint-3")
    (run / "checkpoint-3" / "all_results.json").unlink()
    config = lion_hf.LionConfig.from_pretrained(vision_run)
    _digits_card(config).save(run / "README.md")  # the final model's card; the final model itself is missing
    staged = stage_checkpoint(run, tmp_path / "staged", repo_id="me/x")
    assert "0.9861" not in staged.card.text and "### Training log" not in staged.card.text


def test_demo_reports_a_failed_training_run_in_one_line(monkeypatch, capsys, tmp_path):
    import subprocess

    import lion_hf.demo
    from lion_hf.cli import demo_main

    def fail(output_dir, epochs):
        raise subprocess.CalledProcessError(3, ["accelerate", "launch"])

    monkeypatch.setattr(lion_hf.demo, "train", fail)
    assert demo_main(["--output_dir", str(tmp_path / "d")]) == 1
    assert capsys.readouterr().err == "FAILED: the training script exited with status 3 (its messages are above)\n"
    assert demo_main(["--epochs", "0"]) == 2


def test_card_generator_refuses_bad_arguments(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "generate_model_cards.py"
    spec = importlib.util.spec_from_file_location("generate_model_cards", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a_file = tmp_path / "f"
    a_file.write_text("x")
    for argv in (["--namespace", "a b"], ["--namespace", "../x"], ["--output-dir", str(a_file)]):
        with pytest.raises(SystemExit) as exit_info:
            module.main(argv)
        assert exit_info.value.code == 2
    assert a_file.read_text() == "x"


def test_custom_size_reads_in_english(vision_run):
    from lion_hf.hub.cards import shape_of

    config = lion_hf.LionConfig.from_pretrained(vision_run)
    assert shape_of(config) == "32 hidden, 2 layers, 1 head"
