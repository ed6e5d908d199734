# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Bidirectional LightNet attention (Qin et al., "You Only Scan Once", arXiv 2405.21022) on the LION operator.

LightNet's additive recurrence ``s_t = s_{t-1} + exp(k_t) v_t^T``, ``Δ_t = Δ_{t-1} + exp(k_t)`` (per key feature)
read with ``q_t · s_t / Δ_t`` becomes, over the whole sequence (the bidirectional, global form),

    k̃_j = softmax over the positions j of k_j  (for each key feature separately),
    S   = Σ_j k̃_j v_j^T                         ([D, D] per head, independent of the scan order),
    o_t = q_t S                                   with q = SiLU(x W_q), no decay, no denominator, scale 1.

That is LION-LIT attention (``log_decay=None``, ``normalize=False``, ``scale=1``, identity feature map) on the
keys ``k̃``: :func:`lightnet_fused_attention` forms SiLU(q) and ``k̃`` in PyTorch (fp32 statistics) and hands
``[q, k̃, v]`` to :func:`lion_hf.kernels.fused.lion_fused_attention`, so every form (attention, chunk,
recurrent) and both backends (the Triton kernels, LIT's global-state kernels for long sequences, and the
PyTorch reference) serve LightNet too, forward and backward. The float64 reference written from the formulas
is :mod:`lion_hf.kernels.lightnet_naive`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .fused import lion_fused_attention


def softmax_over_positions(k: torch.Tensor, key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Keys normalised by a softmax over the positions, separately for every (batch, head, feature).

    Args:
        k: ``[B, L, H, D]`` raw keys (any strides).
        key_padding_mask: ``[B, L]`` bool, ``True`` for real tokens; padded keys get exactly zero weight,
            and a sequence with no real token gives zeros (not NaN), with zero gradients.

    Returns:
        ``[B, L, H, D]`` in ``k``'s dtype; the statistics (maximum, sum) are computed in fp32 (fp64 for fp64).
    """
    if k.dim() != 4:
        raise ValueError(f"k must be [batch, length, heads, head_dim], got {tuple(k.shape)}")
    if k.shape[1] == 0 or k.numel() == 0:
        return k * 1.0  # nothing to normalise (still connected to k for autograd)
    statistics = torch.float64 if k.dtype == torch.float64 else torch.float32
    if key_padding_mask is None:
        # one fused softmax kernel each way (fp32 statistics from the autocast dtype) instead of a chain of
        # elementwise kernels over [B, L, H, D]
        return torch.softmax(k, dim=1, dtype=statistics).to(k.dtype)
    if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != tuple(k.shape[:2]):
        raise ValueError(f"key_padding_mask must be a bool tensor [batch, length]={tuple(k.shape[:2])}, got "
                         f"{key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
    keep = key_padding_mask[:, :, None, None]
    # padded keys get -inf, so exactly zero weight; a sequence of padding only gives NaN columns, zeroed by the
    # where (and masked_fill's backward zeroes their gradients)
    out = torch.softmax(k.masked_fill(~keep, float("-inf")), dim=1, dtype=statistics)
    out = torch.where(keep, out, 0.0)
    return out.to(k.dtype)


def lightnet_fused_attention(qkv: torch.Tensor, *, form: str = "auto", chunk_size: int | None = None,
                             key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                             backend: str = "auto",
                             rotate: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Bidirectional LightNet attention of one layer from its fused projection (before RMSNorm and the gate).

    Args:
        qkv: ``[B, L, 3, H, D]``, the ``qkv`` Linear's output viewed per head (raw q, k, v stacked).
        form, chunk_size, backend: as for :func:`lion_hf.kernels.lion_attention`; every form computes the
            same function (LightNet has one global state, so the chunk and recurrent forms are one pass).
        key_padding_mask: ``[B, L]`` bool, ``True`` for real tokens; padded keys are left out of the softmax
            and of the state exactly (a padded *query* still reads the state of the real keys).
        dropout_p: dropout on the ``q_t · k̃_j`` scores (attention form only, as for LION).
        rotate: a positional rotation ``[B, L, H, D] -> [B, L, H, D]`` (MD-LRPE) applied to SiLU(q) and to the
            normalised keys k̃ before the state is formed (``None``: none; the scores become ``q~_t · k~_j``).

    Returns:
        ``o = SiLU(q) S`` as ``[B, L, H*D]`` in ``qkv``'s dtype.
    """
    if qkv.dim() != 5 or qkv.shape[2] != 3:
        raise ValueError(f"qkv must be [batch, length, 3, heads, head_dim], got {tuple(qkv.shape)}")
    q_raw, k_raw, v = qkv.unbind(2)
    # SiLU keeps the autocast dtype; the softmax's fp32 statistics are cast back (as silu_l2 does)
    q = F.silu(q_raw)
    k = softmax_over_positions(k_raw, key_padding_mask)
    if rotate is not None:
        q, k = rotate(q), rotate(k)
    stacked = torch.stack([q, k, v.to(q.dtype)], dim=2)  # [B, L, 3, H, D]: what the fused layer reads by strides
    return lion_fused_attention(stacked, [None], feature_map="identity", normalize=False, scale=1.0, eps=0.0,
                                form=form, chunk_size=chunk_size, key_padding_mask=key_padding_mask,
                                dropout_p=dropout_p, backend=backend)


__all__ = ["lightnet_fused_attention", "softmax_over_positions"]
