# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Checks of image data sets before training: class folders, labels across splits, unreadable images.

A corrupt file or an empty class otherwise surfaces late and far from its cause (a decoding error inside
a data-loader worker at some step, or ``IndexError: Target 2 is out of bounds`` at the first evaluation).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = ["ImageDataError", "class_folders", "decode_image", "find_unreadable_images", "label_mapping"]


class ImageDataError(ValueError):
    """A problem with an image data set; the message names the file or class and what to do."""


def _image_extensions() -> set[str]:
    return {ext.lower() for ext in Image.registered_extensions()}


def class_folders(root: str | Path, allow_empty: bool = False) -> dict[str, int]:
    """``{class name: number of image files}`` of an ImageNet-style folder (one subfolder per class).

    Raises :class:`ImageDataError` for a folder without class subfolders, and (unless ``allow_empty``) for a
    class folder without a single image file: an empty training class cannot be learnt, and data set loaders
    drop it, which shifts the label ids of the other splits.
    """
    root = Path(root)
    extensions = _image_extensions()
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ImageDataError(f"{root} has no class folders: it must hold one subfolder of images per class")
    counts = {}
    for folder in classes:
        counts[folder.name] = sum(1 for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in extensions)
    empty = [name for name, count in counts.items() if count == 0]
    if empty and not allow_empty:
        raise ImageDataError(f"class folder(s) without images in {root}: {', '.join(empty)}; add images to them or "
                             "remove them (every class needs training images)")
    return counts


def label_mapping(train_names: Sequence[str], eval_names: Sequence[str], where: str = "the evaluation set") -> list[int]:
    """For each evaluation class id, the training class id of the same name.

    Label ids of two separately loaded folders are positions in their own sorted class lists, so they
    only agree when both hold the same classes; matching by name is always right. A class that the
    training set lacks cannot be predicted and is refused.
    """
    index = {name: i for i, name in enumerate(train_names)}
    missing = [name for name in eval_names if name not in index]
    if missing:
        raise ImageDataError(f"{where} has classes the training set lacks: {', '.join(map(str, missing))}; the "
                             f"model cannot predict them (training classes: {', '.join(map(str, train_names))})")
    return [index[name] for name in eval_names]


def _describe(value: Any, index: int) -> str:
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    return f"example {index}"


def decode_image(value: Any, index: int = 0, mode: str | None = None) -> Image.Image:
    """A PIL image from a ``datasets`` image value (a PIL image, or ``{"bytes", "path"}`` when not decoded).

    Raises :class:`ImageDataError` naming the file when it cannot be decoded.
    """
    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, dict) and (value.get("bytes") is not None or value.get("path")):
        try:
            source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else value["path"]
            image = Image.open(source)
            image.load()
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ImageDataError(f"cannot read the image {_describe(value, index)}: {err}") from err
    else:
        raise ImageDataError(f"example {index} does not hold an image (got {type(value).__name__})")
    if mode is not None and image.mode != mode:
        try:
            image = image.convert(mode)
        except (OSError, ValueError) as err:
            raise ImageDataError(f"cannot convert the image {_describe(value, index)} from mode {image.mode} to "
                                 f"{mode}: {err}") from err
    return image


def find_unreadable_images(values: Sequence[Any]) -> list[tuple[int, str]]:
    """``(index, reason)`` of every value that :func:`decode_image` cannot decode (each is fully decoded)."""
    bad = []
    for index, value in enumerate(values):
        try:
            decode_image(value, index)
        except ImageDataError as err:
            bad.append((index, str(err)))
    return bad
