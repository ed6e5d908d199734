"""End-to-end runs of examples/glue/run_glue.py (Trainer) on generated GLUE-style TSV files."""

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import load_script as load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "glue" / "run_glue.py"
WORDS = "the cat dog sat on a mat and ran to house big small red blue green tree bird fish".split()
TRAINER = ["--do_train", "--do_eval", "--max_steps", "4", "--per_device_train_batch_size", "8",
           "--per_device_eval_batch_size", "16", "--learning_rate", "1e-3", "--use_cpu", "--report_to", "none",
           "--save_strategy", "no", "--logging_steps", "2", "--seed", "0"]


def load_script():
    return load_file(SCRIPT)


script = load_script()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny (untrained) LION MLM checkpoint with a WordPiece tokenizer, as run_mlm.py would save."""
    import lion_hf
    from transformers import BertTokenizer

    root = tmp_path_factory.mktemp("lion_mlm")
    (root / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "'", '"']) + "\n")
    tokenizer = BertTokenizer(str(root / "vocab.txt"))
    out = root / "model"
    config = lion_hf.LionConfig(modality="text", mask_type="decay", vocab_size=len(tokenizer),
                                pad_token_id=tokenizer.pad_token_id, hidden_size=16, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    lion_hf.LionForMaskedLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def glue_files(tmp_path_factory) -> Path:
    """SST-2 (single sentence), MRPC (pairs) and STS-B (regression) in the Hub's column layout."""
    root = tmp_path_factory.mktemp("glue")
    rng = random.Random(0)

    def sentence(n=6):
        return " ".join(rng.choice(WORDS) for _ in range(n))

    for split, count in (("train", 32), ("validation", 16)):
        with open(root / f"sst2_{split}.tsv", "w") as f:
            f.write("sentence\tlabel\tidx\n")
            for i in range(count):
                label = rng.randint(0, 1)
                # A quote inside the text: the TSV must be read verbatim.
                f.write(f"{sentence()} {'red' if label else 'blue'} \"\t{label}\t{i}\n")
        with open(root / f"mrpc_{split}.tsv", "w") as f:
            f.write("sentence1\tsentence2\tlabel\tidx\n")
            for i in range(count):
                f.write(f"{sentence()}\t{sentence()}\t{rng.randint(0, 1)}\t{i}\n")
        with open(root / f"stsb_{split}.tsv", "w") as f:
            f.write("sentence1\tsentence2\tlabel\tidx\n")
            for i in range(count):
                f.write(f"{sentence()}\t{sentence()}\t{rng.uniform(0, 5):.3f}\t{i}\n")
    return root


def _files(glue_files: Path, task: str) -> list[str]:
    return ["--train_file", str(glue_files / f"{task}_train.tsv"),
            "--validation_file", str(glue_files / f"{task}_validation.tsv")]


@pytest.mark.parametrize("task,keys", [("sst2", ["eval_accuracy"]), ("mrpc", ["eval_accuracy", "eval_f1"]),
                                       ("stsb", ["eval_pearson", "eval_spearmanr"])])
def test_glue_task_trains_evaluates_and_writes_results(checkpoint, glue_files, tmp_path, task, keys):
    out = tmp_path / task
    metrics = script.main(["--model_name_or_path", str(checkpoint), "--task_name", task, *_files(glue_files, task),
                           *TRAINER, "--output_dir", str(out)])
    results = json.loads((out / "all_results.json").read_text())
    assert results["task"] == task
    for key in keys:
        assert key in results and np.isfinite(results[key]), key
        assert results[key] == pytest.approx(metrics[key])
    assert results["eval_samples"] == 16 and results["train_samples"] == 32
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LionForSequenceClassification"]
    if task == "stsb":
        assert config["problem_type"] == "regression" and len(config["id2label"]) == 1
    else:
        assert config["problem_type"] == "single_label_classification"
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-classification" in card and f"{task} {keys[0][5:]}" in card


def test_bad_arguments_get_clear_errors(checkpoint, glue_files, tmp_path):
    with pytest.raises(script.ScriptError, match="unknown GLUE task 'sst'"):
        script.main(["--model_name_or_path", str(checkpoint), "--task_name", "sst", "--output_dir", str(tmp_path)])
    with pytest.raises(script.ScriptError, match="does not exist"):
        script.main(["--model_name_or_path", str(checkpoint), "--task_name", "sst2", "--train_file",
                     str(tmp_path / "missing.tsv"), "--output_dir", str(tmp_path)])
    # Columns of another task.
    with pytest.raises(script.ScriptError, match="lacks the columns"):
        script.main(["--model_name_or_path", str(checkpoint), "--task_name", "sst2", *_files(glue_files, "mrpc"),
                     "--do_train", "--output_dir", str(tmp_path)])
    # A checkpoint of another model type (BERT is accepted as the baseline: tests/test_examples_baselines.py).
    from transformers import GPT2Config

    gpt2 = tmp_path / "gpt2"
    GPT2Config(n_embd=16, n_layer=1, n_head=2).save_pretrained(gpt2)
    with pytest.raises(script.ScriptError, match="'gpt2' checkpoint"):
        script.main(["--model_name_or_path", str(gpt2), "--task_name", "sst2", *_files(glue_files, "sst2"),
                     "--output_dir", str(tmp_path / "out")])
    # A baseline folder without weights: a clear error, not a traceback.
    from transformers import BertConfig

    bert = tmp_path / "bert"
    BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(bert)
    with pytest.raises(script.ScriptError, match="cannot load --model_name_or_path .*bert"):
        script.main(["--model_name_or_path", str(bert), "--task_name", "sst2", *_files(glue_files, "sst2"),
                     "--tokenizer_name", str(checkpoint), "--output_dir", str(tmp_path / "out")])


def test_push_to_hub_uploads_the_finetuned_model_and_card(checkpoint, glue_files, tmp_path):
    """--push_to_hub (TrainingArguments) against the in-memory fake Hub of tests/fake_hub.py (loopback only)."""
    import subprocess
    import sys

    fake_hub = pytest.importorskip("tests.fake_hub")
    with fake_hub.serve_fake_hub(max_lifetime=150) as hub:
        env = fake_hub.subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake_token", OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--model_name_or_path", str(checkpoint), "--task_name", "sst2",
             *_files(glue_files, "sst2"), *TRAINER, "--push_to_hub", "--hub_model_id", "lion-tests/lion-sst2",
             "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=150, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        repo = hub.repos["lion-tests/lion-sst2"]
        files = repo.commits[repo.branches["main"]]
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "model-index" in card and "sst2 accuracy" in card and "pipeline_tag: text-classification" in card
    assert (tmp_path / "out" / "all_results.json").is_file()
