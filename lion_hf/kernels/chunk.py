"""Chunkwise form of LION in PyTorch: exact, linear in L, never an L x L tensor.

The sequence is cut into chunks of ``C`` positions. Inside a chunk the ``C x C`` block of the full
two-sided mask is applied directly. Between chunks, two running states of size ``dk x dv`` carry
everything else: a forward state summarising all earlier chunks and a backward state summarising
all later ones, each decayed by a chunk's total log-decay when it crosses that chunk. With chunk-local
exclusive/inclusive prefix sums ``f, g`` and chunk total ``A``, a query ``i`` of chunk ``c`` reads

    exp(f_i) q_i S^F_c + exp(A_c - g_i) q_i S^B_c + intra-chunk term,

where ``S^F_{c+1} = exp(A_c) S^F_c + sum_{j in c} exp(A_c - f_j) k_j v_j^T`` and
``S^B_{c-1} = exp(A_c) S^B_c + sum_{j in c} exp(g_j) k_j v_j^T``. Every exponent is a sum of
log-decays (<= 0). Work ``O(L C d + L d^2)``, memory ``O(L d + (L / C) d^2)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .masks import chunk_local_sums, log_mask

DEFAULT_CHUNK_SIZE = 64


def chunk_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor | None,
                with_den: bool = True, chunk_size: int | None = None):
    """Numerator ``[B,H,L,Dv]`` and denominator ``[B,H,L]`` (or ``None``) of LION, chunkwise form."""
    batch, heads, length, _ = q.shape
    chunk = chunk_size or DEFAULT_CHUNK_SIZE
    if with_den:
        v = torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    if log_decay is not None:
        log_decay = log_decay.to(q.dtype)
        if log_decay.dim() == 1:
            log_decay = log_decay[None, :, None].expand(batch, heads, length)
    if pad:
        # Padded tail keys are zero and their decays are 0 (lambda = 1); they only ever sit between
        # a real position and another padded one, so real outputs are unaffected.
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        if log_decay is not None:
            log_decay = F.pad(log_decay, (0, pad))
    q, k, v = (t.reshape(batch, heads, num_chunks, chunk, t.shape[-1]) for t in (q, k, v))

    scores = q @ k.transpose(-1, -2)  # [B, H, N, C, C]
    if log_decay is None:
        k_fwd = k_bwd = k
        q_fwd = q_bwd = q
        chunk_decay = None
    else:
        a = log_decay.reshape(batch, heads, num_chunks, chunk)
        scores = scores * log_mask(a, q.dtype).exp()
        exclusive, inclusive, total = chunk_local_sums(a, q.dtype)
        k_fwd = k * (total[..., None] - exclusive).exp()[..., None]  # decay to the chunk's end
        k_bwd = k * inclusive.exp()[..., None]  # decay to the chunk's start
        q_fwd = q * exclusive.exp()[..., None]
        q_bwd = q * (total[..., None] - inclusive).exp()[..., None]
        chunk_decay = total.exp()[..., None, None]  # [B, H, N, 1, 1]
    out = scores @ v

    contrib_fwd = k_fwd.transpose(-1, -2) @ v  # [B, H, N, Dk, Dv]
    contrib_bwd = k_bwd.transpose(-1, -2) @ v
    states_fwd = _scan(contrib_fwd, chunk_decay, reverse=False)
    states_bwd = _scan(contrib_bwd, chunk_decay, reverse=True)
    out = out + q_fwd @ states_fwd + q_bwd @ states_bwd

    out = out.reshape(batch, heads, num_chunks * chunk, -1)[:, :, :length]
    if with_den:
        return out[..., :-1], out[..., -1]
    return out, None


def _scan(contrib: torch.Tensor, chunk_decay: torch.Tensor | None, reverse: bool) -> torch.Tensor:
    """State entering each chunk: the decayed sum of the contributions of the chunks before it
    (``reverse=False``) or after it (``reverse=True``). A sequential loop over chunks keeps memory
    linear in L; the Triton kernels replace it on GPU."""
    num_chunks = contrib.shape[2]
    order = range(num_chunks - 1, -1, -1) if reverse else range(num_chunks)
    state = torch.zeros_like(contrib[:, :, 0])
    states = [None] * num_chunks
    for c in order:
        states[c] = state
        decayed = state if chunk_decay is None else state * chunk_decay[:, :, c]
        state = decayed + contrib[:, :, c]
    return torch.stack(states, dim=2)
