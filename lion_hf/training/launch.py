# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Command-line support of the example scripts: ``--help`` output, checks of how they were launched, and the
common start of an accelerate run (logging, :class:`~accelerate.Accelerator`, output folder, seed)."""

from __future__ import annotations

import argparse
import copy
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "LOG_FORMAT",
    "HelpFormatter",
    "LaunchError",
    "add_hub_arguments",
    "check_process_count",
    "check_push_to_hub",
    "check_trackers",
    "configure_logging",
    "init_tracking",
    "start_accelerate_run",
]

#: The log line format of the example scripts.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LaunchError(RuntimeError):
    """The script was started in a way that would give a wrong run; the message says how to start it."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default once: not when the help text already states it, nor for unset (None/False) ones."""

    def add_argument(self, action: argparse.Action) -> None:
        # An option without help text still shows its default.
        if action.help is None and action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        super().add_argument(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False, argparse.SUPPRESS) or \
                action.option_strings == [] or isinstance(action, argparse._HelpAction):
            return text
        return super()._get_help_string(action)


def check_trackers(report_to: str) -> list[str]:
    """The accelerate trackers named by ``--report_to`` (comma-separated, or ``all``), each known and installed.

    accelerate skips a tracker whose package is missing with a log line only: the run would then log nothing.
    """
    from accelerate.tracking import get_available_trackers
    from accelerate.utils import LoggerType

    names = [name.strip().lower() for name in str(report_to).split(",") if name.strip()]
    known = [t for t in LoggerType.list() if t != "all"]
    available = sorted(str(getattr(t, "value", t)) for t in get_available_trackers())
    if not names:
        raise LaunchError("--report_to names no tracker")
    if names == ["all"]:
        if not available:
            raise LaunchError("--report_to all: no tracker package is installed (e.g. pip install tensorboard)")
        return available
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LaunchError(f"--report_to: unknown tracker(s) {', '.join(unknown)}; choose among {', '.join(known)}")
    missing = [n for n in names if n not in available]
    if missing:
        raise LaunchError(f"--report_to {', '.join(missing)}: not installed, so nothing would be logged; install it "
                          f"(pip install {' '.join(missing)}) or choose an installed one ({', '.join(available) or 'none'})")
    return names


def check_process_count(num_processes: int, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a launch whose processes did not join one distributed run.

    ``accelerate launch`` / ``torchrun`` start ``WORLD_SIZE`` processes; when accelerate then sets each one up
    as a single-process run (e.g. the multi-GPU launcher on a machine without GPUs and without
    ``ACCELERATE_USE_CPU=1``), they would train independently and write the same output folder.
    """
    environ = os.environ if environ is None else environ
    try:
        world = int(environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world > 1 and num_processes != world:
        hint = ""
        if str(environ.get("ACCELERATE_USE_CPU", "")).lower() not in ("1", "true", "yes"):
            hint = (" On a machine without GPUs, launch the multi-process CPU config with ACCELERATE_USE_CPU=1: "
                    "ACCELERATE_USE_CPU=1 accelerate launch --config_file examples/accelerate_configs/multi_cpu.yaml ...")
        raise LaunchError(f"{world} processes were launched (WORLD_SIZE={world}) but each runs on its own "
                          f"({num_processes} process in accelerate's state): they would train separately and "
                          f"overwrite each other's output.{hint}")


def add_hub_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--push_to_hub``, ``--hub_model_id``, ``--hub_token`` and ``--hub_private_repo`` (see
    :func:`check_push_to_hub`) to a parser or argument group."""
    parser.add_argument("--push_to_hub", action="store_true")
    parser.add_argument("--hub_model_id", default=None)
    parser.add_argument("--hub_token", default=None)
    parser.add_argument("--hub_private_repo", action="store_true")


def check_push_to_hub(push_to_hub: bool, hub_model_id: str | None, hub_private_repo: bool, hub_token: str | None,
                      output_dir: str | os.PathLike) -> str | None:
    """Check ``--push_to_hub`` before training, not after it (online, with a token); the Hub repository to use.

    Without ``--push_to_hub``, ``--hub_model_id`` and ``--hub_private_repo`` are refused (they would be ignored).
    Returns ``hub_model_id``, defaulting to the name of ``output_dir`` when pushing. Raises :class:`LaunchError`.
    """
    if not push_to_hub:
        if hub_model_id is not None or hub_private_repo:
            raise LaunchError("--hub_model_id and --hub_private_repo only apply with --push_to_hub; add it or drop them")
        return hub_model_id
    from huggingface_hub import get_token

    from lion_hf.metrics import hub_is_offline

    if hub_is_offline():
        raise LaunchError("--push_to_hub cannot upload with HF_HUB_OFFLINE=1; unset it, or drop --push_to_hub and "
                          "publish the output folder later")
    if hub_token is None and get_token() is None:
        raise LaunchError("--push_to_hub needs a Hugging Face token: log in (`hf auth login`), set HF_TOKEN, or pass "
                          "--hub_token")
    return Path(output_dir).name if hub_model_id is None else hub_model_id


def configure_logging() -> None:
    """Log lines of level INFO and above to stderr, in :data:`LOG_FORMAT` (``logging.basicConfig``)."""
    logging.basicConfig(format=LOG_FORMAT, level=logging.INFO)


def start_accelerate_run(script: str, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The common start of the accelerate scripts: ``(accelerator, logger, output guard)``.

    ``args`` are the script's parsed flags; read here: ``output_dir``, ``gradient_accumulation_steps``,
    ``mixed_precision``, ``with_tracking``, ``report_to``, ``overwrite_output_dir``, ``resume_from_checkpoint``
    and ``seed``. Builds the :class:`~accelerate.Accelerator` (trackers from ``--report_to`` with
    ``--with_tracking``, logging to ``output_dir/logs``), takes accelerate's logger named ``script``,
    configures logging, refuses a launch whose processes did not join one run (:func:`check_process_count`),
    checks the output folder with an :class:`~lion_hf.training.checkpoints.OutputGuard` (on every process, so
    that all of them stop together; :class:`~lion_hf.training.checkpoints.CheckpointError` when it would
    overwrite what the script did not write), creates it, and seeds every generator (``device_specific``:
    different seeds per process for dropout and drop path; the data side uses its own ``(seed, epoch, index)``
    seeds).
    """
    from accelerate import Accelerator
    from accelerate.logging import get_logger
    from accelerate.utils import ProjectConfiguration, set_seed

    from .checkpoints import OutputGuard

    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps, mixed_precision=args.mixed_precision,
        log_with=check_trackers(args.report_to) if args.with_tracking else None,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")))
    logger = get_logger(script)
    configure_logging()
    check_process_count(accelerator.num_processes)
    # Resuming into a non-empty folder is fine as long as nothing in it would be overwritten that the script
    # did not write.
    guard = OutputGuard(output_dir)
    guard.check(overwrite=args.overwrite_output_dir, resuming=args.resume_from_checkpoint is not None)
    output_dir.mkdir(parents=True, exist_ok=True)
    set_seed(args.seed, device_specific=True)
    return accelerator, logger, guard


def init_tracking(accelerator: Any, script: str, arguments: Mapping[str, Any]) -> None:
    """Start accelerate's trackers for the run ``script`` with the arguments as their configuration.

    Values that are not ``int``/``float``/``str``/``bool`` are stored as strings; the Hub token never is.
    """
    tracked = {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in arguments.items()
               if k != "hub_token"}
    accelerator.init_trackers(script, config=tracked)
