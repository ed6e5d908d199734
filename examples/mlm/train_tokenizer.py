#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Train a BERT-style WordPiece tokenizer on local text files, offline, for ``run_mlm.py --tokenizer_name``.

``run_mlm.py`` defaults to ``bert-base-uncased``, which comes from the Hub. Without network (``HF_HUB_OFFLINE=1``)
train a tokenizer of the same kind (lower-cased WordPiece with ``[PAD] [UNK] [CLS] [SEP] [MASK]``) on the
training corpus with 🤗 ``tokenizers`` and pass its folder::

    python examples/mlm/train_tokenizer.py --train_files "c4/en/c4-train.*.json.gz" --vocab_size 30522 \\
        --output_dir runs/tokenizer
    python examples/mlm/run_mlm.py --train_files "c4/en/c4-train.*.json.gz" --tokenizer_name runs/tokenizer ...

The files are read as ``run_mlm.py`` reads them: ``.json``/``.jsonl``/``.json.gz`` with a ``text`` field per
line, or ``.txt``/``.txt.gz`` with one text per line.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
logger = logging.getLogger("train_tokenizer")


class ScriptError(ValueError):
    """A bad argument or input; the message says what to change."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train_files", nargs="+", required=True, help="local .json/.jsonl/.json.gz/.txt(.gz) files or globs")
    p.add_argument("--text_column", default="text", help="the text field of json lines (default: text)")
    p.add_argument("--vocab_size", type=int, default=30522, help="size of the vocabulary (default: 30522, BERT's)")
    p.add_argument("--min_frequency", type=int, default=2, help="least count of a merged piece (default: 2)")
    p.add_argument("--cased", action="store_true", help="keep case and accents (default: lower-cased, as bert-base-uncased)")
    p.add_argument("--max_texts", type=int, default=None, help="read at most this many texts (default: all)")
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    if args.vocab_size < len(SPECIAL_TOKENS) + 1:
        raise ScriptError(f"--vocab_size must be more than {len(SPECIAL_TOKENS)} (the special tokens)")
    if args.min_frequency < 1 or (args.max_texts is not None and args.max_texts < 1):
        raise ScriptError("--min_frequency and --max_texts must be at least 1")
    return args


def expand(patterns: list[str]) -> list[Path]:
    files = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not matched or not all(Path(f).is_file() for f in matched):
            raise ScriptError(f"--train_files: no such file {pattern!r}")
        files.extend(Path(f) for f in matched)
    return files


def read_texts(files: list[Path], text_column: str) -> Iterator[str]:
    for path in files:
        name = path.name[:-3] if path.name.endswith(".gz") else path.name
        if not name.endswith((".json", ".jsonl", ".txt")):
            raise ScriptError(f"cannot read {path}: use .json/.jsonl/.json.gz (a {text_column!r} field per line) or .txt")
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                if name.endswith(".txt"):
                    yield line.rstrip("\n")
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ScriptError(f"{path}, line {number}: not a JSON object ({err})") from None
                text = record.get(text_column) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise ScriptError(f"{path}, line {number}: no text field {text_column!r} (--text_column)")
                yield text


def train(args: argparse.Namespace):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=not args.cased, strip_accents=not args.cased,
                                                      clean_text=True, handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=args.vocab_size, min_frequency=args.min_frequency,
                                        special_tokens=SPECIAL_TOKENS)
    texts = read_texts(expand(args.train_files), args.text_column)
    if args.max_texts is not None:
        import itertools

        texts = itertools.islice(texts, args.max_texts)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if tokenizer.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise ScriptError("the files hold no text to learn a vocabulary from")
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    wrapped = BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=not args.cased, unk_token="[UNK]",
                                pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    wrapped.save_pretrained(args.output_dir)
    return wrapped


def main(argv: list[str] | None = None):
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    tokenizer = train(args)
    logger.info(f"saved a WordPiece tokenizer of {len(tokenizer)} tokens to {args.output_dir}; pass it to run_mlm.py with "
          f"--tokenizer_name {args.output_dir}")
    return tokenizer


if __name__ == "__main__":
    try:
        main()
    except ScriptError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
