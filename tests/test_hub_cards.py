"""Model cards of the planned checkpoint families: generated, complete, honest about their numbers."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

import lion_hf.hub
from lion_hf.hub.cards import card_template, template_file
from lion_hf.hub.families import (
    FAMILIES,
    IMAGENET,
    PAPER_SOURCE_NAME,
    list_families,
    render_card,
    results_from_metrics,
)
from lion_hf.hub.publish import validate_card_metadata
from lion_hf.modeling.configuration_lion import list_presets

REPO = Path(__file__).resolve().parent.parent
CARDS = REPO / "model_cards"

# The paper's numbers (spec section 3); the only results a family card may state before our runs.
PAPER_VISION_BASE = {"lit": 74.7, "d": 77.8, "d-natural": 80.2, "s": 76.3, "s-natural": 79.9}
PAPER_MLM_LARGE = {"lit": (67.11, 80.76), "d": (68.64, 81.34), "s": (69.16, 81.58)}


def _load_generator():
    spec = importlib.util.spec_from_file_location("generate_model_cards", REPO / "scripts" / "generate_model_cards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_planned_family_has_a_card():
    vision = [f"lion-{m}-{s}-patch16-224" for m in PAPER_VISION_BASE for s in ("tiny", "small", "base")]
    text = [f"lion-{m}-{s}-mlm" for m in PAPER_MLM_LARGE for s in ("base", "large")]
    lion = [name for name in list_families() if name.startswith("lion-")]  # LightNet's: test_lightnet_cards.py
    assert sorted(vision + text) == lion
    assert set(list_families()) <= set(list_presets())  # every family is buildable from a preset
    assert sorted(p.stem for p in CARDS.glob("lion-*.md")) == lion


def test_committed_cards_are_what_the_generator_renders(tmp_path, capsys):
    generator = _load_generator()
    assert generator.main(["--check"]) == 0, "model_cards/ is stale: run scripts/generate_model_cards.py"
    # and --check notices a hand edit
    out = tmp_path / "cards"
    assert generator.main(["--output-dir", str(out)]) == 0
    edited = out / "lion-d-base-patch16-224.md"
    edited.write_text(edited.read_text().replace("77.8", "78.8"))
    assert generator.main(["--output-dir", str(out), "--check"]) == 1
    assert "lion-d-base-patch16-224.md" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(n for n in FAMILIES if n.startswith("lion-")))
def test_family_card_contents(name):
    card = ModelCard.load(CARDS / f"{name}.md")
    validate_card_metadata(card)  # raises on a missing field or a malformed model-index
    data = card.data.to_dict()
    family = FAMILIES[name]
    vision = family.modality == "vision"
    assert data["library_name"] == "transformers" and data["license"] == "apache-2.0"
    assert data["pipeline_tag"] == ("image-classification" if vision else "fill-mask")
    assert data["datasets"] == (["ILSVRC/imagenet-1k"] if vision else ["allenai/c4", "nyu-mll/glue"])
    assert {"lion", "custom_code", "arxiv:2502.16249"} <= set(data["tags"])
    text = card.text
    for section in ("## How to load", "trust_remote_code=True", "## Configuration", "## Training recipe",
                    "## Limitations", "## Citation", "@article{afzal2025linear", "Linear Attention for Efficient "
                    "Bidirectional Sequence Modeling", "arXiv:2502.16249"):
        assert section in text, section
    assert f'from_preset("{name}")' in text

    mask = name.split("-")[1] + ("-natural" if "natural" in name else "")
    values = [m["value"] for r in data.get("model-index", [{}])[0].get("results", []) for m in r["metrics"]]
    if vision and family.size == "base":
        assert values == [PAPER_VISION_BASE[mask]]
        assert data["model-index"][0]["results"][0]["source"]["name"] == PAPER_SOURCE_NAME
        assert "not yet measured" not in text
    elif not vision and family.size == "large":
        assert values == list(PAPER_MLM_LARGE[mask])
        assert f"| {PAPER_MLM_LARGE[mask][0]} | {PAPER_SOURCE_NAME} |" in text
    else:  # the paper reports nothing for this size: no invented number, no model-index
        assert "model-index" not in data
        assert "not yet measured" in text and PAPER_SOURCE_NAME not in text.split("## Results")[1].split("##")[0]


def test_run_results_replace_the_paper_values():
    run = results_from_metrics({"eval_accuracy": 0.7912, "eval_loss": 0.9, "eval_runtime": 12.0, "epoch": 300},
                               task_type="image-classification", **IMAGENET)
    assert [(r.metric_type, r.value) for r in run] == [("accuracy", 79.12)]
    card = render_card("lion-d-base-patch16-224", run_results=run, repo_id="me/lion-d")
    metrics = [m for r in card.data.to_dict()["model-index"][0]["results"] for m in r["metrics"]]
    assert [m["value"] for m in metrics] == [79.12]  # only our measurement in model-index
    assert "| 79.12 | this checkpoint's evaluation run |" in card.text
    assert f"| 77.8 | {PAPER_SOURCE_NAME} |" in card.text  # the paper's value stays as the reference
    validate_card_metadata(card)


def test_results_from_metrics_skips_speed_and_loss():
    results = results_from_metrics({"eval_f1": 0.5, "eval_samples_per_second": 3.0, "eval_loss": 1.0,
                                    "train_accuracy": 0.9, "eval_pearson": 0.8, "eval_flag": True},
                                   task_type="text-classification", dataset_type="nyu-mll/glue",
                                   dataset_name="GLUE", dataset_config="stsb")
    assert sorted((r.metric_type, r.value) for r in results) == [("f1", 50.0), ("pearson", 80.0)]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("license"), "'license'"),
    (lambda d: d.update(pipeline_tag="text-generation"), "pipeline_tag"),
    (lambda d: d.update(library_name="timm"), "library_name"),
    (lambda d: d["model-index"][0]["results"][0]["metrics"][0].update(value="high"), "finite number"),
    (lambda d: d["model-index"][0]["results"][0].pop("dataset"), "dataset.type"),
    (lambda d: d["model-index"][0].update(name=""), "name"),
])
def test_invalid_metadata_is_refused(mutate, message):
    data = ModelCard.load(CARDS / "lion-s-base-patch16-224.md").data.to_dict()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        validate_card_metadata(data)


def test_template_is_package_data_read_through_importlib_resources():
    path = Path(str(template_file()))
    assert path == Path(lion_hf.hub.__file__).parent / "templates" / "model_card.md" and path.is_file()
    assert not (CARDS / "template.md").exists()  # one template, inside the package
    assert card_template() == path.read_text(encoding="utf-8") and "{{ card_data }}" in card_template()


def test_wheel_ships_the_template_and_renders_cards_from_it(tmp_path):
    """Build the wheel, unpack it away from the checkout and render a card from the unpacked package."""
    source = tmp_path / "src"
    shutil.copytree(REPO / "lion_hf", source / "lion_hf", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], cwd=source, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("lion_hf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("lion_hf/hub/templates/model_card.md", "lion_hf/metrics/glue/glue.py",
                 "lion_hf/metrics/topk_accuracy/topk_accuracy.py"):
        assert name in names, name
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import lion_hf, lion_hf.hub.cards as c; from lion_hf.hub import render_family_cards; "
            "print(lion_hf.__file__); print(c.template_file()); "
            "print(render_family_cards(names=['lion-s-tiny-patch16-224'])['lion-s-tiny-patch16-224'])")
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, capture_output=True,
                         text=True).stdout
    module_file, template, card = out.split("\n", 2)
    assert module_file.startswith(str(site)) and template == str(site / "lion_hf/hub/templates/model_card.md")
    assert card.strip() == (CARDS / "lion-s-tiny-patch16-224.md").read_text(encoding="utf-8").strip()
