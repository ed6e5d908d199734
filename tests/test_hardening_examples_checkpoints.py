"""Checkpoints of the example scripts: EMA without pickles, run identity, atomic writes, save limit, output guard.

Unit tests of lion_hf.training.checkpoints with a stand-in accelerator, then short runs of the real scripts.
"""

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lion_hf.training import (
    COMPLETE_MARKER,
    EMA_FILE,
    CheckpointError,
    OutputGuard,
    checkpoint_problem,
    find_latest_checkpoint,
    read_training_state,
    run_differences,
    run_fingerprint,
    save_checkpoint,
    validate_save_total_limit,
)
from tests.scripts import load_script as load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--hidden_size", "16", "--num_hidden_layers", "1", "--num_attention_heads", "2", "--intermediate_size", "16",
        "--image_size", "8", "--patch_size", "4", "--per_device_train_batch_size", "4",
        "--per_device_eval_batch_size", "8", "--logging_steps", "1", "--learning_rate", "1e-3", "--warmup_steps", "1"]


def _load(name: str, path: Path):
    return load_file(path, name)


image_script = _load("run_image_classification", ROOT / "examples" / "image_classification" / "run_image_classification.py")


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _reset():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


# --------------------------------------------------------------------------------------------------
# Unit tests with a stand-in accelerator
# --------------------------------------------------------------------------------------------------
class FakeAccelerator:
    is_main_process = True

    def __init__(self, fail_after_first_file: bool = False):
        self.fail = fail_after_first_file

    def wait_for_everyone(self):
        pass

    def save_state(self, path):
        Path(path, "model.safetensors").write_bytes(b"x" * 100)
        if self.fail:
            raise KeyboardInterrupt("killed while writing")
        Path(path, "optimizer.bin").write_bytes(b"y" * 50)


def _run(seed=0, lr=1e-3):
    return run_fingerprint({"hidden_size": 16}, {"dataset": "digits"}, seed, {"learning_rate": lr})


def _save(out: Path, step: int, run: dict, limit=None, accelerator=None):
    state = {"script": "s", "completed_steps": step, "epoch": 0, "batches_in_epoch": step, "run": run}
    return save_checkpoint(accelerator or FakeAccelerator(), out, step, state=state, limit=limit)


def test_checkpoint_is_complete_only_with_its_marker_and_files(tmp_path):
    run = _run()
    path = _save(tmp_path, 2, run)
    assert checkpoint_problem(path) is None and read_training_state(path, "s")["completed_steps"] == 2
    assert not list(tmp_path.glob(".checkpoint-*")), "the temporary folder was renamed"
    (path / "optimizer.bin").write_bytes(b"y" * 10)  # truncated after the fact
    assert "optimizer.bin has 10 bytes" in checkpoint_problem(path)
    (path / COMPLETE_MARKER).unlink()
    assert "no completion marker" in checkpoint_problem(path)
    with pytest.raises(CheckpointError, match="incomplete"):
        read_training_state(path, "s")


def test_a_kill_while_writing_leaves_no_checkpoint_folder(tmp_path):
    run = _run()
    _save(tmp_path, 2, run)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 4, run, accelerator=FakeAccelerator(fail_after_first_file=True))
    assert not (tmp_path / "checkpoint-4").exists() and (tmp_path / ".checkpoint-4.tmp").is_dir()
    notices = []
    path, _ = find_latest_checkpoint(tmp_path, run, "s", log=notices.append)
    assert path.name == "checkpoint-2" and notices == []
    _save(tmp_path, 6, run)  # the next save clears the leftover
    assert not (tmp_path / ".checkpoint-4.tmp").exists()


def test_latest_skips_incomplete_and_other_runs_with_a_notice(tmp_path):
    mine, other = _run(seed=0), _run(seed=1)
    _save(tmp_path, 2, mine)
    _save(tmp_path, 4, mine)
    _save(tmp_path, 6, other)
    (tmp_path / "checkpoint-4" / COMPLETE_MARKER).unlink()
    notices = []
    path, _ = find_latest_checkpoint(tmp_path, mine, "s", log=notices.append)
    assert path.name == "checkpoint-2"
    assert "skipping checkpoint-6: it belongs to another run (differs in seed 1 -> 0" in notices[0]
    assert "skipping checkpoint-4: incomplete" in notices[1]
    path, _ = find_latest_checkpoint(tmp_path, other, "s", log=notices.append)
    assert path.name == "checkpoint-6"
    assert run_differences(_run(lr=2e-3), _run(lr=1e-3)) == ["arguments (learning_rate: 0.002 -> 0.001)"]
    assert run_differences(mine, _run(seed=0)) == []


def test_save_limit_keeps_the_newest_and_never_touches_other_runs(tmp_path):
    mine, other = _run(seed=0), _run(seed=1)
    _save(tmp_path, 9, other)  # an earlier run's checkpoint, of a later step
    for step in (2, 4, 6):
        _save(tmp_path, step, mine, limit=2)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6", "checkpoint-9"]
    _save(tmp_path, 8, mine, limit=1)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-8", "checkpoint-9"]
    # Re-saving a step (resumed run) replaces the folder and keeps it, whatever the others' steps.
    _save(tmp_path, 2, mine, limit=1)
    assert (tmp_path / "checkpoint-2").is_dir() and (tmp_path / "checkpoint-9").is_dir()
    assert not (tmp_path / "checkpoint-8").exists()
    for bad in (0, -1):
        with pytest.raises(CheckpointError, match="at least 1"):
            validate_save_total_limit(bad)


def test_output_guard_refuses_foreign_files_but_not_its_own(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    guard = OutputGuard(out)
    guard.check(overwrite=False, resuming=False)  # empty: fine
    guard.snapshot()
    (out / "README.md").write_text("card")
    (out / "checkpoint-2").mkdir()
    (out / "runs").mkdir()
    guard.record()
    guard.check(overwrite=False, resuming=True)  # only its own files
    with pytest.raises(CheckpointError, match="not empty"):
        guard.check(overwrite=False, resuming=False)
    (out / "README.md").write_text("edited by the user")
    with pytest.raises(CheckpointError, match=r"did not write \(README.md\)"):
        guard.check(overwrite=False, resuming=True)
    guard.check(overwrite=True, resuming=True)


# --------------------------------------------------------------------------------------------------
# The image script
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("validation", 2)):
        for c, name in enumerate(("a", "b")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(80 + 100 * c + rng.normal(0, 20, (8, 8, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


def _image_args(tree, out, *extra):
    return ["--dataset", "imagefolder", "--data_dir", str(tree), *TINY, "--recipe", "small", "--output_dir", str(out),
            *extra]


@pytest.fixture(scope="module")
def ema_run(tree, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ema_run")
    image_script.main(_image_args(tree, out, "--max_train_steps", "4", "--checkpointing_steps", "2", "--model_ema",
                                  "--model_ema_decay", "0.5", "--overwrite_output_dir", "--seed", "1"))
    _reset()
    return out


class _Sentinel:
    """Unpickling this creates a file: proof that a pickle in the checkpoint was loaded."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_ema_goes_to_safetensors_and_crafted_pickles_are_not_loaded(ema_run, tree, tmp_path):
    checkpoint = ema_run / "checkpoint-2"
    assert (checkpoint / EMA_FILE).is_file() and not list(checkpoint.glob("custom_checkpoint_*.pkl"))
    # A crafted pickle next to the EMA is never unpickled, and the resumed run matches the uninterrupted one.
    sentinel = tmp_path / "pwned"
    (checkpoint / "custom_checkpoint_0.pkl").write_bytes(pickle.dumps(_Sentinel(sentinel)))
    out = tmp_path / "resumed"
    args = _image_args(tree, out, "--max_train_steps", "4", "--checkpointing_steps", "2", "--model_ema",
                       "--model_ema_decay", "0.5", "--seed", "1", "--resume_from_checkpoint", str(checkpoint))
    with pytest.raises(image_script.ScriptError, match="custom_checkpoint_0.pkl: pickled state .* not loaded"):
        image_script.main(args)
    _reset()
    assert not sentinel.exists()
    (checkpoint / "custom_checkpoint_0.pkl").unlink()
    results = image_script.main(args)
    _reset()
    expected = json.loads((ema_run / "all_results.json").read_text())
    assert results["eval_ema_loss"] == pytest.approx(expected["eval_ema_loss"], rel=1e-6)
    # A checkpoint in the old pickled layout (EMA only in custom_checkpoint_0.pkl) is refused, not unpickled.
    legacy = tmp_path / "checkpoint-2"
    import shutil

    shutil.copytree(checkpoint, legacy)
    (legacy / EMA_FILE).unlink()
    marker = json.loads((legacy / COMPLETE_MARKER).read_text())
    marker["files"].pop(EMA_FILE)
    (legacy / COMPLETE_MARKER).write_text(json.dumps(marker))
    with pytest.raises(image_script.ScriptError, match=f"has no {EMA_FILE} for --model_ema"):
        image_script.main(_image_args(tree, tmp_path / "o", "--max_train_steps", "4", "--model_ema", "--seed", "1",
                                      "--model_ema_decay", "0.5", "--resume_from_checkpoint", str(legacy)))
    assert not sentinel.exists()


def test_latest_takes_this_runs_checkpoint_and_the_limit_keeps_it(tree, tmp_path):
    out = tmp_path / "out"
    # Run A: checkpoints 2 and 4. Run B (another seed) overwrites the folder, limit 1, checkpoint at 2.
    image_script.main(_image_args(tree, out, "--max_train_steps", "4", "--checkpointing_steps", "2", "--seed", "1"))
    _reset()
    run_b = ["--max_train_steps", "3", "--checkpointing_steps", "2", "--save_total_limit", "1", "--seed", "2"]
    image_script.main(_image_args(tree, out, *run_b, "--overwrite_output_dir"))
    _reset()
    state = json.loads((out / "checkpoint-2" / "training_state.json").read_text())
    assert state["run"]["seed"] == 2, "run B's own checkpoint-2 is there"
    assert (out / "checkpoint-4").is_dir(), "run A's checkpoint is not B's to delete"
    # latest continues B from its checkpoint-2 (one step left), not A's step 4.
    results = image_script.main(_image_args(tree, out, *run_b, "--resume_from_checkpoint", "latest"))
    _reset()
    assert results["train_steps"] == 3
    # Another run's `latest`: nothing of its own, a clear error naming what differs.
    with pytest.raises(image_script.ScriptError, match=r"no complete checkpoint of this run.*seed"):
        image_script.main(_image_args(tree, out, "--max_train_steps", "3", "--seed", "7",
                                      "--resume_from_checkpoint", "latest"))


def test_latest_falls_back_over_a_half_written_checkpoint(ema_run, tree, tmp_path, caplog):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(ema_run, out)
    # A kill while checkpoint-4 was being written: its weights are truncated.
    weights = out / "checkpoint-4" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    args = _image_args(tree, out, "--max_train_steps", "4", "--checkpointing_steps", "2", "--model_ema",
                       "--model_ema_decay", "0.5", "--seed", "1")
    with caplog.at_level("WARNING"):
        results = image_script.main([*args, "--resume_from_checkpoint", "latest"])
    _reset()
    assert "skipping checkpoint-4: incomplete: model.safetensors has 100 bytes" in caplog.text
    expected = json.loads((ema_run / "all_results.json").read_text())
    assert results["train_loss"] == expected["train_loss"], "resumed from checkpoint-2, exactly"
    assert checkpoint_problem(out / "checkpoint-4") is None, "rewritten whole"
    shutil.rmtree(out / "checkpoint-2")
    (out / "checkpoint-4" / COMPLETE_MARKER).unlink()
    with pytest.raises(image_script.ScriptError, match="is incomplete: no completion marker"):
        image_script.main([*args, "--resume_from_checkpoint", str(out / "checkpoint-4")])


def test_resume_never_overwrites_a_users_file(ema_run, tree, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    args = _image_args(tree, out, "--max_train_steps", "4", "--model_ema", "--model_ema_decay", "0.5", "--seed", "1",
                       "--resume_from_checkpoint", str(ema_run / "checkpoint-2"))
    with pytest.raises(image_script.ScriptError, match=r"holds files this script did not write \(README.md\)"):
        image_script.main(args)
    assert (out / "README.md").read_text() == "my notes"
    # Resuming into the run's own folder is fine (its files are recorded), as is --overwrite_output_dir.
    _reset()
    image_script.main([*args, "--overwrite_output_dir"])
    assert (out / "README.md").read_text() != "my notes"


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_save_total_limit_must_keep_a_checkpoint(tree, tmp_path, limit):
    with pytest.raises(image_script.ScriptError, match="--save_total_limit must be at least 1"):
        image_script.main(_image_args(tree, tmp_path / "o", "--save_total_limit", limit))
