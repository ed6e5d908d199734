#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Pretrain a LION masked language model with 🤗 Accelerate (no Trainer), as in the LION paper.

Data: C4 streamed from the Hub (``--dataset_name allenai/c4 --dataset_config en --streaming``) or
local files (``--train_files``/``--validation_files``: ``.json``, ``.jsonl``, ``.json.gz`` with a
``text`` field, as C4's shards, or ``.txt``/``.txt.gz`` with one text per line).

The paper's setting is the default: sequences of 128 tokens, 30% of the tokens masked during
training and 15% at evaluation (BERT's 80/10/10 replacement), the BERT uncased WordPiece
vocabulary (``--tokenizer_name``, any tokenizer with a mask token works; offline, train one from the corpus
with ``examples/mlm/train_tokenizer.py``). ``--pack`` concatenates
documents into full 128-token blocks instead of truncating and padding each one.

Checkpoints (``--checkpointing_steps``) hold the model, optimizer, scheduler, every random generator
and the position in the data; ``--resume_from_checkpoint`` continues exactly like an uninterrupted
run (masks come from generators seeded by ``(seed, epoch, batch)``, evaluation masks by example). They are
written atomically and record the run they belong to (see ``lion_hf.training.checkpoints``).
The evaluation reports the MLM accuracy (top-1 and top-5 over the masked tokens) and the loss.

At the end the model, the tokenizer and a model card are saved to ``--output_dir`` (ready for
``pipeline("fill-mask", model=output_dir)``), and pushed with ``--push_to_hub``.

Example::

    accelerate launch examples/mlm/run_mlm.py --dataset_name allenai/c4 --dataset_config en --streaming \\
        --tokenizer_name bert-base-uncased --preset lion-d-base-mlm --max_train_steps 100000 --output_dir runs/mlm
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from lion_hf import LionConfig, LionForMaskedLM
from lion_hf.data import AugmentedDataset, EpochSeededSampler, mask_tokens, pack_token_blocks
from lion_hf.training import (
    MODEL_CONFIG_FILE,
    CheckpointError,
    HelpFormatter,
    LaunchError,
    add_hub_arguments,
    check_push_to_hub,
    check_resume_checkpoint,
    derived_seed,
    epoch_batches,
    epoch_end_checkpoint,
    init_tracking,
    load_accelerate_state,
    optimizer_step,
    report_train_loss,
    resolve_resume_checkpoint,
    resume_position,
    run_fingerprint,
    save_checkpoint,
    save_final_outputs,
    start_accelerate_run,
    step_events,
    training_state,
    validate_checkpointing_steps,
    validate_resume_from_checkpoint,
    validate_save_total_limit,
)
from lion_hf.training import fingerprint_arguments as _fingerprint_arguments

SCRIPT_NAME = "run_mlm"
#: ``--baseline`` values: the Transformer trained through the same script, data and masking for comparison.
BASELINES = ("bert",)
#: Arguments that do not change what a run trains (left out of the run's fingerprint in its checkpoints).
NOT_IN_FINGERPRINT = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "checkpointing_steps", "save_total_limit",
    "eval_steps", "logging_steps", "with_tracking", "report_to", "model_name", "push_to_hub", "hub_model_id",
    "hub_token", "hub_private_repo", "num_workers", "preprocessing_num_workers", "per_device_eval_batch_size"})
#: Model-shape flags, read only when a new model is built from them (not with --preset / --model_name_or_path).
MODEL_SHAPE_FLAGS = ("attention_type", "position_encoding", "mask_type", "hidden_size", "num_hidden_layers",
                     "num_attention_heads", "intermediate_size")
MODEL_COLUMNS = ("input_ids", "attention_mask", "token_type_ids", "special_tokens_mask")


class ScriptError(ValueError):
    """A bad argument or input; the message says what to change."""


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset_name", default=None, help="a Hub data set, e.g. allenai/c4")
    g.add_argument("--dataset_config", default=None, help="its configuration, e.g. en")
    g.add_argument("--train_files", nargs="+", default=None, help="local .json/.jsonl/.json.gz/.txt(.gz) files or globs")
    g.add_argument("--validation_files", nargs="+", default=None)
    g.add_argument("--validation_split_percentage", type=float, default=None,
                   help="held out from local training files when no --validation_files are given (default: 5)")
    g.add_argument("--streaming", action="store_true", help="stream the data (needs --max_train_steps)")
    g.add_argument("--text_column", default="text")
    g.add_argument("--max_train_samples", type=int, default=None)
    g.add_argument("--max_eval_samples", type=int, default=None, help="streaming default: 2,000 documents")
    g.add_argument("--max_seq_length", type=int, default=128)
    g.add_argument("--pack", action="store_true", help="pack documents into full blocks of --max_seq_length tokens")
    g.add_argument("--mlm_probability", type=float, default=0.30, help="masking rate in training (paper: 0.30)")
    g.add_argument("--eval_mlm_probability", type=float, default=0.15, help="masking rate at evaluation (paper: 0.15)")
    g.add_argument("--preprocessing_num_workers", type=int, default=None)
    g.add_argument("--num_workers", type=int, default=0, help="dataloader worker processes")

    g = p.add_argument_group("model")
    g.add_argument("--tokenizer_name", default="bert-base-uncased",
                   help="a tokenizer folder or Hub name with a mask token (default: bert-base-uncased, from the Hub; "
                        "offline, train one from the corpus with examples/mlm/train_tokenizer.py)")
    g.add_argument("--model_name_or_path", default=None, help="continue from a saved LION checkpoint")
    g.add_argument("--baseline", default=None, choices=list(BASELINES),
                   help="train transformers' BertForMaskedLM (SDPA attention, learned positions) of the sizes given "
                        "instead of a LION model: the Transformer to compare with")
    g.add_argument("--preset", default=None, help="a LionConfig preset, e.g. lion-d-base-mlm")
    g.add_argument("--attention_type", default=None, choices=["lion", "lightnet"],
                   help="the token mixer: LION's masked linear attention (default) or LightNet's (see the README)")
    g.add_argument("--position_encoding", default=None, choices=["none", "md_lrpe", "md_tpe", "md_lrpe_tpe"],
                   help="LightNet's MD-LRPE/MD-TPE encodings for either mixer (default: none; see the README)")
    g.add_argument("--mask_type", default=None, choices=["lit", "decay", "selective"],
                   help="default: decay (LION); LightNet has no decay mask")
    g.add_argument("--hidden_size", type=int, default=None, help="default: 768")
    g.add_argument("--num_hidden_layers", type=int, default=None, help="default: 12")
    g.add_argument("--num_attention_heads", type=int, default=None, help="default: 12")
    g.add_argument("--intermediate_size", type=int, default=None, help="default: 4 x hidden size")
    g.add_argument("--attention_form", default=None, choices=["auto", "attention", "chunk", "recurrent"])

    g = p.add_argument_group("optimisation")
    g.add_argument("--per_device_train_batch_size", type=int, default=32)
    g.add_argument("--per_device_eval_batch_size", type=int, default=64)
    g.add_argument("--gradient_accumulation_steps", type=int, default=1)
    g.add_argument("--learning_rate", type=float, default=5e-4)
    g.add_argument("--weight_decay", type=float, default=0.01)
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.98)
    g.add_argument("--num_train_epochs", type=int, default=1)
    g.add_argument("--max_train_steps", type=int, default=None, help="overrides --num_train_epochs")
    g.add_argument("--lr_scheduler_type", default="linear", help="any transformers scheduler name")
    g.add_argument("--num_warmup_steps", type=int, default=None, help="default: 6%% of the steps")
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping; 0 disables")
    g.add_argument("--mixed_precision", default=None, choices=["no", "fp16", "bf16"])

    g = p.add_argument_group("checkpoints, logging, output")
    g.add_argument("--output_dir", required=True)
    g.add_argument("--overwrite_output_dir", action="store_true")
    g.add_argument("--checkpointing_steps", default=None, help="an integer (optimizer steps) or 'epoch'")
    g.add_argument("--save_total_limit", type=int, default=None, help="keep only the newest N (>= 1) checkpoints of this run")
    g.add_argument("--resume_from_checkpoint", default=None,
                   help="a checkpoint folder, or 'latest': the newest complete checkpoint of this same run in --output_dir")
    g.add_argument("--eval_steps", type=int, default=None, help="evaluate every N steps (default: every epoch)")
    g.add_argument("--logging_steps", type=int, default=10)
    g.add_argument("--with_tracking", action="store_true")
    g.add_argument("--report_to", default="tensorboard")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--model_name", default=None)
    add_hub_arguments(g)
    args = p.parse_args(argv)
    _check_args(args)
    return args


def _check_push(args: argparse.Namespace) -> None:
    """``--push_to_hub`` is checked before training, not after it: online, and with a token."""
    try:
        args.hub_model_id = check_push_to_hub(args.push_to_hub, args.hub_model_id, args.hub_private_repo,
                                              args.hub_token, args.output_dir)
    except LaunchError as err:
        raise ScriptError(str(err)) from err


def _check_args(args: argparse.Namespace) -> None:
    if args.dataset_name is None and args.train_files is None:
        raise ScriptError("give --dataset_name (e.g. allenai/c4 with --dataset_config en) or --train_files")
    if args.dataset_name is not None and args.train_files is not None:
        raise ScriptError("give either --dataset_name or --train_files, not both")
    # Data flags that the chosen data would ignore.
    if args.dataset_config is not None and args.dataset_name is None:
        raise ScriptError("--dataset_config applies to --dataset_name (a Hub data set), not to --train_files; drop it")
    if args.validation_files is not None and args.train_files is None:
        raise ScriptError("--validation_files go with --train_files; a Hub data set brings its validation split")
    if args.validation_split_percentage is not None:
        if args.train_files is None or args.validation_files is not None or args.streaming:
            raise ScriptError("--validation_split_percentage only applies to --train_files without --validation_files "
                              "and without --streaming (a stream holds out --max_eval_samples documents); drop it")
        if not 0.0 < args.validation_split_percentage < 100.0:
            raise ScriptError(f"--validation_split_percentage must be in (0, 100), got {args.validation_split_percentage}")
    else:
        args.validation_split_percentage = 5.0
    if args.streaming and args.preprocessing_num_workers is not None:
        raise ScriptError("--preprocessing_num_workers does not apply to --streaming (a stream is tokenised as it is "
                          "read); drop it")
    if args.model_name_or_path is not None or args.preset is not None:
        given = [f"--{name}" for name in MODEL_SHAPE_FLAGS if getattr(args, name) is not None]
        if given:
            source = "--model_name_or_path" if args.model_name_or_path is not None else "--preset"
            raise ScriptError(f"{', '.join(given)} would be ignored: the model comes from {source}; drop them")
        if args.model_name_or_path is not None and args.preset is not None:
            raise ScriptError("give either --model_name_or_path or --preset, not both")
    if args.baseline is not None:
        given = [f"--{name}" for name in ("model_name_or_path", "preset", "attention_type", "position_encoding",
                                          "mask_type", "attention_form") if getattr(args, name) is not None]
        if given:
            raise ScriptError(f"{', '.join(given)}: not available with --baseline {args.baseline}; drop them")
    lion = args.baseline is None and args.attention_type in (None, "lion")
    for name, default in (("mask_type", "decay" if lion else None), ("hidden_size", 768),
                          ("num_hidden_layers", 12), ("num_attention_heads", 12)):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.streaming and args.max_train_steps is None:
        raise ScriptError("--streaming needs --max_train_steps (a stream has no known length)")
    for files, flag in ((args.train_files, "--train_files"), (args.validation_files, "--validation_files")):
        if files:
            _builder(_expand(files, flag))  # fail early on a missing file or an unknown format
    for probability, flag in ((args.mlm_probability, "--mlm_probability"), (args.eval_mlm_probability, "--eval_mlm_probability")):
        if not 0.0 < probability < 1.0:
            raise ScriptError(f"{flag} must be in (0, 1), got {probability}")
    try:
        validate_checkpointing_steps(args.checkpointing_steps)
        validate_save_total_limit(args.save_total_limit)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err
    if args.max_seq_length < 8:
        raise ScriptError("--max_seq_length must be at least 8")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps",
                 "logging_steps", "num_train_epochs", "hidden_size", "num_hidden_layers", "num_attention_heads"):
        if getattr(args, name) < 1:
            raise ScriptError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "max_train_samples", "max_eval_samples", "eval_steps", "intermediate_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ScriptError(f"--{name} must be at least 1, got {value}")
    if args.num_warmup_steps is not None and args.num_warmup_steps < 0:
        raise ScriptError(f"--num_warmup_steps must be >= 0, got {args.num_warmup_steps}")
    if not args.learning_rate > 0:
        raise ScriptError(f"--learning_rate must be positive, got {args.learning_rate}")
    _check_push(args)
    try:
        validate_resume_from_checkpoint(args.resume_from_checkpoint)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def _expand(patterns: list[str], flag: str) -> list[str]:
    import glob

    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matched or not all(Path(f).is_file() for f in matched):
            raise ScriptError(f"{flag}: no such file {pattern!r}")
        files.extend(matched)
    return files


def _builder(files: list[str]) -> str:
    kinds = set()
    for name in files:
        stem = name[:-3] if name.endswith(".gz") else name
        if stem.endswith((".json", ".jsonl")):
            kinds.add("json")
        elif stem.endswith(".txt"):
            kinds.add("text")
        else:
            raise ScriptError(f"cannot read {name!r}: use .json/.jsonl/.json.gz (a 'text' field per line) or .txt")
    if len(kinds) > 1:
        raise ScriptError("mix of json and text files; give one kind")
    return kinds.pop()


def load_texts(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``(train, validation, dataset id)`` with a text column; streams when ``--streaming``."""
    import datasets

    if args.train_files is not None:
        train_files = _expand(args.train_files, "--train_files")
        builder = _builder(train_files)
        data_files = {"train": train_files}
        if args.validation_files:
            validation_files = _expand(args.validation_files, "--validation_files")
            if _builder(validation_files) != builder:
                raise ScriptError("--validation_files must be of the same kind as --train_files")
            data_files["validation"] = validation_files
        try:
            splits = datasets.load_dataset(builder, data_files=data_files, streaming=args.streaming)
        except datasets.exceptions.DatasetGenerationError as err:
            cause = err.__cause__ or err.__context__ or err
            raise ScriptError(f"cannot read the {builder} files ({type(cause).__name__}: {cause}); each line of a .json "
                              "file must be a JSON object with a text field (or give .txt files)") from err
        if "validation" in splits:
            return splits["train"], splits["validation"], "local files"
        if args.streaming:
            # Hold out the first documents of the stream.
            count = args.max_eval_samples or 2000
            return splits["train"].skip(count), splits["train"].take(count), "local files"
        count = len(splits["train"])
        if count < 2:
            raise ScriptError(f"the training files hold {count} text(s): too few to hold out a validation part; add "
                              "texts, or give --validation_files")
        held = splits["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=args.seed)
        return held["train"], held["test"], "local files"
    try:
        splits = datasets.load_dataset(args.dataset_name, args.dataset_config, streaming=args.streaming)
    except ConnectionError as err:
        raise ScriptError(f"cannot load the Hub data set {args.dataset_name!r} ({err}); offline "
                          "(HF_HUB_OFFLINE=1) use --train_files with local json/text files") from err
    if "train" not in splits or "validation" not in splits:
        raise ScriptError(f"{args.dataset_name!r} needs train and validation splits (has {list(splits)})")
    return splits["train"], splits["validation"], args.dataset_name


def tokenize(dataset: Any, tokenizer, args: argparse.Namespace, streaming: bool) -> Any:
    """Token blocks of ``max_seq_length`` with ``special_tokens_mask`` (never masked)."""
    columns = list(dataset.features or {}) if dataset.features is not None else None
    if columns is not None and args.text_column not in columns:
        raise ScriptError(f"--text_column {args.text_column!r} is not a column of the data (columns: {columns})")
    feature = (dataset.features or {}).get(args.text_column)
    if feature is not None and getattr(feature, "dtype", "string") not in ("string", "large_string"):
        raise ScriptError(f"--text_column {args.text_column!r} holds {feature}, not text")
    if args.pack and (tokenizer.cls_token_id is None or tokenizer.sep_token_id is None):
        raise ScriptError("--pack joins documents with [CLS]/[SEP]: the tokenizer has no cls or sep token; drop --pack "
                          "or use a BERT-style tokenizer")
    if not args.pack and tokenizer.pad_token_id is None:
        raise ScriptError("the tokenizer has no padding token, needed to pad each text to --max_seq_length; use "
                          "--pack (full blocks, no padding) or a tokenizer with a pad token")
    length = args.max_seq_length
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))

    def specials(ids: list[int]) -> list[int]:
        return torch.isin(torch.tensor(ids), special).long().tolist()

    if args.pack:
        def fn(batch: dict) -> dict:
            texts = [t for t in batch[args.text_column] if t]
            tokens = tokenizer(texts, add_special_tokens=False)["input_ids"]
            blocks = pack_token_blocks(tokens, length, cls_token_id=tokenizer.cls_token_id,
                                       sep_token_id=tokenizer.sep_token_id)
            return {"input_ids": blocks, "attention_mask": [[1] * length for _ in blocks],
                    "token_type_ids": [[0] * length for _ in blocks],
                    "special_tokens_mask": [specials(b) for b in blocks]}
    else:
        def fn(batch: dict) -> dict:
            texts = [t for t in batch[args.text_column] if t]
            encoded = tokenizer(texts, truncation=True, max_length=length, padding="max_length",
                                return_special_tokens_mask=True, return_token_type_ids=True)
            return {k: encoded[k] for k in MODEL_COLUMNS}

    remove = columns if columns is not None else None
    if streaming:
        return dataset.map(fn, batched=True, batch_size=256, remove_columns=remove)
    return dataset.map(fn, batched=True, remove_columns=remove, num_proc=args.preprocessing_num_workers,
                       desc="tokenizing")


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    out = {k: torch.tensor([b[k] for b in batch], dtype=torch.long) for k in MODEL_COLUMNS}
    if "index" in batch[0]:
        out["index"] = torch.tensor([b["index"] for b in batch], dtype=torch.long)
    return out


class _WithIndex:
    """Map-style view adding each example's index (evaluation masks are seeded per example)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        return {**self.dataset[int(index)], "index": int(index)}


class _StreamBatches(torch.utils.data.IterableDataset):
    """A tokenised stream for one process, with an epoch (reshuffle) and a number of examples to skip."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.stream, "set_epoch"):
            self.stream.set_epoch(epoch)

    def skip(self, count: int) -> None:
        self._skip = count

    def __iter__(self):
        import itertools

        skip, self._skip = self._skip, 0
        for example in itertools.islice(iter(self.stream), skip, None):
            yield {k: example[k] for k in MODEL_COLUMNS}


# --------------------------------------------------------------------------------------------------
# Model and checkpoints
# --------------------------------------------------------------------------------------------------
def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ScriptError(f"cannot load --tokenizer_name {name!r}: {err}") from err
    if tokenizer.mask_token_id is None:
        raise ScriptError(f"tokenizer {name!r} has no mask token; MLM needs one (e.g. a BERT WordPiece tokenizer)")
    return tokenizer


def build_baseline(args: argparse.Namespace, tokenizer):
    """``--baseline bert``: transformers' BERT of the sizes given (LION's text defaults: post-norm, dropout 0.1)."""
    from transformers import BertConfig, BertForMaskedLM

    hidden = args.hidden_size or 768
    try:
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=args.num_hidden_layers or 12,
                            num_attention_heads=args.num_attention_heads or 12,
                            intermediate_size=args.intermediate_size or 4 * hidden,
                            max_position_embeddings=max(512, args.max_seq_length), pad_token_id=tokenizer.pad_token_id,
                            attn_implementation="sdpa")
        config.architectures = ["BertForMaskedLM"]
        return BertForMaskedLM(config)
    except ValueError as err:
        raise ScriptError(f"cannot build the BERT baseline: {err}") from err


def build_model(args: argparse.Namespace, tokenizer):
    """The LION model to train (new, from ``--preset``/sizes, or ``--model_name_or_path``), or ``--baseline``'s BERT."""
    if args.baseline is not None:
        return build_baseline(args, tokenizer)
    if args.model_name_or_path is not None:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(args.model_name_or_path)
        except (OSError, ValueError) as err:
            raise ScriptError(f"cannot load --model_name_or_path {args.model_name_or_path!r}: {err}") from err
        if config.model_type != LionConfig.model_type or getattr(config, "modality", None) != "text":
            raise ScriptError(f"--model_name_or_path {args.model_name_or_path!r} is a {config.model_type!r} checkpoint "
                              f"(modality {getattr(config, 'modality', None)!r}); this script trains LION text "
                              "models (model_type 'lion', modality 'text')")
        if config.vocab_size != len(tokenizer):
            raise ScriptError(f"the checkpoint's vocabulary ({config.vocab_size}) does not match the tokenizer "
                              f"({len(tokenizer)})")
        if getattr(config, "use_position_embeddings", False) and args.max_seq_length > config.max_position_embeddings:
            raise ScriptError(f"--max_seq_length {args.max_seq_length} exceeds the checkpoint's position table "
                              f"(max_position_embeddings={config.max_position_embeddings}); pass at most that")
        return LionForMaskedLM.from_pretrained(args.model_name_or_path)
    fields = dict(modality="text", vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                  max_position_embeddings=max(512, args.max_seq_length))
    if args.preset is not None:
        from lion_hf import PRESETS, list_presets

        if args.preset not in PRESETS:
            raise ScriptError(f"unknown --preset {args.preset!r}; available: {', '.join(list_presets())}")
        if PRESETS[args.preset]["modality"] != "text":
            raise ScriptError(f"--preset {args.preset!r} is a vision preset; use one ending in -mlm")
        try:
            config = LionConfig.from_preset(args.preset, **fields)
        except ValueError as err:
            raise ScriptError(str(err)) from err
    else:
        config = _new_config(attention_type=args.attention_type or "lion", mask_type=args.mask_type,
                             position_encoding=args.position_encoding or "none",
                             hidden_size=args.hidden_size, num_hidden_layers=args.num_hidden_layers,
                             num_attention_heads=args.num_attention_heads,
                             intermediate_size=args.intermediate_size or 4 * args.hidden_size, **fields)
    if args.attention_form is not None:
        config.attention_form = args.attention_form
    config.architectures = ["LionForMaskedLM"]
    return LionForMaskedLM(config)


def _new_config(**fields) -> LionConfig:
    try:
        return LionConfig(**fields)
    except ValueError as err:  # LionConfigError: a field out of range, sizes that do not divide, ...
        raise ScriptError(f"cannot build the model: {err}") from err


def data_summary(args: argparse.Namespace, train: Any, evaluation: Any) -> dict[str, Any]:
    """What identifies the data of a run (in its checkpoints): source, resolved files and sizes, counts."""
    def files(patterns: list[str] | None, flag: str) -> list[list[Any]] | None:
        if not patterns:
            return None
        return [[str(Path(f).resolve()), Path(f).stat().st_size] for f in _expand(patterns, flag)]

    return {"dataset_name": args.dataset_name, "dataset_config": args.dataset_config,
            "train_files": files(args.train_files, "--train_files"),
            "validation_files": files(args.validation_files, "--validation_files"), "streaming": args.streaming,
            "train_sequences": getattr(train, "num_rows", None), "eval_sequences": getattr(evaluation, "num_rows", None)}


def fingerprint_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return _fingerprint_arguments(vars(args), NOT_IN_FINGERPRINT)


def check_checkpoint(path: Path, config, run: dict[str, Any], logger) -> dict:
    """Read a checkpoint's training state, refusing incomplete ones and those of another script or model."""
    keys = ("model_type", "modality", "mask_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "vocab_size")
    try:
        return check_resume_checkpoint(
            path, SCRIPT_NAME, run, lambda saved: ((k, saved.get(k), getattr(config, k, None)) for k in keys),
            log=logger.warning)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_mlm(accelerator, model, loader, tokenizer, args) -> dict[str, float]:
    """MLM accuracy (top-1/top-5 over masked tokens) and loss, with masks fixed per example."""
    model.eval()
    stats = []
    for batch in loader:
        rows_ids, rows_labels = [], []
        for row in range(batch["input_ids"].shape[0]):
            # One generator per example: the same tokens are masked whatever the batch size or process count.
            gen = torch.Generator().manual_seed(derived_seed(args.seed, "eval", int(batch["index"][row])))
            ids, labels = mask_tokens(batch["input_ids"][row:row + 1], mask_token_id=tokenizer.mask_token_id,
                                      vocab_size=len(tokenizer), probability=args.eval_mlm_probability, generator=gen,
                                      special_tokens_mask=batch["special_tokens_mask"][row:row + 1],
                                      attention_mask=batch["attention_mask"][row:row + 1])
            rows_ids.append(ids)
            rows_labels.append(labels)
        input_ids, labels = torch.cat(rows_ids), torch.cat(rows_labels)
        logits = model(input_ids=input_ids, attention_mask=batch["attention_mask"],
                       token_type_ids=batch["token_type_ids"]).logits.float()
        masked = labels != -100
        token_loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        top5 = logits.topk(5, dim=-1).indices
        hit1 = (top5[..., 0] == labels) & masked
        hit5 = (top5 == labels.unsqueeze(-1)).any(-1) & masked
        per_example = torch.stack([masked.sum(1), hit1.sum(1), hit5.sum(1)], dim=1).float()
        per_example = torch.cat([per_example, (token_loss * masked).sum(1, keepdim=True)], dim=1)
        # Per-example rows so gather_for_metrics can drop the padding duplicates of the last batch.
        stats.append(accelerator.gather_for_metrics(per_example).cpu())
    model.train()
    total = torch.cat(stats).sum(0) if stats else torch.zeros(4)
    count = max(float(total[0]), 1.0)
    loss = float(total[3]) / count
    return {"mlm_accuracy": float(total[1]) / count, "mlm_top5_accuracy": float(total[2]) / count, "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)), "masked_tokens": int(total[0])}


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    try:
        return _main(argv)
    except (CheckpointError, LaunchError) as err:
        raise ScriptError(str(err)) from err


def _main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    from transformers import get_scheduler

    output_dir = Path(args.output_dir)
    accelerator, logger, guard = start_accelerate_run(SCRIPT_NAME, args)

    tokenizer = load_tokenizer(args.tokenizer_name)
    train_raw, eval_raw, dataset_id = load_texts(args)
    if args.validation_files:
        training = {Path(f).resolve() for f in _expand(args.train_files, "--train_files")}
        validation = {Path(f).resolve() for f in _expand(args.validation_files, "--validation_files")}
    if args.validation_files and training & validation:
        logger.warning("--validation_files include training files: the evaluation measures memorisation, not "
                       "generalisation (give held-out files)", main_process_only=True)
    if args.max_train_samples is not None:
        train_raw = train_raw.take(args.max_train_samples) if args.streaming else \
            train_raw.select(range(min(args.max_train_samples, len(train_raw))))
    if args.streaming:
        eval_raw = eval_raw.take(args.max_eval_samples or 2000)
    elif args.max_eval_samples is not None:
        eval_raw = eval_raw.select(range(min(args.max_eval_samples, len(eval_raw))))

    with accelerator.main_process_first():  # tokenise once, the other processes read the cache
        train_tokens = tokenize(train_raw, tokenizer, args, args.streaming)
        eval_tokens = tokenize(eval_raw, tokenizer, args, args.streaming)
    if args.streaming:
        import datasets
        from datasets.distributed import split_dataset_by_node

        # The evaluation set is small: materialise it so every process evaluates a fixed, shardable set.
        eval_tokens = datasets.Dataset.from_list(list(eval_tokens))
        stream = split_dataset_by_node(train_tokens.shuffle(seed=args.seed, buffer_size=10_000),
                                       rank=accelerator.process_index, world_size=accelerator.num_processes)
        train_data = _StreamBatches(stream)
        train_loader = torch.utils.data.DataLoader(train_data, batch_size=args.per_device_train_batch_size,
                                                   collate_fn=collate, num_workers=args.num_workers, drop_last=True)
    else:
        if len(train_tokens) < args.per_device_train_batch_size * accelerator.num_processes:
            raise ScriptError(f"{len(train_tokens)} training sequences are fewer than one batch")
        train_data = AugmentedDataset(train_tokens, lambda example, rng: example, seed=args.seed)
        train_loader = torch.utils.data.DataLoader(
            train_data, sampler=EpochSeededSampler(len(train_data), seed=args.seed),
            batch_size=args.per_device_train_batch_size, collate_fn=collate, num_workers=args.num_workers,
            drop_last=True, generator=torch.Generator().manual_seed(args.seed))
    if len(eval_tokens) == 0:
        raise ScriptError("the evaluation set is empty after tokenisation")
    eval_loader = torch.utils.data.DataLoader(_WithIndex(eval_tokens), batch_size=args.per_device_eval_batch_size,
                                              collate_fn=collate, shuffle=False,
                                              generator=torch.Generator().manual_seed(args.seed))

    model = build_model(args, tokenizer)
    config = model.config
    if args.streaming:
        eval_loader = accelerator.prepare(eval_loader)
    else:
        train_loader, eval_loader = accelerator.prepare(train_loader, eval_loader)
    decay, no_decay = [], []
    for param in model.parameters():
        (no_decay if param.ndim <= 1 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), eps=1e-6)
    if args.streaming:
        batches_per_epoch = None
        max_train_steps = args.max_train_steps
    else:
        batches_per_epoch = len(train_loader)
        steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
        max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    warmup = args.num_warmup_steps if args.num_warmup_steps is not None else int(0.06 * max_train_steps)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer=optimizer,
                              num_warmup_steps=warmup * accelerator.num_processes,
                              num_training_steps=max_train_steps * accelerator.num_processes)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if args.with_tracking:
        init_tracking(accelerator, SCRIPT_NAME, vars(args))

    completed_steps, epoch, skip_batches, consumed = 0, 0, 0, 0
    history: list[dict] = []
    run = run_fingerprint(config, data_summary(args, train_tokens, eval_tokens), args.seed,
                          fingerprint_arguments(args))
    if args.resume_from_checkpoint is not None:
        path = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir, run, SCRIPT_NAME, log=logger.warning)
        state = check_checkpoint(path, accelerator.unwrap_model(model).config, run, logger)
        load_accelerate_state(accelerator, path)
        completed_steps, epoch, skip_batches, consumed, history = resume_position(state, accelerator.process_index)
        logger.info(f"resumed from {path}: step {completed_steps}, epoch {epoch}, batch {skip_batches}")

    total_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    logger.info(f"{total_batch} sequences of {args.max_seq_length} tokens per step; {max_train_steps} steps; "
                f"masking {args.mlm_probability:.0%} (train) / {args.eval_mlm_probability:.0%} (eval)")
    with logging_redirect_tqdm():  # log lines go above the progress bar, not into it
        progress = tqdm(total=max_train_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                        desc="train")
        model.train()
        running_loss, running_count, last_loss = 0.0, 0, float("nan")
        last_eval: dict[str, float] = {}
        evaluated_at = [-1]
        checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None
        started = time.time()

        def evaluate_now(epoch_: float) -> dict[str, float]:
            evaluated_at.append(completed_steps)
            results = evaluate_mlm(accelerator, model, eval_loader, tokenizer, args)
            if accelerator.is_main_process:
                # ``seconds``: wall time since this process started training (evaluations included)
                history.append({"step": completed_steps, "epoch": round(epoch_, 3), "loss": round(last_loss, 4),
                                "seconds": round(time.time() - started, 1),
                                **{k: round(v, 4) for k, v in results.items() if k != "masked_tokens"}})
                logger.info(f"step {completed_steps}: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
            if args.with_tracking:
                accelerator.log({f"eval/{k}": v for k, v in results.items()}, step=completed_steps)
            return results

        def checkpoint(epoch_: int, batch_index_: int, consumed_: int) -> None:
            state = training_state(SCRIPT_NAME, completed_steps, epoch_, batch_index_, consumed_, accelerator, history,
                                   run)
            save_checkpoint(accelerator, output_dir, completed_steps, state=state,
                            write_extra=lambda folder: config.to_json_file(str(folder / MODEL_CONFIG_FILE)),
                            limit=args.save_total_limit, log=logger.info)

        while completed_steps < max_train_steps:
            batch_index = skip_batches
            loader = epoch_batches(accelerator, train_loader, train_data, epoch, skip_batches=skip_batches,
                                   consumed=consumed, streaming=args.streaming)
            skip_batches = 0
            epoch_done = True
            for batch in loader:
                batch = {k: v.to(accelerator.device) for k, v in batch.items()}
                gen = torch.Generator().manual_seed(derived_seed(args.seed, epoch, batch_index, accelerator.process_index))
                input_ids, labels = mask_tokens(batch["input_ids"], mask_token_id=tokenizer.mask_token_id,
                                                vocab_size=len(tokenizer), probability=args.mlm_probability, generator=gen,
                                                special_tokens_mask=batch["special_tokens_mask"],
                                                attention_mask=batch["attention_mask"])
                with accelerator.accumulate(model):
                    loss = model(input_ids=input_ids, attention_mask=batch["attention_mask"],
                                 token_type_ids=batch["token_type_ids"], labels=labels).loss
                    optimizer_step(accelerator, model, optimizer, scheduler, loss, args.max_grad_norm)
                batch_index += 1
                consumed += batch["input_ids"].shape[0]
                running_loss += float(loss.detach())
                running_count += 1
                if not accelerator.sync_gradients:
                    continue
                completed_steps += 1
                progress.update(1)
                last_loss = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
                if completed_steps % args.logging_steps == 0 or completed_steps == max_train_steps:
                    report_train_loss(accelerator, progress, scheduler, running_loss / running_count, completed_steps,
                                      with_tracking=args.with_tracking)
                    running_loss, running_count = 0.0, 0
                eval_now, save_now, stop = step_events(completed_steps, batch_index, batches_per_epoch, max_train_steps,
                                                       args.eval_steps, checkpoint_every)
                if eval_now:
                    last_eval = evaluate_now(epoch + batch_index / (batches_per_epoch or batch_index))
                if save_now:
                    checkpoint(epoch, batch_index, consumed)
                if stop:
                    epoch_done = False
                    break
            if epoch_done:
                epoch += 1
                consumed = 0
                if batches_per_epoch is not None:
                    last_eval = evaluate_now(epoch)
                if epoch_end_checkpoint(completed_steps, checkpoint_every, args.checkpointing_steps):
                    checkpoint(epoch, 0, 0)
        progress.close()
    train_seconds = time.time() - started
    if evaluated_at[-1] != completed_steps:
        last_eval = evaluate_now(epoch)

    return save_final_outputs(
        accelerator, model, output_dir, guard, processor=tokenizer, processor_name="tokenizer",
        train_loss=last_loss, train_steps=completed_steps, train_seconds=train_seconds, eval_results=last_eval,
        make_card=lambda unwrapped: None if args.baseline else build_card(
            args, unwrapped, dataset_id, last_eval, history, total_batch, max_train_steps, warmup),
        push_to_hub=args.push_to_hub, hub_model_id=args.hub_model_id, hub_private_repo=args.hub_private_repo,
        hub_token=args.hub_token, with_tracking=args.with_tracking, log=logger.info, history=history)


def build_card(args, model, dataset_id, results, history, total_batch, steps, warmup):
    from lion_hf.hub import RunMetric, render_run_card

    metrics = []
    if "mlm_accuracy" in results:
        metrics.append(RunMetric("accuracy", round(results["mlm_accuracy"], 4),
                                 f"MLM accuracy ({args.eval_mlm_probability:.0%} masking)"))
    hub = dataset_id if args.dataset_name else None
    hyper = {"tokenizer": args.tokenizer_name, "sequence length": args.max_seq_length, "packing": args.pack,
             "masking (train / eval)": f"{args.mlm_probability} / {args.eval_mlm_probability}",
             "total batch size": total_batch, "learning rate": args.learning_rate, "optimizer": "AdamW",
             "weight decay": args.weight_decay, "schedule": f"{args.lr_scheduler_type}, {warmup} warm-up steps",
             "steps": steps, "gradient clipping": args.max_grad_norm or "off", "seed": args.seed}
    name = args.model_name or args.hub_model_id or Path(args.output_dir).resolve().name
    return render_run_card(
        model_name=name, config=model.config, dataset_id=dataset_id if hub else "text", dataset_name=dataset_id,
        dataset_config=args.dataset_config, eval_split="validation", metrics=metrics, hyperparameters=hyper,
        training_log=history, script="examples/mlm/run_mlm.py", hub_datasets=[hub] if hub else None,
        base_model=args.model_name_or_path, repo_id=args.hub_model_id or name,
        num_parameters=sum(p.numel() for p in model.parameters()), tags=["fill-mask", "masked-language-modeling"])


if __name__ == "__main__":
    try:
        main()
    except ScriptError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
