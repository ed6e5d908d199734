"""Bad data and flags for examples/image_classification/run_image_classification.py: clear errors, right numbers."""

import os
import shutil
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
TINY = ["--hidden_size", "16", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--intermediate_size", "16",
        "--image_size", "8", "--patch_size", "4", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--logging_steps", "1", "--learning_rate", "1e-3", "--warmup_steps", "1",
        "--recipe", "small"]
COLOURS = {"bird": (200, 40, 40), "cat": (40, 200, 40), "dog": (40, 40, 200)}


def _load():
    return load_file(SCRIPT)


script = _load()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    _reset()


def _reset():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _write_tree(root: Path, counts: dict[str, dict[str, int]]) -> Path:
    rng = np.random.default_rng(0)
    for split, classes in counts.items():
        for name, count in classes.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def tree(tmp_path) -> Path:
    """train: three classes; validation: only cat and dog (bird is missing)."""
    return _write_tree(tmp_path / "data", {"train": {"bird": 4, "cat": 4, "dog": 4}, "validation": {"cat": 2, "dog": 2}})


def test_separate_folders_map_validation_labels_by_class_name(tree, tmp_path):
    run = [*TINY, "--max_train_steps", "2", "--seed", "4"]
    joint = script.main(["--dataset", "imagefolder", "--data_dir", str(tree), *run, "--output_dir", str(tmp_path / "a")])
    _reset()
    separate = script.main(["--dataset", "imagefolder", "--train_dir", str(tree / "train"), "--validation_dir",
                            str(tree / "validation"), *run, "--output_dir", str(tmp_path / "b")])
    # Same model, same images: the same numbers whichever way the folders are given.
    assert separate["eval_loss"] == pytest.approx(joint["eval_loss"], rel=1e-6)
    assert separate["eval_top1"] == joint["eval_top1"]


def test_a_validation_class_the_training_set_lacks_is_refused(tmp_path):
    data = _write_tree(tmp_path / "d", {"train": {"cat": 4, "dog": 4}, "validation": {"bird": 2, "cat": 2}})
    with pytest.raises(script.ScriptError, match="classes the training set lacks: bird"):
        script.main(["--dataset", "imagefolder", "--train_dir", str(data / "train"), "--validation_dir",
                     str(data / "validation"), *TINY, "--output_dir", str(tmp_path / "o")])


def test_empty_class_folder_is_refused_up_front(tree, tmp_path):
    shutil.rmtree(tree / "train" / "bird")
    (tree / "train" / "bird").mkdir()
    (tree / "train" / "bird" / "notes.txt").write_text("not an image")
    for data in (["--data_dir", str(tree)], ["--train_dir", str(tree / "train"), "--validation_dir",
                                             str(tree / "validation")]):
        with pytest.raises(script.ScriptError, match="class folder.* without images .*: bird"):
            script.main(["--dataset", "imagefolder", *data, *TINY, "--output_dir", str(tmp_path / "o")])


def test_corrupt_images_are_named_up_front_or_skipped_with_a_count(tree, tmp_path, caplog):
    (tree / "train" / "cat" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    broken = tree / "train" / "dog" / "002.png"
    broken.write_bytes(broken.read_bytes()[:60])  # truncated
    args = ["--dataset", "imagefolder", "--data_dir", str(tree), *TINY, "--max_train_steps", "1"]
    with pytest.raises(script.ScriptError, match=r"2 unreadable image\(s\) in the training set: .*cat/001.png"):
        script.main([*args, "--output_dir", str(tmp_path / "o")])
    _reset()
    with caplog.at_level("WARNING"):
        results = script.main([*args, "--image_check", "skip", "--output_dir", str(tmp_path / "s")])
    assert results["train_steps"] == 1
    assert "left out 2 unreadable image(s) of 12 in the training set" in caplog.text
    _reset()
    # Without the up-front check the first bad image stops the run with its name, not a bare decoder error.
    with pytest.raises(script.ScriptError, match=r"cannot read the image .*(cat/001|dog/002)\.png"):
        script.main([*args, "--image_check", "none", "--max_train_steps", "6", "--output_dir", str(tmp_path / "n")])


@pytest.mark.parametrize("flags,message", [
    (["--data_dir", "{tree}"], "--data_dir applies to --dataset imagefolder, not to --dataset digits"),
    (["--dataset", "imagefolder", "--data_dir", "{tree}", "--dataset_config", "x"], "--dataset_config applies to a Hub"),
    (["--dataset", "imagefolder", "--train_dir", "{tree}/train", "--validation_dir", "{tree}/validation",
      "--eval_split", "test"], "--eval_split applies to .* with --train_dir"),
    (["--dataset", "imagefolder", "--data_dir", "{tree}", "--train_dir", "{tree}/train"], "either --data_dir"),
    (["--dataset", "imagefolder", "--data_dir", "{tree}", "--validation_dir", "{tree}/validation"], "either --data_dir"),
    (["--preset", "lion-s-tiny-patch16-224", "--mask_type", "lit"], "--mask_type would be ignored"),
    (["--hidden_size", "30", "--num_attention_heads", "4"], "cannot build the model: .*multiple of"),
    (["--per_device_train_batch_size", "0"], "must be at least 1"),
    (["--smoothing", "1.5"], r"--smoothing must be in \[0, 1\]"),
])
def test_flags_that_would_be_ignored_or_break_later_are_refused(tree, tmp_path, flags, message):
    flags = [f.format(tree=tree) for f in flags]
    with pytest.raises(script.ScriptError, match=message):
        script.main([*flags, "--output_dir", str(tmp_path / "o"), "--max_train_steps", "1"])


def test_the_scaled_learning_rate_is_logged_and_the_small_recipe_is_named(tree, tmp_path, caplog):
    base = ["--dataset", "imagefolder", "--data_dir", str(tree), "--output_dir", str(tmp_path / "o")]
    small = script.parse_args([*base, "--recipe", "small"])
    assert (small.mixup, small.cutmix, small.rand_augment, small.reprob, small.repeated_augmentation) == \
        (0.0, 0.0, "none", 0.0, 1)
    deit = script.parse_args(base)
    assert (deit.mixup, deit.rand_augment, deit.repeated_augmentation) == (0.8, "rand-m9-mstd0.5-inc1", 3)
    assert script.parse_args([*base, "--recipe", "small", "--mixup", "0.3"]).mixup == 0.3  # a flag beats the recipe
    args = [*base, *TINY[:TINY.index("--learning_rate")]]  # the recipe's learning rate, scaled to the batch
    with caplog.at_level("INFO"):
        script.main([*args, "--max_train_steps", "1", "--repeated_augmentation", "1"])
    # 5e-4 x 4 / 512, said in the log with where it comes from.
    assert "learning rate 3.91e-06 (--recipe deit: 0.0005 x total batch 4 / 512; that is small" in caplog.text
    assert "try --recipe small" in caplog.text


def test_help_states_each_default_once():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "(default: None)" not in text and "default: 16 for digits, else 224" in text
    blocks = text.split(" --")[1:]
    assert blocks and all(block.count("default") <= 1 for block in blocks), [b for b in blocks if b.count("default") > 1]


def test_multi_cpu_config_without_use_cpu_fails_fast(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}
    env.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    config = ROOT / "examples" / "accelerate_configs" / "multi_cpu.yaml"
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                           "--num_processes", "2", str(SCRIPT), "--dataset", "digits", "--max_train_steps", "1",
                           "--output_dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=180, env=env)
    if "ACCELERATE_USE_CPU" not in done.stderr and done.returncode == 0:
        pytest.skip("this machine has GPUs: the config runs on them")
    assert done.returncode != 0
    assert "2 processes were launched (WORLD_SIZE=2) but each runs on its own" in done.stderr
    assert "ACCELERATE_USE_CPU=1" in done.stderr
    assert not (tmp_path / "o" / "model.safetensors").exists()


def test_log_lines_do_not_run_into_the_progress_bar(tree, tmp_path):
    import re

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--dataset", "imagefolder", "--data_dir", str(tree), *TINY,
                           "--max_train_steps", "3", "--eval_steps", "1", "--output_dir", str(tmp_path / "o")],
                          capture_output=True, timeout=120, env=env)  # bytes: keep the bar's carriage returns
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr[-2000:]
    segments = re.split(r"[\r\n]", stderr)
    logged = [s for s in segments if re.search(r"INFO run_image_classification: (\[RANK 0\] )?step \d", s)]
    assert len(logged) >= 2, stderr[-2000:]  # evaluations logged while the bar was shown
    assert all(re.match(r"\s*\d{4}-\d\d-\d\d ", s) for s in logged), [s for s in logged if not s[:1].isdigit()]
    assert any("train:" in s and "%|" in s for s in segments), "the progress bar was drawn"


def test_max_train_samples_takes_a_subset_of_every_class(tree, tmp_path):
    # The folder is sorted by class: the first 6 images would be bird and cat only (4 + 2).
    results = script.main(["--dataset", "imagefolder", "--data_dir", str(tree), *TINY, "--max_train_samples", "6",
                           "--max_train_steps", "1", "--seed", "0", "--output_dir", str(tmp_path / "o")])
    assert results["train_steps"] == 1
