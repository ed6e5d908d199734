"""Float64 reference of the LION operator, written as literally as the definition allows.

It builds the mask from its definition, ``M_ij = prod of lambda_m over the index range between i
and j`` (spec section 1), by summing log-decays over explicit index-range indicators instead of the
prefix sums the fast forms use, so that it shares no arithmetic trick with them. It costs
``O(L^3)`` memory and exists for tests and tiny inputs only.
"""

from __future__ import annotations

import torch

MAX_NAIVE_LENGTH = 512


def naive_decay_mask(log_decay: torch.Tensor | None, batch: int, heads: int, length: int,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``[B, H, L, L]`` float64 mask; ``log_decay`` is ``None``, ``[H]`` or ``[B, H, L]``."""
    if length > MAX_NAIVE_LENGTH:
        raise ValueError(f"the naive reference is O(L^3); got L={length} > {MAX_NAIVE_LENGTH}")
    if log_decay is None:
        return torch.ones(batch, heads, length, length, dtype=torch.float64, device=device)
    a = log_decay.to(torch.float64)
    if a.dim() == 1:
        a = a[None, :, None].expand(batch, heads, length)
    i = torch.arange(length, device=a.device)[:, None, None]
    j = torch.arange(length, device=a.device)[None, :, None]
    m = torch.arange(length, device=a.device)[None, None, :]
    # i > j: lambda_j ... lambda_{i-1};  i < j: lambda_{i+1} ... lambda_j;  i == j: empty product.
    in_range = ((i > j) & (m >= j) & (m <= i - 1)) | ((i < j) & (m >= i + 1) & (m <= j))
    return torch.exp(torch.einsum("ijm,bhm->bhij", in_range.to(torch.float64), a))


def naive_lion_parts(q, k, v, log_decay=None, key_padding_mask=None):
    """Float64 ``(numerator [B,H,L,Dv], denominator [B,H,L])`` of ``(Q K^T * M) [V | 1]``."""
    q, k, v = (t.to(torch.float64) for t in (q, k, v))
    batch, heads, length, _ = q.shape
    mask = naive_decay_mask(log_decay, batch, heads, length, device=q.device)
    scores = q @ k.transpose(-1, -2) * mask
    if key_padding_mask is not None:
        scores = scores * key_padding_mask[:, None, None, :].to(torch.float64)
    return scores @ v, scores.sum(-1)


def naive_lion_attention(q, k, v, log_decay=None, *, normalize=True, scale=None, eps=0.0,
                         key_padding_mask=None):
    """Float64 LION output: ``num / (den + eps)`` if ``normalize`` else ``scale * num``."""
    num, den = naive_lion_parts(q, k, v, log_decay, key_padding_mask)
    if normalize:
        return num / (den + eps)[..., None]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return num * scale
