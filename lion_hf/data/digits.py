# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""The embedded default data set: scikit-learn's bundled 8x8 handwritten digits (no download)."""

from __future__ import annotations

import numpy as np

__all__ = ["DIGIT_LABELS", "digits_images", "load_digits_dataset"]

DIGIT_LABELS = [str(i) for i in range(10)]


def digits_images() -> tuple[list, np.ndarray]:
    """The 1,797 digits as 8x8 RGB PIL images (grey levels 0..16 scaled to 0..255) and their labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the digits data set needs scikit-learn: pip install 'lion_hf[examples]'") from err
    from PIL import Image

    bunch = load_digits()
    pixels = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    # RGB so that the images go through the same processor as any photo (3 channels).
    images = [Image.fromarray(p, mode="L").convert("RGB") for p in pixels]
    return images, bunch.target.astype(np.int64)


def load_digits_dataset(test_size: float = 0.2, seed: int = 0):
    """A ``datasets.DatasetDict`` with ``train`` and ``test`` splits (columns ``image``, ``label``).

    The split is stratified and fixed by ``seed`` so that the held-out test images never change
    between runs (the quick start classifies one of them after training).
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image

    images, labels = digits_images()
    rng = np.random.default_rng(seed)
    test_idx: list[int] = []
    for cls in range(10):
        members = np.flatnonzero(labels == cls)
        take = int(round(len(members) * test_size))
        test_idx.extend(rng.choice(members, size=take, replace=False).tolist())
    test_set = set(test_idx)
    train_idx = [i for i in range(len(labels)) if i not in test_set]
    features = Features({"image": Image(), "label": ClassLabel(names=DIGIT_LABELS)})

    def build(indices: list[int]):
        return Dataset.from_dict({"image": [images[i] for i in sorted(indices)],
                                  "label": [int(labels[i]) for i in sorted(indices)]}, features=features)

    return DatasetDict({"train": build(train_idx), "test": build(test_idx)})
