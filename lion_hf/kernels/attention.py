"""Attention (parallel) form of LION in PyTorch: ``(Q K^T * M) [V | 1]`` with the full L x L mask.

``O(L^2 d)`` work and ``O(L^2)`` memory per head: the form of choice for short sequences (vision at
224 px has L = 197, MLM L = 128), and the only one that supports dropout on the masked scores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .masks import distance_log_mask, log_mask


def attention_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor | None,
                    with_den: bool = True, dropout_p: float = 0.0):
    """Numerator ``[B,H,L,Dv]`` and denominator ``[B,H,L]`` (or ``None``) of LION, attention form.

    Inputs are already in the accumulation dtype; ``log_decay`` is ``None``, ``[H]`` or ``[B,H,L]``.
    Dropout (training only) is applied to the masked scores after the denominator is taken, so the
    normalised output is ``dropout(A / den) @ V`` as in softmax attention.
    """
    length = q.shape[-2]
    scores = q @ k.transpose(-1, -2)
    if log_decay is not None:
        if log_decay.dim() == 1:
            scores = scores * distance_log_mask(log_decay, length, scores.dtype).exp()
        else:
            scores = scores * log_mask(log_decay, scores.dtype).exp()
    den = scores.sum(-1) if with_den else None
    if dropout_p > 0.0:
        scores = F.dropout(scores, p=dropout_p, training=True)
    return scores @ v, den
