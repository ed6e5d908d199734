"""Further bad inputs found by a sweep over the example scripts: each gets a one-line error before training."""

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from lion_hf.data import ImageDataError, decode_image
from tests.test_examples_mlm import TINY, _data, corpus, fresh_accelerate_state, script as mlm  # noqa: F401
from tests.test_hardening_examples_image import script as image


def test_output_dir_that_is_a_file_is_refused(corpus, tmp_path):  # noqa: F811
    target = tmp_path / "a_file"
    target.write_text("x")
    with pytest.raises(mlm.ScriptError, match="is a file, not a folder"):
        mlm.main([*_data(corpus), *TINY, "--output_dir", str(target)])
    with pytest.raises(image.ScriptError, match="is a file, not a folder"):
        image.main(["--dataset", "digits", "--output_dir", str(target)])
    assert target.read_text() == "x"


def test_decompression_bombs_and_unconvertible_images_are_named(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageDataError, match="cannot read the image .*big.png"):
        decode_image({"path": str(path), "bytes": None})


def test_malformed_or_non_text_json_is_refused(corpus, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.json.gz"
    with gzip.open(bad, "wt") as f:
        f.write('{"text": "the cat"}\n{"text": broken\n')
    with pytest.raises(mlm.ScriptError, match="cannot read the json files"):
        mlm.main(["--train_files", str(bad), "--tokenizer_name", str(corpus / "tokenizer"), *TINY,
                  "--output_dir", str(tmp_path / "o")])
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text("".join(json.dumps({"text": i}) + "\n" for i in range(40)))
    with pytest.raises(mlm.ScriptError, match="--text_column 'text' holds .*int64.*, not text"):
        mlm.main(["--train_files", str(numbers), "--tokenizer_name", str(corpus / "tokenizer"), *TINY,
                  "--output_dir", str(tmp_path / "o2")])


def test_tokenizer_without_pad_cls_or_sep_is_refused(corpus, tmp_path):  # noqa: F811
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["[UNK]", "[MASK]", *"the cat dog sat on a mat".split()]
    raw = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    folder = tmp_path / "bare"
    PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", mask_token="[MASK]").save_pretrained(folder)
    args = [*_data(corpus)[:4], "--tokenizer_name", str(folder), *TINY]
    with pytest.raises(mlm.ScriptError, match="no padding token"):
        mlm.main([*args, "--output_dir", str(tmp_path / "o")])
    with pytest.raises(mlm.ScriptError, match="no cls or sep token"):
        mlm.main([*args, "--pack", "--output_dir", str(tmp_path / "o")])


def test_sequence_longer_than_the_position_table_is_refused(corpus, tmp_path):  # noqa: F811
    import lion_hf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(corpus / "tokenizer")
    model = tmp_path / "lit"
    lion_hf.LionForMaskedLM(lion_hf.LionConfig(
        modality="text", mask_type="lit", use_position_embeddings=True, max_position_embeddings=16,
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16)).save_pretrained(model)
    with pytest.raises(mlm.ScriptError, match="--max_seq_length 32 exceeds the checkpoint's position table"):
        mlm.main([*_data(corpus), "--model_name_or_path", str(model), "--max_seq_length", "32",
                  "--output_dir", str(tmp_path / "o")])


def test_glue_tokenizer_of_another_vocabulary_is_refused(tmp_path):
    import lion_hf
    from transformers import BertTokenizer

    from tests.test_hardening_examples_glue import _tsv, script as glue

    words = [f"w{i}" for i in range(40)]
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "big_tokenizer")
    model = tmp_path / "model"
    lion_hf.LionForMaskedLM(lion_hf.LionConfig(modality="text", vocab_size=12, hidden_size=16, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=16)).save_pretrained(model)
    train = _tsv(tmp_path / "train.tsv", ["sentence", "label"], [["w1 w2", 0], ["w3", 1]])
    with pytest.raises(glue.ScriptError, match="has 45 tokens, the model's vocabulary 12"):
        glue.main(["--model_name_or_path", str(model), "--tokenizer_name", str(tmp_path / "big_tokenizer"),
                   "--task_name", "sst2", "--train_file", str(train), "--do_train", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(glue.ScriptError, match="cannot load the tokenizer"):
        glue.main(["--model_name_or_path", str(model), "--task_name", "sst2", "--train_file", str(train),
                   "--do_train", "--output_dir", str(tmp_path / "o")])


def test_glue_mixed_unreadable_and_empty_files_are_refused(tmp_path):
    from tests.test_hardening_examples_glue import _tsv, script as glue

    train = _tsv(tmp_path / "train.tsv", ["sentence", "label"], [["a", 0], ["b", 1]])
    (tmp_path / "dev.csv").write_text("sentence,label\na,0\n")
    base = ["--model_name_or_path", str(tmp_path), "--task_name", "sst2", "--do_train", "--output_dir", str(tmp_path / "o")]
    with pytest.raises(glue.ScriptError, match="mix .csv and .tsv"):
        glue.main([*base, "--train_file", str(train), "--validation_file", str(tmp_path / "dev.csv")])
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("sentence\tlabel\na\t0\nb\t1\textra\tfields\n")
    with pytest.raises(glue.ScriptError, match="cannot read .*ragged.tsv as TSV"):
        glue.main([*base, "--train_file", str(ragged)])


def test_glue_empty_train_file_is_refused(tmp_path):
    import lion_hf
    from transformers import BertTokenizer

    from tests.test_hardening_examples_glue import _tsv, script as glue

    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]) + "\n")
    model = tmp_path / "model"
    lion_hf.LionForMaskedLM(lion_hf.LionConfig(modality="text", vocab_size=6, hidden_size=16, num_hidden_layers=1,
                                               num_attention_heads=2, intermediate_size=16)).save_pretrained(model)
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(model)
    empty = _tsv(tmp_path / "train.tsv", ["sentence", "label"], [])
    with pytest.raises(glue.ScriptError, match="the train split is empty .*train.tsv holds a header and no rows"):
        glue.main(["--model_name_or_path", str(model), "--task_name", "sst2", "--train_file", str(empty), "--do_train",
                   "--use_cpu", "--report_to", "none", "--output_dir", str(tmp_path / "o")])


def test_tampered_training_state_is_refused(tmp_path):
    from lion_hf.training import CheckpointError, read_training_state
    from tests.test_hardening_examples_checkpoints import _run, _save

    path = _save(tmp_path, 2, _run())
    state_file = path / "training_state.json"
    state = json.loads(state_file.read_text())
    for key, value in (("history", "not a list"), ("consumed", {"0": -3}), ("completed_steps", "2")):
        tampered = {**state, key: value}
        text = json.dumps(tampered)
        state_file.write_text(text)
        marker = json.loads((path / "checkpoint_complete.json").read_text())
        marker["files"]["training_state.json"] = len(text)
        (path / "checkpoint_complete.json").write_text(json.dumps(marker))
        with pytest.raises(CheckpointError, match=key):
            read_training_state(path, "s")


def test_mlm_single_text_cannot_be_split(corpus, tmp_path):  # noqa: F811
    one = tmp_path / "one.txt"
    one.write_text("the cat sat on the mat\n")
    with pytest.raises(mlm.ScriptError, match="hold 1 text"):
        mlm.main(["--train_files", str(one), "--tokenizer_name", str(corpus / "tokenizer"), *TINY,
                  "--output_dir", str(tmp_path / "o")])


def test_the_hub_token_stays_out_of_the_tracker_logs(tmp_path):
    from tests.test_hardening_examples_image import TINY as IMAGE_TINY, _write_tree

    tree = _write_tree(tmp_path / "data", {"train": {"cat": 4, "dog": 4}, "validation": {"cat": 1, "dog": 1}})
    out = tmp_path / "o"
    image.main(["--dataset", "imagefolder", "--data_dir", str(tree), *IMAGE_TINY, "--max_train_steps", "1",
                "--with_tracking", "--hub_token", "hf_secret_token_123", "--output_dir", str(out)])
    logged = [p for p in (out / "logs").rglob("*") if p.is_file()]
    assert logged, "the tracker wrote its logs"
    assert not any(b"hf_secret_token_123" in p.read_bytes() for p in logged)
    assert not any(b"hf_secret_token_123" in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_a_file_where_a_checkpoint_folder_goes_is_replaced(tmp_path):
    from tests.test_hardening_examples_checkpoints import _run, _save

    (tmp_path / "checkpoint-2").write_text("stray file")
    path = _save(tmp_path, 2, _run())
    assert path.is_dir() and (path / "checkpoint_complete.json").is_file()


def test_push_to_hub_is_checked_before_training(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(image.ScriptError, match="cannot upload with HF_HUB_OFFLINE=1"):
        image.main(["--dataset", "digits", "--push_to_hub", "--output_dir", str(tmp_path / "o")])
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored_tokens"))
    with pytest.raises(mlm.ScriptError, match="--push_to_hub needs a Hugging Face token"):
        (tmp_path / "texts.txt").write_text("the cat\n")
        mlm.main(["--train_files", str(tmp_path / "texts.txt"), "--push_to_hub", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(image.ScriptError, match="--hub_model_id and --hub_private_repo only apply with --push_to_hub"):
        image.main(["--dataset", "digits", "--hub_model_id", "me/model", "--output_dir", str(tmp_path / "o")])


def test_evaluation_labels_outside_the_classes_are_found_before_training():
    import datasets

    names = datasets.ClassLabel(names=["cat", "dog"])
    split = datasets.Dataset.from_dict({"label": [0, 1, -1]}, features=datasets.Features({"label": names}))
    with pytest.raises(image.ScriptError, match="evaluation example 2 has the label -1"):
        image.check_eval_labels(split, "label", None, 2)
    image.check_eval_labels(split.select([0, 1]), "label", None, 2)
    with pytest.raises(image.ScriptError, match="label 1, not one of"):
        image.check_eval_labels(split.select([0, 1]), "label", {0: 0}, 2)


def test_report_to_a_missing_or_unknown_tracker_is_refused(tmp_path):
    from accelerate.tracking import get_available_trackers

    installed = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    missing = next(name for name in ("wandb", "mlflow", "comet_ml", "aim", "clearml") if name not in installed)
    with pytest.raises(image.ScriptError, match=f"--report_to {missing}: not installed, so nothing would be logged"):
        image.main(["--dataset", "digits", "--with_tracking", "--report_to", missing, "--output_dir", str(tmp_path / "o")])
    with pytest.raises(mlm.ScriptError, match="unknown tracker.*bogus"):
        (tmp_path / "t.txt").write_text("a b\nc d\n")
        mlm.main(["--train_files", str(tmp_path / "t.txt"), "--with_tracking", "--report_to", "bogus",
                  "--output_dir", str(tmp_path / "o")])


def test_damaged_weights_of_the_right_size_and_symlinks_are_refused(tmp_path):
    import shutil

    from lion_hf.training import checkpoint_problem
    from tests.test_hardening_examples_checkpoints import _image_args, _reset

    data = tmp_path / "data"
    from tests.test_hardening_examples_image import _write_tree

    _write_tree(data, {"train": {"cat": 4, "dog": 4}, "validation": {"cat": 1, "dog": 1}})
    out = tmp_path / "out"
    args = _image_args(data, out, "--max_train_steps", "2", "--checkpointing_steps", "2", "--seed", "1")
    image.main(args)
    _reset()
    weights = out / "checkpoint-2" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[:8] = b"\xff" * 8  # a header length that cannot be: same size, unreadable
    weights.write_bytes(bytes(raw))
    with pytest.raises(image.ScriptError, match="cannot load checkpoint .*checkpoint-2 .*resume from an earlier"):
        image.main([*args, "--output_dir", str(tmp_path / "o2"), "--resume_from_checkpoint", str(out / "checkpoint-2")])
    shutil.copy(weights, tmp_path / "elsewhere.safetensors")
    weights.unlink()
    weights.symlink_to(tmp_path / "elsewhere.safetensors")
    assert "symbolic link" in checkpoint_problem(out / "checkpoint-2")


def test_evaluating_on_the_training_data_is_pointed_out(corpus, tmp_path, caplog):  # noqa: F811
    train = str(corpus / "c4-train.00000-of-00002.json.gz")
    with caplog.at_level("WARNING"):
        mlm.main(["--train_files", train, "--validation_files", train, "--tokenizer_name", str(corpus / "tokenizer"),
                  *TINY, "--max_train_steps", "1", "--output_dir", str(tmp_path / "o")])
    assert "--validation_files include training files" in caplog.text
