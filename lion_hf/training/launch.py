# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Command-line support of the example scripts: ``--help`` output and checks of how they were launched."""

from __future__ import annotations

import argparse
import copy
import os
from collections.abc import Mapping

__all__ = ["HelpFormatter", "LaunchError", "check_process_count", "check_trackers"]


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
