# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Reproducible sampling: shuffles and augmentations as pure functions of ``(seed, epoch, index)``.

The example scripts promise that ``--resume_from_checkpoint`` continues exactly like an
uninterrupted run. Global random generators make that fragile (a dataloader iterator draws from
the global torch generator when it is created, worker processes reseed themselves, ...), so the
data side never touches them: :class:`EpochSeededSampler` shuffles with a generator seeded from
``(seed, epoch)`` and hands the epoch to the dataset inside the index it yields, and
:class:`AugmentedDataset` seeds each sample's augmentation from ``(seed, epoch, index)``.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset, Sampler

from .transforms import sample_rng

__all__ = ["AugmentedDataset", "AugmentedIterableDataset", "EpochSeededSampler"]


class EpochSeededSampler(Sampler[int]):
    """Indices of a dataset of ``length`` items, shuffled per epoch from ``(seed, epoch)``.

    It yields ``round * length + index`` so that the dataset (see :class:`AugmentedDataset`) can seed
    each sample's augmentation, whatever worker process it runs in; ``round`` is the epoch.
    ``shuffle=False`` keeps the order (evaluation). Call :meth:`set_epoch` before each epoch
    (accelerate's prepared loaders forward their own ``set_epoch`` here).

    ``repeats > 1`` is DeiT's *repeated augmentation* (Hoffer et al. 2020; Berman et al. 2019): an
    epoch takes ``ceil(length / repeats)`` images of the shuffled order and yields each ``repeats``
    times in a row, so the epoch keeps its ``length`` and a batch holds several differently augmented
    copies of an image. Copy ``c`` of epoch ``e`` uses ``round = e * repeats + c``: every copy gets its
    own augmentation seed. (DeiT's distributed sampler sends the copies to different GPUs; here they
    stay in one batch, as its sampler does on one GPU.)
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, repeats: int = 1):
        if length <= 0:
            raise ValueError("EpochSeededSampler needs a non-empty dataset")
        if repeats < 1 or (repeats > 1 and not shuffle):
            raise ValueError(f"repeats must be >= 1 (and 1 without shuffling), got {repeats}")
        self.length = length
        self.seed = seed
        self.shuffle = shuffle
        self.repeats = int(repeats)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            offset = self.epoch * self.length
            return iter([offset + i for i in range(self.length)])
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.length, generator=gen).tolist()
        if self.repeats == 1:
            offset = self.epoch * self.length
            return iter([offset + i for i in order])
        chosen = order[:math.ceil(self.length / self.repeats)]
        first_round = self.epoch * self.repeats
        keys = [(first_round + copy) * self.length + i for i in chosen for copy in range(self.repeats)]
        return iter(keys[:self.length])


class AugmentedDataset(Dataset):
    """Map-style view of ``dataset`` whose items go through ``transform(example, rng)``.

    Keys are ``round * len(dataset) + index`` as produced by :class:`EpochSeededSampler` (a plain
    index means round 0; the round is the epoch, or ``epoch * repeats + copy`` with repeated
    augmentation); ``rng`` is :func:`~lion_hf.data.transforms.sample_rng` of ``(seed, round, index)``.
    """

    def __init__(self, dataset: Any, transform: Callable[[dict, random.Random], dict], seed: int = 0):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> dict:
        round_, index = divmod(int(key), len(self.dataset))
        return self.transform(self.dataset[index], sample_rng(self.seed, round_, index))


class AugmentedIterableDataset(IterableDataset):
    """Iterable view of a (streaming) dataset whose examples go through ``transform(example, rng)``.

    ``rng`` comes from ``(seed, epoch, position in the stream)``; :meth:`set_epoch` also reshuffles
    a ``datasets.IterableDataset`` (its own shuffle is seeded by the epoch). :meth:`skip` drops the
    first examples of the next pass without transforming them (used when resuming mid-epoch).
    """

    def __init__(self, dataset: Any, transform: Callable[[dict, random.Random], dict], seed: int = 0):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def skip(self, num_examples: int) -> None:
        self._skip = int(num_examples)

    def __iter__(self) -> Iterator[dict]:
        skip, self._skip = self._skip, 0
        worker = torch.utils.data.get_worker_info()
        stream = enumerate(self.dataset)
        stream = itertools.islice(stream, skip, None)
        if worker is not None and worker.num_workers > 1:
            # Each worker takes every num_workers-th example; positions stay global, so the
            # augmentation of an example does not depend on the worker count.
            stream = itertools.islice(stream, worker.id, None, worker.num_workers)
        for position, example in stream:
            yield self.transform(example, sample_rng(self.seed, self.epoch, position))
