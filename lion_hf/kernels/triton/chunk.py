"""Chunkwise form of LION in Triton: linear in L, parallel over chunks, never an L x L tensor.

Notation (one head, chunk ``c`` covering positions ``c0 .. e = c0 + BT - 1``, chunk-local prefix sums
of the log-decay ``pex`` (exclusive), ``pin`` (inclusive) and ``tot`` (the chunk's sum)); LION's mask is
``M_ij = exp(F_i - F_j)`` below the diagonal, ``exp(G_j - G_i)`` above it, 1 on it (``masks.py``).

Two kinds of kernels:

* a **state pass** (:func:`chunk_states`): one program per (batch*head, value slice, direction) walks the
  chunks in order and stores, for every chunk, the state *entering* it from each side,

      forward  ``S^F_c = sum_{j < c0} exp(F_c0 - F_j) x_j z_j^T``,
      backward ``S^B_c = sum_{j > e}  exp(G_j - G_e) x_j z_j^T``

  (and the same sums of ``x_j`` times a per-position scalar, the ``[V | 1]`` denominator column). Each
  step is one ``[DX, BT] x [BT, BV]`` product (and a ``[DX, BT] x [BT, 16]`` one for the vector sums); the
  mask's transpose (``TRANSPOSED``, used for the key-side gradients) swaps the roles of ``pex`` and ``pin``.
  With a decay, a parallel launch (``_weights_kernel``) first computes every position's weight and every
  chunk's decay, so that the sequential loop does no scan or exponential.
* **chunk-parallel kernels**, one program per (chunk, batch*head): the output (:func:`chunk_forward`)
  and the three gradients (:func:`chunk_backward`) of a chunk are its intra-chunk ``BT x BT`` block
  with the two-sided mask, plus the two entering states scaled by the decay from the chunk edge.

Forward = one state pass over ``(k, [v | 1])`` + the output kernel. Backward (with
``dA_ij = g'_i . v_j + c_i``, see ``common.py``): the forward's states (kept by
:class:`LionChunkFunction`, or recomputed), one state pass over ``(q, [g' | c])`` with the transposed
mask, then one gradient kernel:

    dq_i = sum_j M_ij dA_ij k_j,   dk_j = sum_i M_ij dA_ij q_i,   dv_j = sum_i M_ij (q_i . k_j) g'_i.

``d log_decay``: for LION-S the gradient kernel emits the row and column sums of ``P = dA * A`` below
and above the diagonal (``common.log_decay_grad``); for LION-D (``[H]``) it emits
``sum_j P_ij |i - j|`` per row, with the far part taken from first-moment states (``MOMENT``:
``sum_j (c0 - j) w_j x_j z_j^T``), so every weight is a small distance times a decayed term and no
position-weighted sums cancel. Every exponent is a sum of log-decays (``<= 0``).

As in :mod:`~lion_hf.kernels.triton.attention`, the kernels read q, k, v, g through their strides (any
``[B,H,L,D]`` layout with a contiguous last dim) and write out, dq, dk, dv into given buffers; a key
mask ``KM [B, L]`` makes padded keys exact zeros (masked loads in the key-side state pass and the chunk
blocks; their dk, dv are zero); a scan order ``IDX [L]`` (scan position -> token) makes the chunks and
the mask run over scan positions (``log_decay`` given in scan order, decay statistics stored by scan
position) while rows in memory (q/k/v/g/c loads, out/den/dq/dk/dv stores) are tokens; ``ACCUM`` adds an
earlier launch's parts (forward: ``prev = (num, den)``) or gradients (backward: ``accumulate``), so
that two scan orders give one result (the natural variants).
"""

from __future__ import annotations

import torch

from .common import (NORMALIZED, PARTS, check_prep_buffers, grad_inputs, log_decay_grad, prep_buffers,
                     vector_states_by_mma)
from .tuning import launch
from .launcher import run_kernel
from .utils import cdiv, decay_strides, empty_blhd, kernel_dtype, row_major_last, strides3

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None


if triton is not None:
    from .common import _normalized_row_grads  # the query-side pass's preparation (PREP)
    from .common import _scalar_columns  # the vector states' operand (VEC_MMA)

    @triton.jit
    def _chunk_decays(A, i_b, i_h, pos, valid, sab, sah, sal):
        """Chunk-local ``(pex, pin, tot)`` of the log-decay (fp32; at most BT terms each)."""
        a = tl.load(A + i_b * sab + i_h * sah + pos * sal, mask=valid, other=0.0)
        pin = tl.cumsum(a, 0)
        return pin - a, pin, tl.sum(a, 0)

    @triton.jit
    def _weights_kernel(A, W, DEC, L, H, NT, sab, sah, sal, BT: tl.constexpr, TRANSPOSED: tl.constexpr):
        """The state pass's per-position weights ``W [BH, 2, NT*BT]`` (forward, backward direction) and
        per-chunk decays ``DEC [BH, NT]``, so that its sequential loop does no scan or exponential."""
        c = tl.program_id(0)
        i_bh = tl.program_id(1)
        t = c * BT + tl.arange(0, BT)
        valid = t < L
        pex, pin, tot = _chunk_decays(A, i_bh // H, i_bh % H, t, valid, sab, sah, sal)
        if TRANSPOSED:  # weights of M^T: forward exp(tot - pin), backward exp(pex)
            w_f = tl.exp(tl.minimum(tot - pin, 0.0))
            w_b = tl.exp(pex)
        else:  # weights of M: forward exp(tot - pex), backward exp(pin)
            w_f = tl.exp(tl.minimum(tot - pex, 0.0))
            w_b = tl.exp(pin)
        base = (i_bh * 2).to(tl.int64) * NT * BT
        tl.store(W + base + t, w_f)
        tl.store(W + base + NT * BT + t, w_b)
        tl.store(DEC + i_bh * NT + c, tl.exp(tot))

    @triton.jit
    def _rows(IDX, t, valid, HAS_IDX: tl.constexpr):
        """Memory rows (token indices, int64) of scan positions ``t``: ``IDX[t]`` with a scan order."""
        if HAS_IDX:
            return tl.load(IDX + t, mask=valid, other=0).to(tl.int64)
        return t.to(tl.int64)

    @triton.jit
    def _real_keys(KM, i_b, L, tok, valid, HAS_KM: tl.constexpr):
        """``valid`` without the padded keys of the key mask ``KM [B, L]`` (token rows)."""
        if HAS_KM:
            return valid & (tl.load(KM + i_b * L + tok, mask=valid, other=0) != 0)
        return valid

    @triton.jit
    def _output_rows(o_base, DEN, IDX, i_bh, L, t, sol, offs_v, HAS_IDX: tl.constexpr):
        """The normalised output's rows and denominators at scan positions ``t`` (zeros and ones outside
        ``[0, L)``), for the query-side pass's preparation (PREP)."""
        valid = (t >= 0) & (t < L)
        tok = _rows(IDX, t, valid, HAS_IDX)
        o = tl.load(o_base + tok[:, None] * sol + offs_v[None, :], mask=valid[:, None], other=0.0)
        return o, tl.load(DEN + i_bh * L + tok, mask=valid, other=1.0)

    @triton.jit
    def _state_kernel(X, Z, VB, A, W, DEC, S, SV, SM, SMV, KM, IDX, O, DEN, G_OUT, L, H, NT,
                      sxb, sxh, sxl, szb, szh, szl, sab, sah, sal, sob, soh, sol, sgb, sgh, sgl, eps,
                      DX: tl.constexpr, DZ: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
                      HAS_DECAY: tl.constexpr, HAS_VEC: tl.constexpr, VEC_ONES: tl.constexpr,
                      TRANSPOSED: tl.constexpr, MOMENT: tl.constexpr, PRE_W: tl.constexpr,
                      HAS_KM: tl.constexpr, HAS_IDX: tl.constexpr, PREC: tl.constexpr, PREP: tl.constexpr,
                      VEC_MMA: tl.constexpr):
        # The chunks walk scan positions (t); x, z and the vector bias are read at their tokens (IDX).
        # With a key mask (HAS_KM, the key-side pass only) padded rows load as exact zeros.
        # PREP (the query-side pass of the normalised output, BV == DZ): Z is the output's gradient; each step
        # forms its rows' g' = Z / (den + eps) and c = -(Z . O) / (den + eps) (common.py) as the pass's z and
        # vector bias, and the forward direction stores them (G_OUT, VB) for the gradient kernel.
        # VEC_MMA: the vector states as one more matrix product per step, of the operand x the state's product takes
        # and a [BT, 16] tile holding the per-position scalar (1, or the vector bias as bf16 hi + lo in two columns),
        # kept as [DX, 16] accumulators whose row sums are the vectors; else as row sums of the fp32 tile. The row
        # sum of a [DX, BT] tile is a cross-thread reduction inside the sequential loop (BENCHMARKS.md, twelfth pass)
        i_v = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_dir = tl.program_id(2)  # 0: forward (chunks in order), 1: backward (reverse order)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_x = tl.arange(0, DX)
        offs_v = i_v * BV + tl.arange(0, BV)
        arange_t = tl.arange(0, BT)
        x_base = X + i_b.to(tl.int64) * sxb + i_h.to(tl.int64) * sxh
        z_base = Z + i_b.to(tl.int64) * szb + i_h.to(tl.int64) * szh
        # states are [BH, 2, NT, DX, DZ] (vectors [BH, 2, NT, DX])
        base_s = (i_bh * 2 + i_dir).to(tl.int64) * NT * DX * DZ
        base_sv = (i_bh * 2 + i_dir).to(tl.int64) * NT * DX
        s_ptrs = offs_x[:, None] * DZ + offs_v[None, :]
        state = tl.zeros([DX, BV], dtype=tl.float32)
        VW: tl.constexpr = 16  # VEC_MMA's columns: the narrowest product tl.dot takes
        if VEC_MMA:
            vec = tl.zeros([DX, VW], dtype=tl.float32)
        elif HAS_VEC:
            vec = tl.zeros([DX], dtype=tl.float32)
        if MOMENT:
            mom = tl.zeros([DX, BV], dtype=tl.float32)
            if VEC_MMA:
                mom_vec = tl.zeros([DX, VW], dtype=tl.float32)
            elif HAS_VEC:
                mom_vec = tl.zeros([DX], dtype=tl.float32)
        # The loop's plain loads (the chunk's decay; PREP: the output and denominator rows) are issued one chunk
        # ahead: Triton's pipeliner leaves them synchronous (the TTGIR of sm_90), so each step waited for them.
        # H200 (BENCHMARKS.md ninth pass): LION-D's pass with moments 3 % faster at L 16384, the plain passes
        # unchanged, ViT-B 1024 px training LION-D/S 63.5 / 63.1 -> 62.9 / 62.7 ms (the PREP pass)
        o_base = O + i_b.to(tl.int64) * sob + i_h.to(tl.int64) * soh
        if HAS_DECAY and PRE_W:
            decay_next = tl.load(DEC + i_bh * NT + i_dir * (NT - 1))
        if PREP:
            o_next, den_next = _output_rows(o_base, DEN, IDX, i_bh, L, i_dir * (NT - 1) * BT + arange_t, sol, offs_v,
                                            HAS_IDX)
        for it in range(0, NT):
            c = it + i_dir * (NT - 1 - 2 * it)
            t = c * BT + arange_t
            valid = t < L
            tok = _rows(IDX, t, valid, HAS_IDX)
            real = _real_keys(KM, i_b, L, tok, valid, HAS_KM)
            c_next = c + 1 - 2 * i_dir  # the next step's chunk (-1 or NT after the last one)
            if HAS_DECAY and PRE_W:
                decay = decay_next
                decay_next = tl.load(DEC + i_bh * NT + tl.minimum(tl.maximum(c_next, 0), NT - 1))
            if PREP:
                o_rows = o_next
                den_rows = den_next
                o_next, den_next = _output_rows(o_base, DEN, IDX, i_bh, L, c_next * BT + arange_t, sol, offs_v,
                                                HAS_IDX)
            tl.store(S + base_s + c * DX * DZ + s_ptrs, state.to(S.dtype.element_ty))
            if HAS_VEC:
                if i_v == 0:
                    if VEC_MMA:  # the vector is its accumulator's row sum
                        tl.store(SV + base_sv + c * DX + offs_x, tl.sum(vec, 1))
                    else:
                        tl.store(SV + base_sv + c * DX + offs_x, vec)
            if MOMENT:
                tl.store(SM + base_s + c * DX * DZ + s_ptrs, mom.to(SM.dtype.element_ty))
                if HAS_VEC:
                    if i_v == 0:
                        if VEC_MMA:
                            tl.store(SMV + base_sv + c * DX + offs_x, tl.sum(mom_vec, 1))
                        else:
                            tl.store(SMV + base_sv + c * DX + offs_x, mom_vec)
            # x is read as its transpose [DX, BT]: the decay weights then scale its columns and the
            # tile goes to the matrix units as is (scaling a [BT, DX] tile and transposing it in
            # registers cost ~2.5x the whole pass on an H100)
            x_t = tl.load(x_base + tok[None, :] * sxl + offs_x[:, None], mask=real[None, :], other=0.0)
            z = tl.load(z_base + tok[:, None] * szl + offs_v[None, :], mask=real[:, None], other=0.0)
            if PREP:
                do = z.to(tl.float32)
                z, vb = _normalized_row_grads(do, o_rows.to(tl.float32), den_rows + eps)
                z = z.to(G_OUT.dtype.element_ty)
                if i_dir == 0:
                    tl.store(G_OUT + i_b.to(tl.int64) * sgb + i_h.to(tl.int64) * sgh + tok[:, None] * sgl
                             + offs_v[None, :], z, mask=valid[:, None])
                    tl.store(VB + i_bh * L + tok, vb, mask=valid)
            if HAS_DECAY:
                if PRE_W:  # from _weights_kernel (the decay loaded a step ahead)
                    w = tl.load(W + (i_bh * 2 + i_dir).to(tl.int64) * NT * BT + t)
                else:
                    pex, pin, tot = _chunk_decays(A, i_b, i_h, t, valid, sab, sah, sal)
                    if TRANSPOSED:  # weights of M^T: forward exp(tot - pin), backward exp(pex)
                        p_fwd = pin
                        p_bwd = pex
                    else:  # weights of M: forward exp(tot - pex), backward exp(pin)
                        p_fwd = pex
                        p_bwd = pin
                    if i_dir == 0:
                        w = tl.exp(tl.minimum(tot - p_fwd, 0.0))
                    else:
                        w = tl.exp(p_bwd)
                    decay = tl.exp(tot)
                xw = x_t.to(tl.float32) * w[None, :]
                x_mma = xw.to(z.dtype)
            else:
                xw = x_t.to(tl.float32)
                x_mma = x_t.to(z.dtype)
            if HAS_VEC:
                if not VEC_ONES and not PREP:
                    vb = tl.load(VB + i_bh * L + tok, mask=valid, other=0.0)
                if VEC_MMA:
                    if VEC_ONES:
                        v_op = _scalar_columns(tl.full([BT], 1.0, tl.float32), BT, VW, z.dtype)
                    else:
                        v_op = _scalar_columns(vb, BT, VW, z.dtype)
                    vec_in = tl.dot(x_mma, v_op, input_precision=PREC)
                elif VEC_ONES:
                    vec_in = tl.sum(xw, 1)
                else:
                    vec_in = tl.sum(xw * vb[None, :], 1)
            if MOMENT:
                # distance of each position to the edge the state is taken at, after this chunk
                if i_dir == 0:
                    dist = (c * BT + BT - t).to(tl.float32)
                else:
                    dist = (t - c * BT + 1).to(tl.float32)
                mom = mom + BT * state
                xd_mma = (xw * dist[None, :]).to(z.dtype)
                mom = mom * decay + tl.dot(xd_mma, z, input_precision=PREC)
                if VEC_MMA:  # (the key-side pass: VEC_ONES)
                    mom_vec = (mom_vec + BT * vec) * decay + tl.dot(xd_mma, v_op, input_precision=PREC)
                elif HAS_VEC:
                    mom_vec = (mom_vec + BT * vec) * decay + tl.sum(xw * dist[None, :], 1)
            if HAS_DECAY:
                state = state * decay
                if HAS_VEC:
                    vec = vec * decay
            state += tl.dot(x_mma, z, input_precision=PREC)
            if HAS_VEC:
                vec += vec_in

    @triton.jit
    def _intra_mask(t, pex, pin):
        """The chunk's ``[BT, BT]`` block of M (rows queries, columns keys)."""
        lower = t[:, None] > t[None, :]
        # one exponent per entry (both are sums of log-decays, <= 0; the clamp only guards rounding)
        log_m = tl.where(lower, pex[:, None] - pex[None, :], pin[None, :] - pin[:, None])
        return tl.exp(tl.minimum(log_m, 0.0))

    @triton.jit
    def _output_kernel(Q, K, V, A, S, SV, OUT, DEN, KM, IDX, PREV, PREV_DEN, L, H, NT,
                       sqb, sqh, sql, skb, skh, skl, svb, svh, svl, sob, soh, sol, spb, sph, spl,
                       sab, sah, sal, scale, eps,
                       DK: tl.constexpr, DV: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
                       HAS_DECAY: tl.constexpr, HAS_DEN: tl.constexpr, OUT_MODE: tl.constexpr,
                       HAS_KM: tl.constexpr, HAS_IDX: tl.constexpr, ACCUM: tl.constexpr,
                       STATE_F32: tl.constexpr, PREC: tl.constexpr, F16: tl.constexpr = False):
        # t: scan positions (the mask and the states); tok: their rows in memory (IDX). ACCUM adds an
        # earlier launch's parts (PREV num, PREV_DEN den, token rows) before the output is formed.
        c = tl.program_id(0)
        i_v = tl.program_id(1)
        i_bh = tl.program_id(2)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_k = tl.arange(0, DK)
        offs_v = i_v * BV + tl.arange(0, BV)
        t = c * BT + tl.arange(0, BT)
        valid = t < L
        tok = _rows(IDX, t, valid, HAS_IDX)
        q = tl.load(Q + i_b.to(tl.int64) * sqb + i_h.to(tl.int64) * sqh + tok[:, None] * sql + offs_k[None, :],
                    mask=valid[:, None], other=0.0)
        if STATE_F32:
            q_s = q.to(tl.float32)
        else:
            q_s = q
        if HAS_DECAY:
            pex, pin, tot = _chunk_decays(A, i_b, i_h, t, valid, sab, sah, sal)
        # the far chunks first, through the two entering states (then only o stays alive for the block)
        s_ptrs = offs_k[:, None] * DV + offs_v[None, :]
        base_f = (i_bh * 2).to(tl.int64) * NT * DK * DV + c * DK * DV
        base_vf = (i_bh * 2).to(tl.int64) * NT * DK + c * DK
        for direction in tl.static_range(2):
            far = tl.dot(q_s, tl.load(S + base_f + direction * NT * DK * DV + s_ptrs), input_precision=PREC)
            if HAS_DEN:
                z = tl.load(SV + base_vf + direction * NT * DK + offs_k)
                far_d = tl.sum(q.to(tl.float32) * z[None, :], 1)
            if HAS_DECAY:
                if direction == 0:
                    w = tl.exp(pex)  # from the chunk start to the query
                else:
                    w = tl.exp(tl.minimum(tot - pin, 0.0))  # from the query to the chunk end
                far = far * w[:, None]
                if HAS_DEN:
                    far_d = far_d * w
            if direction == 0:
                o = far
                if HAS_DEN:
                    d = far_d
            else:
                o += far
                if HAS_DEN:
                    d += far_d
        # the chunk's own block with the two-sided mask (padded keys load as zeros)
        real = _real_keys(KM, i_b, L, tok, valid, HAS_KM)
        k = tl.load(K + i_b.to(tl.int64) * skb + i_h.to(tl.int64) * skh + tok[:, None] * skl + offs_k[None, :],
                    mask=real[:, None], other=0.0)
        v = tl.load(V + i_b.to(tl.int64) * svb + i_h.to(tl.int64) * svh + tok[:, None] * svl + offs_v[None, :],
                    mask=real[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k), input_precision=PREC)
        if HAS_DECAY:
            s = s * _intra_mask(t, pex, pin)
        if HAS_DEN:
            d += tl.sum(s, 1)
        if F16:  # fp16 scores can exceed 65504 where the output still fits: multiply in fp32
            o = tl.dot(s, v.to(tl.float32), acc=o, input_precision=PREC)
        else:
            o = tl.dot(s.to(v.dtype), v, acc=o, input_precision=PREC)
        if ACCUM:
            o += tl.load(PREV + i_b.to(tl.int64) * spb + i_h.to(tl.int64) * sph + tok[:, None] * spl
                         + offs_v[None, :], mask=valid[:, None], other=0.0).to(tl.float32)
            if HAS_DEN:
                d += tl.load(PREV_DEN + i_bh * L + tok, mask=valid, other=0.0)
        o_ptrs = OUT + i_b.to(tl.int64) * sob + i_h.to(tl.int64) * soh + tok[:, None] * sol + offs_v[None, :]
        if OUT_MODE == 0:
            tl.store(o_ptrs, o.to(OUT.dtype.element_ty), mask=valid[:, None])
        elif OUT_MODE == 1:
            # rows past the end hold 0 / 0, and so does a row with no real key: 0, not NaN
            d_eps = tl.where(valid, d + eps, 0.0)
            r = tl.where(d_eps != 0.0, 1.0 / tl.where(d_eps != 0.0, d_eps, 1.0), 0.0)
            tl.store(o_ptrs, (o * r[:, None]).to(OUT.dtype.element_ty), mask=valid[:, None])
        else:
            tl.store(o_ptrs, (o * scale).to(OUT.dtype.element_ty), mask=valid[:, None])
        if HAS_DEN:
            if i_v == 0:
                tl.store(DEN + i_bh * L + tok, d, mask=valid)

    @triton.jit
    def _query_side_state(g, S, base, offs_k, offs_v, DV: tl.constexpr, STATE_F32: tl.constexpr,
                          PREC: tl.constexpr):
        """``g @ H^T`` for one ``[DK, DV]`` state H of (k, v) (or its first moment), loaded transposed."""
        st = tl.load(S + base + offs_k[None, :] * DV + offs_v[:, None])
        if STATE_F32:
            return tl.dot(g.to(tl.float32), st, input_precision=PREC)
        return tl.dot(g, st, input_precision=PREC)

    @triton.jit
    def _grad_kernel(Q, K, V, G, C, A, SH, SHV, ST, STV, SHM, SHMV, DQ, DK_, DV_,
                     ROW_LO, ROW_UP, COL_LO, COL_UP, MOM, KM, IDX, L, H, NT,
                     sqb, sqh, sql, skb, skh, skl, svb, svh, svl, sgb, sgh, sgl,
                     sdqb, sdqh, sdql, sdkb, sdkh, sdkl, sdvb, sdvh, sdvl, sab, sah, sal,
                     DK: tl.constexpr, DV: tl.constexpr, BT: tl.constexpr,
                     HAS_DECAY: tl.constexpr, HAS_C: tl.constexpr, STATS: tl.constexpr, MOMENT: tl.constexpr,
                     HAS_KM: tl.constexpr, HAS_IDX: tl.constexpr, ACCUM: tl.constexpr,
                     STATE_F32: tl.constexpr, PREC: tl.constexpr, F16: tl.constexpr = False):
        # Each partial result is folded into its gradient (and the d log_decay statistics) as soon as it
        # exists, and dq is stored before the key side starts, so that few fp32 tiles are alive at once: an
        # earlier order spilled 0.6-0.9 KB of registers per thread on sm_90 with a decay
        # (benchmarks/kernel_resources.py). Splitting the kernel into a query-side and a key-side launch
        # removes the remaining spills but measured slower (recomputed scores; BENCHMARKS.md).
        ROWS: tl.constexpr = STATS or MOMENT
        c = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_k = tl.arange(0, DK)
        offs_v = tl.arange(0, DV)
        t = c * BT + tl.arange(0, BT)
        valid = t < L
        # t: scan positions (mask, states, statistics); tok: memory rows (IDX); padded keys load as zeros
        tok = _rows(IDX, t, valid, HAS_IDX)
        real = _real_keys(KM, i_b, L, tok, valid, HAS_KM)
        b64 = i_b.to(tl.int64)
        h64 = i_h.to(tl.int64)
        q = tl.load(Q + b64 * sqb + h64 * sqh + tok[:, None] * sql + offs_k[None, :], mask=valid[:, None],
                    other=0.0)
        k = tl.load(K + b64 * skb + h64 * skh + tok[:, None] * skl + offs_k[None, :], mask=real[:, None], other=0.0)
        v = tl.load(V + b64 * svb + h64 * svh + tok[:, None] * svl + offs_v[None, :], mask=real[:, None], other=0.0)
        g = tl.load(G + b64 * sgb + h64 * sgh + tok[:, None] * sgl + offs_v[None, :], mask=valid[:, None],
                    other=0.0)
        base_f = (i_bh * 2).to(tl.int64) * NT * DK * DV + c * DK * DV
        base_b = base_f + NT * DK * DV
        base_vf = (i_bh * 2).to(tl.int64) * NT * DK + c * DK
        base_vb = base_vf + NT * DK
        # ---- the chunk's own block: A = (q k^T) * M and dA = g' v^T + c
        s = tl.dot(q, tl.trans(k), input_precision=PREC)
        da = tl.dot(g, tl.trans(v), input_precision=PREC)
        if HAS_C:
            cb = tl.load(C + i_bh * L + tok, mask=valid, other=0.0)
            da += cb[:, None]
        if HAS_DECAY:
            pex, pin, tot = _chunk_decays(A, i_b, i_h, t, valid, sab, sah, sal)
            m = _intra_mask(t, pex, pin)
            s = s * m
            if ROWS:
                p = da * s  # P = dA * A
                lower = t[:, None] > t[None, :]
                upper = t[:, None] < t[None, :]
                if STATS:
                    row_lo = tl.sum(tl.where(lower, p, 0.0), 1)
                    row_up = tl.sum(tl.where(upper, p, 0.0), 1)
                    col_lo = tl.sum(tl.where(lower, p, 0.0), 0)
                    col_up = tl.sum(tl.where(upper, p, 0.0), 0)
                if MOMENT:
                    mom = tl.sum(p * tl.abs(t[:, None] - t[None, :]).to(tl.float32), 1)
            da = da * m
        # ---- queries: the block, then the far chunks through the entering states H of (k, [v | 1])
        if F16:  # score gradients, like scores, can leave fp16's range
            dq = tl.dot(da, k.to(tl.float32), input_precision=PREC)
        else:
            dq = tl.dot(da.to(k.dtype), k, input_precision=PREC)
        if ROWS:
            qf32 = q.to(tl.float32)
        for direction in tl.static_range(2):
            far = _query_side_state(g, SH, base_f if direction == 0 else base_b, offs_k, offs_v, DV,
                                    STATE_F32, PREC)
            if HAS_C:
                far += cb[:, None] * tl.load(SHV + (base_vf if direction == 0 else base_vb) + offs_k)[None, :]
            if HAS_DECAY:
                if direction == 0:
                    far = far * tl.exp(pex)[:, None]  # chunk start -> query
                else:
                    far = far * tl.exp(tl.minimum(tot - pin, 0.0))[:, None]  # query -> chunk end
            if ROWS:
                if direction == 0:
                    row_far_lo = tl.sum(qf32 * far, 1)  # rows of P: keys before the chunk
                else:
                    row_far_up = tl.sum(qf32 * far, 1)  # keys after it
            dq += far
        dq_ptrs = DQ + b64 * sdqb + h64 * sdqh + tok[:, None] * sdql + offs_k[None, :]
        if ACCUM:  # a second scan order adds to the first one's gradients
            dq += tl.load(dq_ptrs, mask=valid[:, None], other=0.0).to(tl.float32)
        tl.store(dq_ptrs, dq.to(DQ.dtype.element_ty), mask=valid[:, None])
        if STATS:
            tl.store(ROW_LO + i_bh * L + t, row_lo + row_far_lo, mask=valid)
            tl.store(ROW_UP + i_bh * L + t, row_up + row_far_up, mask=valid)
        if MOMENT:
            # sum_j P_ij |i - j|: exact distances inside the chunk (above); beyond it, (distance to the
            # chunk edge) times the far row sum plus the first-moment states (edge to each key)
            rel = (t - c * BT).to(tl.float32)
            mom += rel * row_far_lo + (BT - 1 - rel) * row_far_up
            for direction in tl.static_range(2):
                far = _query_side_state(g, SHM, base_f if direction == 0 else base_b, offs_k, offs_v, DV,
                                        STATE_F32, PREC)
                if HAS_C:
                    far += cb[:, None] * tl.load(SHMV + (base_vf if direction == 0 else base_vb)
                                                 + offs_k)[None, :]
                if direction == 0:
                    mom += tl.exp(pex) * tl.sum(qf32 * far, 1)
                else:
                    mom += tl.exp(tl.minimum(tot - pin, 0.0)) * tl.sum(qf32 * far, 1)
            tl.store(MOM + i_bh * L + t, mom, mask=valid)
        # ---- keys: the block, then the far chunks through the entering states T of (q, [g' | c]) (M^T)
        if F16:
            dk = tl.dot(tl.trans(da), q.to(tl.float32), input_precision=PREC)
            dv = tl.dot(tl.trans(s), g.to(tl.float32), input_precision=PREC)
        else:
            dk = tl.dot(tl.trans(da).to(q.dtype), q, input_precision=PREC)
            dv = tl.dot(tl.trans(s).to(g.dtype), g, input_precision=PREC)
        if STATS:
            kf32 = k.to(tl.float32)
        for direction in tl.static_range(2):
            base = base_f if direction == 0 else base_b
            st = tl.load(ST + base + offs_k[:, None] * DV + offs_v[None, :])
            if STATE_F32:
                far_k = tl.dot(v.to(tl.float32), tl.trans(st), input_precision=PREC)
                far_v = tl.dot(k.to(tl.float32), st, input_precision=PREC)
            else:
                far_k = tl.dot(v, tl.trans(st), input_precision=PREC)
                far_v = tl.dot(k, st, input_precision=PREC)
            if HAS_C:
                far_k += tl.load(STV + (base_vf if direction == 0 else base_vb) + offs_k)[None, :]
            if HAS_DECAY:
                if direction == 0:
                    w = tl.exp(pin)  # chunk start -> key
                else:
                    w = tl.exp(tl.minimum(tot - pex, 0.0))  # key -> chunk end
                far_k = far_k * w[:, None]
                far_v = far_v * w[:, None]
            if STATS:
                if direction == 0:
                    col_up += tl.sum(kf32 * far_k, 1)  # queries before the key
                else:
                    col_lo += tl.sum(kf32 * far_k, 1)  # queries after it
            dk += far_k
            dv += far_v
        if HAS_KM:  # a padded key gets no gradient (it is an exact zero in the function)
            dk = tl.where(real[:, None], dk, 0.0)
            dv = tl.where(real[:, None], dv, 0.0)
        dk_ptrs = DK_ + b64 * sdkb + h64 * sdkh + tok[:, None] * sdkl + offs_k[None, :]
        dv_ptrs = DV_ + b64 * sdvb + h64 * sdvh + tok[:, None] * sdvl + offs_v[None, :]
        if ACCUM:
            dk += tl.load(dk_ptrs, mask=valid[:, None], other=0.0).to(tl.float32)
            dv += tl.load(dv_ptrs, mask=valid[:, None], other=0.0).to(tl.float32)
        tl.store(dk_ptrs, dk.to(DK_.dtype.element_ty), mask=valid[:, None])
        tl.store(dv_ptrs, dv.to(DV_.dtype.element_ty), mask=valid[:, None])
        if STATS:
            tl.store(COL_LO + i_bh * L + t, col_lo, mask=valid)
            tl.store(COL_UP + i_bh * L + t, col_up, mask=valid)


def _precision(dtype: torch.dtype) -> str:
    return "ieee" if dtype == torch.float32 else "tf32"


def _state_dtype(dtype: torch.dtype) -> torch.dtype:
    """States feed the matrix units next to bf16 operands as bf16 (its range is fp32's); fp16 states
    could overflow over long sequences without decay, so fp16 and fp32 inputs keep fp32 states."""
    return torch.bfloat16 if dtype == torch.bfloat16 else torch.float32


def _key_mask(key_mask: torch.Tensor | None):
    """``[B, L]`` uint8 (1 = real key) for the kernels, or ``None``."""
    return None if key_mask is None else key_mask.to(torch.uint8).contiguous()


def _order(order: torch.Tensor | None, length: int):
    """A scan order as the kernels read it: int32 ``[L]`` (scan position -> token), or ``None``."""
    if order is None:
        return None
    if order.shape != (length,):
        raise ValueError(f"order must be [L] = [{length}], got {tuple(order.shape)}")
    return order if order.dtype == torch.int32 and order.is_contiguous() else order.to(torch.int32).contiguous()


def chunk_states(x, z, a_info, chunk: int, *, vec: bool, vec_bias=None, transposed: bool = False,
                 moment: bool = False, key_mask=None, order=None, prep=None):
    """Entering states of every chunk from both sides (module doc).

    Returns ``(S [BH,2,NT,DX,DZ], S_vec [BH,2,NT,DX] fp32 | None, S_mom | None, S_mom_vec | None)``;
    the vector state sums ``x_j`` (``vec`` with no ``vec_bias``) or ``vec_bias_j x_j``. ``x`` and ``z``
    (``[B,H,L,D]``) are read through their strides (last dim contiguous), ``vec_bias`` ``[B,H,L]``
    contiguous by token. ``key_mask``: ``[B, L]`` (bool or the uint8 table of :func:`_key_mask`; rows it marks
    0 load as zeros: the key-side pass); ``order``: ``[L]`` scan order (:func:`_order`), the chunks then
    walk scan positions (``a_info`` in scan order) and rows are read at their tokens. ``prep``: ``(out, den, eps,
    g)`` of the normalised output, with ``z`` its gradient and ``vec_bias`` a ``[B,H,L]`` fp32 buffer: the pass
    forms ``g'`` (written into ``g``) and ``c`` (into ``vec_bias``) itself (:func:`~.common.grad_inputs`)."""
    batch, heads, length, dx = x.shape
    dz = z.shape[-1]
    a, sab, sah, sal, kind = a_info
    nt = cdiv(length, chunk)
    bh = batch * heads
    # measured on an H100 (benchmarks/profile_kernels.py state, BENCHMARKS.md): one program per head and
    # direction; with a decay, the per-position weights computed beforehand by a parallel launch (the
    # sequential loop then skips a scan and two exponentials per chunk: 0.58 vs 0.68 ms at L = 16384), from
    # so many chunks on: below, that launch's host time outweighs the ~0.4 us it saves per chunk
    bv, warps, stages, weights_from = launch("chunk_state")
    bv = dz if prep is not None else (bv or dz)  # the preparation's row sums need the whole value width
    pre_w = kind > 0 and weights_from > 0 and nt >= weights_from
    key_mask, order = _key_mask(key_mask), _order(order, length)
    s = torch.empty(bh, 2, nt, dx, dz, device=x.device, dtype=_state_dtype(x.dtype))
    s_vec = torch.empty(bh, 2, nt, dx, device=x.device, dtype=torch.float32) if vec else None
    s_mom = torch.empty(bh, 2, nt, dx, dz, device=x.device, dtype=s.dtype) if moment else None
    s_mom_vec = torch.empty(bh, 2, nt, dx, device=x.device, dtype=torch.float32) if moment and vec else None
    dummy = s
    w = dec = dummy
    if pre_w:
        w = torch.empty(bh, 2, nt * chunk, device=x.device, dtype=torch.float32)
        dec = torch.empty(bh, nt, device=x.device, dtype=torch.float32)
        run_kernel(_weights_kernel, (nt, bh), a, w, dec, length, heads, nt, sab, sah, sal, BT=chunk,
                   TRANSPOSED=transposed, num_warps=2)
    out, den, eps, g = prep if prep is not None else (dummy, dummy, 0.0, dummy)
    if prep is not None:
        out, den = row_major_last(out), den.contiguous()
    run_kernel(_state_kernel, (dz // bv, bh, 2),
        x, z, vec_bias if vec_bias is not None else dummy, a if a is not None else dummy, w, dec, s,
        s_vec if vec else dummy, s_mom if moment else dummy, s_mom_vec if s_mom_vec is not None else dummy,
        key_mask if key_mask is not None else dummy, order if order is not None else dummy, out, den, g,
        length, heads, nt, *strides3(x), *strides3(z), sab, sah, sal,
        *(strides3(out) if prep is not None else (0, 0, 0)), *(strides3(g) if prep is not None else (0, 0, 0)),
        float(eps), DX=dx, DZ=dz, BT=chunk, BV=bv, HAS_DECAY=kind > 0, HAS_VEC=vec, VEC_ONES=vec_bias is None,
        TRANSPOSED=transposed, MOMENT=moment, PRE_W=pre_w, HAS_KM=key_mask is not None,
        HAS_IDX=order is not None, PREC=_precision(x.dtype), PREP=prep is not None,
        VEC_MMA=vector_states_by_mma(vec, vec_bias is None, z.dtype), num_warps=warps, num_stages=stages)
    return s, s_vec, s_mom, s_mom_vec


def chunk_forward(q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float, chunk: int,
                  keep_states: bool = False, moment: bool = False, key_mask=None, order=None, prev=None,
                  out_layout: str = "contiguous"):
    """One state pass and the chunk-parallel output kernel.

    Returns ``(out, den)`` as :func:`lion_hf.kernels.triton.attention.attention_forward` does, and with
    ``keep_states`` also the state pass's ``(S, S_vec, S_mom, S_mom_vec)`` (for :func:`chunk_backward`;
    ``moment`` adds LION-D's first-moment states, which only the backward reads).

    q, k, v are read through their strides (any ``[B,H,L,D]`` layout whose last dim is contiguous).
    ``key_mask`` ``[B, L]`` bool: padded keys are exact zeros. ``order``: a scan order ``[L]`` (int32,
    scan position -> token) over which the mask runs, ``log_decay`` then given in scan order; ``out`` and
    ``den`` stay by token. ``prev``: ``(num, den)`` of an earlier order (``PARTS``, token rows, any
    strides for num) added before the output is formed. ``out_layout``: ``"contiguous"`` ``[B,H,L,D]``
    memory (the default, what the custom operators promise) or ``"blhd"`` (token-major,
    :func:`~lion_hf.kernels.triton.utils.empty_blhd`). ``den`` is a new fp32 ``[B,H,L]`` buffer."""
    if out_layout not in ("contiguous", "blhd"):
        raise ValueError(f"out_layout must be 'contiguous' or 'blhd', got {out_layout!r}")
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    q, k, v = (row_major_last(t, dtype) for t in (q, k, v))
    a_info = decay_strides(log_decay, batch, heads, length)
    has_den = with_den or mode == NORMALIZED or prev is not None
    km = _key_mask(key_mask)
    idx = _order(order, length)
    h, h_vec, h_mom, h_mom_vec = chunk_states(k, v, a_info, chunk, vec=has_den, moment=moment and a_info[-1] == 1,
                                              key_mask=km, order=idx)
    nt = h.shape[2]
    out_dtype = torch.float32 if mode == PARTS else dtype
    if out_layout == "blhd":
        out = empty_blhd(batch, heads, length, dv, out_dtype, q.device)
    else:
        out = torch.empty(batch, heads, length, dv, device=q.device, dtype=out_dtype)
    den = torch.empty(batch, heads, length, device=q.device, dtype=torch.float32) if has_den else None
    if prev is not None:
        prev_num = row_major_last(prev[0])
        prev_den = prev[1].float().contiguous()
    else:
        prev_num, prev_den = out, out
    # the whole value width per program (32-wide slices of bf16 values faulted on an H100 with Triton 3.6)
    # 8 warps only for 128-long chunks with a decay (their mask tile; LIT at 128: 0.80 ms with 4, 0.90 with 8)
    small_warps, big_warps, stages = launch("chunk_out")
    warps = small_warps if chunk <= 64 or a_info[-1] == 0 else big_warps
    bv = dv  # one value slice: den (stored by slice 0) is read back by no other program
    a = a_info[0]
    run_kernel(_output_kernel, (nt, dv // bv, batch * heads),
        q, k, v, a if a is not None else q, h, h_vec if has_den else h, out, den if has_den else out,
        km if km is not None else q, idx if idx is not None else q, prev_num, prev_den,
        length, heads, nt, *strides3(q), *strides3(k), *strides3(v), *strides3(out), *strides3(prev_num),
        *a_info[1:4], float(scale), float(eps),
        DK=dk, DV=dv, BT=chunk, BV=bv, HAS_DECAY=a_info[-1] > 0, HAS_DEN=has_den, OUT_MODE=mode,
        HAS_KM=km is not None, HAS_IDX=idx is not None, ACCUM=prev is not None,
        STATE_F32=h.dtype == torch.float32, PREC=_precision(dtype), F16=dtype == torch.float16, num_warps=warps,
        num_stages=stages)
    if keep_states:
        return out, den, (h, h_vec, h_mom, h_mom_vec)
    return out, den


def chunk_backward(q, k, v, log_decay, g, c, needs_decay_grad: bool, chunk: int, states=None, key_mask=None,
                   order=None, grads=None, accumulate: bool = False, return_stats: bool = False, prep=None):
    """``(dq, dk, dv, dlog_decay)``: two state passes and the chunk-parallel gradient kernel.

    ``states``: the forward's ``(S, S_vec, S_mom, S_mom_vec)`` of ``(k, [v | 1])`` (``keep_states``, with
    the same ``key_mask`` and ``order``), used instead of recomputing them when they hold what this
    backward needs. q, k, v, g are read through their strides; ``c`` is ``[B,H,L]`` by token.
    ``key_mask``/``order`` as for :func:`chunk_forward` (padded keys get zero dk, dv). ``grads``:
    ``(dq, dk, dv)`` buffers to write (any strides, last dim contiguous; contiguous new ones otherwise);
    with ``accumulate`` the kernel adds to what they hold (an earlier scan order's gradients).
    ``dlog_decay`` follows ``log_decay``'s positions (scan order when ``order`` is given). With
    ``return_stats`` (LION-S) it is instead the row/column sums ``(row_lower, row_upper, col_lower,
    col_upper)`` of ``P = dA * A`` by scan position, as :func:`~lion_hf.kernels.triton.attention.attention_backward`
    returns them, for a caller that fuses :func:`~lion_hf.kernels.triton.common.log_decay_grad` with its own step.
    ``prep``: ``(grad_out, out, den, eps)`` of the normalised output: the query-side state pass then forms
    ``g'`` and ``c`` into the given ``g`` (``[B,H,L,Dv]``, kernels' dtype) and ``c`` (``[B,H,L]`` fp32) buffers
    before the gradient kernel reads them (:func:`~.common.grad_inputs` without a launch of its own)."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    if prep is not None:
        check_prep_buffers(g, c, dtype)
    q, k, v, g = (row_major_last(t, dtype) for t in (q, k, v, g))
    if c is not None:
        c = c.float().contiguous()
    a_info = decay_strides(log_decay, batch, heads, length)
    kind = a_info[-1]
    stats = kind == 2 and needs_decay_grad
    moment = kind == 1 and needs_decay_grad
    has_c = c is not None
    km = _key_mask(key_mask)
    idx = _order(order, length)
    if states is not None and (states[1] is not None or not has_c) and (states[2] is not None or not moment):
        h, h_vec, h_mom, h_mom_vec = states
    else:
        h, h_vec, h_mom, h_mom_vec = chunk_states(k, v, a_info, chunk, vec=has_c, moment=moment, key_mask=km,
                                                  order=idx)
    if prep is not None:
        grad_out, out, den, eps = prep
        tq, tq_vec, _, _ = chunk_states(q, row_major_last(grad_out), a_info, chunk, vec=True, vec_bias=c,
                                        transposed=True, order=idx, prep=(out, den, eps, g))
    else:
        tq, tq_vec, _, _ = chunk_states(q, g, a_info, chunk, vec=has_c, vec_bias=c, transposed=True, order=idx)
    nt = h.shape[2]
    if grads is None:
        if accumulate:
            raise ValueError("accumulate=True needs the grads buffers to add to")
        grads = tuple(torch.empty(batch, heads, length, d, device=q.device, dtype=dtype) for d in (dk, dk, dv))
    grads = tuple(grads)
    for buf in grads:
        if buf.stride(-1) != 1 and buf.shape[-1] != 1:
            raise ValueError("gradient buffers need a contiguous last dim")

    def stat():
        return torch.empty(batch, heads, length, device=q.device, dtype=torch.float32)

    row_lo, row_up, col_lo, col_up = (stat() for _ in range(4)) if stats else (None,) * 4
    mom = stat() if moment else None
    small_warps, big_warps, stages = launch("chunk_grad")
    warps = small_warps if chunk <= 64 else big_warps
    dummy = q
    a = a_info[0]
    args = (q, k, v, g, c if has_c else dummy, a if a is not None else dummy, h, h_vec if has_c else h, tq,
            tq_vec if has_c else tq, h_mom if moment else h, h_mom_vec if (moment and has_c) else h, *grads,
            *(x if x is not None else dummy for x in (row_lo, row_up, col_lo, col_up, mom)),
            km if km is not None else dummy, idx if idx is not None else dummy,
            length, heads, nt, *strides3(q), *strides3(k), *strides3(v), *strides3(g),
            *(st for buf in grads for st in strides3(buf)), *a_info[1:4])
    run_kernel(_grad_kernel, (nt, batch * heads),
        *args, DK=dk, DV=dv, BT=chunk, HAS_DECAY=kind > 0, HAS_C=has_c, STATS=stats, MOMENT=moment,
        HAS_KM=km is not None, HAS_IDX=idx is not None, ACCUM=bool(accumulate),
        STATE_F32=h.dtype == torch.float32, PREC=_precision(dtype), F16=dtype == torch.float16, num_warps=warps,
        num_stages=stages)
    dlog = None
    if moment:  # LION-D: d a_h = sum_{b,i,j} P_ij |i - j|
        dlog = log_decay_grad(log_decay, None, None, None, None, row_distance=mom)
    elif stats and return_stats:
        dlog = (row_lo, row_up, col_lo, col_up)
    elif stats:
        dlog = log_decay_grad(log_decay, row_lo, row_up, col_lo, col_up)
    return (*grads, dlog)


def keep_forward_states() -> bool:
    """Whether the autograd function keeps the forward's states for the backward.

    Keeping them saves one of the backward's two state passes (BENCHMARKS.md) and costs their memory until
    the backward: ``2 * D / chunk`` bf16 tensors of q's size (2 at head dim 64 and chunk 64), on top of the
    q, k, v and output that are kept anyway. ``LAUNCH["chunk_keep_states"] = (0,)`` recomputes them."""
    return bool(launch("chunk_keep_states")[0])


class LionChunkFunction(torch.autograd.Function):
    """Autograd wrapper of the chunk-form kernels (``forward`` returns ``(out, den)``).

    ``training``: whether a backward can follow (grad mode on and an input that requires grad; the caller
    knows, ``forward`` runs with grad mode off); only then are the forward's states kept."""

    @staticmethod
    def forward(ctx, q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float, chunk: int,
                training: bool = True):
        keep = training and keep_forward_states() and any(ctx.needs_input_grad[:4])
        moment = keep and log_decay is not None and log_decay.dim() == 1 and ctx.needs_input_grad[3]
        result = chunk_forward(q, k, v, log_decay, mode, with_den, scale, eps, chunk, keep_states=keep,
                               moment=moment)
        out, den = result[:2]
        states = result[2] if keep else (None,) * 4
        ctx.save_for_backward(q, k, v, log_decay, out if mode == NORMALIZED else None, den, *states)
        ctx.mode, ctx.scale, ctx.eps, ctx.chunk, ctx.keep = mode, scale, eps, chunk, keep
        return out, den

    @staticmethod
    def backward(ctx, grad_out, grad_den):
        q, k, v, log_decay, out, den, *states = ctx.saved_tensors
        dtype = kernel_dtype(q.dtype)
        prep = None
        if ctx.mode == NORMALIZED and launch("layer_grad_prep_in_backward")[0]:
            # the query-side state pass forms g' and c itself, as the fused layer's and the custom operator's do:
            # one launch fewer (0.15 ms of 3.0 at L 16384, BENCHMARKS.md twelfth pass)
            g, c = prep_buffers(grad_out, dtype)
            prep = (grad_out, out, den, ctx.eps)
        else:
            g, c = grad_inputs(ctx.mode, grad_out, grad_den if ctx.mode == PARTS else None, out, den,
                               ctx.scale, ctx.eps, v, dtype)
        needs_decay = log_decay is not None and ctx.needs_input_grad[3]
        # gradients in the inputs' own (dense) layouts: autograd then copies none of them into a leaf's strides
        grads = tuple(torch.empty_like(x) for x in (q, k, v)) if all(x.dtype == dtype for x in (q, k, v)) else None
        dq, dk, dv, dlog = chunk_backward(q, k, v, log_decay, g, c, needs_decay, ctx.chunk,
                                          states=states if ctx.keep else None, grads=grads, prep=prep)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dlog, None, None, None, None, None, None


__all__ = ["LionChunkFunction", "chunk_backward", "chunk_forward", "chunk_states", "keep_forward_states"]
