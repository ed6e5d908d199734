# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Pieces of the example scripts' accelerate training loops: the optimizer step, the logged training loss and
when to evaluate, checkpoint and stop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["epoch_end_checkpoint", "optimizer_step", "report_train_loss", "step_events"]


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


def step_events(completed_steps: int, batch_index: int, batches_per_epoch: int | None, max_train_steps: int,
                eval_steps: int | None, checkpoint_every: int | None) -> tuple[bool, bool, bool]:
    """``(evaluate, checkpoint, stop)`` after an optimizer step, ``batch_index`` batches into the epoch.

    All False on an epoch's last batch (``batches_per_epoch``; None for a stream): the end of the epoch
    evaluates and checkpoints itself (see :func:`epoch_end_checkpoint`).
    """
    if batches_per_epoch is not None and batch_index >= batches_per_epoch:
        return False, False, False
    return (bool(eval_steps) and completed_steps % eval_steps == 0,
            bool(checkpoint_every) and completed_steps % checkpoint_every == 0,
            completed_steps >= max_train_steps)


def epoch_end_checkpoint(completed_steps: int, checkpoint_every: int | None, checkpointing_steps: str | None) -> bool:
    """Whether the end of an epoch writes a checkpoint: ``--checkpointing_steps epoch``, or N that divides the step."""
    return bool(checkpoint_every) and completed_steps % checkpoint_every == 0 or checkpointing_steps == "epoch"
