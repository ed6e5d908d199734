"""Bad labels, flags and output folders for examples/glue/run_glue.py: errors name the file, line and value."""

import json
import subprocess
import sys

import pytest

from tests.test_examples_glue import SCRIPT, TRAINER, checkpoint, fresh_accelerate_state, glue_files, script  # noqa: F401


def _tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("task,bad,reason", [
    ("sst2", "1.7", "is not a whole number"),
    ("sst2", "-1", r"is out of range: the classes are 0..1"),
    ("sst2", "2", r"is out of range"),
    ("sst2", "", "is empty"),
    ("sst2", "maybe", "is neither a class id nor a class name"),
    ("stsb", "high", "is not a number"),
])
def test_bad_labels_are_refused_with_file_line_and_value(tmp_path, task, bad, reason):
    header = ["sentence", "label"] if task == "sst2" else ["sentence1", "sentence2", "label"]
    good = ["the cat"] * (len(header) - 1)
    rows = [[*good, 1], [*good, 0], [*good, bad], [*good, 1]]
    train = _tsv(tmp_path / "train.tsv", header, rows)
    valid = _tsv(tmp_path / "dev.tsv", header, [[*good, 1]])
    with pytest.raises(script.ScriptError, match=rf"train.tsv, line 4: the label .*{reason}"):
        script.main(["--model_name_or_path", str(tmp_path), "--task_name", task, "--train_file", str(train),
                     "--validation_file", str(valid), "--do_train", "--output_dir", str(tmp_path / "o")])


def test_label_values():
    names = ["negative", "positive"]
    assert script.label_value(1, names) == 1 and script.label_value(1.0, names) == 1
    assert script.label_value("positive", names) == 1 and script.label_value("0", names) == 0
    assert script.label_value("3.25", None) == 3.25
    for bad in (1.7, -1, True, float("nan"), None):
        with pytest.raises(ValueError):
            script.label_value(bad, names)


@pytest.mark.parametrize("name", ["SST2", "SST-2", "Sst2"])
def test_task_names_are_case_insensitive(tmp_path, name):
    train = _tsv(tmp_path / "train.tsv", ["sentence", "label"], [["a", 0], ["b", 9]])
    # Accepted as sst2: the run gets as far as the labels (and names the bad one).
    with pytest.raises(script.ScriptError, match="line 3: the label 9 is out of range"):
        script.main(["--model_name_or_path", str(tmp_path), "--task_name", name, "--train_file", str(train),
                     "--do_train", "--output_dir", str(tmp_path / "o")])


def test_dataset_name_with_local_files_is_refused(glue_files, tmp_path):
    with pytest.raises(script.ScriptError, match="--dataset_name 'someone/else' would be ignored"):
        script.main(["--model_name_or_path", str(tmp_path), "--task_name", "sst2", "--dataset_name", "someone/else",
                     "--train_file", str(glue_files / "sst2_train.tsv"), "--output_dir", str(tmp_path / "o")])


def test_a_users_file_is_not_overwritten_without_the_flag(checkpoint, glue_files, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    args = ["--model_name_or_path", str(checkpoint), "--task_name", "sst2", "--train_file",
            str(glue_files / "sst2_train.tsv"), "--validation_file", str(glue_files / "sst2_validation.tsv"),
            *TRAINER, "--output_dir", str(out)]
    with pytest.raises(script.ScriptError, match="is not empty; pass --overwrite_output_dir"):
        script.main(args)
    assert (out / "README.md").read_text() == "my notes"
    script.main([*args, "--overwrite_output_dir"])
    assert "model-index" in (out / "README.md").read_text()
    assert json.loads((out / "all_results.json").read_text())["task"] == "sst2"


def test_help_states_each_default_of_the_script_once():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for flag in ("--tokenizer_name", "--task_name", "--overwrite_output_dir", "--metric_source"):
        block = text.split(f" {flag} ", 1)[1].split(" --", 1)[0]
        assert block.count("default") <= 1, block
