"""Chunkwise form of LION in Triton: linear in L, states kept in registers, never an L x L tensor.

Everything is built from one kernel, a *decayed strictly-lower sweep* in a chosen frame:

    out_i = sum_{j < i} exp(P_i - P_j) (X_i . Y_j + rb_i + cb_j) Z_j   (+ the j = i term if DIAG)

where positions are read in the forward frame (t = position) or the mirrored one (t = L-1-position,
``REVERSE``), and ``P`` is the exclusive (``F``) or inclusive (``G``) prefix sum of the log-decay in that
frame. One program owns a ``BV``-wide slice of ``Z``'s columns of one (batch, head) and walks the chunks
in order: the intra-chunk ``BT x BT`` block is applied directly (chunk-local prefix sums, so every
exponent is exact), earlier chunks enter through a ``[DX, BV]`` fp32 state decayed by each chunk's total.

LION's operator is two such sweeps: the part below the diagonal is the forward frame with ``F``, the
part above it is the mirrored frame with ``F`` (``lambda_{i+1} ... lambda_j`` read backwards is an
exclusive product), the diagonal is added once. The backward pass is six sweeps (see
:func:`chunk_backward`): with ``dA_ij = g'_i . v_j + c_i``,

* ``dq = sweep(X=g', Y=v, Z=k, rb=c)`` (forward frame, F) + the same mirrored,
* ``dk = sweep(X=v, Y=g', Z=q, cb=c)`` and ``dv = sweep(X=k, Y=q, Z=g')``, where the mask is the
  transpose of M: in the forward frame that is ``G`` (``lambda_{j+1} ... lambda_i``), mirrored ``G`` too.

For ``d log_decay`` (LION-S) the sweeps also emit ``R_i = W_i . out_i`` over the strictly-lower part
(``W = q`` for dq, ``W = k`` for dk), which are exactly the row / column sums of ``P = dA * A`` below
and above the diagonal that :func:`lion_hf.kernels.triton.common.log_decay_grad` needs. LION-D needs
``sum_ij P_ij |i - j|``; forming it from those sums weights them by absolute positions and loses
~L x eps to cancellation, so the dq sweeps carry a first-moment state instead (``MOMENT``).
"""

from __future__ import annotations

import os

import torch

from .common import NORMALIZED, PARTS, grad_inputs, log_decay_grad
from .utils import contiguous, decay_strides, interpreter_enabled, kernel_dtype

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None


if triton is not None:

    @triton.jit
    def _sweep_kernel(X, Y, Z, A, RB, CB, W, PREV, PREV_DEN, OUT, DEN, ROWDOT, MOM,
                      L, H, sab, sah, sal, scale, eps,
                      DX: tl.constexpr, DZ: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
                      HAS_DECAY: tl.constexpr, REVERSE: tl.constexpr, INCLUSIVE: tl.constexpr,
                      DIAG: tl.constexpr, HAS_RB: tl.constexpr, HAS_CB: tl.constexpr, HAS_DEN: tl.constexpr,
                      HAS_ROWDOT: tl.constexpr, MOMENT: tl.constexpr, ACCUM: tl.constexpr, OUT_MODE: tl.constexpr,
                      STATE_F32: tl.constexpr, PREC: tl.constexpr):
        i_v = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_x = tl.arange(0, DX)
        offs_v = i_v * BV + tl.arange(0, BV)
        base_x = i_bh.to(tl.int64) * L * DX
        base_z = i_bh.to(tl.int64) * L * DZ
        arange_t = tl.arange(0, BT)
        state = tl.zeros([DX, BV], dtype=tl.float32)  # sum over earlier chunks of w_j Y_j Z_j^T
        if HAS_DEN:
            z_y = tl.zeros([DX], dtype=tl.float32)  # sum w_j Y_j   (denominator: Z = 1)
        if HAS_RB:
            z_z = tl.zeros([BV], dtype=tl.float32)  # sum w_j Z_j   (row bias)
        if HAS_CB:
            z_cz = tl.zeros([BV], dtype=tl.float32)  # sum w_j cb_j Z_j   (column bias)
        if MOMENT:  # first moments: sum over earlier chunks of (c0 - j) w_j Y_j Z_j^T (and of w_j Z_j)
            mom_state = tl.zeros([DX, BV], dtype=tl.float32)
            if HAS_RB:
                mom_z = tl.zeros([BV], dtype=tl.float32)
        for c0 in range(0, L, BT):
            t = c0 + arange_t
            valid = t < L
            if REVERSE:
                pos = L - 1 - t
            else:
                pos = t
            x = tl.load(X + base_x + pos[:, None] * DX + offs_x[None, :], mask=valid[:, None], other=0.0)
            y = tl.load(Y + base_x + pos[:, None] * DX + offs_x[None, :], mask=valid[:, None], other=0.0)
            z = tl.load(Z + base_z + pos[:, None] * DZ + offs_v[None, :], mask=valid[:, None], other=0.0)
            s = tl.dot(x, tl.trans(y), input_precision=PREC)  # [BT, BT]
            if HAS_RB:
                rb = tl.load(RB + i_bh * L + pos, mask=valid, other=0.0)
                s += rb[:, None]
            if HAS_CB:
                cb = tl.load(CB + i_bh * L + pos, mask=valid, other=0.0)
                s += cb[None, :]
            lower = t[:, None] > t[None, :]
            if HAS_DECAY:
                a = tl.load(A + i_b * sab + i_h * sah + pos * sal, mask=valid, other=0.0)
                incl = tl.cumsum(a, 0)
                if INCLUSIVE:
                    p = incl
                else:
                    p = incl - a
                total = tl.sum(a, 0)
                s_in = tl.where(lower, s * tl.exp(tl.minimum(p[:, None] - p[None, :], 0.0)), 0.0)
                q_dec = tl.exp(p)  # from the chunk start to the query
                k_dec = tl.exp(tl.minimum(total - p, 0.0))  # from the key to the chunk end
                c_dec = tl.exp(total)
            else:
                s_in = tl.where(lower, s, 0.0)
            o = tl.dot(s_in.to(z.dtype), z, input_precision=PREC)  # [BT, BV]
            if STATE_F32:
                inter = tl.dot(x.to(tl.float32), state, input_precision=PREC)
            else:
                inter = tl.dot(x, state.to(x.dtype), input_precision=PREC)
            if HAS_RB:
                inter += rb[:, None] * z_z[None, :]
            if HAS_CB:
                inter += z_cz[None, :]
            if HAS_DEN:
                d = tl.sum(s_in, 1)
                d_inter = tl.sum(x.to(tl.float32) * z_y[None, :], 1)
            if HAS_DECAY:
                o += q_dec[:, None] * inter
                if HAS_DEN:
                    d += q_dec * d_inter
            else:
                o += inter
                if HAS_DEN:
                    d += d_inter
            if HAS_ROWDOT or MOMENT:
                w = tl.load(W + base_z + pos[:, None] * DZ + offs_v[None, :], mask=valid[:, None], other=0.0)
            if HAS_ROWDOT:
                tl.atomic_add(ROWDOT + i_bh * L + pos, tl.sum(w.to(tl.float32) * o, 1), mask=valid)
            if MOMENT:
                # sum_{j<i} (i - j) P_ij with P_ij = s_ij M_ij (W_i . Z_j), split as intra-chunk pairs
                # (exact distances), (i - c0) times the inter-chunk row sum, and the moment state
                # (c0 - j): every weight is a small distance times a decayed term, never a difference
                # of two large position-weighted sums.
                wz = tl.dot(w, tl.trans(z), input_precision=PREC)
                dist = (t[:, None] - t[None, :]).to(tl.float32)
                if STATE_F32:
                    inter_m = tl.dot(x.to(tl.float32), mom_state, input_precision=PREC)
                else:
                    inter_m = tl.dot(x, mom_state.to(x.dtype), input_precision=PREC)
                if HAS_RB:
                    inter_m += rb[:, None] * mom_z[None, :]
                rel_t = (t - c0).to(tl.float32)
                far = q_dec[:, None] * (inter * rel_t[:, None] + inter_m)
                mom = tl.sum(s_in * dist * wz, 1) + tl.sum(w.to(tl.float32) * far, 1)
                tl.atomic_add(MOM + i_bh * L + pos, mom, mask=valid)
            if DIAG:
                s_diag = tl.sum(x.to(tl.float32) * y.to(tl.float32), 1)
                if HAS_RB:
                    s_diag += rb
                if HAS_CB:
                    s_diag += cb
                o += s_diag[:, None] * z.to(tl.float32)
                if HAS_DEN:
                    d += s_diag
            o_ptrs = pos[:, None] * DZ + offs_v[None, :]
            if ACCUM:
                o += tl.load(PREV + base_z + o_ptrs, mask=valid[:, None], other=0.0)
                if HAS_DEN:
                    d += tl.load(PREV_DEN + i_bh * L + pos, mask=valid, other=0.0)
            if OUT_MODE == 0:
                tl.store(OUT + base_z + o_ptrs, o.to(OUT.dtype.element_ty), mask=valid[:, None])
            elif OUT_MODE == 1:
                tl.store(OUT + base_z + o_ptrs, (o / (d + eps)[:, None]).to(OUT.dtype.element_ty),
                         mask=valid[:, None])
            else:
                tl.store(OUT + base_z + o_ptrs, (o * scale).to(OUT.dtype.element_ty), mask=valid[:, None])
            if HAS_DEN:
                if i_v == 0:
                    tl.store(DEN + i_bh * L + pos, d, mask=valid)
            # carry this chunk into the state seen by the next one
            if MOMENT:
                to_end = (c0 + BT - t).to(tl.float32)
                y_m = y.to(tl.float32) * (k_dec * to_end)[:, None]
                mom_state = c_dec * (mom_state + BT * state) + tl.dot(tl.trans(y_m.to(z.dtype)), z,
                                                                      input_precision=PREC)
                if HAS_RB:
                    mom_z = c_dec * (mom_z + BT * z_z) + tl.sum(z.to(tl.float32) * (k_dec * to_end)[:, None], 0)
            if HAS_DECAY:
                y_w = y.to(tl.float32) * k_dec[:, None]
                state = state * c_dec + tl.dot(tl.trans(y_w.to(z.dtype)), z, input_precision=PREC)
                if HAS_DEN:
                    z_y = z_y * c_dec + tl.sum(y_w, 0)
                if HAS_RB:
                    z_z = z_z * c_dec + tl.sum(z.to(tl.float32) * k_dec[:, None], 0)
                if HAS_CB:
                    z_cz = z_cz * c_dec + tl.sum(z.to(tl.float32) * (cb * k_dec)[:, None], 0)
            else:
                state += tl.dot(tl.trans(y), z, input_precision=PREC)
                if HAS_DEN:
                    z_y += tl.sum(y.to(tl.float32), 0)
                if HAS_RB:
                    z_z += tl.sum(z.to(tl.float32), 0)
                if HAS_CB:
                    z_cz += tl.sum(z.to(tl.float32) * cb[:, None], 0)


def _config(dx: int, dz: int, chunk: int, n_programs_per_head: int):
    """``(BV, num_warps, num_stages)``; ``LION_TRITON_CHUNK`` ("BV,W,S") overrides."""
    env = os.environ.get("LION_TRITON_CHUNK")
    if env:
        bv, w, s = (int(x) for x in env.split(","))
        return min(bv, dz), w, s
    if interpreter_enabled():
        return dz, 1, 1
    # measured on an H100 (B=8, H=12, D=64, L=16384, bf16; benchmarks/profile_kernels.py): 32-wide
    # value slices (twice the programs of 64) with 3 pipeline stages were the fastest of 8 settings
    bv = min(dz, 32)
    warps = 8 if dx * bv >= 128 * 64 else 4
    return bv, warps, 3


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def sweep(x, y, z, a_info, *, reverse: bool, inclusive: bool, diag: bool, rb=None, cb=None, w=None,
          rowdot=None, moment=None, prev=None, prev_den=None, out=None, den=None, with_den: bool = False,
          mode: int = PARTS, scale: float = 1.0, eps: float = 0.0, chunk: int = 64):
    """One launch of the sweep kernel over ``[B, H, L, *]`` tensors (see module doc). Returns ``out``."""
    batch, heads, length, dx = x.shape
    dz = z.shape[-1]
    a, sab, sah, sal, kind = a_info
    if out is None:
        out = torch.empty(batch, heads, length, dz, device=x.device, dtype=torch.float32)
    bv, warps, stages = _config(dx, dz, chunk, 1)
    dummy = x
    grid = (dz // bv, batch * heads)
    _sweep_kernel[grid](
        x, y, z, a if a is not None else dummy, rb if rb is not None else dummy,
        cb if cb is not None else dummy, w if w is not None else dummy, prev if prev is not None else dummy,
        prev_den if prev_den is not None else dummy, out, den if den is not None else dummy,
        rowdot if rowdot is not None else dummy, moment if moment is not None else dummy,
        length, heads, sab, sah, sal, float(scale), float(eps),
        DX=dx, DZ=dz, BT=chunk, BV=bv, HAS_DECAY=kind > 0, REVERSE=reverse, INCLUSIVE=inclusive, DIAG=diag,
        HAS_RB=rb is not None, HAS_CB=cb is not None, HAS_DEN=with_den, HAS_ROWDOT=rowdot is not None,
        MOMENT=moment is not None,
        ACCUM=prev is not None, OUT_MODE=mode, STATE_F32=x.dtype == torch.float16, PREC=_precision(x.dtype),
        num_warps=warps, num_stages=stages)
    return out


def chunk_forward(q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float, chunk: int):
    """Two sweeps (below the diagonal with it, then above it) fused with the output epilogue.

    Returns ``(out, den)`` as :func:`lion_hf.kernels.triton.attention.attention_forward` does."""
    batch, heads, length, _ = q.shape
    dtype = kernel_dtype(q.dtype)
    q, k, v = contiguous(q.to(dtype), k.to(dtype), v.to(dtype))
    a_info = decay_strides(log_decay, batch, heads, length)
    has_den = with_den or mode == NORMALIZED

    def new_den():
        return torch.empty(batch, heads, length, device=q.device, dtype=torch.float32) if has_den else None

    den1 = new_den()
    part = sweep(q, k, v, a_info, reverse=False, inclusive=False, diag=True, den=den1, with_den=has_den,
                 chunk=chunk)
    den = new_den()
    out = torch.empty(batch, heads, length, v.shape[-1], device=q.device,
                      dtype=torch.float32 if mode == PARTS else dtype)
    sweep(q, k, v, a_info, reverse=True, inclusive=False, diag=False, prev=part, prev_den=den1, out=out, den=den,
          with_den=has_den, mode=mode, scale=scale, eps=eps, chunk=chunk)
    return out, den


def chunk_backward(q, k, v, log_decay, g, c, needs_decay_grad: bool, chunk: int):
    """``(dq, dk, dv, dlog_decay)`` by six sweeps (module doc); ``g'`` and ``c`` as in ``common``."""
    batch, heads, length, _ = q.shape
    dtype = kernel_dtype(q.dtype)
    q, k, v, g = contiguous(q.to(dtype), k.to(dtype), v.to(dtype), g.to(dtype))
    a_info = decay_strides(log_decay, batch, heads, length)
    kind = a_info[-1]
    want = kind > 0 and needs_decay_grad

    def stat():
        return torch.zeros(batch, heads, length, device=q.device, dtype=torch.float32) if want else None

    want_s = want and kind == 2
    want_d = want and kind == 1
    row_lo, row_up, col_lo, col_up = (stat() if want_s else None for _ in range(4))
    mom_lo, mom_up = (stat() if want_d else None for _ in range(2))
    common = dict(chunk=chunk)
    w_q = q if want else None
    # dq_i = sum_j M_ij dA_ij k_j: X = g', Y = v, Z = k, row bias c; rows of P read with W = q.
    part = sweep(g, v, k, a_info, reverse=False, inclusive=False, diag=True, rb=c, w=w_q,
                 rowdot=row_lo, moment=mom_lo, **common)
    dq = sweep(g, v, k, a_info, reverse=True, inclusive=False, diag=False, rb=c, w=w_q,
               rowdot=row_up, moment=mom_up, prev=part, out=torch.empty_like(q), **common)
    # dk_j = sum_i M_ij dA_ij q_i: rows are keys, so the mask is M^T (inclusive sums G in both frames).
    part = sweep(v, g, q, a_info, reverse=False, inclusive=True, diag=True, cb=c, w=k if want_s else None,
                 rowdot=col_up, **common)
    dk = sweep(v, g, q, a_info, reverse=True, inclusive=True, diag=False, cb=c, w=k if want_s else None,
               rowdot=col_lo, prev=part, out=torch.empty_like(k), **common)
    # dv_j = sum_i M_ij (q_i . k_j) g'_i
    part = sweep(k, q, g, a_info, reverse=False, inclusive=True, diag=True, **common)
    dv = sweep(k, q, g, a_info, reverse=True, inclusive=True, diag=False, prev=part, out=torch.empty_like(v),
               **common)
    dlog = None
    if want_d:
        # LION-D: d a_h = sum_{b,i,j} P_ij |i - j|, the moments of both sweeps
        dlog = (mom_lo.double() + mom_up.double()).sum(dim=(0, 2)).to(log_decay.dtype)
    elif want_s:
        dlog = log_decay_grad(log_decay, row_lo, row_up, col_lo, col_up)
    return dq, dk, dv, dlog


class LionChunkFunction(torch.autograd.Function):
    """Autograd wrapper of the chunk-form kernels (``forward`` returns ``(out, den)``)."""

    @staticmethod
    def forward(ctx, q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float, chunk: int):
        out, den = chunk_forward(q, k, v, log_decay, mode, with_den, scale, eps, chunk)
        ctx.save_for_backward(q, k, v, log_decay, out if mode == NORMALIZED else None, den)
        ctx.mode, ctx.scale, ctx.eps, ctx.chunk = mode, scale, eps, chunk
        return out, den

    @staticmethod
    def backward(ctx, grad_out, grad_den):
        q, k, v, log_decay, out, den = ctx.saved_tensors
        g, c = grad_inputs(ctx.mode, grad_out, grad_den if ctx.mode == PARTS else None, out, den,
                           ctx.scale, ctx.eps, v, kernel_dtype(q.dtype))
        needs_decay = log_decay is not None and ctx.needs_input_grad[3]
        dq, dk, dv, dlog = chunk_backward(q, k, v, log_decay, g, c, needs_decay, ctx.chunk)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dlog, None, None, None, None, None


__all__ = ["LionChunkFunction", "chunk_backward", "chunk_forward", "sweep"]
