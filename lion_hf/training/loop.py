# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Pieces of the example scripts' accelerate training loops: the optimizer step and the logged training loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["optimizer_step", "report_train_loss"]


def optimizer_step(accelerator, model, optimizer, scheduler, loss, max_grad_norm: float) -> None:
    """Backpropagate ``loss`` and step the optimizer and the scheduler, inside ``accelerator.accumulate(model)``.

    Gradients are clipped to ``max_grad_norm`` (0 disables it) when they are synchronised, i.e. on the
    accumulation step that really updates the weights.
    """
    accelerator.backward(loss)
    if accelerator.sync_gradients and max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def report_train_loss(accelerator, progress, scheduler, mean_loss: float, step: int, *, with_tracking: bool,
                      extra: Mapping[str, Any] | None = None) -> float:
    """Show this process's ``mean_loss`` averaged over the processes, with the learning rate, on the progress bar.

    With ``with_tracking`` it is also logged to the trackers (``train/loss``, ``train/lr`` and ``extra``) at
    ``step``. Every process calls it (the average is a collective operation); returns the average.
    """
    import torch

    mean_loss = float(accelerator.reduce(torch.tensor(mean_loss, device=accelerator.device), reduction="mean"))
    progress.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
    if with_tracking:
        accelerator.log({"train/loss": mean_loss, "train/lr": scheduler.get_last_lr()[0], **(extra or {})},
                        step=step)
    return mean_loss
