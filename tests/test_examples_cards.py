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
    assert {"lion", "lion-selective", "vision"} <= set(data["tags"])
    results = loaded.data.eval_results
    assert [(r.metric_type, r.metric_value, r.dataset_type) for r in results] == [
        ("accuracy", 0.75, "ILSVRC/imagenet-1k"), ("top5_accuracy", 0.9, "ILSVRC/imagenet-1k")]
    body = loaded.text
    assert "LION-S" in body and "| learning rate | 0.0005 |" in body and "| 10 | 1 | 2.5 | 0.5 |" in body
    assert "1,234 parameters" in body and "16x16 images, patch size 4" in body


def test_card_without_metrics_and_template_errors(tmp_path):
    card = render_run_card(model_name="m", config=_config(), dataset_id="digits")
    assert "model-index" not in card.content and "No evaluation results" in card.content
    with pytest.raises(FileNotFoundError, match="template not found"):
        render_run_card(model_name="m", config=_config(), dataset_id="digits", template_path=tmp_path / "none.md")
    custom = tmp_path / "t.md"
    custom.write_text("---\n{{ card_data }}\n---\n# {{ model_name }} on {{ dataset_description }}\n")
    text = render_run_card(model_name="m", config=_config(), dataset_id="digits", template_path=custom).content
    assert text.rstrip().endswith("# m on digits")
