# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""The end of an example script's accelerate run: the model, its processor, a model card and the results saved
to the output folder (recorded by its :class:`~lion_hf.training.checkpoints.OutputGuard`), pushed on request."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .checkpoints import OutputGuard

logger = logging.get_logger(__name__)

__all__ = ["RESULTS_FILE", "save_final_outputs"]

#: The run's results in the output folder.
RESULTS_FILE = "all_results.json"


def save_final_outputs(accelerator, model, output_dir: str | Path, guard: OutputGuard, *, processor: Any,
                       processor_name: str, train_loss: float, train_steps: int, train_seconds: float,
                       eval_results: dict[str, float], make_card: Callable[[Any], Any], push_to_hub: bool = False,
                       hub_model_id: str | None = None, hub_private_repo: bool = False, hub_token: str | None = None,
                       with_tracking: bool = False, log: Callable[[str], None] | None = None,
                       history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Save the trained ``model`` (prepared by accelerate) and return the run's results; every process calls it.

    All processes take part in gathering the full state dict (under FSDP the weights are sharded). The main
    process writes the model (safetensors), ``processor`` (a tokenizer or image processor, ``processor_name``
    in the log line), the card ``make_card(unwrapped_model)`` as ``README.md`` (None: no card, e.g. for a
    baseline that is not a LION model) and the results (``train_loss``, ``train_steps``, ``train_seconds``,
    ``eval_<name>`` of ``eval_results`` and, when given, the evaluation ``history``) as :data:`RESULTS_FILE`, records them with ``guard``, logs through ``log`` (default ``logger.info``), and
    with ``push_to_hub`` pushes the model, the processor, then the card (``push_to_hub`` keeps an existing
    README). The trackers end with ``with_tracking``.
    """
    log = log or logger.info
    output_dir = Path(output_dir)
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    # Under FSDP the weights are sharded: every process takes part in gathering the full state dict.
    state_dict = accelerator.get_state_dict(model)
    results = {"train_loss": train_loss, "train_steps": train_steps, "train_seconds": round(train_seconds, 2),
               **{f"eval_{k}": v for k, v in eval_results.items()}}
    if accelerator.is_main_process:
        guard.snapshot()
        unwrapped.save_pretrained(str(output_dir), state_dict=state_dict, safe_serialization=True)
        processor.save_pretrained(str(output_dir))
        card = make_card(unwrapped)
        if card is not None:
            card.save(str(output_dir / "README.md"))
        written = dict(results, history=history) if history is not None else results
        (output_dir / RESULTS_FILE).write_text(json.dumps(written, indent=2))
        guard.record()
        saved = "model card" if card is not None else "no model card (not a LION model)"
        log(f"saved the model, {processor_name} and {saved} to {output_dir}: {json.dumps(results)}")
        if push_to_hub:
            unwrapped.push_to_hub(hub_model_id, private=hub_private_repo, token=hub_token)
            processor.push_to_hub(hub_model_id, token=hub_token)
            if card is not None:
                card.push_to_hub(hub_model_id, token=hub_token)
    if with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return results
