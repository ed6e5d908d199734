"""End-to-end runs of examples/image_classification/run_image_classification.py on a generated imagefolder tree."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.scripts import load_script as load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "image_classification" / "run_image_classification.py"
CLASSES = ("bird", "cat", "dog")
TINY = ["--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--image_size", "16", "--patch_size", "4", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--logging_steps", "1", "--learning_rate", "1e-3", "--warmup_steps", "1"]


def load_script():
    return load_file(SCRIPT)


script = load_script()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator; accelerate keeps singletons between them."""
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    """An ImageNet-style tree: <split>/<class>/NNNN.png, a colour per class plus noise."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    colours = {"bird": (200, 40, 40), "cat": (40, 200, 40), "dog": (40, 40, 200)}
    for split, count in (("train", 8), ("validation", 3)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(colours[name]) + rng.normal(0, 30, (20, 20, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def full_run(image_tree, tmp_path_factory) -> Path:
    """8 steps over 6 batches per epoch (the DeiT augmentations all on), checkpoints every 3 steps."""
    out = tmp_path_factory.mktemp("image_full")
    script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY, "--max_train_steps", "8",
                 "--checkpointing_steps", "3", "--model_ema", "--model_ema_decay", "0.9", "--output_dir", str(out),
                 "--overwrite_output_dir", "--seed", "3"])
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    return out


def _results(folder: Path) -> dict:
    return json.loads((folder / "all_results.json").read_text())


def test_output_folder_is_hub_ready_and_pipeline_classifies(full_run, image_tree):
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md"):
        assert (full_run / name).is_file(), name
    results = _results(full_run)
    assert results["train_steps"] == 8 and np.isfinite(results["train_loss"])
    assert 0.0 <= results["eval_top1"] <= results["eval_top3"] == 1.0  # 3 classes: top-3 is always right
    assert "eval_ema_top1" in results
    card = (full_run / "README.md").read_text()
    assert "model-index" in card and "pipeline_tag: image-classification" in card and "library_name: transformers" in card
    assert "Top-1 accuracy" in card and "license: apache-2.0" in card
    config = json.loads((full_run / "config.json").read_text())
    assert config["model_type"] == "lion" and config["mask_type"] == "selective"
    assert sorted(config["id2label"].values()) == list(CLASSES)

    import lion_hf  # noqa: F401
    from transformers import pipeline

    classifier = pipeline("image-classification", model=str(full_run), device="cpu")
    predictions = classifier(Image.open(image_tree / "validation" / "cat" / "0000.png"), top_k=3)
    assert sorted(p["label"] for p in predictions) == list(CLASSES)
    assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-4


@pytest.mark.parametrize("checkpoint", ["checkpoint-3", "checkpoint-6"])  # mid-epoch, and an epoch boundary
def test_resume_gives_the_same_final_loss(full_run, image_tree, tmp_path, checkpoint):
    assert (full_run / checkpoint / "training_state.json").is_file()
    out = tmp_path / "resumed"
    script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY, "--max_train_steps", "8",
                 "--checkpointing_steps", "3", "--model_ema", "--model_ema_decay", "0.9", "--output_dir", str(out),
                 "--seed", "3", "--resume_from_checkpoint", str(full_run / checkpoint)])
    resumed, uninterrupted = _results(out), _results(full_run)
    assert resumed["train_steps"] == 8
    assert resumed["train_loss"] == uninterrupted["train_loss"]
    assert resumed["eval_loss"] == pytest.approx(uninterrupted["eval_loss"], rel=1e-6)
    assert resumed["eval_ema_loss"] == pytest.approx(uninterrupted["eval_ema_loss"], rel=1e-6)


def test_distillation_accumulation_tracking_and_streaming(full_run, image_tree, tmp_path):
    # Hard distillation from a saved classifier (the full run's output), with gradient accumulation.
    out = tmp_path / "distilled"
    results = script.main(["--dataset", "imagefolder", "--train_dir", str(image_tree / "train"),
                           "--validation_dir", str(image_tree / "validation"), *TINY, "--max_train_steps", "2",
                           "--gradient_accumulation_steps", "2", "--teacher_model", str(full_run),
                           "--with_tracking", "--output_dir", str(out)])
    assert results["train_steps"] == 2 and np.isfinite(results["train_loss"])
    assert list((out / "logs").rglob("events.out.tfevents*")), "TensorBoard events were written"
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    # The streaming path (a local imagefolder streamed like a Hub data set).
    out = tmp_path / "streamed"
    results = script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), "--streaming", *TINY,
                           "--max_train_steps", "3", "--output_dir", str(out)])
    assert results["train_steps"] == 3 and results["eval_top3"] == 1.0
    assert (out / "model.safetensors").is_file()


def test_bad_arguments_get_clear_errors(full_run, image_tree, tmp_path):
    with pytest.raises(script.ScriptError, match="is not a folder"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="needs --data_dir or --train_dir"):
        script.main(["--dataset", "imagefolder", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="needs --max_train_steps"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), "--streaming", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="a stream cannot repeat"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), "--streaming", "--max_train_steps", "2",
                     "--repeated_augmentation", "3", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="--repeated_augmentation must be >= 1"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), "--repeated_augmentation", "0",
                     "--output_dir", str(tmp_path / "o")])
    # A checkpoint of another model type.
    from transformers import BertConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37).save_pretrained(bert)
    with pytest.raises(script.ScriptError, match="'bert' checkpoint"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), "--model_name_or_path", str(bert),
                     "--output_dir", str(tmp_path / "o1")])
    # A training checkpoint of another script, and one of a different LION model.
    other = tmp_path / "checkpoint-5"
    other.mkdir()
    (other / "training_state.json").write_text(json.dumps({"script": "run_mlm"}))
    with pytest.raises(script.ScriptError, match="checkpoint of 'run_mlm'"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY, "--output_dir", str(tmp_path / "o2"),
                     "--resume_from_checkpoint", str(other)])
    bigger = [a if a != "16" or i != 1 else "24" for i, a in enumerate(TINY)]  # --hidden_size 24
    with pytest.raises(script.ScriptError, match="holds another model: hidden_size=16"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *bigger, "--output_dir", str(tmp_path / "o3"),
                     "--resume_from_checkpoint", str(full_run / "checkpoint-3")])
    # A non-empty output folder is not overwritten silently.
    with pytest.raises(script.ScriptError, match="not empty"):
        script.main(["--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY, "--output_dir", str(full_run)])


def test_command_line_reports_errors_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dataset", "imagefolder", "--train_dir", str(tmp_path / "nope"),
                           "--output_dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: --train_dir" in done.stderr and "Traceback" not in done.stderr


def test_two_process_cpu_run_with_the_multi_cpu_config(image_tree, tmp_path):
    """DDP over 2 CPU processes (gloo), through the shipped accelerate config."""
    out = tmp_path / "ddp"
    config = ROOT / "examples" / "accelerate_configs" / "multi_cpu.yaml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), "--num_processes", "2",
         str(SCRIPT), "--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY, "--max_train_steps", "4",
         "--checkpointing_steps", "2", "--output_dir", str(out)],
        capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    results = _results(out)
    assert results["train_steps"] == 4 and np.isfinite(results["train_loss"])
    # Both processes saved their random states: the checkpoint is resumable on 2 processes.
    assert (out / "checkpoint-2" / "random_states_0.pkl").is_file()
    assert (out / "checkpoint-2" / "random_states_1.pkl").is_file()


def test_push_to_hub_uploads_model_processor_and_card(image_tree, tmp_path):
    """--push_to_hub against the in-memory fake Hub of tests/fake_hub.py (loopback only)."""
    fake_hub = pytest.importorskip("tests.fake_hub")
    with fake_hub.serve_fake_hub(max_lifetime=150) as hub:
        env = fake_hub.subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake_token", OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--dataset", "imagefolder", "--data_dir", str(image_tree), *TINY,
             "--max_train_steps", "2", "--push_to_hub", "--hub_model_id", "lion-tests/lion-push",
             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=150, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        repo = hub.repos["lion-tests/lion-push"]
        files = repo.commits[repo.branches["main"]]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "model-index" in card and "Top-1 accuracy" in card and "pipeline_tag: image-classification" in card
    assert json.loads(files["config.json"])["model_type"] == "lion"
