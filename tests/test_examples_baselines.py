"""The Transformer baselines trained through the example scripts: ``--baseline vit`` (image), ``--baseline bert``
(MLM) and run_glue.py fine-tuning the BERT that run_mlm.py saved; the same data, recipe and loop as LION's runs."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.test_examples_glue import TRAINER, glue_files  # noqa: F401  (fixture)
from tests.test_examples_glue import script as glue_script
from tests.test_examples_image import CLASSES, TINY as IMAGE_TINY, image_tree  # noqa: F401  (fixture)
from tests.test_examples_image import script as image_script
from tests.test_examples_mlm import TINY as MLM_TINY, _data, corpus  # noqa: F401  (fixture)
from tests.test_examples_mlm import script as mlm_script

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _results(folder) -> dict:
    return json.loads((folder / "all_results.json").read_text())


def test_vit_baseline_trains_through_the_image_script(image_tree, tmp_path):  # noqa: F811
    out = tmp_path / "vit"
    image_script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *IMAGE_TINY, "--baseline", "vit",
                       "--recipe", "small", "--num_train_epochs", "2", "--output_dir", str(out), "--seed", "1"])
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "vit" and config["architectures"] == ["ViTForImageClassification"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["patch_size"]) == (16, 2, 4)
    assert sorted(config["id2label"].values()) == list(CLASSES)
    assert not (out / "README.md").exists(), "a LION model card would describe a model this is not"
    results = _results(out)
    assert results["train_steps"] > 0 and np.isfinite(results["train_loss"])
    # one evaluation per epoch, each with the wall time since training started (learning curves)
    history = results["history"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert 0 <= history[0]["seconds"] <= history[1]["seconds"] <= results["train_seconds"] + 1
    assert history[-1]["top1"] == pytest.approx(results["eval_top1"], abs=1e-4)

    from transformers import pipeline

    classifier = pipeline("image-classification", model=str(out), device="cpu")
    predictions = classifier(Image.open(image_tree / "validation" / "cat" / "0000.png"), top_k=3)
    assert sorted(p["label"] for p in predictions) == list(CLASSES)


@pytest.mark.parametrize("extra,problem", [(["--mask_type", "decay"], "--mask_type"),
                                           (["--patch_order", "s"], "--patch_order"),
                                           (["--recipe", "deit"], "--drop_path 0.1")])
def test_vit_baseline_refuses_lion_only_options(image_tree, tmp_path, extra, problem):  # noqa: F811
    with pytest.raises(image_script.ScriptError, match=f"{problem}.*not available with --baseline vit"):
        image_script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *IMAGE_TINY, "--baseline", "vit",
                           "--max_train_steps", "1", "--output_dir", str(tmp_path / "o"), *extra])
    assert not (tmp_path / "o" / "model.safetensors").exists()


@pytest.fixture(scope="module")
def bert_run(corpus, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("bert_mlm")
    mlm_script.main([*_data(corpus), *MLM_TINY, "--baseline", "bert", "--num_train_epochs", "2",
                     "--output_dir", str(out), "--overwrite_output_dir", "--seed", "2"])
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return out


def test_bert_baseline_pretrains_through_the_mlm_script(bert_run):
    config = json.loads((bert_run / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForMaskedLM"]
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (16, 2, 32)
    assert not (bert_run / "README.md").exists()
    results = _results(bert_run)
    assert 0.0 <= results["eval_mlm_accuracy"] <= results["eval_mlm_top5_accuracy"] <= 1.0
    assert np.isfinite(results["eval_loss"])
    assert [round(entry["epoch"]) for entry in results["history"]] == [1, 2]
    assert all(entry["seconds"] >= 0 for entry in results["history"])

    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(bert_run), device="cpu")
    assert len(fill("the cat [MASK] on a mat", top_k=3)) == 3


def test_bert_baseline_refuses_lion_only_options(corpus, tmp_path):  # noqa: F811
    with pytest.raises(mlm_script.ScriptError, match="--mask_type: not available with --baseline bert"):
        mlm_script.main([*_data(corpus), *MLM_TINY, "--baseline", "bert", "--mask_type", "lit",
                         "--output_dir", str(tmp_path / "o")])


def test_glue_finetunes_the_bert_baseline(bert_run, glue_files, tmp_path):  # noqa: F811
    out = tmp_path / "sst2"
    files = ["--train_file", str(glue_files / "sst2_train.tsv"), "--validation_file",
             str(glue_files / "sst2_validation.tsv")]
    metrics = glue_script.main(["--model_name_or_path", str(bert_run), "--task_name", "sst2", *files, *TRAINER,
                                "--output_dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    results = _results(out)
    assert results["eval_accuracy"] == pytest.approx(metrics["eval_accuracy"])
    assert any("eval_accuracy" in entry for entry in results["history"])
    assert not (out / "README.md").exists()
    with pytest.raises(glue_script.ScriptError, match="--attention_form applies to LION models only"):
        glue_script.main(["--model_name_or_path", str(bert_run), "--task_name", "sst2", *files, *TRAINER,
                          "--attention_form", "chunk", "--output_dir", str(tmp_path / "o")])


def test_glue_refuses_other_model_types(glue_files, tmp_path):  # noqa: F811
    from transformers import GPT2Config

    folder = tmp_path / "gpt2"
    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(folder)
    with pytest.raises(glue_script.ScriptError, match="'gpt2' checkpoint; this script fine-tunes LION text models"):
        glue_script.main(["--model_name_or_path", str(folder), "--task_name", "sst2", "--train_file",
                          str(glue_files / "sst2_train.tsv"), *TRAINER, "--output_dir", str(tmp_path / "o")])
