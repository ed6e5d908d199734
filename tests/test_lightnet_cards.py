"""Planned LightNet checkpoint families: cards that cite the LightNet paper, quote no number of it, and are found
for a LightNet config (never for a LION one of the same size)."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from lion_hf import LionConfig
from lion_hf.hub.cards import LIGHTNET_PAPER_ARXIV_ID, PAPER_SOURCE_NAME, render_run_card, variant_of
from lion_hf.hub.families import FAMILIES, family_for_config, list_families
from lion_hf.hub.publish import validate_card_metadata

CARDS = Path(__file__).resolve().parent.parent / "model_cards"
NAMES = ["lightnet-base-mlm", "lightnet-base-patch16-224", "lightnet-small-patch16-224", "lightnet-tiny-patch16-224"]


def test_lightnet_families_and_cards_exist():
    assert [n for n in list_families() if n.startswith("lightnet")] == NAMES
    assert sorted(p.stem for p in CARDS.glob("lightnet-*.md")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_lightnet_card_contents(name):
    card = ModelCard.load(CARDS / f"{name}.md")
    validate_card_metadata(card)
    data, text = card.data.to_dict(), card.text
    vision = FAMILIES[name].modality == "vision"
    assert data["pipeline_tag"] == ("image-classification" if vision else "fill-mask")
    assert {"lightnet", "custom_code", f"arxiv:{LIGHTNET_PAPER_ARXIV_ID}"} <= set(data["tags"])
    assert "arxiv:2502.16249" not in data["tags"]
    assert "model-index" not in data  # no number is quoted before our own evaluation
    results = text.split("## Results")[1].split("\n## ")[0]
    assert "not yet measured" in results and PAPER_SOURCE_NAME not in results
    assert "@article{qin2024lightnet" in text and "afzal2025linear" not in text
    assert f'from_preset("{name}")' in text and '"attention_type": "lightnet"' in text
    assert "| Architecture | LightNet (bidirectional:" in text
    if vision:  # the paper's appendix recipe (Table 4, image classification)
        assert all(s in text for s in ("300 epochs", "batch size 2048", "5e-4", "(0.9, 0.98)", "20 warm-up epochs",
                                       "clipping 5.0"))
    else:
        assert "Cramming" in text


def test_family_for_config_tells_lightnet_from_lion():
    lightnet = LionConfig.from_preset("lightnet-tiny-patch16-224", architectures=["LionForImageClassification"])
    assert family_for_config(lightnet).name == "lightnet-tiny-patch16-224"
    lion = LionConfig.from_preset("lion-lit-tiny-patch16-224", architectures=["LionForImageClassification"])
    assert family_for_config(lion).name == "lion-lit-tiny-patch16-224"
    mlm = LionConfig.from_preset("lightnet-base-mlm", architectures=["LionForMaskedLM"])
    assert family_for_config(mlm).name == "lightnet-base-mlm"


def test_custom_lightnet_run_card():
    config = LionConfig(attention_type="lightnet", image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=3,
                        architectures=["LionForImageClassification"])
    assert variant_of(config) == "LightNet"
    card = render_run_card(config=config, model_name="me/tiny-lightnet", dataset_id="digits")
    assert "LightNet model for image classification" in card.text and f"arxiv:{LIGHTNET_PAPER_ARXIV_ID}" in str(card)
