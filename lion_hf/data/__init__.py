# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Data utilities of the example scripts: DeiT augmentations in plain PIL/torch, reproducible
sampling, MLM masking and packing, and the embedded digits data set."""

from .digits import DIGIT_LABELS, digits_images, load_digits_dataset
from .images import ImageDataError, class_folders, decode_image, find_unreadable_images, label_mapping
from .mlm import mask_tokens, pack_token_blocks
from .sampling import AugmentedDataset, AugmentedIterableDataset, EpochSeededSampler
from .transforms import (
    CenterCrop,
    Compose,
    Mixup,
    Normalize,
    RandAugment,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    build_eval_transform,
    build_train_transform,
    one_hot_smoothed,
    sample_rng,
    soft_target_cross_entropy,
)

__all__ = [
    "DIGIT_LABELS",
    "AugmentedDataset",
    "AugmentedIterableDataset",
    "CenterCrop",
    "Compose",
    "EpochSeededSampler",
    "ImageDataError",
    "Mixup",
    "Normalize",
    "RandAugment",
    "RandomErasing",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "build_eval_transform",
    "build_train_transform",
    "class_folders",
    "decode_image",
    "digits_images",
    "find_unreadable_images",
    "label_mapping",
    "load_digits_dataset",
    "mask_tokens",
    "one_hot_smoothed",
    "pack_token_blocks",
    "sample_rng",
    "soft_target_cross_entropy",
]
