"""End-to-end runs of examples/mlm/run_mlm.py on generated C4-style json.gz shards with a WordPiece tokenizer."""

import gzip
import json
import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.scripts import load_script as load_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "mlm" / "run_mlm.py"
WORDS = ("the cat dog sat on a mat and ran to house big small red blue green tree bird fish water sky sun moon "
         "star car road city").split()
TINY = ["--hidden_size", "16", "--num_hidden_layers", "2", "--num_attention_heads", "2", "--intermediate_size", "32",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8", "--logging_steps", "1",
        "--max_seq_length", "32"]


def load_script():
    return load_file(SCRIPT)


script = load_script()


def _reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    yield
    _reset_accelerate()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """C4-style shards (json.gz, one {"text", "timestamp", "url"} per line) and a WordPiece tokenizer."""
    root = tmp_path_factory.mktemp("c4")
    rng = random.Random(0)

    def shard(path: Path, count: int) -> None:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for i in range(count):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))).capitalize() + "."
                f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z",
                                    "url": f"https://example.com/{path.stem}/{i}"}) + "\n")

    shard(root / "c4-train.00000-of-00002.json.gz", 40)
    shard(root / "c4-train.00001-of-00002.json.gz", 40)
    shard(root / "c4-validation.00000-of-00001.json.gz", 16)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ".", ","]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    from transformers import BertTokenizer

    BertTokenizer(str(root / "vocab.txt")).save_pretrained(root / "tokenizer")
    return root


def _data(corpus: Path) -> list[str]:
    return ["--train_files", str(corpus / "c4-train.*.json.gz"),
            "--validation_files", str(corpus / "c4-validation.00000-of-00001.json.gz"),
            "--tokenizer_name", str(corpus / "tokenizer")]


@pytest.fixture(scope="module")
def full_run(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mlm_full")
    script.main([*_data(corpus), *TINY, "--max_train_steps", "8", "--checkpointing_steps", "4", "--eval_steps", "4",
                 "--output_dir", str(out), "--overwrite_output_dir", "--seed", "5"])
    _reset_accelerate()
    return out


def _results(folder: Path) -> dict:
    return json.loads((folder / "all_results.json").read_text())


def test_mlm_run_saves_a_fill_mask_ready_folder(full_run, corpus):
    results = _results(full_run)
    assert results["train_steps"] == 8 and np.isfinite(results["train_loss"])
    assert 0.0 <= results["eval_mlm_accuracy"] <= results["eval_mlm_top5_accuracy"] <= 1.0
    assert results["eval_masked_tokens"] > 0
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "README.md"):
        assert (full_run / name).is_file(), name
    card = (full_run / "README.md").read_text()
    assert "pipeline_tag: fill-mask" in card and "MLM accuracy (15% masking)" in card
    import lion_hf  # noqa: F401
    from transformers import pipeline

    fill = pipeline("fill-mask", model=str(full_run), device="cpu")
    predictions = fill("the cat sat on the [MASK] .", top_k=3)
    assert len(predictions) == 3 and all(p["token_str"] for p in predictions)


def test_resume_gives_the_same_final_loss(full_run, corpus, tmp_path):
    out = tmp_path / "resumed"
    script.main([*_data(corpus), *TINY, "--max_train_steps", "8", "--checkpointing_steps", "4", "--eval_steps", "4",
                 "--output_dir", str(out), "--seed", "5", "--resume_from_checkpoint", str(full_run / "checkpoint-4")])
    resumed, uninterrupted = _results(out), _results(full_run)
    assert resumed["train_loss"] == uninterrupted["train_loss"]
    assert resumed["eval_mlm_accuracy"] == uninterrupted["eval_mlm_accuracy"]
    assert resumed["eval_loss"] == pytest.approx(uninterrupted["eval_loss"], rel=1e-6)


def test_packing_and_streaming(corpus, tmp_path):
    results = script.main([*_data(corpus), *TINY, "--pack", "--max_train_steps", "3", "--output_dir", str(tmp_path / "p")])
    assert results["train_steps"] == 3 and results["eval_masked_tokens"] > 0
    _reset_accelerate()
    results = script.main(["--train_files", str(corpus / "c4-train.*.json.gz"), "--tokenizer_name",
                           str(corpus / "tokenizer"), "--streaming", "--max_eval_samples", "8", *TINY,
                           "--max_train_steps", "3", "--output_dir", str(tmp_path / "s")])
    assert results["train_steps"] == 3 and np.isfinite(results["eval_loss"])


def test_bad_arguments_get_clear_errors(corpus, full_run, tmp_path):
    with pytest.raises(script.ScriptError, match="give --dataset_name"):
        script.main(["--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="no such file"):
        script.main(["--train_files", str(tmp_path / "missing.json.gz"), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="mlm_probability"):
        script.main([*_data(corpus), "--mlm_probability", "1.5", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(script.ScriptError, match="cannot load --tokenizer_name"):
        script.main([*_data(corpus)[:4], "--tokenizer_name", str(tmp_path / "no-tokenizer"), "--output_dir", str(tmp_path / "o")])
    # A checkpoint of the image script is refused before anything is loaded into the model.
    image_checkpoint = tmp_path / "checkpoint-2"
    image_checkpoint.mkdir()
    (image_checkpoint / "training_state.json").write_text(json.dumps({"script": "run_image_classification"}))
    with pytest.raises(script.ScriptError, match="checkpoint of 'run_image_classification'"):
        script.main([*_data(corpus), *TINY, "--output_dir", str(tmp_path / "o1"), "--resume_from_checkpoint",
                     str(image_checkpoint)])
    # A vision LION model is not a text model.
    import lion_hf

    vision = tmp_path / "vision"
    lion_hf.LionForImageClassification(lion_hf.LionConfig(
        modality="vision", image_size=8, patch_size=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, num_labels=2)).save_pretrained(vision)
    with pytest.raises(script.ScriptError, match="modality 'vision'"):
        script.main([*_data(corpus), "--model_name_or_path", str(vision), "--output_dir", str(tmp_path / "o2")])


def test_push_to_hub_uploads_model_tokenizer_and_card(corpus, tmp_path):
    """--push_to_hub against the in-memory fake Hub of tests/fake_hub.py (loopback only)."""
    import subprocess

    fake_hub = pytest.importorskip("tests.fake_hub")
    with fake_hub.serve_fake_hub(max_lifetime=150) as hub:
        env = fake_hub.subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_fake_token", OMP_NUM_THREADS="1")
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *_data(corpus), *TINY, "--max_train_steps", "2", "--push_to_hub",
             "--hub_model_id", "lion-tests/lion-mlm", "--output_dir", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=150, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        repo = hub.repos["lion-tests/lion-mlm"]
        files = repo.commits[repo.branches["main"]]
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "README.md"} <= set(files)
    card = files["README.md"].decode()
    assert "model-index" in card and "pipeline_tag: fill-mask" in card
