"""Bidirectional RNN form of LION in PyTorch: two linear recurrences with ``dk x dv`` states.

    forward,  i = 0..L-1:  S_i = lambda_{i-1} S_{i-1} + k_i v_i^T
    backward, i = L-1..0:  S_i = lambda_{i+1} S_{i+1} + k_i v_i^T
    y_i = q_i (S^F_i + S^B_i - k_i v_i^T)      (the diagonal is counted once)

The state is ``O(dk dv)`` per head and the loop is vectorised over batch and heads; only the
per-position outputs are kept, so inference memory is ``O(B H L d)``. (Under autograd PyTorch keeps
each step's state for the backward pass; train with the chunk or attention form.)
"""

from __future__ import annotations

import torch


def recurrent_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor | None,
                    with_den: bool = True):
    """Numerator ``[B,H,L,Dv]`` and denominator ``[B,H,L]`` (or ``None``) of LION, recurrent form."""
    batch, heads, length, _ = q.shape
    if with_den:
        v = torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)
    decay = None
    if log_decay is not None:
        decay = log_decay.to(q.dtype).exp()
        if decay.dim() == 1:
            decay = decay[None, :, None].expand(batch, heads, length)
    forward_out = _sweep(q, k, v, decay, range(length), step=-1)
    backward_out = _sweep(q, k, v, decay, range(length - 1, -1, -1), step=1)
    diagonal = (q * k).sum(-1, keepdim=True) * v
    out = forward_out + backward_out - diagonal
    if with_den:
        return out[..., :-1], out[..., -1]
    return out, None


def _sweep(q, k, v, decay, positions, step: int) -> torch.Tensor:
    """One direction: before adding position ``i``, the state is decayed by ``lambda_{i+step}``,
    the decay of the position it arrives from."""
    batch, heads, length, dk = q.shape
    state = q.new_zeros(batch, heads, dk, v.shape[-1])
    outputs = [None] * length
    first = True
    for i in positions:
        if not first and decay is not None:
            state = state * decay[:, :, i + step, None, None]
        first = False
        state = state + k[:, :, i, :, None] * v[:, :, i, None, :]
        outputs[i] = (q[:, :, i, None, :] @ state).squeeze(-2)
    return torch.stack(outputs, dim=2)
