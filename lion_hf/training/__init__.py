# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Helpers shared by the example training scripts (checkpoints that know their run, written atomically)."""

from .checkpoints import (
    COMPLETE_MARKER,
    EMA_FILE,
    MODEL_CONFIG_FILE,
    STATE_FILE,
    CheckpointError,
    OutputGuard,
    checkpoint_problem,
    checkpoint_step,
    find_latest_checkpoint,
    list_checkpoints,
    load_tensors,
    read_training_state,
    run_fingerprint,
    run_differences,
    save_checkpoint,
    save_tensors,
    validate_save_total_limit,
)
from .launch import HelpFormatter, LaunchError, check_process_count, check_trackers

__all__ = [
    "COMPLETE_MARKER",
    "EMA_FILE",
    "MODEL_CONFIG_FILE",
    "STATE_FILE",
    "CheckpointError",
    "HelpFormatter",
    "LaunchError",
    "OutputGuard",
    "check_process_count",
    "check_trackers",
    "checkpoint_problem",
    "checkpoint_step",
    "find_latest_checkpoint",
    "list_checkpoints",
    "load_tensors",
    "read_training_state",
    "run_differences",
    "run_fingerprint",
    "save_checkpoint",
    "save_tensors",
    "validate_save_total_limit",
]
