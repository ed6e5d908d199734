"""Attention (parallel) form of LION in Triton, flash-style: the L x L matrix is never written.

One program owns a tile of ``BM`` queries and walks every tile of ``BN`` keys: scores ``q k^T`` (fp32),
the mask tile built on the fly from the prefix sums of ``log_decay``, and the numerator ``A V`` and
denominator ``A 1`` accumulated together in fp32 (LION's ``[V | 1]`` identity, spec section 1).

Precision of the mask (LION-S): a float32 global prefix sum ``F_t`` has an error of ``ulp(|F_t|)``,
which at long L is far larger than the close-range exponents ``F_i - F_j`` that matter most. The
kernels therefore read the prefix sum kept in float64 and form, per tile, fp32 *local* sums
``F_i - F_{r0}`` and ``F_j - F_{c0}`` (exact to fp32 rounding of a small number) plus one tile offset
``F_{r0} - F_{c0}`` rounded once from float64. An entry's exponent then carries an error of
``~1e-7 * |F_{r0} - F_{c0}|``, which only grows where ``exp`` of it is already tiny. LION-D uses
``a_h * |i - j|`` directly (one rounding).

Both scan orders of the natural variants (``ORDERS == 2``, :func:`attention_forward`'s ``second``) run in
one launch each way: tiles are then of tokens, each token's position in either order is read from a table,
and every entry weighs its score by the sum of the two orders' mask values, each formed per entry from the
two positions (a token tile is scattered over an order), except that LION-S's first order (the row snake, whose
token tiles are runs of positions) keeps rank-one tiles where a query tile's positions lie wholly after (before)
the key tile's. One ``q k^T`` and one ``A V`` serve both orders; LION-S's float64 prefix sums enter as fp32
``hi + lo`` pairs (``hi`` alone for bf16/fp16 inputs). The d log_decay statistics are kept per order, LION-S's by
scan position.

The backward recomputes the tiles: ``dkv`` owns a key tile and walks the query tiles, ``dq`` owns a query
tile and walks the key tiles (two kernels, deterministic, no atomics); or, where
:func:`fused_dq` says so, the ``dkv`` kernel also adds each tile's ``dq`` into an fp32 buffer atomically
(FlashAttention-2's scheme: five matrix products per tile pair instead of six; off by default, measured
slower on the H200). With a decay, ``P = dA * A`` (the gradient of ``log M``) is reduced into per-row /
per-column sums below and above the diagonal, from which :func:`lion_hf.kernels.triton.common.log_decay_grad`
forms ``d log_decay``: the column sums in ``dkv``, the row sums in ``dq`` (which then recomputes ``q k^T``)
or, as ``LAUNCH["attn_bwd_row_stats"]`` says per mask, in ``dkv`` too (LION-D: one distance-weighted sum per
key; LION-S: one partial per key tile, summed in torch), leaving ``dq`` two matrix products. For the fused
layer the separate-dq backward also applies a feature map's backward to the ``dq`` and ``dk`` it stores
(``feature``), and its dq kernel can form the normalised output's ``g'`` and ``c`` itself, running first
(``prep``): no launch of their own.
"""

from __future__ import annotations

import torch

from .common import NORMALIZED, PARTS, SCALED, check_prep_buffers, grad_inputs, log_decay_grad
from .tuning import INTERPRETER_ATTENTION_TILES, launch
from .launcher import run_kernel
from .utils import cdiv, decay_strides, empty_blhd, interpreter_enabled, kernel_dtype, row_major_last, strides3

#: how Triton runs this module's kernels, fixed when it defined them (at import): read once, not per launch
_INTERPRETED = interpreter_enabled()

try:  # optional dependency: the module imports without Triton, its functions need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is missing
    triton = None
    tl = None


if triton is not None:
    from .common import _feature_grad, _normalized_row_grads  # the epilogues (FMAP) and the preparation (PREP)

    @triton.jit
    def _tile_data(A, F, i_b, i_h, i_bh, start, offs, valid, L, sab, sah, sal, BLOCK: tl.constexpr,
                   KIND: tl.constexpr):
        """Decay data of one tile of positions ``start + [0, BLOCK)``.

        Returns ``(a_h, f, a, lo_row, up_row, lo_col, up_col, F_start, F_end)``: ``f`` the prefix sum
        local to the tile (``F_t - F_start``, fp32), ``a`` the log-decays, and the four factor vectors
        of the rank-1 form of off-diagonal tiles (module doc of :func:`_mask`). ``F_start``/``F_end``
        are float64 for LION-S (exact tile offsets) and unused otherwise.
        """
        if KIND == 1:
            a_h = tl.load(A + i_h * sah)
            x = (offs - start).to(tl.float32)
            f = a_h * x
            a = tl.zeros_like(f) + a_h
            total = a_h * BLOCK
            f_s = a_h
            f_e = a_h
        else:
            a_h = 0.0
            a = tl.load(A + i_b * sab + i_h * sah + offs * sal, mask=valid, other=0.0)
            f_s = tl.load(F + i_bh * (L + 1) + start)
            f_e = tl.load(F + i_bh * (L + 1) + tl.minimum(start + BLOCK, L))
            f = (tl.load(F + i_bh * (L + 1) + offs, mask=valid, other=0.0) - f_s).to(tl.float32)
            total = (f_e - f_s).to(tl.float32)
        # every exponent is a sum of log-decays (<= 0); the clamps only guard tail positions
        lo_row = tl.exp(tl.minimum(f, 0.0))  # F_i - F_start
        up_row = tl.exp(tl.minimum(total - f - a, 0.0))  # F_end - G_i
        lo_col = tl.exp(tl.minimum(total - f, 0.0))  # F_end - F_j
        up_col = tl.exp(tl.minimum(f + a, 0.0))  # G_j - F_start
        return a_h, f, a, lo_row, up_row, lo_col, up_col, f_s, f_e

    @triton.jit
    def _mask(m0, n0, offs_m, offs_n, a_h, rf, ra, r_lo, r_up, r_fs, r_fe, cf, ca, c_lo, c_up, c_fs, c_fe,
              BM: tl.constexpr, BN: tl.constexpr, KIND: tl.constexpr, TRANS: tl.constexpr):
        """Tile of ``M`` (``[BM, BN]``, or ``M^T`` as ``[BN, BM]`` if ``TRANS``), entries in [0, 1].

        A tile strictly below the diagonal has ``log M_ij = (F_i - F_r0) + (F_r0 - F_E) + (F_E - F_j)``
        (``E`` the end of the key tile), a product of three factors each <= 1: rank one, no per-entry
        ``exp``. Strictly above, ``G_j - G_i = (G_j - F_c0) + (F_c0 - F_R) + (F_R - G_i)``. Only tiles
        crossing the diagonal take the per-entry path.
        """
        if n0 + BN <= m0:
            if KIND == 1:
                w = tl.exp(a_h * (m0 - n0 - BN).to(tl.float32))
            else:
                w = tl.exp((r_fs - c_fe).to(tl.float32))
            if TRANS:
                msk = c_lo[:, None] * (r_lo * w)[None, :]
            else:
                msk = (r_lo * w)[:, None] * c_lo[None, :]
        elif m0 + BM <= n0:
            if KIND == 1:
                w = tl.exp(a_h * (n0 - m0 - BM).to(tl.float32))
            else:
                w = tl.exp((c_fs - r_fe).to(tl.float32))
            if TRANS:
                msk = c_up[:, None] * (r_up * w)[None, :]
            else:
                msk = (r_up * w)[:, None] * c_up[None, :]
        else:
            if TRANS:
                i_idx = offs_m[None, :]
                j_idx = offs_n[:, None]
                rf2 = rf[None, :]
                ra2 = ra[None, :]
                cf2 = cf[:, None]
                ca2 = ca[:, None]
            else:
                i_idx = offs_m[:, None]
                j_idx = offs_n[None, :]
                rf2 = rf[:, None]
                ra2 = ra[:, None]
                cf2 = cf[None, :]
                ca2 = ca[None, :]
            if KIND == 1:
                logm = a_h * tl.abs((i_idx - j_idx).to(tl.float32))
            else:
                d = rf2 - cf2 + (r_fs - c_fs).to(tl.float32)  # F_i - F_j
                logm = tl.where(i_idx > j_idx, d, ca2 - ra2 - d)  # G_j - G_i above the diagonal
                logm = tl.where(i_idx == j_idx, 0.0, logm)
            # exponents are <= 0 in exact arithmetic; the clamp keeps tail entries (read as zeros)
            # from giving exp(+big) = inf and then 0 * inf = NaN
            msk = tl.exp(tl.minimum(logm, 0.0))
        return msk

    @triton.jit
    def _order_data(A, F, POS, tok, valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND: tl.constexpr):
        """One scan order's data of the tokens ``tok`` when a launch runs both orders (``ORDERS == 2``): their
        positions in it (``POS [L]`` int32, token -> position), LION-D's ``a_h`` or LION-S's log-decays at
        those positions and their float64 prefix sums split into fp32 ``hi + lo`` (``hi`` the rounded value),
        so that ``F_i - F_j`` keeps fp32 precision without float64 tiles, and the least and greatest position of
        the valid tokens. Returns ``(pos, a_h, a, hi, lo, first, last)``."""
        pos = tl.load(POS + tok, mask=valid, other=0)
        if KIND == 1:
            a_h = tl.load(A + i_h * sah)
            a = tl.zeros(pos.shape, dtype=tl.float32)
            hi = a
            lo = a
        else:
            a_h = 0.0
            a = tl.load(A + i_b * sab + i_h * sah + pos * sal, mask=valid, other=0.0)
            f = tl.load(F + i_bh * (L + 1) + pos, mask=valid, other=0.0)
            hi = f.to(tl.float32)
            lo = (f - hi.to(tl.float64)).to(tl.float32)
        first = tl.min(tl.where(valid, pos, L), 0)
        last = tl.max(tl.where(valid, pos, -1), 0)
        return pos, a_h, a, hi, lo, first, last

    @triton.jit
    def _grid2(row, col, TRANS: tl.constexpr):
        """A query vector and a key vector as ``[queries, keys]`` tiles, or ``[keys, queries]`` with ``TRANS``."""
        if TRANS:
            r2 = row[None, :]
            c2 = col[:, None]
        else:
            r2 = row[:, None]
            c2 = col[None, :]
        return r2, c2

    @triton.jit
    def _split(F_row, t):
        """``F_t`` (float64, one position) as ``_order_data``'s ``(hi, lo)``."""
        f = tl.load(F_row + t)
        hi = f.to(tl.float32)
        return hi, (f - hi.to(tl.float64)).to(tl.float32)

    @triton.jit
    def _order_mask(r_pos, r_first, r_last, c_pos, c_first, c_last, a_h, ra, ca, r_hi, r_lo, c_hi, c_lo, F_row,
                    KIND: tl.constexpr, TRANS: tl.constexpr, PREC: tl.constexpr, RANK1: tl.constexpr):
        """One scan order's mask for query and key tiles in token order (``_order_data``'s rows and columns,
        ``F_row`` LION-S's float64 prefix sums of this batch and head): ``[BM, BN]``, or ``[BN, BM]`` with
        ``TRANS``. Where every query follows every key in the order (or precedes every one), the tile is the
        outer product of two factors <= 1 about the query tile's first (last) position, as ``_mask``'s off-diagonal
        tiles; otherwise each entry comes from its two positions (a token tile scattered over the order).
        ``RANK1``: look for such tiles (LION-S only, whose entries cost more; the branches cost registers: only for
        an order whose token tiles are runs of positions, the natural variants' row snake; BENCHMARKS.md tenth
        pass). ``F_i - F_j`` carries ``lo`` only for fp32 inputs (its rounding, ~1e-7 of ``|F|``, is far below bf16's).
        Returns ``(mask, i, j)``, the positions broadcast (queries ``i``, keys ``j``) for the statistics."""
        i, j = _grid2(r_pos, c_pos, TRANS)
        if RANK1 and KIND == 2 and r_first > c_last:  # all below: F_i - F_j = (F_i - F_first) + (F_first - F_j)
            ref_hi, ref_lo = _split(F_row, r_first)
            if PREC == "ieee":
                u = tl.exp(tl.minimum((r_hi - ref_hi) + (r_lo - ref_lo), 0.0))
                w = tl.exp(tl.minimum((ref_hi - c_hi) + (ref_lo - c_lo), 0.0))
            else:
                u = tl.exp(tl.minimum(r_hi - ref_hi, 0.0))
                w = tl.exp(tl.minimum(ref_hi - c_hi, 0.0))
            u2, w2 = _grid2(u, w, TRANS)
            msk = u2 * w2
        elif RANK1 and KIND == 2 and r_last < c_first:  # all above: G_j - G_i about G_last = F_{last + 1}
            ref_hi, ref_lo = _split(F_row, r_last + 1)
            if PREC == "ieee":
                u = tl.exp(tl.minimum((ref_hi - r_hi) + (ref_lo - r_lo) - ra, 0.0))
                w = tl.exp(tl.minimum((c_hi - ref_hi) + (c_lo - ref_lo) + ca, 0.0))
            else:
                u = tl.exp(tl.minimum(ref_hi - r_hi - ra, 0.0))
                w = tl.exp(tl.minimum(c_hi - ref_hi + ca, 0.0))
            u2, w2 = _grid2(u, w, TRANS)
            msk = u2 * w2
        else:
            if KIND == 1:
                logm = a_h * tl.abs((i - j).to(tl.float32))
            else:
                rh, ch = _grid2(r_hi, c_hi, TRANS)
                ra2, ca2 = _grid2(ra, ca, TRANS)
                if PREC == "ieee":
                    rl, cl = _grid2(r_lo, c_lo, TRANS)
                    d = (rh - ch) + (rl - cl)  # F_i - F_j
                else:
                    d = rh - ch
                # G_j - G_i above the diagonal; on it F_i - F_i = 0 exactly
                logm = tl.where(i >= j, d, ca2 - ra2 - d)
            # exponents are <= 0 in exact arithmetic; the clamp also keeps tail entries finite
            msk = tl.exp(tl.minimum(logm, 0.0))
        return msk, i, j

    @triton.jit
    def _order_stats(p, i, j, lo, up, KIND: tl.constexpr):
        """``lo``, ``up`` plus one scan order's d log_decay statistics of the tile ``P = dA * A`` of that order
        (sums along its second axis; ``i``, ``j`` from ``_order_mask``): LION-D's distance-weighted sum in ``lo``,
        LION-S's sums below (``i > j``) and above the diagonal."""
        if KIND == 1:
            lo += tl.sum(p * tl.abs((i - j).to(tl.float32)), 1)
        else:
            lo += tl.sum(tl.where(i > j, p, 0.0), 1)
            up += tl.sum(tl.where(i < j, p, 0.0), 1)
        return lo, up

    @triton.jit
    def _tokens(IDX, offs, valid, HAS_IDX: tl.constexpr):
        """Token index (memory row) of scan positions ``offs``: ``IDX[offs]`` for a scan order, else ``offs``."""
        if HAS_IDX:
            return tl.load(IDX + offs, mask=valid, other=0).to(tl.int64)
        return offs.to(tl.int64)

    @triton.jit
    def _keep_scale(seed, i_bh, tok_r, tok_c, L, p_drop, TRANS: tl.constexpr):
        """Dropout factors ``keep / (1 - p)`` of a tile (``[rows, cols]``, or transposed), one counter-based
        random number per (batch*head, query token, key token): the backward regenerates the same."""
        if TRANS:  # rows are keys, columns queries
            offs = (i_bh.to(tl.int64) * L + tok_c[None, :]) * L + tok_r[:, None]
        else:
            offs = (i_bh.to(tl.int64) * L + tok_r[:, None]) * L + tok_c[None, :]
        keep = tl.rand(seed, offs) >= p_drop
        return tl.where(keep, 1.0 / (1.0 - p_drop), 0.0)

    @triton.jit
    def _keep_scale_tile(seed, i_bh, tok_q, c0, L, p_drop, BC: tl.constexpr, KEYS: tl.constexpr):
        """``_keep_scale`` for a ``[queries, BC]`` tile whose key tokens are ``c0 .. c0 + BC - 1`` (no scan
        order): one Philox call gives four 32-bit numbers, for ``KEYS`` consecutive keys: four (a float
        uniform each) or eight (16 bits each, dropped below the threshold ``round(p * 2^16)`` and scaled by
        ``2^16 / (2^16 - threshold)``: unbiased, the drop rate within 8e-6 of ``p``), a quarter or an eighth of
        the work of one call per entry (the dominant cost of dropout at BERT sizes). Its own stream, so the
        forward and both backward kernels must (and do) all use this form, with one ``KEYS``, when there is no
        scan order."""
        groups = (L + KEYS - 1) // KEYS
        g = c0 // KEYS + tl.arange(0, BC // KEYS)
        offs = (i_bh.to(tl.int64) * L + tok_q[:, None]) * groups + g[None, :]
        r0, r1, r2, r3 = tl.randint4x(seed, offs)
        if KEYS == 8:
            lo = tl.join(tl.join(r0 & 0xFFFF, r1 & 0xFFFF), tl.join(r2 & 0xFFFF, r3 & 0xFFFF))
            hi = tl.join(tl.join(r0 >> 16, r1 >> 16), tl.join(r2 >> 16, r3 >> 16))
            r = tl.reshape(tl.join(lo, hi), (tok_q.shape[0], BC))
            threshold = tl.floor(tl.zeros([1, 1], dtype=tl.float32) + (p_drop * 65536.0 + 0.5))
            factor = tl.where(r.to(tl.float32) >= threshold, 65536.0 / (65536.0 - threshold), 0.0)
        else:
            r = tl.reshape(tl.join(tl.join(r0, r1), tl.join(r2, r3)), (tok_q.shape[0], BC))
            factor = tl.where(tl.random.uint_to_uniform_float(r) >= p_drop, 1.0 / (1.0 - p_drop), 0.0)
        return factor

    @triton.jit
    def _attn_fwd_kernel(Q, K, V, A, F, A2, F2, KM, IDX, NUM, DEN, PREV, L, H,
                         sqb, sqh, sql, skb, skh, skl, svb, svh, svl, sob, soh, sol, spb, sph, spl,
                         sab, sah, sal, scale, eps, p_drop, SEED,
                         DK: tl.constexpr, DV: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                         KIND: tl.constexpr, OUT_MODE: tl.constexpr, HAS_DEN: tl.constexpr,
                         HAS_KM: tl.constexpr, HAS_IDX: tl.constexpr, ACCUM: tl.constexpr,
                         DROPOUT: tl.constexpr, F16: tl.constexpr, PREC: tl.constexpr, DROP_KEYS: tl.constexpr,
                         ORDERS: tl.constexpr):
        # Positions (offs_*) are scan positions: the mask is built from them. Rows in memory are tokens
        # (tok_*): the same unless a scan order (IDX) maps one to the other. ACCUM adds the parts of an
        # earlier launch (PREV num, DEN den, token rows) before writing: two scan orders, one result.
        # ORDERS == 2: both scan orders in this launch: tiles of tokens, IDX [2, L] their positions in either
        # order, A/F and A2/F2 the orders' decays; each score is weighted by the sum of the two masks.
        i_m = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        if DROPOUT:
            seed = tl.load(SEED)
        else:
            seed = 0
        m0 = i_m * BM
        offs_m = m0 + tl.arange(0, BM)
        m_valid = offs_m < L
        tok_m = _tokens(IDX, offs_m, m_valid, HAS_IDX)
        offs_dk = tl.arange(0, DK)
        offs_dv = tl.arange(0, DV)
        q_base = Q + i_b.to(tl.int64) * sqb + i_h * sqh
        k_base = K + i_b.to(tl.int64) * skb + i_h * skh
        v_base = V + i_b.to(tl.int64) * svb + i_h * svh
        q = tl.load(q_base + tok_m[:, None] * sql + offs_dk[None, :], mask=m_valid[:, None], other=0.0)
        if KIND > 0:
            if ORDERS == 2:
                r1_pos, a1_h, r1_a, r1_hi, r1_lo, r1_first, r1_last = _order_data(
                    A, F, IDX, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                r2_pos, a2_h, r2_a, r2_hi, r2_lo, r2_first, r2_last = _order_data(
                    A2, F2, IDX + L, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
            else:
                a_h, rf, ra, r_lo, r_up, r_x0, r_x1, r_fs, r_fe = _tile_data(A, F, i_b, i_h, i_bh, m0, offs_m,
                                                                       m_valid, L, sab, sah, sal, BM, KIND)
        acc = tl.zeros([BM, DV], dtype=tl.float32)
        den = tl.zeros([BM], dtype=tl.float32)
        for n0 in range(0, L, BN):
            offs_n = n0 + tl.arange(0, BN)
            n_valid = offs_n < L
            tok_n = _tokens(IDX, offs_n, n_valid, HAS_IDX)
            kv_valid = n_valid
            if HAS_KM:
                kv_valid = kv_valid & (tl.load(KM + i_b * L + tok_n, mask=n_valid, other=0) != 0)
            k = tl.load(k_base + tok_n[:, None] * skl + offs_dk[None, :], mask=kv_valid[:, None], other=0.0)
            v = tl.load(v_base + tok_n[:, None] * svl + offs_dv[None, :], mask=kv_valid[:, None], other=0.0)
            s = tl.dot(q, tl.trans(k), input_precision=PREC)
            if KIND > 0 and ORDERS == 2:
                c1_pos, _, c1_a, c1_hi, c1_lo, c1_first, c1_last = _order_data(
                    A, F, IDX, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                c2_pos, _, c2_a, c2_hi, c2_lo, c2_first, c2_last = _order_data(
                    A2, F2, IDX + L, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                m1, _, _ = _order_mask(
                    r1_pos, r1_first, r1_last, c1_pos, c1_first, c1_last, a1_h, r1_a, c1_a, r1_hi, r1_lo, c1_hi, c1_lo,
                    F + i_bh * (L + 1), KIND, False, PREC, True)
                m2, _, _ = _order_mask(
                    r2_pos, r2_first, r2_last, c2_pos, c2_first, c2_last, a2_h, r2_a, c2_a, r2_hi, r2_lo, c2_hi, c2_lo,
                    F2 + i_bh * (L + 1), KIND, False, PREC, False)
                s = s * (m1 + m2)
            elif KIND > 0:
                c_x0, cf, ca, c_x1, c_x2, c_lo, c_up, c_fs, c_fe = _tile_data(
                    A, F, i_b, i_h, i_bh, n0, offs_n, n_valid, L, sab, sah, sal, BN, KIND)
                s = s * _mask(m0, n0, offs_m, offs_n, a_h, rf, ra, r_lo, r_up, r_fs, r_fe, cf, ca, c_lo, c_up,
                              c_fs, c_fe, BM, BN, KIND, False)
            if HAS_DEN:
                den += tl.sum(s, 1)
            if DROPOUT:  # on the masked scores, after the denominator (as the PyTorch forms do)
                if HAS_IDX:
                    s = s * _keep_scale(seed, i_bh, tok_m, tok_n, L, p_drop, False)
                else:
                    s = s * _keep_scale_tile(seed, i_bh, tok_m, n0, L, p_drop, BN, DROP_KEYS)
            if F16:
                # fp16 scores can exceed 65504 where the output still fits: multiply in fp32
                acc += tl.dot(s, v.to(tl.float32), input_precision=PREC)
            else:
                acc += tl.dot(s.to(v.dtype), v, input_precision=PREC)
        if ACCUM:
            acc += tl.load(PREV + i_b.to(tl.int64) * spb + i_h * sph + tok_m[:, None] * spl + offs_dv[None, :],
                           mask=m_valid[:, None], other=0.0)
            if HAS_DEN:
                den += tl.load(DEN + i_bh * L + tok_m, mask=m_valid, other=0.0)
        o_ptrs = NUM + i_b.to(tl.int64) * sob + i_h * soh + tok_m[:, None] * sol + offs_dv[None, :]
        if OUT_MODE == 0:
            tl.store(o_ptrs, acc, mask=m_valid[:, None])
        elif OUT_MODE == 1:
            d = den + eps
            # a row with no real key (0 / 0) is 0, not NaN
            r = tl.where(d != 0.0, 1.0 / tl.where(d != 0.0, d, 1.0), 0.0)
            tl.store(o_ptrs, (acc * r[:, None]).to(NUM.dtype.element_ty), mask=m_valid[:, None])
        else:
            tl.store(o_ptrs, (acc * scale).to(NUM.dtype.element_ty), mask=m_valid[:, None])
        if HAS_DEN:
            tl.store(DEN + i_bh * L + tok_m, den, mask=m_valid)

    @triton.jit
    def _attn_bwd_dkv_kernel(Q, K, V, A, F, A2, F2, G, C, KM, IDX, DK_OUT, DV_OUT, COL_LO, COL_UP, DQ_ACC, ROW_LO,
                             ROW_UP, XR, L, H, sqb, sqh, sql, skb, skh, skl, svb, svh, svl, sgb, sgh, sgl,
                             sdkb, sdkh, sdkl, sdvb, sdvh, sdvl, sab, sah, sal, sxb, sxh, sxl, p_drop, SEED,
                             DK: tl.constexpr, DV: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                             KIND: tl.constexpr, HAS_C: tl.constexpr, HAS_KM: tl.constexpr,
                             HAS_IDX: tl.constexpr, ACCUM: tl.constexpr, DROPOUT: tl.constexpr,
                             F16: tl.constexpr, PREC: tl.constexpr, FMAP: tl.constexpr, DQ_ATOMIC: tl.constexpr,
                             ROW_STATS: tl.constexpr, DROP_KEYS: tl.constexpr, ORDERS: tl.constexpr):
        # Works on transposed tiles ([keys, queries]) so that every matrix product takes its
        # operands straight from memory: no register transposes. Statistics are stored by scan position.
        # ROW_STATS: the d log_decay statistics the dq kernel would otherwise form (it then needs no q k^T):
        # LION-D's distance-weighted sum per key in COL_LO (the head's total is the same), LION-S's row sums
        # as this key tile's partials ROW_LO / ROW_UP [key tiles, B*H, L] (summed in torch: deterministic).
        # DQ_ATOMIC (with a d log_decay to form, implies ROW_STATS): also dq (as dq^T = k^T dS^T, whose transpose falls on a loaded
        # operand, not on a dot result: the Hopper miscompile of tl.trans(acc)) added atomically into the
        # fp32 [B, L, H, DK] buffer DQ_ACC.
        # FMAP > 0: q and k are features phi(x) of the raw keys XR ([B, H, L, DK] strides sx*); dk is then stored
        # as J_phi(x)^T dk (linear in dk: a second scan order's part adds to the first's in raw space).
        # ORDERS == 2 (as in the forward; neither DQ_ATOMIC nor LION-S's ROW_STATS): each order's statistics
        # at COL_LO / COL_UP + order * B*H*L, LION-S's by the keys' positions in that order.
        i_n = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        if DROPOUT:
            seed = tl.load(SEED)
        else:
            seed = 0
        n0 = i_n * BN
        offs_n = n0 + tl.arange(0, BN)
        n_valid = offs_n < L
        tok_n = _tokens(IDX, offs_n, n_valid, HAS_IDX)
        kv_valid = n_valid
        if HAS_KM:
            kv_valid = kv_valid & (tl.load(KM + i_b * L + tok_n, mask=n_valid, other=0) != 0)
        offs_dk = tl.arange(0, DK)
        offs_dv = tl.arange(0, DV)
        q_base = Q + i_b.to(tl.int64) * sqb + i_h * sqh
        g_base = G + i_b.to(tl.int64) * sgb + i_h * sgh
        k = tl.load(K + i_b.to(tl.int64) * skb + i_h * skh + tok_n[:, None] * skl + offs_dk[None, :],
                    mask=kv_valid[:, None], other=0.0)
        v = tl.load(V + i_b.to(tl.int64) * svb + i_h * svh + tok_n[:, None] * svl + offs_dv[None, :],
                    mask=kv_valid[:, None], other=0.0)
        if KIND > 0:
            if ORDERS == 2:
                c1_pos, a1_h, c1_a, c1_hi, c1_lo, c1_first, c1_last = _order_data(
                    A, F, IDX, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                c2_pos, a2_h, c2_a, c2_hi, c2_lo, c2_first, c2_last = _order_data(
                    A2, F2, IDX + L, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
            else:
                a_h, cf, ca, c_x1, c_x2, c_lo, c_up, c_fs, c_fe = _tile_data(A, F, i_b, i_h, i_bh, n0, offs_n,
                                                                       n_valid, L, sab, sah, sal, BN, KIND)
        dk = tl.zeros([BN, DK], dtype=tl.float32)
        dv = tl.zeros([BN, DV], dtype=tl.float32)
        # P = dA * A summed below / above the diagonal, one reduction per tile (two orders: one pair each,
        # LION-D's distance-weighted sum in the first field)
        if KIND == 2 or ORDERS == 2:
            col_lo = tl.zeros([BN], dtype=tl.float32)
            col_up = tl.zeros([BN], dtype=tl.float32)
        if KIND == 1 and ROW_STATS and ORDERS == 1:  # sum_i P_ij |i - j| per key
            col_lo = tl.zeros([BN], dtype=tl.float32)
        if ORDERS == 2:
            col_lo2 = tl.zeros([BN], dtype=tl.float32)
            col_up2 = tl.zeros([BN], dtype=tl.float32)
        row_part = (i_n.to(tl.int64) * tl.num_programs(1) + i_bh) * L  # this key tile's row partials
        for m0 in range(0, L, BM):
            offs_m = m0 + tl.arange(0, BM)
            m_valid = offs_m < L
            tok_m = _tokens(IDX, offs_m, m_valid, HAS_IDX)
            q = tl.load(q_base + tok_m[:, None] * sql + offs_dk[None, :], mask=m_valid[:, None], other=0.0)
            g = tl.load(g_base + tok_m[:, None] * sgl + offs_dv[None, :], mask=m_valid[:, None], other=0.0)
            s_t = tl.dot(k, tl.trans(q), input_precision=PREC)  # [BN, BM] = S^T
            dp_t = tl.dot(v, tl.trans(g), input_precision=PREC)  # dA^T without the row bias
            if KIND > 0 and ORDERS == 2:
                r1_pos, _, r1_a, r1_hi, r1_lo, r1_first, r1_last = _order_data(
                    A, F, IDX, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                r2_pos, _, r2_a, r2_hi, r2_lo, r2_first, r2_last = _order_data(
                    A2, F2, IDX + L, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                # each order's statistics as its mask is formed (one mask live at a time: registers)
                if HAS_C:  # the row bias, loaded here once (below for one order)
                    c = tl.load(C + i_bh * L + tok_m, mask=m_valid, other=0.0)
                    sp = (dp_t + c[None, :]) * s_t
                else:
                    sp = dp_t * s_t
                msk, i1, j1 = _order_mask(
                    r1_pos, r1_first, r1_last, c1_pos, c1_first, c1_last, a1_h, r1_a, c1_a, r1_hi, r1_lo, c1_hi, c1_lo,
                    F + i_bh * (L + 1), KIND, True, PREC, True)
                if KIND == 2 or ROW_STATS:
                    col_lo, col_up = _order_stats(sp * msk, i1, j1, col_lo, col_up, KIND)
                m2, i2, j2 = _order_mask(
                    r2_pos, r2_first, r2_last, c2_pos, c2_first, c2_last, a2_h, r2_a, c2_a, r2_hi, r2_lo, c2_hi, c2_lo,
                    F2 + i_bh * (L + 1), KIND, True, PREC, False)
                if KIND == 2 or ROW_STATS:
                    col_lo2, col_up2 = _order_stats(sp * m2, i2, j2, col_lo2, col_up2, KIND)
                msk += m2
                att_t = s_t * msk
            elif KIND > 0:
                r_x2, rf, ra, r_lo, r_up, r_x0, r_x1, r_fs, r_fe = _tile_data(
                    A, F, i_b, i_h, i_bh, m0, offs_m, m_valid, L, sab, sah, sal, BM, KIND)
                msk = _mask(m0, n0, offs_m, offs_n, a_h, rf, ra, r_lo, r_up, r_fs, r_fe, cf, ca, c_lo, c_up,
                            c_fs, c_fe, BM, BN, KIND, True)
                att_t = s_t * msk
            else:
                att_t = s_t
            if DROPOUT:
                if HAS_IDX:
                    keep_t = _keep_scale(seed, i_bh, tok_n, tok_m, L, p_drop, True)
                else:
                    keep_t = tl.trans(_keep_scale_tile(seed, i_bh, tok_m, n0, L, p_drop, BN, DROP_KEYS))
                dp_t = dp_t * keep_t
                att_v = att_t * keep_t
            else:
                att_v = att_t
            if F16:  # scores (and their gradients) can leave fp16's range where the results do not
                dv += tl.dot(att_v, g.to(tl.float32), input_precision=PREC)
            else:
                dv += tl.dot(att_v.to(g.dtype), g, input_precision=PREC)
            if HAS_C:
                if ORDERS == 1:
                    c = tl.load(C + i_bh * L + tok_m, mask=m_valid, other=0.0)
                dp_t += c[None, :]
            if KIND > 0:
                ds_t = dp_t * msk
            else:
                ds_t = dp_t
            if F16:
                dk += tl.dot(ds_t, q.to(tl.float32), input_precision=PREC)
            else:
                dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PREC)
            if DQ_ATOMIC:
                if F16:
                    dq_t = tl.dot(tl.trans(k).to(tl.float32), ds_t, input_precision=PREC)  # [DK, BM]
                else:
                    dq_t = tl.dot(tl.trans(k), ds_t.to(k.dtype), input_precision=PREC)
                dq_ptrs = DQ_ACC + (i_b.to(tl.int64) * L + tok_m[None, :]) * (H * DK) + i_h * DK + offs_dk[:, None]
                tl.atomic_add(dq_ptrs, dq_t, mask=m_valid[None, :], sem="relaxed")
            # (two orders: their statistics were formed with the masks)
            if ORDERS == 1 and KIND == 1 and ROW_STATS:
                col_lo += tl.sum(dp_t * att_t * tl.abs((offs_m[None, :] - offs_n[:, None]).to(tl.float32)), 1)
            elif ORDERS == 1 and KIND == 2:
                p = dp_t * att_t
                if n0 + BN <= m0:  # queries all after the keys
                    col_lo += tl.sum(p, 1)
                    if ROW_STATS:
                        tl.store(ROW_LO + row_part + offs_m, tl.sum(p, 0), mask=m_valid)
                        tl.store(ROW_UP + row_part + offs_m, tl.zeros([BM], dtype=tl.float32), mask=m_valid)
                elif m0 + BM <= n0:
                    col_up += tl.sum(p, 1)
                    if ROW_STATS:
                        tl.store(ROW_LO + row_part + offs_m, tl.zeros([BM], dtype=tl.float32), mask=m_valid)
                        tl.store(ROW_UP + row_part + offs_m, tl.sum(p, 0), mask=m_valid)
                else:
                    p_lo = tl.where(offs_m[None, :] > offs_n[:, None], p, 0.0)
                    p_up = tl.where(offs_m[None, :] < offs_n[:, None], p, 0.0)
                    col_lo += tl.sum(p_lo, 1)
                    col_up += tl.sum(p_up, 1)
                    if ROW_STATS:
                        tl.store(ROW_LO + row_part + offs_m, tl.sum(p_lo, 0), mask=m_valid)
                        tl.store(ROW_UP + row_part + offs_m, tl.sum(p_up, 0), mask=m_valid)
        if FMAP > 0:
            xk = tl.load(XR + i_b.to(tl.int64) * sxb + i_h * sxh + tok_n[:, None] * sxl + offs_dk[None, :],
                         mask=n_valid[:, None], other=0.0).to(tl.float32)
            dk = _feature_grad(xk, dk, FMAP)
        # a padded key gets no gradient (it is an exact zero in the function)
        dk = tl.where(kv_valid[:, None], dk, 0.0)
        dv = tl.where(kv_valid[:, None], dv, 0.0)
        dk_ptrs = DK_OUT + i_b.to(tl.int64) * sdkb + i_h * sdkh + tok_n[:, None] * sdkl + offs_dk[None, :]
        dv_ptrs = DV_OUT + i_b.to(tl.int64) * sdvb + i_h * sdvh + tok_n[:, None] * sdvl + offs_dv[None, :]
        if ACCUM:  # a second scan order adds to the first one's gradients
            dk += tl.load(dk_ptrs, mask=n_valid[:, None], other=0.0).to(tl.float32)
            dv += tl.load(dv_ptrs, mask=n_valid[:, None], other=0.0).to(tl.float32)
        tl.store(dk_ptrs, dk.to(DK_OUT.dtype.element_ty), mask=n_valid[:, None])
        tl.store(dv_ptrs, dv.to(DV_OUT.dtype.element_ty), mask=n_valid[:, None])
        if ORDERS == 2 and KIND == 1 and ROW_STATS:  # summed over every key: stored by token
            tl.store(COL_LO + i_bh * L + offs_n, col_lo, mask=n_valid)
            tl.store(COL_LO + (tl.num_programs(1) + i_bh) * L + offs_n, col_lo2, mask=n_valid)
        elif ORDERS == 2 and KIND == 2:
            second = tl.num_programs(1) * L
            tl.store(COL_LO + i_bh * L + c1_pos, col_lo, mask=n_valid)
            tl.store(COL_UP + i_bh * L + c1_pos, col_up, mask=n_valid)
            tl.store(COL_LO + second + i_bh * L + c2_pos, col_lo2, mask=n_valid)
            tl.store(COL_UP + second + i_bh * L + c2_pos, col_up2, mask=n_valid)
        elif KIND == 2:
            tl.store(COL_LO + i_bh * L + offs_n, col_lo, mask=n_valid)
            tl.store(COL_UP + i_bh * L + offs_n, col_up, mask=n_valid)
        elif KIND == 1 and ROW_STATS:
            tl.store(COL_LO + i_bh * L + offs_n, col_lo, mask=n_valid)

    @triton.jit
    def _attn_bwd_dq_kernel(Q, K, V, A, F, A2, F2, G, C, KM, IDX, DQ_OUT, ROW_LO, ROW_UP, XR, DO, O, DEN, L, H,
                            sqb, sqh, sql, skb, skh, skl, svb, svh, svl, sgb, sgh, sgl,
                            sdqb, sdqh, sdql, sab, sah, sal, sxb, sxh, sxl, sdob, sdoh, sdol, sob, soh, sol,
                            eps, p_drop, SEED,
                            DK: tl.constexpr, DV: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                            KIND: tl.constexpr, HAS_C: tl.constexpr, HAS_KM: tl.constexpr,
                            HAS_IDX: tl.constexpr, ACCUM: tl.constexpr, DROPOUT: tl.constexpr,
                            F16: tl.constexpr, PREC: tl.constexpr, FMAP: tl.constexpr, STATS: tl.constexpr,
                            PREP: tl.constexpr, DROP_KEYS: tl.constexpr, ORDERS: tl.constexpr):
        # STATS: also the row statistics of d log_decay (else the dkv kernel forms them: no q k^T here);
        # FMAP > 0: dq stored as J_phi(x)^T dq of the raw queries XR (as the dkv kernel does for dk);
        # PREP: this launch forms its rows' g' and c of the normalised output (common.py) from the output's
        # gradient DO, the output O and DEN, and stores them for the dkv launch, which then runs after it;
        # ORDERS == 2: as in the dkv kernel, each order's row statistics at ROW_LO / ROW_UP + order * B*H*L
        i_m = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        if DROPOUT:
            seed = tl.load(SEED)
        else:
            seed = 0
        m0 = i_m * BM
        offs_m = m0 + tl.arange(0, BM)
        m_valid = offs_m < L
        tok_m = _tokens(IDX, offs_m, m_valid, HAS_IDX)
        offs_dk = tl.arange(0, DK)
        offs_dv = tl.arange(0, DV)
        k_base = K + i_b.to(tl.int64) * skb + i_h * skh
        v_base = V + i_b.to(tl.int64) * svb + i_h * svh
        q = tl.load(Q + i_b.to(tl.int64) * sqb + i_h * sqh + tok_m[:, None] * sql + offs_dk[None, :],
                    mask=m_valid[:, None], other=0.0)
        g_ptrs = G + i_b.to(tl.int64) * sgb + i_h * sgh + tok_m[:, None] * sgl + offs_dv[None, :]
        if PREP:  # as common._normalized_grad_kernel, for this tile's rows
            do = tl.load(DO + i_b.to(tl.int64) * sdob + i_h * sdoh + tok_m[:, None] * sdol + offs_dv[None, :],
                         mask=m_valid[:, None], other=0.0).to(tl.float32)
            o = tl.load(O + i_b.to(tl.int64) * sob + i_h * soh + tok_m[:, None] * sol + offs_dv[None, :],
                        mask=m_valid[:, None], other=0.0).to(tl.float32)
            g, c = _normalized_row_grads(do, o, tl.load(DEN + i_bh * L + tok_m, mask=m_valid, other=1.0) + eps)
            g = g.to(G.dtype.element_ty)
            tl.store(g_ptrs, g, mask=m_valid[:, None])
            tl.store(C + i_bh * L + tok_m, c, mask=m_valid)
        else:
            g = tl.load(g_ptrs, mask=m_valid[:, None], other=0.0)
            if HAS_C:
                c = tl.load(C + i_bh * L + tok_m, mask=m_valid, other=0.0)
        if KIND > 0:
            if ORDERS == 2:
                r1_pos, a1_h, r1_a, r1_hi, r1_lo, r1_first, r1_last = _order_data(
                    A, F, IDX, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                r2_pos, a2_h, r2_a, r2_hi, r2_lo, r2_first, r2_last = _order_data(
                    A2, F2, IDX + L, tok_m, m_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
            else:
                a_h, rf, ra, r_lo, r_up, r_x0, r_x1, r_fs, r_fe = _tile_data(A, F, i_b, i_h, i_bh, m0, offs_m,
                                                                       m_valid, L, sab, sah, sal, BM, KIND)
        dq = tl.zeros([BM, DK], dtype=tl.float32)
        row_lo = tl.zeros([BM], dtype=tl.float32)
        row_up = tl.zeros([BM], dtype=tl.float32)
        row_lo2 = tl.zeros([BM], dtype=tl.float32)  # the second order's (ORDERS == 2)
        row_up2 = tl.zeros([BM], dtype=tl.float32)
        for n0 in range(0, L, BN):
            offs_n = n0 + tl.arange(0, BN)
            n_valid = offs_n < L
            tok_n = _tokens(IDX, offs_n, n_valid, HAS_IDX)
            kv_valid = n_valid
            if HAS_KM:
                kv_valid = kv_valid & (tl.load(KM + i_b * L + tok_n, mask=n_valid, other=0) != 0)
            k = tl.load(k_base + tok_n[:, None] * skl + offs_dk[None, :], mask=kv_valid[:, None], other=0.0)
            v = tl.load(v_base + tok_n[:, None] * svl + offs_dv[None, :], mask=kv_valid[:, None], other=0.0)
            dp = tl.dot(g, tl.trans(v), input_precision=PREC)
            if DROPOUT:
                if HAS_IDX:
                    dp = dp * _keep_scale(seed, i_bh, tok_m, tok_n, L, p_drop, False)
                else:
                    dp = dp * _keep_scale_tile(seed, i_bh, tok_m, n0, L, p_drop, BN, DROP_KEYS)
            if HAS_C:
                dp += c[:, None]
            if KIND > 0 and ORDERS == 2:
                c1_pos, _, c1_a, c1_hi, c1_lo, c1_first, c1_last = _order_data(
                    A, F, IDX, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                c2_pos, _, c2_a, c2_hi, c2_lo, c2_first, c2_last = _order_data(
                    A2, F2, IDX + L, tok_n, n_valid, i_b, i_h, i_bh, L, sab, sah, sal, KIND)
                if STATS:
                    sp = dp * tl.dot(q, tl.trans(k), input_precision=PREC)
                msk, i1, j1 = _order_mask(
                    r1_pos, r1_first, r1_last, c1_pos, c1_first, c1_last, a1_h, r1_a, c1_a, r1_hi, r1_lo, c1_hi, c1_lo,
                    F + i_bh * (L + 1), KIND, False, PREC, True)
                if STATS:
                    row_lo, row_up = _order_stats(sp * msk, i1, j1, row_lo, row_up, KIND)
                m2, i2, j2 = _order_mask(
                    r2_pos, r2_first, r2_last, c2_pos, c2_first, c2_last, a2_h, r2_a, c2_a, r2_hi, r2_lo, c2_hi, c2_lo,
                    F2 + i_bh * (L + 1), KIND, False, PREC, False)
                if STATS:
                    row_lo2, row_up2 = _order_stats(sp * m2, i2, j2, row_lo2, row_up2, KIND)
                ds = dp * (msk + m2)
            elif KIND > 0:
                c_x0, cf, ca, c_x1, c_x2, c_lo, c_up, c_fs, c_fe = _tile_data(
                    A, F, i_b, i_h, i_bh, n0, offs_n, n_valid, L, sab, sah, sal, BN, KIND)
                msk = _mask(m0, n0, offs_m, offs_n, a_h, rf, ra, r_lo, r_up, r_fs, r_fe, cf, ca, c_lo, c_up,
                            c_fs, c_fe, BM, BN, KIND, False)
                ds = dp * msk
                if STATS:
                    s = tl.dot(q, tl.trans(k), input_precision=PREC)
                    p = ds * s  # dA * A: the gradient of log M
                    if KIND == 1:
                        row_lo += tl.sum(p * tl.abs((offs_m[:, None] - offs_n[None, :]).to(tl.float32)), 1)
                    else:
                        if n0 + BN <= m0:
                            row_lo += tl.sum(p, 1)
                        elif m0 + BM <= n0:
                            row_up += tl.sum(p, 1)
                        else:
                            row_lo += tl.sum(tl.where(offs_m[:, None] > offs_n[None, :], p, 0.0), 1)
                            row_up += tl.sum(tl.where(offs_m[:, None] < offs_n[None, :], p, 0.0), 1)
            else:
                ds = dp
            if F16:
                dq += tl.dot(ds, k.to(tl.float32), input_precision=PREC)
            else:
                dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC)
        if FMAP > 0:
            xq = tl.load(XR + i_b.to(tl.int64) * sxb + i_h * sxh + tok_m[:, None] * sxl + offs_dk[None, :],
                         mask=m_valid[:, None], other=0.0).to(tl.float32)
            dq = _feature_grad(xq, dq, FMAP)
        dq_ptrs = DQ_OUT + i_b.to(tl.int64) * sdqb + i_h * sdqh + tok_m[:, None] * sdql + offs_dk[None, :]
        if ACCUM:
            dq += tl.load(dq_ptrs, mask=m_valid[:, None], other=0.0).to(tl.float32)
        tl.store(dq_ptrs, dq.to(DQ_OUT.dtype.element_ty), mask=m_valid[:, None])
        second = tl.num_programs(1) * L
        if STATS and ORDERS == 2 and KIND == 1:  # summed over every query: stored by token
            tl.store(ROW_LO + i_bh * L + offs_m, row_lo, mask=m_valid)
            tl.store(ROW_LO + second + i_bh * L + offs_m, row_lo2, mask=m_valid)
        elif STATS and ORDERS == 2:
            tl.store(ROW_LO + i_bh * L + r1_pos, row_lo, mask=m_valid)
            tl.store(ROW_UP + i_bh * L + r1_pos, row_up, mask=m_valid)
            tl.store(ROW_LO + second + i_bh * L + r2_pos, row_lo2, mask=m_valid)
            tl.store(ROW_UP + second + i_bh * L + r2_pos, row_up2, mask=m_valid)
        elif STATS and KIND == 1:
            tl.store(ROW_LO + i_bh * L + offs_m, row_lo, mask=m_valid)
        elif STATS and KIND == 2:
            tl.store(ROW_LO + i_bh * L + offs_m, row_lo, mask=m_valid)
            tl.store(ROW_UP + i_bh * L + offs_m, row_up, mask=m_valid)


_KIND_NAMES = ("lit", "decay", "selective")


def _blocks(dk: int, dv: int, dtype: torch.dtype, backward: bool, has_decay: bool = False, fused: bool = False,
            length: int = 0, kind: int = 0, dropout: bool = False, orders: int = 1):
    """``(BM, BN, num_warps, num_stages)`` from :data:`lion_hf.kernels.triton.tuning.LAUNCH`."""
    if _INTERPRETED:
        return INTERPRETER_ATTENTION_TILES
    big = max(dk, dv) >= 128 or dtype == torch.float32
    if big:
        return launch(f"attn_{'bwd' if backward else 'fwd'}_big")
    if orders == 2:
        return launch(f"attn_{'bwd' if backward else 'fwd'}_small_orders_{_KIND_NAMES[kind]}")
    if not backward and has_decay:
        return launch("attn_fwd_small_decay")
    if not backward and dropout:
        return launch("attn_fwd_small_dropout")
    if backward and fused:
        return launch("attn_bwd_small_fused")
    if backward and length <= launch("attn_bwd_short_length")[0]:
        return launch(f"attn_bwd_short_{_KIND_NAMES[kind]}")
    return launch(f"attn_{'bwd' if backward else 'fwd'}_small")


def fused_dq(length: int, dropout: bool = False) -> bool:
    """Whether the backward computes ``dq`` inside the key-tile kernel (one launch, fp32 atomics: its sums'
    order, hence its last bits, vary from run to run) instead of in its own deterministic launch, as
    ``launch("attn_bwd_fused")`` says for this length (``launch("attn_bwd_fused_dropout")`` with attention
    dropout); never under ``torch.use_deterministic_algorithms``."""
    if torch.are_deterministic_algorithms_enabled():
        return False
    on, max_length = launch("attn_bwd_fused")
    return (bool(on) and length <= max_length) or (dropout and length <= launch("attn_bwd_fused_dropout")[0])


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs get true fp32 products (tf32 would cost ~3e-4 relative, above fp32 tolerances)
    return "ieee" if dtype == torch.float32 else "tf32"


def _f64_prefix(log_decay: torch.Tensor | None, kind: int, batch: int, heads: int, length: int):
    """Exclusive prefix sums ``F_0..F_L`` of a LION-S log-decay, ``[B*H, L+1]`` float64 (else ``None``)."""
    if kind != 2:
        return None
    a = log_decay.detach().to(torch.float64).reshape(batch * heads, length)
    return torch.nn.functional.pad(a.cumsum(-1), (1, 0)).contiguous()


def _key_mask(key_mask: torch.Tensor | None):
    """``[B, L]`` uint8 (1 = real key) for the kernels, or ``None``."""
    if key_mask is None:
        return None
    key_mask = key_mask.contiguous()
    return key_mask.view(torch.uint8) if key_mask.dtype == torch.bool else key_mask.to(torch.uint8)


def _second_order(second: tuple, a: torch.Tensor, a_strides: tuple, kind: int, batch: int, heads: int,
                  length: int):
    """``(positions, a_2, f64_2)`` for a launch over both scan orders from ``second = (positions, log_decay_2,
    f64_2)``: ``positions [2, L]`` int32, each token's position in either order; the second order's log-decay
    (as the first's: LION-D ``[H]`` or LION-S ``[B, H, L]`` in scan order, with the first's strides) and its
    float64 prefix sums (LION-S; computed when ``None``)."""
    positions, log_decay_2, f64_2 = second
    if kind == 0:
        raise ValueError("both scan orders in one launch need a decay (the natural variants of LION-D and LION-S)")
    a2, *strides, kind2 = decay_strides(log_decay_2, batch, heads, length)
    if kind2 != kind or tuple(strides) != tuple(a_strides):
        raise ValueError("the two scan orders' log-decays must be of one mask and one layout")
    if positions.dtype != torch.int32 or tuple(positions.shape) != (2, length) or not positions.is_contiguous():
        raise ValueError(f"positions must be a contiguous int32 [2, {length}] table, got {positions.dtype} "
                         f"{tuple(positions.shape)}")
    if kind == 2 and f64_2 is None:
        f64_2 = _f64_prefix(log_decay_2, kind, batch, heads, length)
    return positions, a2, f64_2


def attention_forward(q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float,
                      f64: torch.Tensor | None = None, key_mask: torch.Tensor | None = None,
                      order: torch.Tensor | None = None, prev: tuple | None = None, dropout_p: float = 0.0,
                      seed: torch.Tensor | None = None, second: tuple | None = None):
    """Launch the forward kernel. Returns ``(out, den)``: ``out`` is fp32 ``num`` (``PARTS``) or the
    normalised/scaled output in the kernels' dtype, ``[B,H,L,Dv]`` in token-major memory
    (:func:`~lion_hf.kernels.triton.utils.empty_blhd`); ``den`` is fp32 ``[B,H,L]`` or ``None``.

    q, k, v are read through their strides (any layout whose last dim is contiguous). ``f64``: the
    float64 prefix sums of a LION-S log-decay (computed when not given). ``key_mask`` ``[B, L]`` bool:
    padded keys are exact zeros. ``order``: a scan order ``[L]`` (int32, position -> token) over which
    the mask runs (``log_decay`` then given in scan order); ``prev``: ``(num, den)`` of an earlier order
    (``PARTS``) added before the output is formed. ``dropout_p``/``seed``: dropout of the masked
    scores, counter-based from ``seed`` (a one-element int64 tensor on the device, so that compiled
    graphs need no host value); the backward regenerates the same mask.
    ``second``: both scan orders of the natural variants in this one launch (:func:`_second_order`), with
    ``log_decay``/``f64`` the first order's; no ``order``, ``prev`` or dropout then."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    q, k, v = (row_major_last(t, dtype) for t in (q, k, v))
    a, sab, sah, sal, kind = decay_strides(log_decay, batch, heads, length)
    if f64 is None:
        f64 = _f64_prefix(log_decay, kind, batch, heads, length)
    if second is not None:
        if order is not None or prev is not None or dropout_p > 0:
            raise ValueError("both scan orders in one launch take no order, prev or dropout")
        order, a2, f64_2 = _second_order(second, a, (sab, sah, sal), kind, batch, heads, length)
    has_den = with_den or mode == NORMALIZED or prev is not None
    out = empty_blhd(batch, heads, length, dv, torch.float32 if mode == PARTS else dtype, q.device)
    den = (prev[1] if prev is not None else torch.empty(batch, heads, length, device=q.device,
                                                        dtype=torch.float32)) if has_den else None
    prev_num = prev[0] if prev is not None else out
    km = _key_mask(key_mask)
    bm, bn, warps, stages = _blocks(dk, dv, dtype, backward=False, has_decay=kind > 0, dropout=dropout_p > 0,
                                    kind=kind, orders=1 if second is None else 2)
    grid = (cdiv(length, bm), batch * heads)
    run_kernel(_attn_fwd_kernel, grid, q, k, v, a if a is not None else q, f64 if f64 is not None else q,
               a2 if second is not None else q, f64_2 if second is not None and kind == 2 else q,
               km if km is not None else q, order if order is not None else q, out,
               den if den is not None else out, prev_num, length, heads,
               *strides3(q), *strides3(k), *strides3(v), *strides3(out), *strides3(prev_num),
               sab, sah, sal, float(scale), float(eps), float(dropout_p), seed if seed is not None else q,
               DK=dk, DV=dv, BM=bm, BN=bn, KIND=kind, OUT_MODE=mode, HAS_DEN=has_den,
               HAS_KM=km is not None, HAS_IDX=order is not None and second is None, ACCUM=prev is not None,
               DROPOUT=dropout_p > 0, F16=dtype == torch.float16, PREC=_precision(dtype),
               DROP_KEYS=launch("attn_dropout_keys_per_draw")[0], ORDERS=1 if second is None else 2,
               num_warps=warps, num_stages=stages)
    return out, den


def attention_backward(q, k, v, log_decay, g, c, needs_decay_grad: bool, f64: torch.Tensor | None = None,
                       key_mask: torch.Tensor | None = None, order: torch.Tensor | None = None,
                       grads: tuple | None = None, accumulate: bool = False, dropout_p: float = 0.0,
                       seed: torch.Tensor | None = None, return_stats: bool = False, feature: tuple | None = None,
                       prep: tuple | None = None, second: tuple | None = None):
    """``(dq, dk, dv, dlog_decay)`` from ``g' [B,H,L,Dv]`` and the row bias ``c [B,H,L]`` (or ``None``).

    ``grads``: ``(dq, dk, dv)`` buffers to write (any strides, e.g. slices of the fused projection's
    gradient); with ``accumulate`` the kernels add to what they hold (an earlier scan order's gradients).
    ``dlog_decay`` follows ``log_decay``'s positions (scan order when ``order`` is given). With
    ``return_stats`` (LION-S) the fourth result is instead the row/column sums ``(row_lower, row_upper,
    col_lower, col_upper)`` of ``P = dA * A`` that :func:`~lion_hf.kernels.triton.common.log_decay_grad`
    turns into ``d log_decay``, for a caller that fuses that step with its own. ``feature``: ``(fmap, q_raw,
    k_raw)`` where q and k are features ``phi(q_raw)``, ``phi(k_raw)`` (``fmap`` an id of
    :data:`~lion_hf.kernels.triton.fused.FEATURE_MAPS`): the kernels then return the gradients of the raw
    inputs (the feature map's backward in their epilogues; needs the separate dq launch, ``fused_dq`` false).
    ``prep``: ``(grad_out, out, den, eps)`` of the normalised output: the dq launch then forms ``g'`` and ``c``
    from them and writes them into the given ``g`` and ``c`` buffers (``[B,H,L,Dv]`` in the kernels' dtype,
    ``[B,H,L]`` fp32 contiguous) before the dkv launch reads them: :func:`~.common.grad_inputs` without a
    launch of its own (also needs ``fused_dq`` false).
    ``second``: both scan orders in one launch, as :func:`attention_forward` takes it (needs ``fused_dq`` false);
    the fourth result is then a pair, each order's ``dlog_decay`` (or statistics) by its scan positions."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    if prep is not None:
        check_prep_buffers(g, c, dtype)
    q, k, v, g = (row_major_last(t, dtype) for t in (q, k, v, g))
    a, sab, sah, sal, kind = decay_strides(log_decay, batch, heads, length)
    if f64 is None:
        f64 = _f64_prefix(log_decay, kind, batch, heads, length)
    orders = 1 if second is None else 2
    if second is not None:
        if order is not None or accumulate or dropout_p > 0:
            raise ValueError("both scan orders in one launch take no order, accumulate or dropout")
        order, a2, f64_2 = _second_order(second, a, (sab, sah, sal), kind, batch, heads, length)
    if grads is None:
        grads = (empty_blhd(batch, heads, length, dk, dtype, q.device),
                 empty_blhd(batch, heads, length, dk, dtype, q.device),
                 empty_blhd(batch, heads, length, dv, dtype, q.device))
    dq_, dk_, dv_ = grads
    fused = fused_dq(length, dropout=dropout_p > 0)
    if (feature is not None or prep is not None or second is not None) and fused:
        raise ValueError("the feature map's backward, the gradient's preparation and both scan orders in one launch "
                         "run in the separate dq launch; fused_dq() is on here")
    fmap, q_raw, k_raw = feature if feature is not None else (0, None, None)
    if fmap:
        q_raw, k_raw = row_major_last(q_raw), row_major_last(k_raw)
    bm, bn, warps, stages = _blocks(dk, dv, dtype, backward=True, fused=fused, length=length, kind=kind,
                                    orders=1 if second is None else 2)
    # where the d log_decay statistics are formed: the dq kernel (0) or the dkv kernel (1, module doc)
    # (LION-S's per-tile partials of the dkv kernel are for one order; two orders take the dq kernel's sums)
    row_stats = kind > 0 and needs_decay_grad and (fused or bool(launch("attn_bwd_row_stats")[kind - 1])) \
        and not (kind == 2 and orders == 2)
    # each statistic [B, H, L], or [2, B, H, L] for two orders (the kernels' second order at + B*H*L)
    lead = () if orders == 1 else (2,)
    stat = lambda *n: torch.empty(*n, *lead, batch, heads, length, device=q.device, dtype=torch.float32)  # noqa: E731
    col_lo, col_up = (None, None) if kind == 2 else ((stat(), None) if kind == 1 and row_stats else (None, None))
    if kind == 2:  # per key tile partials (dkv kernel) or the dq kernel's sums; one allocation per shape
        if row_stats:
            (col_lo, col_up), (row_lo, row_up) = stat(2).unbind(0), stat(2, cdiv(length, bn)).unbind(0)
        else:
            col_lo, col_up, row_lo, row_up = stat(4).unbind(0)
    else:
        row_lo, row_up = (stat() if kind == 1 and not row_stats else None), None
    dq_acc = torch.zeros(batch, length, heads, dk, device=q.device, dtype=torch.float32) if fused else None
    dummy = q
    km = _key_mask(key_mask)
    common = dict(DK=dk, DV=dv, BM=bm, BN=bn, KIND=kind, HAS_C=c is not None, HAS_KM=km is not None,
                  HAS_IDX=order is not None, ACCUM=accumulate, DROPOUT=dropout_p > 0, F16=dtype == torch.float16,
                  PREC=_precision(dtype), FMAP=fmap, DROP_KEYS=launch("attn_dropout_keys_per_draw")[0],
                  ORDERS=orders, num_warps=warps, num_stages=stages)
    if orders == 2:
        common["HAS_IDX"] = False  # the positions table: tiles of tokens
    pick = lambda t: t if t is not None else dummy  # noqa: E731
    inputs = (q, k, v, pick(a), pick(f64), pick(a2 if orders == 2 else None),
              pick(f64_2 if orders == 2 else None), g, pick(c), pick(km), pick(order))
    in_strides = (*strides3(q), *strides3(k), *strides3(v), *strides3(g))
    dkv_args = (*inputs, dk_, dv_, pick(col_lo), pick(col_up), pick(dq_acc), pick(row_lo), pick(row_up), pick(k_raw),
                length, heads, *in_strides, *strides3(dk_), *strides3(dv_), sab, sah, sal,
                *(strides3(k_raw) if fmap else (0, 0, 0)), float(dropout_p), seed if seed is not None else q)
    dkv_grid = (cdiv(length, bn), batch * heads)
    if fused:
        run_kernel(_attn_bwd_dkv_kernel, dkv_grid, *dkv_args, DQ_ATOMIC=True, ROW_STATS=row_stats, **common)
        dq_sum = dq_acc.transpose(1, 2)  # [B, H, L, DK] view of the token-major fp32 sum
        if accumulate:
            dq_.add_(dq_sum)
        else:
            dq_.copy_(dq_sum)
    else:
        if prep is None:  # the key-tile launch first, as always; with prep it reads what the dq launch writes
            run_kernel(_attn_bwd_dkv_kernel, dkv_grid, *dkv_args, DQ_ATOMIC=False, ROW_STATS=row_stats, **common)
            grad_out = out = den = None
            eps = 0.0
        else:
            grad_out, out, den, eps = prep
            grad_out, out, den = row_major_last(grad_out), row_major_last(out), den.contiguous()
        run_kernel(_attn_bwd_dq_kernel, (cdiv(length, bm), batch * heads),
            *inputs, dq_, pick(row_lo), pick(row_up), pick(q_raw), pick(grad_out), pick(out), pick(den), length,
            heads, *in_strides, *strides3(dq_), sab, sah, sal, *(strides3(q_raw) if fmap else (0, 0, 0)),
            *(strides3(grad_out) if prep is not None else (0, 0, 0)),
            *(strides3(out) if prep is not None else (0, 0, 0)), float(eps), float(dropout_p),
            seed if seed is not None else q, STATS=kind > 0 and needs_decay_grad and not row_stats,
            PREP=prep is not None, **common)
        if prep is not None:
            run_kernel(_attn_bwd_dkv_kernel, dkv_grid, *dkv_args, DQ_ATOMIC=False, ROW_STATS=row_stats, **common)
    if kind == 2 and row_stats:
        row_lo, row_up = row_lo.sum(0), row_up.sum(0)
    if orders == 1:
        return dq_, dk_, dv_, _decay_grad(log_decay, kind, needs_decay_grad, return_stats, row_stats, row_lo, row_up,
                                          col_lo, col_up)
    pick_order = lambda t, i: None if t is None else t[i]  # noqa: E731
    dlogs = tuple(_decay_grad(decay, kind, needs_decay_grad, return_stats, row_stats,
                              *(pick_order(t, i) for t in (row_lo, row_up, col_lo, col_up)))
                  for i, decay in enumerate((log_decay, second[1])))
    return dq_, dk_, dv_, dlogs


def _decay_grad(log_decay, kind: int, needs: bool, return_stats: bool, row_stats: bool, row_lo, row_up, col_lo,
                col_up):
    """:func:`attention_backward`'s ``dlog_decay`` (or LION-S's statistics) of one scan order."""
    if kind == 0 or not needs:
        return None
    if kind == 2 and return_stats:
        return row_lo, row_up, col_lo, col_up
    if kind == 1:
        return log_decay_grad(log_decay, None, None, None, None, row_distance=col_lo if row_stats else row_lo)
    return log_decay_grad(log_decay, row_lo, row_up, col_lo, col_up)


class LionAttentionFunction(torch.autograd.Function):
    """Autograd wrapper of the attention-form kernels. ``forward`` returns ``(out, den)``; see
    :mod:`lion_hf.kernels.triton.common` for the three output modes. ``key_mask`` ``[B, L]`` bool and
    ``dropout_p`` (with its ``seed``) act inside the kernels."""

    @staticmethod
    def forward(ctx, q, k, v, log_decay, mode: int, with_den: bool, scale: float, eps: float,
                key_mask=None, dropout_p: float = 0.0, seed=None):
        kind = 0 if log_decay is None else log_decay.dim()  # 1: [H] (D), 3: [B,H,L] (S)
        f64 = _f64_prefix(log_decay, 2, *q.shape[:3]) if kind == 3 else None
        out, den = attention_forward(q, k, v, log_decay, mode, with_den, scale, eps, f64=f64, key_mask=key_mask,
                                     dropout_p=dropout_p, seed=seed)
        ctx.save_for_backward(q, k, v, log_decay, out if mode == NORMALIZED else None, den, f64, key_mask)
        ctx.mode, ctx.scale, ctx.eps, ctx.dropout_p, ctx.seed = mode, scale, eps, dropout_p, seed
        return out, den

    @staticmethod
    def backward(ctx, grad_out, grad_den):
        q, k, v, log_decay, out, den, f64, key_mask = ctx.saved_tensors
        g, c = grad_inputs(ctx.mode, grad_out, grad_den if ctx.mode == PARTS else None, out, den,
                           ctx.scale, ctx.eps, v, kernel_dtype(q.dtype))
        needs_decay = log_decay is not None and ctx.needs_input_grad[3]
        dq, dk, dv, dlog = attention_backward(q, k, v, log_decay, g, c, needs_decay, f64=f64, key_mask=key_mask,
                                              dropout_p=ctx.dropout_p, seed=ctx.seed)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), dlog, None, None, None, None, None, None, None


__all__ = ["LionAttentionFunction", "attention_backward", "attention_forward", "fused_dq", "PARTS", "NORMALIZED", "SCALED"]
