#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Train a LION image classifier with 🤗 Accelerate (no Trainer), following the DeiT recipe.

Data: a Hub data set (``--dataset ILSVRC/imagenet-1k``, optionally ``--streaming``), ImageNet-style
folders (``--dataset imagefolder --train_dir ... --validation_dir ...`` or ``--data_dir`` holding
``train/`` and ``validation/``/``val/``/``test/``), or the embedded default ``--dataset digits``
(scikit-learn's bundled 8x8 digits, no download).

Recipe (DeiT, as in the LION paper's vision runs): AdamW, linear warm-up + cosine decay, label
smoothing, Mixup/CutMix, RandAugment, random erasing, drop path, gradient clipping, optional EMA of
the weights and optional hard distillation from any ``AutoModelForImageClassification`` teacher.
Mixed precision, gradient accumulation and multi-GPU/multi-node come from ``accelerate launch``.

Checkpoints (``--checkpointing_steps``) hold the model, optimizer, scheduler, EMA, every random
generator state and the position in the data; ``--resume_from_checkpoint`` continues exactly: the
final loss equals that of an uninterrupted run with the same seed (augmentations and shuffles are
pure functions of ``(seed, epoch, index)``, see ``lion_hf.data.sampling``). They are written atomically,
record the run they belong to (``--resume_from_checkpoint latest`` takes only this run's complete ones) and
hold nothing that is unpickled (the EMA is safetensors); see ``lion_hf.training.checkpoints``.

``--recipe small`` replaces the ImageNet-scale defaults for small data sets (see ``RECIPES``).

At the end the model, a ``ViTImageProcessor`` and a model card filled from the run are saved to
``--output_dir`` (ready for ``pipeline("image-classification", model=output_dir)``), and pushed with
``--push_to_hub``.

Example (CPU, a minute)::

    accelerate launch --cpu examples/image_classification/run_image_classification.py \\
        --dataset digits --output_dir runs/digits --num_train_epochs 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

import lion_hf  # noqa: F401  (registers LION with the Auto classes: LION teachers load too)
from lion_hf import LionConfig, LionForImageClassification
from lion_hf.data import (
    AugmentedDataset,
    AugmentedIterableDataset,
    EpochSeededSampler,
    Mixup,
    build_eval_transform,
    build_train_transform,
    soft_target_cross_entropy,
)
from lion_hf.data.images import ImageDataError, class_folders, decode_image, find_unreadable_images, label_mapping
from lion_hf.metrics import metric_path as local_metric_path
from lion_hf.training import (
    EMA_FILE,
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
    load_tensors,
    optimizer_step,
    report_train_loss,
    resolve_resume_checkpoint,
    resume_position,
    run_fingerprint,
    save_checkpoint,
    save_final_outputs,
    save_tensors,
    start_accelerate_run,
    step_events,
    training_state,
    validate_checkpointing_steps,
    validate_resume_from_checkpoint,
    validate_save_total_limit,
)
from lion_hf.training import fingerprint_arguments as _fingerprint_arguments

SCRIPT_NAME = "run_image_classification"
#: ``--baseline`` values: the Transformer trained through the same script, recipe and data for comparison.
BASELINES = ("vit",)
#: LION-only flags, refused with ``--baseline`` (the ViT has no decay mask, scan order or drop path).
LION_ONLY_FLAGS = ("attention_type", "position_encoding", "mask_type", "patch_order", "pooling", "attention_form", "preset",
                   "model_name_or_path", "teacher_model")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Named recipes: the defaults of the flags left unset. ``deit`` is the paper's ImageNet recipe (its learning
#: rate scales as 5e-4 x total batch / 512); ``small`` suits data sets of a few thousand images or fewer (no
#: Mixup/CutMix, RandAugment, random erasing, repeated augmentation or drop path; a fixed learning rate).
RECIPES: dict[str, dict[str, Any]] = {
    "deit": {"smoothing": 0.1, "mixup": 0.8, "cutmix": 1.0, "rand_augment": "rand-m9-mstd0.5-inc1", "reprob": 0.25,
             "repeated_augmentation": 3, "drop_path": 0.1, "crop_scale_min": 0.08, "warmup_epochs": 5.0,
             "base_learning_rate": 5e-4, "learning_rate_batch": 512},
    "small": {"smoothing": 0.1, "mixup": 0.0, "cutmix": 0.0, "rand_augment": "none", "reprob": 0.0,
              "repeated_augmentation": 1, "drop_path": 0.0, "crop_scale_min": 0.35, "warmup_epochs": 1.0,
              "base_learning_rate": 1e-3, "learning_rate_batch": None},
}
#: Arguments that do not change what a run trains (left out of the run's fingerprint in its checkpoints).
NOT_IN_FINGERPRINT = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "checkpointing_steps", "save_total_limit",
    "eval_steps", "logging_steps", "with_tracking", "report_to", "model_name", "push_to_hub", "hub_model_id",
    "hub_token", "hub_private_repo", "num_workers", "per_device_eval_batch_size", "max_eval_samples", "image_check"})
#: Data flags and the data sets that read them (any other combination is refused: the flag would be ignored).
DATA_FLAGS = {
    "data_dir": ("imagefolder",), "train_dir": ("imagefolder",), "validation_dir": ("imagefolder",),
    "dataset_config": ("hub",), "train_split": ("hub", "imagefolder-data_dir"),
    "eval_split": ("hub", "imagefolder-data_dir"), "streaming": ("hub", "imagefolder"),
}


class ScriptError(ValueError):
    """A bad argument or input; the message says what to change."""


# --------------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="digits",
                   help="'digits' (embedded, no download), 'imagefolder' (local folders) or a Hub data set name")
    g.add_argument("--dataset_config", default=None, help="configuration name of a Hub data set")
    g.add_argument("--data_dir", default=None, help="imagefolder: a folder with train/ and validation/ (or val/, test/)")
    g.add_argument("--train_dir", default=None, help="imagefolder: the training folder (one subfolder per class)")
    g.add_argument("--validation_dir", default=None, help="imagefolder: the evaluation folder (one subfolder per class)")
    g.add_argument("--train_split", default=None, help="Hub data set or --data_dir: the training split (default: train)")
    g.add_argument("--eval_split", default=None, help="Hub data set or --data_dir: the evaluation split "
                   "(default: validation, val or test, whichever exists)")
    g.add_argument("--streaming", action="store_true", help="stream a Hub data set (needs --max_train_steps)")
    g.add_argument("--image_column", default=None, help="default: 'image' or 'img'")
    g.add_argument("--label_column", default=None, help="default: 'label', 'labels' or 'fine_label'")
    g.add_argument("--max_train_samples", type=int, default=None,
                   help="train on a random subset of this many images (fixed by --seed; a stream takes its first ones)")
    g.add_argument("--max_eval_samples", type=int, default=None,
                   help="evaluate on a random subset of this many images (fixed by --seed)")
    g.add_argument("--num_workers", type=int, default=0, help="dataloader worker processes")
    g.add_argument("--image_check", default=None, choices=["full", "skip", "none"],
                   help="before training, decode every image of a map-style data set: 'full' stops on an unreadable "
                        "one (naming the files), 'skip' leaves them out (with a count in the log), 'none' checks "
                        "nothing up front (an unreadable image then stops the run when it is reached); default: "
                        "full for imagefolder, none for Hub data sets and digits")

    g = p.add_argument_group("model")
    g.add_argument("--model_name_or_path", default=None,
                   help="start from a saved LION checkpoint (fine-tuning); otherwise a new model is built")
    g.add_argument("--baseline", default=None, choices=list(BASELINES),
                   help="train transformers' ViTForImageClassification (SDPA attention, class-token pooling) "
                        "of the sizes given instead of a LION model: the Transformer to compare with")
    g.add_argument("--preset", default=None, help="a LionConfig preset, e.g. lion-s-tiny-patch16-224 (see lion_hf.list_presets())")
    g.add_argument("--attention_type", default=None, choices=["lion", "lightnet"],
                   help="the token mixer: LION's masked linear attention (default) or LightNet's (see the README)")
    g.add_argument("--position_encoding", default=None, choices=["none", "md_lrpe", "md_tpe", "md_lrpe_tpe"],
                   help="LightNet's MD-LRPE/MD-TPE encodings for either mixer (default: none; see the README)")
    g.add_argument("--mask_type", default=None, choices=["lit", "decay", "selective"],
                   help="default: selective (LION); LightNet has no decay mask")
    g.add_argument("--patch_order", default=None, choices=["normal", "s"], help="default: normal")
    g.add_argument("--image_size", type=int, default=None, help="default: 16 for digits, else 224")
    g.add_argument("--patch_size", type=int, default=None, help="default: 4 for digits, else 16")
    g.add_argument("--hidden_size", type=int, default=None, help="default: 64 for digits, else 192 (tiny)")
    g.add_argument("--num_hidden_layers", type=int, default=None, help="default: 4 for digits, else 12")
    g.add_argument("--num_attention_heads", type=int, default=None, help="default: 4 for digits, else 3")
    g.add_argument("--intermediate_size", type=int, default=None, help="default: 4 x hidden size")
    g.add_argument("--pooling", default=None, choices=["mean", "cls"], help="default: mean")
    g.add_argument("--use_position_embeddings", action="store_true")
    g.add_argument("--attention_form", default=None, choices=["auto", "attention", "chunk", "recurrent"])
    g.add_argument("--drop_path", type=float, default=None, help="stochastic depth rate (default: the recipe's)")
    g.add_argument("--image_mean", type=float, nargs=3, default=None, help="default: ImageNet mean (0.5 for digits)")
    g.add_argument("--image_std", type=float, nargs=3, default=None, help="default: ImageNet std (0.5 for digits)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--recipe", default="deit", choices=sorted(RECIPES),
                   help="values of the recipe flags left unset: 'deit' (the paper's ImageNet recipe: lr 5e-4 x "
                        "total batch / 512, Mixup, CutMix, RandAugment, random erasing, repeated augmentation, "
                        "drop path; the default) or 'small' (for small data sets: lr 1e-3, none of those)")
    g.add_argument("--per_device_train_batch_size", type=int, default=64)
    g.add_argument("--per_device_eval_batch_size", type=int, default=128)
    g.add_argument("--gradient_accumulation_steps", type=int, default=1)
    g.add_argument("--learning_rate", type=float, default=None,
                   help="default: the recipe's (deit: 5e-4 x total batch / 512; small: 1e-3)")
    g.add_argument("--min_lr", type=float, default=1e-5, help="end of the cosine decay")
    g.add_argument("--weight_decay", type=float, default=0.05)
    g.add_argument("--adam_beta1", type=float, default=0.9)
    g.add_argument("--adam_beta2", type=float, default=0.999)
    g.add_argument("--num_train_epochs", type=int, default=300)
    g.add_argument("--max_train_steps", type=int, default=None, help="overrides --num_train_epochs")
    g.add_argument("--warmup_epochs", type=float, default=None, help="default: the recipe's (deit 5, small 1)")
    g.add_argument("--warmup_steps", type=int, default=None, help="overrides --warmup_epochs")
    g.add_argument("--max_grad_norm", type=float, default=1.0, help="gradient clipping; 0 disables")
    g.add_argument("--mixed_precision", default=None, choices=["no", "fp16", "bf16"],
                   help="default: what `accelerate launch`/`accelerate config` says")

    g = p.add_argument_group("augmentation and regularisation (unset: the --recipe's defaults)")
    g.add_argument("--smoothing", type=float, default=None, help="label smoothing (default: 0.1)")
    g.add_argument("--mixup", type=float, default=None, help="Mixup alpha; 0 disables (default: deit 0.8, small 0)")
    g.add_argument("--cutmix", type=float, default=None, help="CutMix alpha; 0 disables (default: deit 1, small 0)")
    g.add_argument("--mixup_prob", type=float, default=1.0)
    g.add_argument("--mixup_switch_prob", type=float, default=0.5)
    g.add_argument("--rand_augment", default=None,
                   help="RandAugment config, or 'none' (default: deit rand-m9-mstd0.5-inc1, small none)")
    g.add_argument("--reprob", type=float, default=None,
                   help="random erasing probability (default: deit 0.25, small 0)")
    g.add_argument("--repeated_augmentation", type=int, default=None,
                   help="DeiT's repeated augmentation: each image of an epoch comes this many times, differently "
                        "augmented (the epoch keeps its length); default: deit 3 for map-style data, 1 (off) for "
                        "--streaming, which cannot repeat, and for small")
    g.add_argument("--crop_scale_min", type=float, default=None,
                   help="smallest area of the random resized crop (default: deit 0.08, small 0.35)")
    g.add_argument("--hflip", type=float, default=0.5, help="horizontal flip probability")
    g.add_argument("--model_ema", action="store_true", help="keep an exponential moving average of the weights")
    g.add_argument("--model_ema_decay", type=float, default=0.99996)
    g.add_argument("--teacher_model", default=None, help="hard distillation from this AutoModelForImageClassification")
    g.add_argument("--distillation_alpha", type=float, default=0.5, help="weight of the teacher's hard labels")

    g = p.add_argument_group("checkpoints, logging, output")
    g.add_argument("--output_dir", required=True)
    g.add_argument("--overwrite_output_dir", action="store_true")
    g.add_argument("--checkpointing_steps", default=None, help="an integer (optimizer steps) or 'epoch'")
    g.add_argument("--save_total_limit", type=int, default=None,
                   help="keep only the newest N (>= 1) checkpoints of this run")
    g.add_argument("--resume_from_checkpoint", default=None,
                   help="a checkpoint folder, or 'latest': the newest complete checkpoint of this same run in --output_dir")
    g.add_argument("--eval_steps", type=int, default=None, help="also evaluate every N steps (default: every epoch)")
    g.add_argument("--logging_steps", type=int, default=10)
    g.add_argument("--with_tracking", action="store_true", help="log to accelerate trackers (see --report_to)")
    g.add_argument("--report_to", default="tensorboard", help="accelerate tracker(s): tensorboard, wandb, all, ...")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--model_name", default=None, help="name in the model card (default: the output folder's name)")
    add_hub_arguments(g)
    args = p.parse_args(argv)
    _check_args(args)
    return args


def _data_source(args: argparse.Namespace) -> str:
    if args.dataset == "digits":
        return "digits"
    if args.dataset == "imagefolder":
        return "imagefolder-data_dir" if args.data_dir is not None else "imagefolder-train_dir"
    return "hub"


def _check_data_flags(args: argparse.Namespace) -> None:
    """Every data flag given must be read by the chosen data set (an ignored flag is a silent mistake)."""
    source = _data_source(args)
    readers = {"hub": "a Hub data set", "imagefolder": "--dataset imagefolder",
               "imagefolder-data_dir": "--dataset imagefolder with --data_dir"}
    for flag, used_by in DATA_FLAGS.items():
        value = getattr(args, flag)
        if value in (None, False):
            continue
        if source in used_by or (source.startswith("imagefolder") and "imagefolder" in used_by):
            continue
        where = " or ".join(readers[u] for u in used_by)
        raise ScriptError(f"--{flag} applies to {where}, not to --dataset {args.dataset}"
                          + (" with --train_dir" if source == "imagefolder-train_dir" else "")
                          + f"; it would be ignored. Drop it{_data_flag_hint(flag, args)}")
    if args.data_dir is not None and (args.train_dir is not None or args.validation_dir is not None):
        raise ScriptError("give either --data_dir (holding train/ and validation/) or --train_dir with "
                          "--validation_dir, not both")
    if args.validation_dir is not None and args.train_dir is None:
        raise ScriptError("--validation_dir needs --train_dir (or use --data_dir with train/ and validation/)")


def _data_flag_hint(flag: str, args: argparse.Namespace) -> str:
    if flag in ("data_dir", "train_dir", "validation_dir") and args.dataset != "imagefolder":
        return ", or add --dataset imagefolder to train on the folders"
    return ""


def _apply_recipe(args: argparse.Namespace) -> None:
    recipe = RECIPES[args.recipe]
    for name in ("smoothing", "mixup", "cutmix", "rand_augment", "reprob", "drop_path", "crop_scale_min",
                 "warmup_epochs"):
        if getattr(args, name) is None:
            setattr(args, name, recipe[name])
    if args.repeated_augmentation is None:
        args.repeated_augmentation = 1 if args.streaming else recipe["repeated_augmentation"]


def _check_push(args: argparse.Namespace) -> None:
    """``--push_to_hub`` is checked before training, not after it: online, and with a token."""
    try:
        args.hub_model_id = check_push_to_hub(args.push_to_hub, args.hub_model_id, args.hub_private_repo,
                                              args.hub_token, args.output_dir)
    except LaunchError as err:
        raise ScriptError(str(err)) from err


def _check_args(args: argparse.Namespace) -> None:
    _check_data_flags(args)
    _apply_recipe(args)
    if args.train_split is None:
        args.train_split = "train"
    if args.streaming and args.max_train_steps is None:
        raise ScriptError("--streaming needs --max_train_steps (a stream has no known length)")
    try:
        validate_checkpointing_steps(args.checkpointing_steps)
        validate_save_total_limit(args.save_total_limit)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err
    if args.repeated_augmentation < 1:
        raise ScriptError(f"--repeated_augmentation must be >= 1 (1 disables it), got {args.repeated_augmentation}")
    if args.streaming and args.repeated_augmentation > 1:
        raise ScriptError("--repeated_augmentation needs a map-style data set: a stream cannot repeat its images; "
                          "drop --streaming or pass --repeated_augmentation 1")
    if args.gradient_accumulation_steps < 1:
        raise ScriptError("--gradient_accumulation_steps must be >= 1")
    if not 0.0 <= args.distillation_alpha <= 1.0:
        raise ScriptError("--distillation_alpha must be in [0, 1]")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "logging_steps", "num_train_epochs"):
        if getattr(args, name) < 1:
            raise ScriptError(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("max_train_steps", "max_train_samples", "max_eval_samples", "eval_steps", "warmup_steps"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup_steps" else 1):
            raise ScriptError(f"--{name} must be at least {0 if name == 'warmup_steps' else 1}, got {value}")
    for name in ("smoothing", "reprob", "mixup_prob", "mixup_switch_prob", "hflip", "drop_path"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise ScriptError(f"--{name} must be in [0, 1], got {getattr(args, name)}")
    if not 0.0 < args.crop_scale_min <= 1.0:
        raise ScriptError(f"--crop_scale_min must be in (0, 1], got {args.crop_scale_min}")
    if not 0.0 <= args.model_ema_decay < 1.0:
        raise ScriptError(f"--model_ema_decay must be in [0, 1), got {args.model_ema_decay}")
    if args.learning_rate is not None and not args.learning_rate > 0:
        raise ScriptError(f"--learning_rate must be positive, got {args.learning_rate}")
    if args.warmup_epochs < 0 or args.mixup < 0 or args.cutmix < 0 or args.num_workers < 0:
        raise ScriptError("--warmup_epochs, --mixup, --cutmix and --num_workers must be >= 0")
    if args.image_std is not None and any(v <= 0 for v in args.image_std):
        raise ScriptError(f"--image_std must be positive, got {args.image_std}")
    _check_push(args)
    if args.dataset == "imagefolder":
        if args.data_dir is None and args.train_dir is None:
            raise ScriptError("--dataset imagefolder needs --data_dir or --train_dir")
        for flag in ("data_dir", "train_dir", "validation_dir"):
            value = getattr(args, flag)
            if value is not None and not Path(value).is_dir():
                raise ScriptError(f"--{flag} {value!r} is not a folder")
        if args.train_dir is not None and args.validation_dir is None:
            raise ScriptError("--train_dir needs --validation_dir (or use --data_dir with train/ and validation/)")
    try:
        validate_resume_from_checkpoint(args.resume_from_checkpoint)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def _first_present(names: list[str], candidates: tuple[str, ...], flag: str, explicit: str | None) -> str:
    if explicit is not None:
        if explicit not in names:
            raise ScriptError(f"{flag} {explicit!r} is not a column of the data set (columns: {names})")
        return explicit
    for candidate in candidates:
        if candidate in names:
            return candidate
    raise ScriptError(f"cannot find the column among {names}; pass {flag}")


def load_splits(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``(train, eval, dataset id for the card)``; each a ``datasets`` Dataset or IterableDataset."""
    import datasets

    if args.dataset == "digits":
        from lion_hf.data import load_digits_dataset

        splits = load_digits_dataset(seed=0)
        return splits["train"], splits["test"], "digits"
    if args.dataset == "imagefolder":
        try:
            if args.train_dir is not None:
                class_folders(args.train_dir)
                class_folders(args.validation_dir, allow_empty=True)
                train = datasets.load_dataset("imagefolder", data_dir=args.train_dir, split="train",
                                              streaming=args.streaming)
                evaluation = datasets.load_dataset("imagefolder", data_dir=args.validation_dir, split="train",
                                                   streaming=args.streaming)
                return train, evaluation, "imagefolder"
            train_folder = Path(args.data_dir) / args.train_split
            if train_folder.is_dir():
                class_folders(train_folder)
        except ImageDataError as err:
            raise ScriptError(str(err)) from err
        splits = datasets.load_dataset("imagefolder", data_dir=args.data_dir, streaming=args.streaming)
    else:
        try:
            splits = datasets.load_dataset(args.dataset, args.dataset_config, streaming=args.streaming)
        except ConnectionError as err:
            raise ScriptError(f"cannot load the Hub data set {args.dataset!r} ({err}). Offline (HF_HUB_OFFLINE=1) only "
                              "cached data sets load; use --dataset imagefolder for local folders") from err
        except FileNotFoundError as err:
            raise ScriptError(f"no data set {args.dataset!r}: {err}") from err
    if args.train_split not in splits:
        raise ScriptError(f"the data set has no split {args.train_split!r} (splits: {list(splits)})")
    eval_split = args.eval_split
    if eval_split is None:
        eval_split = next((s for s in ("validation", "val", "test") if s in splits), None)
        if eval_split is None:
            raise ScriptError(f"no evaluation split among {list(splits)}; pass --eval_split")
    elif eval_split not in splits:
        raise ScriptError(f"the data set has no split {eval_split!r} (splits: {list(splits)})")
    return splits[args.train_split], splits[eval_split], args.dataset


def label_names(data: Any, label_column: str, split: str = "training") -> tuple[list[str], dict | None]:
    """Class names of a split, and the map from its raw label values to class ids (None: the values are the ids).

    A ``ClassLabel`` feature (Hub data sets, imagefolder, digits) gives the names and its values are ids;
    a plain column (ints or strings) gets one class per distinct value, in sorted order.
    """
    feature = (data.features or {}).get(label_column)
    names = getattr(feature, "names", None)
    if names:
        return list(names), None
    if getattr(data, "num_rows", None) is not None:
        values = sorted(set(data[label_column]), key=lambda v: (str(type(v)), v))
        if not values:
            raise ScriptError(f"the {split} set has no labels")
        return [str(v) for v in values], {v: i for i, v in enumerate(values)}
    raise ScriptError(f"column {label_column!r} is not a ClassLabel; cannot know the classes of a stream")


def eval_label_map(train_names: list[str], train_map: dict | None, eval_data: Any, label_column: str) -> dict | None:
    """Raw evaluation label value -> training class id, matched by class name (None: already the same ids)."""
    eval_names, eval_map = label_names(eval_data, label_column, "evaluation")
    if eval_names == train_names and eval_map == train_map:
        return train_map
    try:
        ids = label_mapping(train_names, eval_names)
    except ImageDataError as err:
        raise ScriptError(str(err)) from err
    if eval_map is None:
        return dict(enumerate(ids))
    return {value: ids[position] for value, position in eval_map.items()}


def check_eval_labels(data: Any, label_column: str, label_map: dict | None, num_labels: int) -> None:
    """Every evaluation label is one of the training classes (a Hub test split's -1 is caught here, not mid-run)."""
    for row, raw in enumerate(data[label_column]):
        label = label_map.get(raw) if label_map is not None else raw
        if not isinstance(label, int) or not 0 <= label < num_labels:
            raise ScriptError(f"evaluation example {row} has the label {raw!r}, not one of the {num_labels} classes "
                              "(a split without labels, such as a Hub test split, has -1: choose another --eval_split)")


def check_images(data: Any, image_column: str, mode: str, split: str, logger) -> Any:
    """Decode every image up front (``--image_check full`` / ``skip``); returns the data, less the bad ones."""
    import concurrent.futures
    import os

    total, chunk, workers = len(data), 256, min(8, os.cpu_count() or 1)
    logger.info(f"decoding the {total} {split} images once to find unreadable ones (--image_check none skips this)")
    started = time.time()
    bad: list[tuple[int, str]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        # A window of chunks at a time: only that many images' bytes are in memory.
        for window in range(0, total, chunk * workers):
            starts = range(window, min(window + chunk * workers, total), chunk)
            found = pool.map(find_unreadable_images, (data[s:s + chunk][image_column] for s in starts))
            bad.extend((s + i, reason) for s, results in zip(starts, found) for i, reason in results)
    values = range(total)
    logger.info(f"checked the {total} {split} images in {time.time() - started:.1f} s: {len(bad)} unreadable")
    if not bad:
        return data
    listed = "; ".join(reason for _, reason in bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
    if mode == "full":
        raise ScriptError(f"{len(bad)} unreadable image(s) in the {split} set: {listed}. Remove or replace them, "
                          "or pass --image_check skip to leave them out")
    drop = {index for index, _ in bad}
    kept = data.select([i for i in range(len(values)) if i not in drop])
    logger.warning(f"--image_check skip: left out {len(bad)} unreadable image(s) of {len(values)} in the {split} "
                   f"set ({listed})")
    if len(kept) == 0:
        raise ScriptError(f"no readable image is left in the {split} set")
    return kept


def make_example_transform(transform, image_column: str, label_column: str, mode: str, num_labels: int,
                           label_map: dict | None = None):
    """Map one raw example to ``{"pixel_values", "labels"}`` through ``transform(image, rng)``."""

    def apply(example: dict, rng) -> dict:
        try:
            image = decode_image(example[image_column], mode=mode)
        except ImageDataError as err:
            raise ScriptError(f"{err} (--image_check full finds such files before training)") from err
        raw = example[label_column]
        label = label_map.get(raw) if label_map is not None else raw
        if not isinstance(label, int) or not 0 <= label < num_labels:
            raise ScriptError(f"an example has the label {raw!r}, not one of the {num_labels} classes (a split "
                              "without labels, such as a Hub test split, has -1: choose another --eval_split)")
        return {"pixel_values": transform(image, rng), "labels": int(label)}

    return apply


def collate(batch: list[dict]) -> dict[str, torch.Tensor]:
    return {"pixel_values": torch.stack([b["pixel_values"] for b in batch]),
            "labels": torch.tensor([b["labels"] for b in batch], dtype=torch.long)}


# --------------------------------------------------------------------------------------------------
# Model, EMA, teacher
# --------------------------------------------------------------------------------------------------
def build_baseline(args: argparse.Namespace, id2label: dict[int, str], label2id: dict[str, int]):
    """``--baseline vit``: transformers' ViT of the sizes given (the defaults of a new LION model), SDPA attention."""
    from transformers import ViTConfig, ViTForImageClassification

    given = [f"--{name}" for name in LION_ONLY_FLAGS if getattr(args, name) is not None]
    if args.drop_path:
        given.append(f"--drop_path {args.drop_path} (transformers' ViT has no stochastic depth; pass --drop_path 0)")
    if given:
        raise ScriptError(f"{', '.join(given)}: not available with --baseline vit; drop them")
    small = args.dataset == "digits"
    hidden = args.hidden_size or (64 if small else 192)
    try:
        config = ViTConfig(
            image_size=args.image_size or (16 if small else 224), patch_size=args.patch_size or (4 if small else 16),
            num_channels=3, hidden_size=hidden, num_hidden_layers=args.num_hidden_layers or (4 if small else 12),
            num_attention_heads=args.num_attention_heads or (4 if small else 3),
            intermediate_size=args.intermediate_size or 4 * hidden, num_labels=len(id2label), id2label=id2label,
            label2id=label2id, attn_implementation="sdpa")
        config.architectures = ["ViTForImageClassification"]
        return ViTForImageClassification(config)
    except ValueError as err:
        raise ScriptError(f"cannot build the ViT baseline: {err}") from err


def build_model(args: argparse.Namespace, labels: list[str]):
    """The LION model to train (new, from ``--preset``/sizes, or ``--model_name_or_path``), or ``--baseline``'s ViT."""
    id2label = {i: name for i, name in enumerate(labels)}
    label2id = {name: i for i, name in id2label.items()}
    if args.baseline is not None:
        return build_baseline(args, id2label, label2id)
    if args.model_name_or_path is not None:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(args.model_name_or_path)
        except (OSError, ValueError) as err:
            raise ScriptError(f"cannot load --model_name_or_path {args.model_name_or_path!r}: {err}") from err
        if config.model_type != LionConfig.model_type or getattr(config, "modality", None) != "vision":
            raise ScriptError(f"--model_name_or_path {args.model_name_or_path!r} is a "
                              f"{config.model_type!r} checkpoint (modality {getattr(config, 'modality', None)!r}); "
                              "this script trains LION vision models (model_type 'lion', modality 'vision')")
        given = [f"--{name}" for name in ("preset", "image_size", "patch_size", "hidden_size", "num_hidden_layers",
                                          "num_attention_heads", "intermediate_size", "attention_type", "position_encoding",
                                          "mask_type", "patch_order", "pooling", "use_position_embeddings") if getattr(args, name)]
        if given:
            raise ScriptError(f"{', '.join(given)} would be ignored: the model comes from --model_name_or_path; drop them")
        try:
            return LionForImageClassification.from_pretrained(
                args.model_name_or_path, num_labels=len(labels), id2label=id2label, label2id=label2id,
                drop_path_rate=args.drop_path, ignore_mismatched_sizes=True)
        except ValueError as err:
            raise ScriptError(f"cannot load --model_name_or_path {args.model_name_or_path!r}: {err}") from err
    small = args.dataset == "digits"
    if args.preset is not None:
        given = [f"--{name}" for name in ("attention_type", "position_encoding", "mask_type", "patch_order", "hidden_size",
                                          "num_hidden_layers", "num_attention_heads", "intermediate_size", "pooling",
                                          "use_position_embeddings") if getattr(args, name)]
        if given:
            raise ScriptError(f"{', '.join(given)} would be ignored: --preset {args.preset} fixes the architecture; "
                              "drop them, or leave out --preset and give the sizes")
        geometry = {name: getattr(args, name) for name in ("image_size", "patch_size") if getattr(args, name)}
        try:
            config = LionConfig.from_preset(args.preset, num_labels=len(labels), id2label=id2label,
                                            label2id=label2id, drop_path_rate=args.drop_path, **geometry)
        except ValueError as err:  # unknown preset, or an image size the patch size does not divide
            raise ScriptError(str(err)) from err
        if config.modality != "vision":
            raise ScriptError(f"--preset {args.preset!r} is a text preset; use one ending in -patch16-224")
    else:
        hidden = args.hidden_size or (64 if small else 192)
        attention_type = args.attention_type or "lion"
        config = _new_config(
            modality="vision", attention_type=attention_type, position_encoding=args.position_encoding or "none",
            mask_type=args.mask_type or ("selective" if attention_type == "lion" else None),
            patch_order=args.patch_order or "normal",
            image_size=args.image_size or (16 if small else 224), patch_size=args.patch_size or (4 if small else 16),
            num_channels=3, hidden_size=hidden, num_hidden_layers=args.num_hidden_layers or (4 if small else 12),
            num_attention_heads=args.num_attention_heads or (4 if small else 3),
            intermediate_size=args.intermediate_size or 4 * hidden, pooling=args.pooling or "mean",
            use_position_embeddings=args.use_position_embeddings, drop_path_rate=args.drop_path,
            num_labels=len(labels), id2label=id2label, label2id=label2id)
    if args.attention_form is not None:
        config.attention_form = args.attention_form
    config.architectures = ["LionForImageClassification"]
    return LionForImageClassification(config)


def _new_config(**fields) -> LionConfig:
    try:
        return LionConfig(**fields)
    except ValueError as err:  # LionConfigError: a field out of range, sizes that do not divide, ...
        raise ScriptError(f"cannot build the model: {err}") from err


class ModelEma:
    """Exponential moving average of a model's floating-point state (kept in float32).

    Registered with ``accelerator.register_for_checkpointing`` so that checkpoints carry it.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, value in model.state_dict().items():
            if name in self.shadow:
                self.shadow[name].mul_(self.decay).add_(value.detach().float(), alpha=1.0 - self.decay)

    def copy_to(self, model: torch.nn.Module) -> None:
        state = model.state_dict()
        model.load_state_dict({k: (self.shadow[k].to(v.dtype) if k in self.shadow else v) for k, v in state.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)


def load_teacher(args: argparse.Namespace, num_labels: int, device: torch.device):
    from transformers import AutoModelForImageClassification

    try:
        teacher = AutoModelForImageClassification.from_pretrained(args.teacher_model)
    except (OSError, ValueError) as err:
        raise ScriptError(f"cannot load --teacher_model {args.teacher_model!r}: {err}") from err
    if teacher.config.num_labels != num_labels:
        raise ScriptError(f"--teacher_model has {teacher.config.num_labels} labels, the data set has {num_labels}")
    teacher.requires_grad_(False)
    return teacher.eval().to(device)


def teacher_labels(teacher, pixel_values: torch.Tensor) -> torch.Tensor:
    """Hard labels of the teacher; images are resized when the teacher expects another resolution."""
    size = getattr(teacher.config, "image_size", None)
    if isinstance(size, int) and size != pixel_values.shape[-1]:
        pixel_values = torch.nn.functional.interpolate(pixel_values, size=(size, size), mode="bicubic",
                                                       align_corners=False)
    with torch.no_grad():
        return teacher(pixel_values=pixel_values).logits.argmax(dim=-1)


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------
def data_summary(args: argparse.Namespace, train: Any, evaluation: Any, labels: list[str]) -> dict[str, Any]:
    """What identifies the data of a run (in its checkpoints): source, resolved folders, sizes, classes."""
    folders = {flag: str(Path(getattr(args, flag)).resolve()) for flag in ("data_dir", "train_dir", "validation_dir")
               if getattr(args, flag) is not None}
    return {"dataset": args.dataset, "dataset_config": args.dataset_config, "train_split": args.train_split,
            "eval_split": args.eval_split, **folders, "streaming": args.streaming,
            "train_examples": getattr(train, "num_rows", None), "eval_examples": getattr(evaluation, "num_rows", None),
            "classes": _digest_list(labels)}


def _digest_list(values: list[str]) -> str:
    return f"{len(values)} classes, sha256 {hashlib.sha256(json.dumps(values).encode()).hexdigest()[:12]}"


def fingerprint_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return _fingerprint_arguments(vars(args), NOT_IN_FINGERPRINT)


def check_checkpoint(path: Path, config, run: dict[str, Any], logger) -> dict:
    """Read a checkpoint's training state, refusing incomplete ones and those of another script or model."""
    def model_fields(saved: dict[str, Any]):
        for key in ("model_type", "modality", "mask_type", "patch_order", "hidden_size", "num_hidden_layers",
                    "num_attention_heads", "image_size", "patch_size", "num_labels"):
            current = len(config.id2label) if key == "num_labels" else getattr(config, key, None)
            stored = len(saved.get("id2label", {})) if key == "num_labels" else saved.get(key)
            yield key, stored, current

    try:
        return check_resume_checkpoint(path, SCRIPT_NAME, run, model_fields, log=logger.warning)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err


def load_ema(path: Path, ema: ModelEma) -> None:
    """EMA weights from ``ema.safetensors`` (tensors only: nothing of the checkpoint is unpickled)."""
    file = path / EMA_FILE
    if not file.is_file():
        legacy = sorted(p.name for p in path.glob("custom_checkpoint_*.pkl"))
        hint = (f" It holds {', '.join(legacy)} (the earlier pickled format, which is not loaded: unpickling runs "
                "code from the file).") if legacy else ""
        raise ScriptError(f"checkpoint {path} has no {EMA_FILE} for --model_ema.{hint} Resume without --model_ema, "
                          "or from a checkpoint written with it")
    try:
        tensors = load_tensors(file)
    except CheckpointError as err:
        raise ScriptError(str(err)) from err
    if set(tensors) != set(ema.shadow) or any(tensors[k].shape != ema.shadow[k].shape for k in tensors):
        raise ScriptError(f"{file} does not hold the EMA of this model (other tensor names or shapes)")
    ema.load_state_dict(tensors)


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_model(accelerator, model, loader, metric_path: str, num_labels: int) -> dict[str, float]:
    import evaluate

    model.eval()
    k = min(5, num_labels)
    ranked, references, losses = [], [], []
    for batch in loader:
        batch = {name: t.to(accelerator.device) for name, t in batch.items()}
        logits = model(pixel_values=batch["pixel_values"]).logits.float()
        loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        # gather_for_metrics drops the samples duplicated to even out the last batch across processes.
        top, labels, loss = accelerator.gather_for_metrics((logits.topk(k, dim=-1).indices, batch["labels"], loss))
        ranked.append(top.cpu())
        references.append(labels.cpu())
        losses.append(loss.cpu())
    model.train()
    results: dict[str, float] = {}
    if accelerator.is_main_process and ranked:
        metric = evaluate.load(metric_path, keep_in_memory=True)
        scores = metric.compute(predictions=torch.cat(ranked).tolist(), references=torch.cat(references).tolist(),
                                k=[1, k])
        results = {"top1": scores["top1"], f"top{k}": scores[f"top{k}"], "loss": float(torch.cat(losses).mean())}
    return results


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    try:
        return _main(argv)
    except (CheckpointError, ImageDataError, LaunchError) as err:
        raise ScriptError(str(err)) from err


def _main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    from transformers import ViTImageProcessorPil, get_scheduler

    output_dir = Path(args.output_dir)
    # Accelerator, logging, the output folder's check (every process) and the seeds (per process).
    accelerator, logger, guard = start_accelerate_run(SCRIPT_NAME, args)

    # ---- data
    import datasets

    train_raw, eval_raw, dataset_id = load_splits(args)
    same = (args.train_dir is not None and Path(args.train_dir).resolve() == Path(args.validation_dir).resolve()) or \
        (args.eval_split is not None and args.eval_split == args.train_split)
    if same:
        logger.warning("the evaluation data are the training data: the accuracy measures memorisation, not "
                       "generalisation (give a held-out folder or split)", main_process_only=True)
    columns = list(train_raw.features or {})
    image_column = _first_present(columns, ("image", "img"), "--image_column", args.image_column)
    label_column = _first_present(columns, ("label", "labels", "fine_label"), "--label_column", args.label_column)
    eval_columns = list(eval_raw.features or {})
    for column, flag in ((image_column, "--image_column"), (label_column, "--label_column")):
        if column not in eval_columns:
            raise ScriptError(f"the evaluation split has no column {column!r} ({flag}; its columns: {eval_columns})")
    labels, train_label_map = label_names(train_raw, label_column)
    if len(labels) < 2:
        raise ScriptError(f"the training set has {len(labels)} class ({', '.join(labels)}); a classifier needs two or more")
    eval_map = eval_label_map(labels, train_label_map, eval_raw, label_column)
    # Images are decoded by the transforms (errors then name the file), not by the data set.
    if isinstance((train_raw.features or {}).get(image_column), datasets.Image):
        train_raw = train_raw.cast_column(image_column, datasets.Image(decode=False))
    if isinstance((eval_raw.features or {}).get(image_column), datasets.Image):
        eval_raw = eval_raw.cast_column(image_column, datasets.Image(decode=False))
    image_check = args.image_check or ("full" if args.dataset == "imagefolder" else "none")
    # A random subset (fixed by the seed), not the first examples: image folders are sorted by class, so the
    # first N would hold only the first classes.
    if args.max_train_samples is not None:
        train_raw = train_raw.take(args.max_train_samples) if args.streaming else \
            train_raw.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train_raw))))
    if args.max_eval_samples is not None:
        eval_raw = eval_raw.take(args.max_eval_samples) if args.streaming else \
            eval_raw.shuffle(seed=args.seed).select(range(min(args.max_eval_samples, len(eval_raw))))
    if image_check != "none" and not args.streaming:
        train_raw = check_images(train_raw, image_column, image_check, "training", logger)
        eval_raw = check_images(eval_raw, image_column, image_check, "evaluation", logger)
    if not args.streaming:
        counts = [0] * len(labels)
        for raw in train_raw[label_column]:
            label = train_label_map.get(raw) if train_label_map is not None else raw
            if isinstance(label, int) and 0 <= label < len(labels):
                counts[label] += 1
        check_eval_labels(eval_raw, label_column, eval_map, len(labels))
        empty = [name for name, count in zip(labels, counts) if count == 0]
        if empty:
            raise ScriptError(f"class(es) without training images: {', '.join(empty)}; every class needs training "
                              "examples (check the data, or raise --max_train_samples)")

    model = build_model(args, labels)
    config = model.config
    if args.dataset == "digits":
        mean = args.image_mean or (0.5, 0.5, 0.5)
        std = args.image_std or (0.5, 0.5, 0.5)
    else:
        mean = args.image_mean or IMAGENET_MEAN
        std = args.image_std or IMAGENET_STD
    image_processor = ViTImageProcessorPil(
        do_resize=True, size={"height": config.image_size, "width": config.image_size}, resample=Image.BILINEAR,
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True, image_mean=list(mean), image_std=list(std))
    train_transform = build_train_transform(
        config.image_size, mean, std, scale=(args.crop_scale_min, 1.0), hflip=args.hflip,
        rand_augment=args.rand_augment, reprob=args.reprob)
    eval_transform = build_eval_transform(config.image_size, mean, std, interpolation=Image.BILINEAR)
    train_fn = make_example_transform(train_transform, image_column, label_column, "RGB", len(labels), train_label_map)
    eval_fn = make_example_transform(eval_transform, image_column, label_column, "RGB", len(labels), eval_map)

    if args.streaming:
        from datasets.distributed import split_dataset_by_node

        # Each process reads its own part of the stream; the loader is not prepared (accelerate would
        # otherwise make every process decode every image).
        train_stream = split_dataset_by_node(train_raw.shuffle(seed=args.seed, buffer_size=10_000),
                                             rank=accelerator.process_index, world_size=accelerator.num_processes)
        train_data = AugmentedIterableDataset(train_stream, train_fn, seed=args.seed + 7919 * accelerator.process_index)
        train_loader = torch.utils.data.DataLoader(
            train_data, batch_size=args.per_device_train_batch_size, collate_fn=collate, num_workers=args.num_workers,
            drop_last=True, generator=torch.Generator().manual_seed(args.seed))
        eval_data = AugmentedIterableDataset(eval_raw, eval_fn, seed=args.seed)
        eval_loader = torch.utils.data.DataLoader(eval_data, batch_size=args.per_device_eval_batch_size,
                                                  collate_fn=collate, num_workers=args.num_workers)
    else:
        train_data = AugmentedDataset(train_raw, train_fn, seed=args.seed)
        if len(train_data) < args.per_device_train_batch_size * accelerator.num_processes:
            raise ScriptError(f"{len(train_data)} training images are fewer than one batch "
                              f"({args.per_device_train_batch_size} x {accelerator.num_processes} processes)")
        train_loader = torch.utils.data.DataLoader(
            train_data, sampler=EpochSeededSampler(len(train_data), seed=args.seed, repeats=args.repeated_augmentation),
            batch_size=args.per_device_train_batch_size, collate_fn=collate, num_workers=args.num_workers,
            drop_last=True, generator=torch.Generator().manual_seed(args.seed))
        eval_data = AugmentedDataset(eval_raw, eval_fn, seed=args.seed)
        eval_loader = torch.utils.data.DataLoader(
            eval_data, sampler=EpochSeededSampler(len(eval_data), shuffle=False),
            batch_size=args.per_device_eval_batch_size, collate_fn=collate, num_workers=args.num_workers,
            generator=torch.Generator().manual_seed(args.seed))

    # ---- optimisation
    # Loaders first: the number of batches per process (hence the schedule's length) is only known
    # once accelerate has sharded them. Model, optimizer and scheduler go together (FSDP needs that).
    if args.streaming:
        eval_loader = accelerator.prepare(eval_loader)
    else:
        train_loader, eval_loader = accelerator.prepare(train_loader, eval_loader)
    total_batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    recipe = RECIPES[args.recipe]
    if args.learning_rate is not None:
        learning_rate, lr_origin = args.learning_rate, "--learning_rate"
    elif recipe["learning_rate_batch"] is not None:
        learning_rate = recipe["base_learning_rate"] * total_batch / recipe["learning_rate_batch"]
        lr_origin = (f"--recipe {args.recipe}: {recipe['base_learning_rate']:g} x total batch {total_batch} / "
                     f"{recipe['learning_rate_batch']}")
        if learning_rate < 1e-4:
            lr_origin += "; that is small for a small batch: try --recipe small or set --learning_rate"
    else:
        learning_rate = recipe["base_learning_rate"]
        lr_origin = f"--recipe {args.recipe}"
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        # DeiT: no weight decay on biases, norms and other 1-d parameters (decay logits, gates' biases).
        (no_decay if param.ndim <= 1 else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=learning_rate, betas=(args.adam_beta1, args.adam_beta2))
    if args.streaming:
        batches_per_epoch = steps_per_epoch = None
        max_train_steps = args.max_train_steps
    else:
        batches_per_epoch = len(train_loader)
        steps_per_epoch = math.ceil(batches_per_epoch / args.gradient_accumulation_steps)
        max_train_steps = args.max_train_steps or args.num_train_epochs * steps_per_epoch
    warmup = args.warmup_steps if args.warmup_steps is not None else int(args.warmup_epochs * (steps_per_epoch or 0))
    warmup = min(warmup, max_train_steps // 2)
    # The prepared scheduler steps once per process per optimizer step: scale the lengths accordingly.
    scheduler = get_scheduler("cosine_with_min_lr", optimizer=optimizer,
                              num_warmup_steps=warmup * accelerator.num_processes,
                              num_training_steps=max_train_steps * accelerator.num_processes,
                              scheduler_specific_kwargs={"min_lr": min(args.min_lr, learning_rate)})
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    # The EMA goes into checkpoints as safetensors (not accelerate's pickled custom state).
    ema = ModelEma(accelerator.unwrap_model(model), args.model_ema_decay) if args.model_ema else None
    teacher = load_teacher(args, len(labels), accelerator.device) if args.teacher_model else None
    mixup = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, prob=args.mixup_prob,
                  switch_prob=args.mixup_switch_prob, label_smoothing=args.smoothing, num_classes=len(labels))
    metric_path = local_metric_path("topk_accuracy")

    if args.with_tracking:
        init_tracking(accelerator, SCRIPT_NAME, vars(args))

    # ---- resume
    completed_steps, epoch, skip_batches, consumed = 0, 0, 0, 0
    history: list[dict] = []
    run = run_fingerprint(config, data_summary(args, train_raw, eval_raw, labels), args.seed,
                          fingerprint_arguments(args))
    if args.resume_from_checkpoint is not None:
        path = resolve_resume_checkpoint(args.resume_from_checkpoint, output_dir, run, SCRIPT_NAME, log=logger.warning)
        state = check_checkpoint(path, accelerator.unwrap_model(model).config, run, logger)
        load_accelerate_state(accelerator, path)
        if ema is not None:
            load_ema(path, ema)
        completed_steps, epoch, skip_batches, consumed, history = resume_position(state, accelerator.process_index)
        logger.info(f"resumed from {path}: step {completed_steps}, epoch {epoch}, batch {skip_batches}")

    logger.info(f"{len(labels)} classes; {total_batch} images per step; learning rate {learning_rate:.3g} "
                f"({lr_origin}); {max_train_steps} steps ({warmup} warm-up)", main_process_only=True)
    with logging_redirect_tqdm():  # log lines go above the progress bar, not into it
        progress = tqdm(total=max_train_steps, initial=completed_steps, disable=not accelerator.is_local_main_process,
                        desc="train")
        model.train()
        running_loss, running_count, last_loss = 0.0, 0, float("nan")
        last_eval: dict[str, float] = {}
        started = time.time()
        checkpoint_every = int(args.checkpointing_steps) if str(args.checkpointing_steps).isdigit() else None

        def checkpoint(epoch_: int, batch_index_: int, consumed_: int) -> None:
            state = training_state(SCRIPT_NAME, completed_steps, epoch_, batch_index_, consumed_, accelerator, history,
                                   run)

            def write_extra(folder: Path) -> None:
                config.to_json_file(str(folder / MODEL_CONFIG_FILE))
                if ema is not None:
                    save_tensors(ema.state_dict(), folder / EMA_FILE)

            save_checkpoint(accelerator, output_dir, completed_steps, state=state, write_extra=write_extra,
                            limit=args.save_total_limit, log=logger.info)

        evaluated_at = [-1]  # the step of the last evaluation, identical on every process

        def evaluate_now(epoch_: float) -> dict[str, float]:
            evaluated_at.append(completed_steps)
            return run_eval(accelerator, model, eval_loader, metric_path, labels, ema, args, completed_steps, epoch_,
                            last_loss, history, logger, seconds=time.time() - started)

        while completed_steps < max_train_steps:
            # Position in this epoch: skip_batches/consumed are non-zero only right after a resume.
            batch_index = skip_batches
            loader = epoch_batches(accelerator, train_loader, train_data, epoch, skip_batches=skip_batches,
                                   consumed=consumed, streaming=args.streaming)
            skip_batches = 0
            epoch_done = True
            for batch in loader:
                if args.streaming:
                    batch = {name: t.to(accelerator.device) for name, t in batch.items()}
                # Mixup/CutMix draws from a generator tied to (seed, epoch, batch, process): exact on resume.
                gen = torch.Generator().manual_seed(derived_seed(args.seed, epoch, batch_index, accelerator.process_index))
                # Only scalars are drawn from the CPU generator: the images stay on their device.
                images, targets = mixup(batch["pixel_values"], batch["labels"], gen)
                with accelerator.accumulate(model):
                    logits = model(pixel_values=images).logits
                    loss = soft_target_cross_entropy(logits, targets)
                    if teacher is not None:
                        hard = teacher_labels(teacher, images)
                        loss = (1 - args.distillation_alpha) * loss + args.distillation_alpha * \
                            torch.nn.functional.cross_entropy(logits.float(), hard)
                    optimizer_step(accelerator, model, optimizer, scheduler, loss, args.max_grad_norm)
                batch_index += 1
                consumed += batch["labels"].shape[0]
                running_loss += float(loss.detach())
                running_count += 1
                if not accelerator.sync_gradients:
                    continue
                completed_steps += 1
                progress.update(1)
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model))
                last_loss = float(accelerator.reduce(loss.detach().float(), reduction="mean"))
                if completed_steps % args.logging_steps == 0 or completed_steps == max_train_steps:
                    report_train_loss(accelerator, progress, scheduler, running_loss / running_count, completed_steps,
                                      with_tracking=args.with_tracking, extra={"train/epoch": epoch})
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
                if batches_per_epoch is not None:  # a stream's "epoch" is one pass of one process: no eval there
                    last_eval = evaluate_now(epoch)
                if epoch_end_checkpoint(completed_steps, checkpoint_every, args.checkpointing_steps):
                    checkpoint(epoch, 0, 0)
        progress.close()
    train_seconds = time.time() - started
    if evaluated_at[-1] != completed_steps:
        last_eval = evaluate_now(epoch)

    # ---- save
    return save_final_outputs(
        accelerator, model, output_dir, guard, processor=image_processor, processor_name="image processor",
        train_loss=last_loss, train_steps=completed_steps, train_seconds=train_seconds, eval_results=last_eval,
        make_card=lambda unwrapped: None if args.baseline else build_card(
            args, unwrapped, dataset_id, last_eval, history, total_batch, learning_rate, max_train_steps, warmup),
        push_to_hub=args.push_to_hub, hub_model_id=args.hub_model_id, hub_private_repo=args.hub_private_repo,
        hub_token=args.hub_token, with_tracking=args.with_tracking, log=logger.info, history=history)


def run_eval(accelerator, model, eval_loader, metric_path, labels, ema, args, step, epoch, train_loss, history,
             logger, seconds: float | None = None) -> dict[str, float]:
    results = evaluate_model(accelerator, model, eval_loader, metric_path, len(labels))
    if ema is not None:
        unwrapped = accelerator.unwrap_model(model)
        backup = {k: v.detach().clone() for k, v in unwrapped.state_dict().items()}
        ema.copy_to(unwrapped)
        ema_results = evaluate_model(accelerator, model, eval_loader, metric_path, len(labels))
        unwrapped.load_state_dict(backup)
        results.update({f"ema_{k}": v for k, v in ema_results.items()})
    if accelerator.is_main_process:
        # ``seconds``: wall time since this process started training (evaluations included), for learning curves
        history.append({"step": step, "epoch": epoch, "loss": round(train_loss, 4),
                        **({} if seconds is None else {"seconds": round(seconds, 1)}),
                        **{k: round(v, 4) for k, v in results.items()}})
        logger.info(f"step {step} epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in results.items()))
    if args.with_tracking and results:
        accelerator.log({f"eval/{k}": v for k, v in results.items()}, step=step)
    # Keep the history identical on every process (checkpoints are written by the main process).
    return results


def build_card(args, model, dataset_id, results, history, total_batch, learning_rate, steps, warmup):
    from lion_hf.hub import RunMetric, render_run_card

    k = min(5, model.config.num_labels)
    metrics = []
    if "top1" in results:
        metrics.append(RunMetric("accuracy", round(results["top1"], 4), "Top-1 accuracy"))
    if f"top{k}" in results and k > 1:
        metrics.append(RunMetric(f"top{k}_accuracy", round(results[f"top{k}"], 4), f"Top-{k} accuracy"))
    names = {"digits": "scikit-learn digits (8x8, embedded)", "imagefolder": "local image folders"}
    hub_data = [dataset_id] if dataset_id not in names else None
    eval_split = "test" if args.dataset == "digits" else (args.eval_split or "validation")
    hyper = {"total batch size": total_batch, "learning rate": f"{learning_rate:.3g}", "optimizer": "AdamW",
             "weight decay": args.weight_decay, "schedule": f"cosine, {warmup} warm-up steps", "steps": steps,
             "label smoothing": args.smoothing, "mixup / cutmix": f"{args.mixup} / {args.cutmix}",
             "RandAugment": args.rand_augment, "random erasing": args.reprob, "drop path": args.drop_path,
             "gradient clipping": args.max_grad_norm or "off", "EMA": args.model_ema_decay if args.model_ema else "off",
             "teacher": args.teacher_model or "none", "seed": args.seed}
    name = args.model_name or args.hub_model_id or Path(args.output_dir).resolve().name
    return render_run_card(
        model_name=name, config=model.config, dataset_id=dataset_id, dataset_name=names.get(dataset_id, dataset_id),
        dataset_config=args.dataset_config, eval_split=eval_split, metrics=metrics, hyperparameters=hyper,
        training_log=history, script="examples/image_classification/run_image_classification.py",
        hub_datasets=hub_data, base_model=args.model_name_or_path, repo_id=args.hub_model_id or name,
        num_parameters=sum(p.numel() for p in model.parameters()), tags=["image-classification"])


if __name__ == "__main__":
    try:
        main()
    except (ScriptError, ImageDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
