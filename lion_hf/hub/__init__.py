# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Hugging Face Hub helpers.

* model cards, all rendered from the one template shipped in the package
  (``lion_hf/hub/templates/model_card.md``): cards of training runs (:mod:`lion_hf.hub.cards`) and of
  the planned checkpoint families (:mod:`lion_hf.hub.families`);
* publishing a trained checkpoint with its card and remote code (:func:`publish`, ``lion-publish``;
  :mod:`lion_hf.hub.publish`), the code travelling as a flat bundle (:mod:`lion_hf.hub.bundle`).

Note: ``lion_hf.hub.publish`` is the function; the module is reached with
``from lion_hf.hub.publish import ...`` or ``importlib.import_module("lion_hf.hub.publish")``.
"""

from .bundle import AUTO_MAP, build_bundle, write_bundle
from .cards import DEFAULT_TEMPLATE_PATH, Result, RunMetric, card_template, render_run_card, template_file
from .families import FAMILIES, list_families, render_card, render_family_cards
from .publish import PublishResult, StagedCheckpoint, publish, stage_checkpoint, validate_card_metadata

__all__ = [
    "AUTO_MAP",
    "DEFAULT_TEMPLATE_PATH",
    "FAMILIES",
    "PublishResult",
    "Result",
    "RunMetric",
    "StagedCheckpoint",
    "build_bundle",
    "card_template",
    "list_families",
    "publish",
    "render_card",
    "render_family_cards",
    "render_run_card",
    "stage_checkpoint",
    "template_file",
    "validate_card_metadata",
    "write_bundle",
]
