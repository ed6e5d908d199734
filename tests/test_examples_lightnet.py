"""LightNet and the MD encodings through the example scripts: ``--attention_type`` and ``--position_encoding``."""

import json

import numpy as np
import pytest
from PIL import Image

from tests.test_examples_image import CLASSES, TINY as IMAGE_TINY, image_tree  # noqa: F401  (fixture)
from tests.test_examples_image import script as image_script
from tests.test_examples_mlm import TINY as MLM_TINY, _data, corpus  # noqa: F401  (fixture)
from tests.test_examples_mlm import script as mlm_script


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _image(tree, out, *extra):
    return ["--dataset", "imagefolder", "--data_dir", str(tree), *IMAGE_TINY, "--recipe", "small",
            "--max_train_steps", "3", "--output_dir", str(out), *extra]


def test_image_script_trains_lightnet_with_md_encodings(image_tree, tmp_path):  # noqa: F811
    out = tmp_path / "lightnet"
    results = image_script.main(_image(image_tree, out, "--attention_type", "lightnet", "--position_encoding",
                                       "md_lrpe_tpe"))
    assert np.isfinite(results["train_loss"])
    config = json.loads((out / "config.json").read_text())
    assert (config["attention_type"], config["mask_type"], config["position_encoding"]) == ("lightnet", "lit",
                                                                                            "md_lrpe_tpe")
    assert config["use_position_embeddings"] is False, "the MD encodings replace the absolute table"
    card = (out / "README.md").read_text()
    assert "LightNet" in card and "Token order comes from the paper's MD-LRPE and MD-TPE" in card
    assert "not the paper's MD-TPE/MD-LRPE" not in card and "stand in for" not in card, "the card says what it has"
    assert '"position_encoding": "md_lrpe_tpe"' in card

    import lion_hf  # noqa: F401
    from transformers import pipeline

    classifier = pipeline("image-classification", model=str(out), device="cpu")
    predictions = classifier(Image.open(image_tree / "validation" / "cat" / "0000.png"), top_k=3)
    assert sorted(p["label"] for p in predictions) == list(CLASSES)


def test_lion_run_card_names_its_md_encoding(image_tree, tmp_path):  # noqa: F811
    out = tmp_path / "lit"
    image_script.main(_image(image_tree, out, "--mask_type", "lit", "--position_encoding", "md_tpe"))
    card = (out / "README.md").read_text()
    assert "Token order also comes from LightNet's MD-TPE" in card
    assert "LION-LIT has no decay mask; it knows token order through LightNet's MD-TPE" in card
    assert "no notion of token order" not in card


@pytest.mark.parametrize("extra,problem", [
    (["--attention_type", "lightnet", "--mask_type", "decay"], "mask_type"),
    (["--attention_type", "lightnet", "--patch_order", "s"], "patch_order"),
    (["--baseline", "vit", "--attention_type", "lightnet"], "--attention_type.*not available with --baseline vit"),
    (["--baseline", "vit", "--position_encoding", "md_tpe"], "--position_encoding.*not available with --baseline vit"),
    (["--preset", "lion-s-tiny-patch16-224", "--attention_type", "lightnet"], "--attention_type.* would be ignored: --preset"),
])
def test_image_script_refuses_what_lightnet_or_the_baseline_cannot_do(image_tree, tmp_path, extra, problem):  # noqa: F811
    with pytest.raises(image_script.ScriptError, match=problem):
        image_script.main(_image(image_tree, tmp_path / "o", *extra))
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_mlm_script_trains_lightnet(corpus, tmp_path):  # noqa: F811
    out = tmp_path / "mlm"
    results = mlm_script.main([*_data(corpus), *MLM_TINY, "--attention_type", "lightnet", "--max_train_steps", "3",
                               "--output_dir", str(out)])
    assert 0.0 <= results["eval_mlm_accuracy"] <= 1.0
    config = json.loads((out / "config.json").read_text())
    assert (config["attention_type"], config["mask_type"]) == ("lightnet", "lit")
    with pytest.raises(mlm_script.ScriptError, match="--attention_type.*not available with --baseline bert"):
        mlm_script.main([*_data(corpus), *MLM_TINY, "--baseline", "bert", "--attention_type", "lightnet",
                         "--output_dir", str(tmp_path / "o")])
