"""Bidirectional RNN form of LION in Triton, for inference: one pass each way, state in registers.

One program owns a ``BV``-wide slice of the value columns of one (batch, head) and steps through the
positions keeping ``S`` (``[dk, BV]`` fp32) and ``z`` (``[dk]``) in registers:

    forward,  t = 0..L-1:  S = lambda_{t-1} S + k_t v_t^T;  out_t = q_t S          (diagonal included)
    backward, t = L-1..0:  out_t += q_t S;  then S = lambda_t S ... (state *before* adding k_t v_t^T)

The only buffers are the fp32 partial output of the first pass and the outputs: ``O(B H L d)`` memory,
nothing of size ``L d^2`` or ``L^2``. The work is ``O(L d^2)`` with no matrix-unit use, so this form is
for memory-lean inference, not for speed; there is no backward (``lion_attention`` sends training
calls to the chunk kernels).
"""

from __future__ import annotations

import torch

from .common import NORMALIZED, PARTS
from .launcher import run_kernel
from .utils import contiguous, decay_strides, interpreter_enabled, kernel_dtype

#: how Triton runs this module's kernels, fixed when it defined them (at import): read once, not per launch
_INTERPRETED = interpreter_enabled()

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None


if triton is not None:

    @triton.jit
    def _recurrent_kernel(Q, K, V, A, PREV, PREV_DEN, OUT, DEN, L, H, sab, sah, sal, scale, eps,
                          DK: tl.constexpr, DV: tl.constexpr, BV: tl.constexpr, HAS_DECAY: tl.constexpr,
                          REVERSE: tl.constexpr, HAS_DEN: tl.constexpr, ACCUM: tl.constexpr,
                          OUT_MODE: tl.constexpr):
        i_v = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_k = tl.arange(0, DK)
        offs_v = i_v * BV + tl.arange(0, BV)
        base_k = i_bh.to(tl.int64) * L * DK
        base_v = i_bh.to(tl.int64) * L * DV
        state = tl.zeros([DK, BV], dtype=tl.float32)
        z = tl.zeros([DK], dtype=tl.float32)
        a_prev = 0.0  # log-decay of the position the state arrives from (none before the first step)
        for t in range(0, L):
            if REVERSE:
                pos = L - 1 - t
            else:
                pos = t
            q = tl.load(Q + base_k + pos * DK + offs_k).to(tl.float32)
            k = tl.load(K + base_k + pos * DK + offs_k).to(tl.float32)
            v = tl.load(V + base_v + pos * DV + offs_v).to(tl.float32)
            if HAS_DECAY:
                lam = tl.exp(a_prev)
                state = state * lam
                z = z * lam
                a_prev = tl.load(A + i_b * sab + i_h * sah + pos * sal)
            if not REVERSE:  # the diagonal is counted in the forward pass only
                state += k[:, None] * v[None, :]
                z += k
            o = tl.sum(q[:, None] * state, 0)  # [BV]
            d = tl.sum(q * z, 0)
            if REVERSE:
                state += k[:, None] * v[None, :]
                z += k
            if ACCUM:
                o += tl.load(PREV + base_v + pos * DV + offs_v)
                if HAS_DEN:
                    d += tl.load(PREV_DEN + i_bh * L + pos)
            if OUT_MODE == 0:
                tl.store(OUT + base_v + pos * DV + offs_v, o.to(OUT.dtype.element_ty))
            elif OUT_MODE == 1:
                de = d + eps
                r = tl.where(de != 0.0, 1.0 / tl.where(de != 0.0, de, 1.0), 0.0)  # no real key: 0, not 0 / 0
                tl.store(OUT + base_v + pos * DV + offs_v, (o * r).to(OUT.dtype.element_ty))
            else:
                tl.store(OUT + base_v + pos * DV + offs_v, (o * scale).to(OUT.dtype.element_ty))
            if HAS_DEN:
                if i_v == 0:
                    tl.store(DEN + i_bh * L + pos, d)


def recurrent_forward(q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float):
    """Two passes; returns ``(out, den)`` like the other forms' ``*_forward`` functions."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    q, k, v = contiguous(q.to(dtype), k.to(dtype), v.to(dtype))
    a, sab, sah, sal, kind = decay_strides(log_decay, batch, heads, length)
    has_den = with_den or mode == NORMALIZED
    bv = dv if _INTERPRETED else min(dv, 32)  # small slices: more programs, fewer registers
    grid = (dv // bv, batch * heads)
    f32 = dict(device=q.device, dtype=torch.float32)
    part = torch.empty(batch, heads, length, dv, **f32)
    den1 = torch.empty(batch, heads, length, **f32) if has_den else None
    out = torch.empty(batch, heads, length, dv, device=q.device, dtype=torch.float32 if mode == PARTS else dtype)
    den = torch.empty(batch, heads, length, **f32) if has_den else None
    dummy = q
    a_arg = a if a is not None else dummy
    meta = dict(DK=dk, DV=dv, BV=bv, HAS_DECAY=kind > 0, HAS_DEN=has_den, num_warps=4 if dk * bv >= 2048 else 2)
    run_kernel(_recurrent_kernel, grid, q, k, v, a_arg, dummy, dummy, part, den1 if has_den else dummy, length,
               heads, sab, sah, sal, 1.0, 0.0, REVERSE=False, ACCUM=False, OUT_MODE=PARTS, **meta)
    run_kernel(_recurrent_kernel, grid, q, k, v, a_arg, part, den1 if has_den else dummy, out,
               den if has_den else dummy, length, heads, sab, sah, sal, float(scale), float(eps), REVERSE=True,
               ACCUM=True, OUT_MODE=mode, **meta)
    return out, den


__all__ = ["recurrent_forward"]
