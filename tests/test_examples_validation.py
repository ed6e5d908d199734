"""examples/validation: the driver runs the example scripts and records each run; the report rebuilds records from
logs, prints the tables and draws the learning curves."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scripts import load_script as load_file

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    return load_file(path, name)


driver = _load("run_validation", ROOT / "examples" / "validation" / "run_validation.py")
report = _load("validation_report", ROOT / "examples" / "validation" / "report.py")
TINY = {"--hidden_size": "16", "--num_hidden_layers": "1", "--num_attention_heads": "2", "--image_size": "16",
        "--num_train_epochs": "2", "--per_device_train_batch_size": "4", "--per_device_eval_batch_size": "8",
        "--mixed_precision": "no"}


@pytest.fixture
def cifar_tree(tmp_path):
    """``<root>/cifar10/{train,test}/<class>/NNNN.jpg``, as the CIFAR-10 JPEG copy is laid out."""
    rng = np.random.default_rng(random.randrange(1 << 30))
    colours = {"airplane": (200, 60, 60), "cat": (60, 200, 60), "ship": (60, 60, 200)}
    for split, count in (("train", 8), ("test", 4)):
        for name, colour in colours.items():
            folder = tmp_path / "cifar10" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(colour) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=90)
    return tmp_path


@pytest.fixture
def tiny_recipe(monkeypatch):
    recipe = list(driver.CIFAR_RECIPE)
    for flag, value in TINY.items():
        recipe[recipe.index(flag) + 1] = value
    monkeypatch.setattr(driver, "CIFAR_RECIPE", recipe)
    return recipe


def test_driver_runs_each_model_through_the_script_and_records_it(cifar_tree, tiny_recipe, tmp_path):
    results = tmp_path / "results"
    driver.main(["--task", "cifar10", "--models", "vit,lion-d", "--data_root", str(cifar_tree), "--output_root",
                 str(tmp_path / "runs"), "--results_dir", str(results), "--parallel", "2", "--num_workers", "0"])
    for model, model_type in (("vit", "vit"), ("lion-d", "lion")):
        record = json.loads((results / f"cifar10-{model}.json").read_text())
        assert record["returncode"] == 0 and record["model_type"] == model_type
        assert record["parallel_runs"] == 2 and record["seed"] == 0
        # the recorded command is the one that ran: the recipe plus the model's own flags
        assert "--recipe small" in record["command"] and " ".join(driver.CIFAR_MODELS[model]) in record["command"]
        assert "--hidden_size 16" in record["command"]
        run = json.loads((tmp_path / "runs" / "cifar10" / model / "all_results.json").read_text())
        assert record["results"] == run
        assert [entry["epoch"] for entry in run["history"]] == [1, 2]
        import lion_hf  # noqa: F401  (registers LION with the Auto classes)
        from transformers import AutoModelForImageClassification

        saved = AutoModelForImageClassification.from_pretrained(tmp_path / "runs" / "cifar10" / model)
        assert record["num_parameters"] == sum(p.numel() for p in saved.parameters())
    table = report.cifar_table(report.load(results)["cifar10"])
    assert table.splitlines()[2].startswith("| ViT (transformers, SDPA) |"), "the baseline first"
    assert "| LION-D |" in table and "+0.00 | 1.00 |" in table.splitlines()[2]
    pytest.importorskip("matplotlib")
    written = report.figures(report.load(results), tmp_path / "figures", "test")
    assert [p.name for p in written] == ["cifar10_curves.png"] and written[0].stat().st_size > 10_000


def test_driver_reports_a_failed_run_and_goes_on(cifar_tree, tiny_recipe, tmp_path, capsys):
    results = tmp_path / "results"
    driver.main(["--task", "cifar10", "--models", "vit", "--data_root", str(tmp_path / "missing"), "--output_root",
                 str(tmp_path / "runs"), "--results_dir", str(results), "--num_workers", "0"])
    record = json.loads((results / "cifar10-vit.json").read_text())
    assert record["returncode"] != 0 and record["results"] is None
    assert "is not a folder" in capsys.readouterr().out, "the log's tail is shown"
    assert "failed (exit" in report.cifar_table({"vit": record})


def test_driver_refuses_unknown_models(tmp_path):
    with pytest.raises(SystemExit):
        driver.main(["--task", "text", "--models", "vit", "--data_root", str(tmp_path), "--output_root",
                     str(tmp_path), "--results_dir", str(tmp_path)])


def _log_line(stamp: str, message: str) -> str:
    return f"2026-12-01 {stamp},000 INFO run_image_classification: [RANK 0] {message}\n"


def test_record_rebuilt_from_a_log(tmp_path):
    final = {"train_loss": 1.2, "train_steps": 6, "train_seconds": 30.5, "eval_top1": 0.5, "eval_top5": 0.9,
             "eval_loss": 1.1}
    command = ("python examples/image_classification/run_image_classification.py --mask_type decay --seed 7 "
               "--output_dir runs/x")
    text = (f"$ {command}\n" + _log_line("10:00:00", "3 classes; 4 images per step; learning rate 0.001; 6 steps")
            + "train:  50%|#####     | 3/6 [00:01<00:01]\r                \r"  # tqdm's bar shares the line
            + _log_line("10:00:12", "step 3 epoch 1: top1 0.4000, top5 0.8000, loss 1.3000")
            + _log_line("10:00:31", "step 6 epoch 2: top1 0.5000, top5 0.9000, loss 1.1000")
            + _log_line("10:00:32", f"saved the model, image processor and model card to runs/x: {json.dumps(final)}"))
    log = tmp_path / "run.log"
    log.write_text(text)
    record = report.record_from_log("cifar10", "lion-d", log, parallel_runs=4)
    assert record["command"] == command and record["seed"] == 7 and record["source"] == "log"
    history = record["results"].pop("history")
    assert record["results"] == final
    assert history == [{"step": 3, "epoch": 1, "seconds": 12.0, "top1": 0.4, "top5": 0.8, "loss": 1.3},
                       {"step": 6, "epoch": 2, "seconds": 31.0, "top1": 0.5, "top5": 0.9, "loss": 1.1}]
    assert record["num_parameters"] == report.cifar_parameters("lion-d") > 0
    log.write_text(text.rsplit("\n", 2)[0] + "\n")  # the run did not finish
    with pytest.raises(ValueError, match="did not finish"):
        report.record_from_log("cifar10", "lion-d", log)


def test_cifar_parameters_are_those_of_the_models_the_script_builds():
    from transformers import ViTConfig, ViTForImageClassification

    vit = ViTForImageClassification(ViTConfig(image_size=32, patch_size=4, hidden_size=192, num_hidden_layers=6,
                                              num_attention_heads=3, intermediate_size=768, num_labels=10))
    assert report.cifar_parameters("vit") == sum(p.numel() for p in vit.parameters())
    assert report.cifar_parameters("lion-s") != report.cifar_parameters("lion-d"), "LION-S adds its gate"
