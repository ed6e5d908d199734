"""Log-space helpers for LION's decay mask, shared by every PyTorch form.

Conventions (spec section 1), for one head and log-decays ``a_t <= 0``:

* ``F_t = sum_{m<t} a_m`` (exclusive prefix sum), ``G_t = F_t + a_t`` (inclusive);
* ``log M_ij = F_i - F_j`` for ``i > j`` and ``G_j - G_i`` for ``i < j``, ``0`` on the diagonal.

Every exponent built here is a sum of log-decays, hence ``<= 0``: no tile of the mask can overflow,
whatever the sequence length.
"""

from __future__ import annotations

import torch


def compute_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """The accumulation dtype of the PyTorch forms: fp32 for half inputs, the input dtype otherwise."""
    return torch.promote_types(dtype, torch.float32)


def log_mask(log_decay: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Full ``[..., L, L]`` log-mask from per-position log-decays ``[..., L]``.

    Prefix sums and their differences are taken in float64: in fp32, ``F_i`` grows like ``L * |a|``
    and the difference of two such sums would lose up to ``ulp(F)`` (1e-4 relative at L ~ 1000),
    while every mask entry between close positions must be exact to ~1e-7.
    """
    a = log_decay.to(torch.float64)
    inclusive = a.cumsum(-1)
    exclusive = inclusive - a
    length = a.shape[-1]
    idx = torch.arange(length, device=a.device)
    lower = idx[:, None] > idx[None, :]
    # Both branches are plain differences (no exp yet), so the branch that `where` discards
    # cannot produce inf and poison the gradient.
    forward_part = exclusive[..., :, None] - exclusive[..., None, :]
    backward_part = inclusive[..., None, :] - inclusive[..., :, None]
    return torch.where(lower, forward_part, backward_part).to(dtype)


def distance_log_mask(log_decay_per_head: torch.Tensor, length: int, dtype: torch.dtype) -> torch.Tensor:
    """``[H, L, L]`` log-mask ``a_h * |i - j|`` of LION-D (one constant log-decay per head)."""
    idx = torch.arange(length, device=log_decay_per_head.device)
    distance = (idx[:, None] - idx[None, :]).abs().to(dtype)
    return log_decay_per_head.to(dtype)[:, None, None] * distance


def chunk_local_sums(log_decay: torch.Tensor, dtype: torch.dtype):
    """Chunk-local prefix sums of ``log_decay`` shaped ``[..., num_chunks, chunk]``.

    Returns ``(exclusive, inclusive, total)`` in ``dtype``; ``total`` is ``[..., num_chunks]``. Sums are
    accumulated in float64 (cheap: they are vectors) so that intra-chunk differences stay exact.
    """
    a = log_decay.to(torch.float64)
    inclusive = a.cumsum(-1)
    exclusive = inclusive - a
    total = inclusive[..., -1]
    return exclusive.to(dtype), inclusive.to(dtype), total.to(dtype)
