"""examples/mlm: an offline tokenizer recipe, atomic checkpoints with a fall-back, and flags that would be ignored."""


import numpy as np
import pytest

from tests.scripts import load_script as load_file
from tests.test_examples_mlm import ROOT, TINY, _data, _reset_accelerate, corpus, fresh_accelerate_state, script  # noqa: F401


def _load_tokenizer_script():
    return load_file(ROOT / "examples" / "mlm" / "train_tokenizer.py")


train_tokenizer = _load_tokenizer_script()


def test_offline_tokenizer_recipe_trains_from_the_corpus_and_feeds_run_mlm(corpus, tmp_path):  # noqa: F811
    folder = tmp_path / "tokenizer"
    tokenizer = train_tokenizer.main(["--train_files", str(corpus / "c4-train.*.json.gz"), "--vocab_size", "120",
                                      "--output_dir", str(folder)])
    assert tokenizer.mask_token == "[MASK]" and 5 < len(tokenizer) <= 120
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(folder)
    ids = loaded("The cat sat.")["input_ids"]
    assert ids[0] == loaded.cls_token_id and ids[-1] == loaded.sep_token_id and loaded.unk_token_id not in ids
    data = [a for a in _data(corpus)[:4]]
    results = script.main([*data, "--tokenizer_name", str(folder), *TINY, "--max_train_steps", "2",
                           "--output_dir", str(tmp_path / "mlm")])
    assert results["train_steps"] == 2 and results["eval_masked_tokens"] > 0 and np.isfinite(results["eval_loss"])
    with pytest.raises(train_tokenizer.ScriptError, match="no such file"):
        train_tokenizer.main(["--train_files", str(tmp_path / "none.txt"), "--output_dir", str(tmp_path / "t")])


def test_latest_falls_back_over_a_half_written_checkpoint(corpus, tmp_path, caplog):  # noqa: F811
    out = tmp_path / "out"
    args = [*_data(corpus), *TINY, "--max_train_steps", "4", "--checkpointing_steps", "2", "--seed", "3",
            "--output_dir", str(out)]
    full = script.main(args)
    _reset_accelerate()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    state = out / "checkpoint-4" / "training_state.json"
    state.write_text(state.read_text()[:40])  # a kill while it was written
    with caplog.at_level("WARNING"):
        resumed = script.main([*args, "--resume_from_checkpoint", "latest"])
    _reset_accelerate()
    assert "skipping checkpoint-4: incomplete" in caplog.text
    assert resumed["train_loss"] == full["train_loss"] and resumed["eval_mlm_accuracy"] == full["eval_mlm_accuracy"]
    # Another run (other seed) finds no checkpoint of its own: an error, not the other run's state.
    with pytest.raises(script.ScriptError, match=r"no complete checkpoint of this run.*seed 3 -> 4"):
        script.main([*args[:-4], "--seed", "4", "--output_dir", str(out), "--resume_from_checkpoint", "latest"])
    _reset_accelerate()
    # A user's file in the folder is not overwritten by a resumed run.
    (out / "notes.txt").write_text("mine")
    with pytest.raises(script.ScriptError, match=r"did not write \(notes.txt\)"):
        script.main([*args, "--resume_from_checkpoint", "latest"])


@pytest.mark.parametrize("flags,message", [
    (["--save_total_limit", "0"], "--save_total_limit must be at least 1"),
    (["--save_total_limit", "-1"], "--save_total_limit must be at least 1"),
    (["--dataset_config", "en"], "--dataset_config applies to --dataset_name"),
    (["--validation_split_percentage", "10"], "--validation_split_percentage only applies"),
    (["--preset", "lion-d-base-mlm", "--hidden_size", "64"], "--hidden_size would be ignored"),
    (["--hidden_size", "30", "--num_attention_heads", "4"], "cannot build the model: .*multiple of"),
    (["--per_device_train_batch_size", "0"], "must be at least 1"),
    (["--checkpointing_steps", "0"], "positive integer"),
])
def test_flags_that_would_be_ignored_or_break_later_are_refused(corpus, tmp_path, flags, message):  # noqa: F811
    with pytest.raises(script.ScriptError, match=message):
        script.main([*_data(corpus), *flags, "--max_seq_length", "32", "--output_dir", str(tmp_path / "o")])


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        script.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    blocks = text.split(" --")[1:]
    assert "(default: None)" not in text and "--per_device_train_batch_size PER_DEVICE_TRAIN_BATCH_SIZE (default: 32)" in text
    assert blocks and all(block.count("default") <= 1 for block in blocks), [b for b in blocks if b.count("default") > 1]
