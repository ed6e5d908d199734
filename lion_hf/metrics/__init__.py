# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""``evaluate`` metric modules shipped with the package, and loaders that prefer them offline.

``evaluate`` 0.4 downloads every metric script from the Hub; offline (``HF_HUB_OFFLINE=1``) that
fails. The modules under this folder are ordinary ``evaluate`` metric scripts, loaded by path:

* ``topk_accuracy``: top-1/top-5 accuracy from ranked predictions (image and MLM scripts).
* ``glue``: the official metric of each GLUE task (same config names and keys as the Hub's).
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers.utils import logging

logger = logging.get_logger(__name__)

METRICS_DIR = Path(__file__).resolve().parent
LOCAL_METRICS = ("glue", "topk_accuracy")

__all__ = ["LOCAL_METRICS", "METRICS_DIR", "hub_is_offline", "load_glue_metric", "load_local_metric", "metric_path"]


def metric_path(name: str) -> str:
    """Filesystem path of a shipped metric module (what ``evaluate.load`` takes)."""
    if name not in LOCAL_METRICS:
        raise ValueError(f"no local metric {name!r}; shipped: {list(LOCAL_METRICS)}")
    return str(METRICS_DIR / name / f"{name}.py")


def hub_is_offline() -> bool:
    """True when the environment forbids Hub access (``HF_HUB_OFFLINE`` or ``HF_EVALUATE_OFFLINE``)."""
    truthy = {"1", "true", "yes", "on"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE"))


def load_local_metric(name: str, config_name: str | None = None, **kwargs):
    """``evaluate.load`` of a shipped metric module by path (never touches the network)."""
    import evaluate

    return evaluate.load(metric_path(name), config_name, **kwargs)


def load_glue_metric(task: str, source: str = "auto", **kwargs):
    """The GLUE metric of ``task`` from the Hub's ``glue`` module, or the shipped one.

    Args:
        task: a GLUE config name (``"sst2"``, ``"stsb"``, ``"mnli_matched"``, ...).
        source: ``"local"`` (shipped module), ``"hub"`` (``evaluate.load("glue")``, errors propagate) or
            ``"auto"``: the Hub module unless offline, falling back to the shipped one on any failure.
        **kwargs: passed to ``evaluate.load`` (e.g. ``keep_in_memory=True``).
    """
    import evaluate

    if source not in ("auto", "hub", "local"):
        raise ValueError(f"metric source must be 'auto', 'hub' or 'local', got {source!r}")
    if source == "hub" or (source == "auto" and not hub_is_offline()):
        try:
            return evaluate.load("glue", task, **kwargs)
        except Exception as err:  # network, offline mode, missing script: all mean "use ours"
            if source == "hub":
                raise
            logger.warning("could not load the Hub GLUE metric (%s: %s); using the shipped module",
                           type(err).__name__, err)
    return load_local_metric("glue", task, **kwargs)
