"""Model cards written at the end of the example runs (lion_hf.hub.cards)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lion_hf  # noqa: E402
from lion_hf.hub import DEFAULT_TEMPLATE_PATH, RunMetric, render_run_card  # noqa: E402


def _config():
    return lion_hf.LionConfig(modality="vision", mask_type="selective", image_size=16, patch_size=4, hidden_size=16,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, num_labels=10,
                              architectures=["LionForImageClassification"])


def test_card_metadata_and_model_index_round_trip(tmp_path):
    from huggingface_hub import ModelCard

    assert DEFAULT_TEMPLATE_PATH.is_file()
    card = render_run_card(
        model_name="lion-s-digits", config=_config(), dataset_id="ILSVRC/imagenet-1k", dataset_name="ImageNet-1k",
        eval_split="validation", metrics=[RunMetric("accuracy", 0.75, "Top-1 accuracy"),
                                          RunMetric("top5_accuracy", 0.9, "Top-5 accuracy")],
        hyperparameters={"learning rate": 5e-4, "epochs": 300}, hub_datasets=["ILSVRC/imagenet-1k"],
        training_log=[{"step": 10, "epoch": 1, "loss": 2.5, "top1": 0.5}], script="run.py", num_parameters=1234)
    path = tmp_path / "README.md"
    card.save(path)
    loaded = ModelCard.load(path)
    data = loaded.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "image-classification"
    assert data["license"] == "apache-2.0" and data["datasets"] == ["ILSVRC/imagenet-1k"]
    assert {"lion", "lion-s", "vision"} <= set(data["tags"]) and "custom_code" not in data["tags"]
    results = loaded.data.eval_results
    assert [(r.metric_type, r.metric_value, r.dataset_type) for r in results] == [
        ("accuracy", 0.75, "ILSVRC/imagenet-1k"), ("top5_accuracy", 0.9, "ILSVRC/imagenet-1k")]
    body = loaded.text
    assert "LION-S" in body and "| learning rate | 0.0005 |" in body and "| 10 | 1 | 2.5 | 0.5 |" in body
    assert "| Parameters | 1,234 |" in body and "| Input | 16×16 RGB images, 4×4 patches" in body
    assert "| Top-1 accuracy | ImageNet-1k, validation | 0.75 | this training run |" in body
    assert "trust_remote_code=True)" not in body and "## Citation" in body


def test_card_without_metrics_and_template_errors(tmp_path):
    card = render_run_card(model_name="m", config=_config(), dataset_id="digits")
    assert "model-index" not in card.content and "No evaluation results" in card.content
    with pytest.raises(FileNotFoundError, match="template not found"):
        render_run_card(model_name="m", config=_config(), dataset_id="digits", template_path=tmp_path / "none.md")
    custom = tmp_path / "t.md"
    custom.write_text("---\n{{ card_data }}\n---\n# {{ model_name }} on {{ dataset_description }}\n")
    text = render_run_card(model_name="m", config=_config(), dataset_id="digits", template_path=custom).content
    assert text.rstrip().endswith("# m on digits")


def test_run_card_with_a_family_and_result_rows():
    """A run of a planned family: its measurement replaces the paper's in model-index; other rows stay."""
    from lion_hf.hub.cards import PAPER_SOURCE_NAME, Result
    from lion_hf.hub.families import render_card

    pending = Result("image-classification", "top5_accuracy", "Top-5 accuracy (%)", "ILSVRC/imagenet-1k",
                     "ImageNet-1k", dataset_split="validation")
    card = render_run_card(model_name="my-lion-d", family="lion-d-base-patch16-224", repo_id="me/my-lion-d",
                           metrics=[RunMetric("accuracy", 78.5, "Top-1 accuracy (%)")], results=[pending])
    data = card.data.to_dict()
    assert [m["value"] for r in data["model-index"][0]["results"] for m in r["metrics"]] == [78.5]
    assert data["model-index"][0]["name"] == "my-lion-d" and data["datasets"] == ["ILSVRC/imagenet-1k"]
    body = card.text
    assert "| Top-1 accuracy (%) | ImageNet-1k, validation | 78.5 | this training run |" in body
    assert f"| 77.8 | {PAPER_SOURCE_NAME} |" in body  # the paper's value stays as the reference
    assert "| Top-5 accuracy (%) | ImageNet-1k, validation | — | not yet measured |" in body
    assert 'from_preset("lion-d-base-patch16-224")' in body and "DeiT recipe" in body
    # families.render_card is this renderer with the family and the remote-code block
    assert render_card("lion-d-base-patch16-224").content == render_run_card(
        family="lion-d-base-patch16-224", remote_code=True).content
    with pytest.raises(ValueError, match="unknown LION checkpoint family"):
        render_run_card(family="lion-x-huge")
