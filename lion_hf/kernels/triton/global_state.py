"""Global-state form of LION-LIT in Triton: no decay mask, so the whole sequence shares one state.

With ``M = 1`` everywhere, ``A = Q K^T`` and the operator factors through two per-(batch, head) states:

    num_i = sum_j (q_i . k_j) v_j = q_i S,    S = K^T V = sum_j k_j v_j^T   ([Dk, Dv], fp32)
    den_i = sum_j  q_i . k_j      = q_i . z,  z = sum_j k_j                  ([Dk],     fp32)

The forward is one reduction pass over ``(k, v)`` building ``S`` and ``z`` and one pass over the queries.
The backward, from ``g'`` and the row bias ``c`` of :mod:`lion_hf.kernels.triton.common`
(``dA_ij = g'_i . v_j + c_i``), is the same shape transposed:

    dq_i = g'_i S^T + c_i z,    dk_j = T v_j + t,    dv_j = T^T k_j,
    T = sum_i q_i g'_i^T  ([Dk, Dv]),    t = sum_i c_i q_i  ([Dk])

i.e. one reduction pass over ``(q, g', c)`` building ``T`` and ``t`` and one pass writing ``dq``, ``dk`` and
``dv`` (each program of that pass computes one of the three, grid axis 2).

Reductions (deterministic, no atomics): the sequence is split into as few pieces as fill the GPU
(``launch("global_reduce")``: at least so many positions each, about so many programs per SM); each program reduces its piece into a partial fp32 state, and the partials are summed by
``torch.sum`` over the split dimension. The partials take ``ceil(L / P) * B * H * Dk * Dv * 4`` bytes. The
passes that apply a state cover ``launch("global_apply")[0]`` positions per program (tiles of 64 rows), loading
the state once.
``num_warps`` is the table's, doubled for 128-wide heads (a ``[128, 128]`` fp32 state per program).

Precision: the reductions feed the matrix units with the input dtype and accumulate in fp32. The second
pass multiplies by a state: bf16 inputs take the state rounded to bf16 (fp32's range), fp16 inputs keep
the state in fp32 (its entries, sums over the sequence, can exceed fp16's 65504) and multiply in tf32
(an fp16 operand is exact in tf32), fp32 inputs multiply in IEEE fp32.

Padded keys (``key_mask`` ``[B, L]`` bool, ``True`` = real key) are never loaded: they add exact zeros to
``S`` and ``z`` whatever they hold, and get zero ``dk``, ``dv``. Query rows are never masked.
"""

from __future__ import annotations

import functools

import torch

from .common import NORMALIZED, PARTS, SCALED, grad_inputs, vector_states_by_mma
from .tuning import launch
from .launcher import run_kernel
from .utils import cdiv, empty_blhd, interpreter_enabled, kernel_dtype, row_major_last, strides3

#: how Triton runs this module's kernels, fixed when it defined them (at import): read once, not per launch
_INTERPRETED = interpreter_enabled()

try:  # optional dependency: the module imports without Triton, its functions need it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is missing
    triton = None
    tl = None

#: tile of positions (rows of one tl.dot) inside every program, on the GPU and under the interpreter
TILE = 64
INTERPRETER_TILE = 16
#: under the interpreter (CPU, NumPy programs): positions per reduction program and num_warps; small, so
#: that the tests' short sequences span several reduction programs
INTERPRETER_LAUNCH = (32, 1)


if triton is not None:
    from .common import _scalar_columns  # the vector state's operand (Z_MMA)

    @triton.jit
    def _state_kernel(X, Y, W, KM, S_PART, Z_PART, L, H, sxb, sxh, sxl, syb, syh, syl,
                      DX: tl.constexpr, DY: tl.constexpr, BL: tl.constexpr, BC: tl.constexpr,
                      HAS_Z: tl.constexpr, HAS_W: tl.constexpr, HAS_KM: tl.constexpr, PREC: tl.constexpr,
                      Z_MMA: tl.constexpr):
        """Partial states of positions ``[i_s * BL, (i_s + 1) * BL)`` of one (batch, head):
        ``S_PART[i_s, bh] = sum_p x_p y_p^T`` (``[DX, DY]``) and ``Z_PART[i_s, bh] = sum_p w_p x_p``
        (``w = 1``, or ``W[bh, p]`` with ``HAS_W``); positions that ``KM`` marks as padding are skipped.
        ``Z_MMA``: ``z`` as the chunk form's state pass forms its vector states (``VEC_MMA``, chunk.py), by a
        product of ``x^T`` with the ``[BC, 16]`` columns of ``w``, instead of a cross-thread column sum per tile."""
        i_s = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_x = tl.arange(0, DX)
        offs_y = tl.arange(0, DY)
        x_base = X + i_b.to(tl.int64) * sxb + i_h * sxh
        y_base = Y + i_b.to(tl.int64) * syb + i_h * syh
        acc = tl.zeros([DX, DY], dtype=tl.float32)
        ZW: tl.constexpr = 16
        if Z_MMA:
            z = tl.zeros([DX, ZW], dtype=tl.float32)
        else:
            z = tl.zeros([DX], dtype=tl.float32)
        for p0 in range(0, BL, BC):
            offs = i_s * BL + p0 + tl.arange(0, BC)
            valid = offs < L
            if HAS_KM:
                valid = valid & (tl.load(KM + i_b * L + offs, mask=valid, other=0) != 0)
            r64 = offs.to(tl.int64)[:, None]
            x = tl.load(x_base + r64 * sxl + offs_x[None, :], mask=valid[:, None], other=0.0)
            y = tl.load(y_base + r64 * syl + offs_y[None, :], mask=valid[:, None], other=0.0)
            acc += tl.dot(tl.trans(x), y, input_precision=PREC)
            if HAS_Z:
                if HAS_W:
                    w = tl.load(W + i_bh * L + offs, mask=valid, other=0.0)
                if Z_MMA:
                    if HAS_W:
                        w_op = _scalar_columns(w, BC, ZW, x.dtype)
                    else:
                        w_op = _scalar_columns(tl.full([BC], 1.0, tl.float32), BC, ZW, x.dtype)
                    z = tl.dot(tl.trans(x), w_op, acc=z, input_precision=PREC)
                else:
                    xf = x.to(tl.float32)
                    if HAS_W:
                        xf = xf * w[:, None]
                    z += tl.sum(xf, 0)
        part = i_s.to(tl.int64) * tl.num_programs(1) + i_bh  # row of the [NS, B*H] partials
        tl.store(S_PART + part * (DX * DY) + offs_x[:, None] * DY + offs_y[None, :], acc)
        if HAS_Z:
            if Z_MMA:
                tl.store(Z_PART + part * DX + offs_x, tl.sum(z, 1))
            else:
                tl.store(Z_PART + part * DX + offs_x, z)

    @triton.jit
    def _load_state(ST, st_base, DIN: tl.constexpr, DOUT: tl.constexpr, TRANS: tl.constexpr):
        """A contiguous fp32 state as the ``[DIN, DOUT]`` operand of ``x @ St``: stored ``[DIN, DOUT]``, or
        stored ``[DOUT, DIN]`` and read transposed (``TRANS``)."""
        offs_in = tl.arange(0, DIN)
        offs_out = tl.arange(0, DOUT)
        if TRANS:
            st = tl.load(ST + st_base + offs_in[:, None] + offs_out[None, :] * DIN)
        else:
            st = tl.load(ST + st_base + offs_in[:, None] * DOUT + offs_out[None, :])
        return st

    @triton.jit
    def _times_state(x, st, STATE_F32: tl.constexpr, PREC: tl.constexpr):
        """``x @ st`` in fp32: the state fp32 (fp16/fp32 inputs) or already in the inputs' dtype (bf16)."""
        if STATE_F32:
            y = tl.dot(x.to(tl.float32), st, input_precision=PREC)
        else:
            y = tl.dot(x, st, input_precision=PREC)
        return y

    @triton.jit
    def _global_fwd_kernel(Q, S, Z, NUM, DEN, L, H, sqb, sqh, sql, sob, soh, sol, scale, eps,
                           DK: tl.constexpr, DV: tl.constexpr, BL: tl.constexpr, BM: tl.constexpr,
                           OUT_MODE: tl.constexpr, HAS_DEN: tl.constexpr, STATE_F32: tl.constexpr,
                           PREC: tl.constexpr):
        """``num = q S`` and ``den = q . z`` for ``BL`` query rows (tiles of ``BM``, one load of the state);
        output as in ``OUT_MODE``."""
        i_s = tl.program_id(0)
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_dk = tl.arange(0, DK)
        offs_dv = tl.arange(0, DV)
        q_base = Q + i_b.to(tl.int64) * sqb + i_h * sqh
        o_base = NUM + i_b.to(tl.int64) * sob + i_h * soh
        st = _load_state(S, i_bh.to(tl.int64) * (DK * DV), DK, DV, False)
        if not STATE_F32:
            st = st.to(Q.dtype.element_ty)
        if HAS_DEN:
            z = tl.load(Z + i_bh * DK + offs_dk)
        for p0 in range(0, BL, BM):
            if i_s * BL + p0 < L:
                rows = i_s * BL + p0 + tl.arange(0, BM)
                valid = rows < L
                r64 = rows.to(tl.int64)[:, None]
                q = tl.load(q_base + r64 * sql + offs_dk[None, :], mask=valid[:, None], other=0.0)
                acc = _times_state(q, st, STATE_F32, PREC)
                if HAS_DEN:
                    den = tl.sum(q.to(tl.float32) * z[None, :], 1)
                    tl.store(DEN + i_bh * L + rows, den, mask=valid)
                o_ptrs = o_base + r64 * sol + offs_dv[None, :]
                if OUT_MODE == 0:
                    tl.store(o_ptrs, acc, mask=valid[:, None])
                elif OUT_MODE == 1:
                    d = den + eps
                    # a row with no real key (0 / 0) is 0, not NaN
                    r = tl.where(d != 0.0, 1.0 / tl.where(d != 0.0, d, 1.0), 0.0)
                    tl.store(o_ptrs, (acc * r[:, None]).to(NUM.dtype.element_ty), mask=valid[:, None])
                else:
                    tl.store(o_ptrs, (acc * scale).to(NUM.dtype.element_ty), mask=valid[:, None])

    @triton.jit
    def _global_bwd_kernel(K, V, G, C, KM, S, Z, T, TV, DQ, DK_OUT, DV_OUT, L, H,
                           skb, skh, skl, svb, svh, svl, sgb, sgh, sgl,
                           sdqb, sdqh, sdql, sdkb, sdkh, sdkl, sdvb, sdvh, sdvl,
                           DK: tl.constexpr, DV: tl.constexpr, BL: tl.constexpr, BM: tl.constexpr,
                           HAS_C: tl.constexpr, HAS_KM: tl.constexpr, STATE_F32: tl.constexpr,
                           PREC: tl.constexpr):
        """One of ``dq = g' S^T + c z`` (axis 2 = 0), ``dk = v T^T + t`` (1) or ``dv = k T`` (2) for ``BL``
        positions (tiles of ``BM``, one load of the state); padded keys get zero ``dk``, ``dv``."""
        i_s = tl.program_id(0)
        i_bh = tl.program_id(1)
        which = tl.program_id(2)
        i_b = i_bh // H
        i_h = i_bh % H
        offs_dk = tl.arange(0, DK)
        offs_dv = tl.arange(0, DV)
        st_base = i_bh.to(tl.int64) * (DK * DV)
        if which == 0:
            g_base = G + i_b.to(tl.int64) * sgb + i_h * sgh
            dq_base = DQ + i_b.to(tl.int64) * sdqb + i_h * sdqh
            st = _load_state(S, st_base, DV, DK, True)
            if not STATE_F32:
                st = st.to(G.dtype.element_ty)
            if HAS_C:
                z = tl.load(Z + i_bh * DK + offs_dk)
            for p0 in range(0, BL, BM):
                if i_s * BL + p0 < L:
                    rows = i_s * BL + p0 + tl.arange(0, BM)
                    valid = rows < L
                    r64 = rows.to(tl.int64)[:, None]
                    g = tl.load(g_base + r64 * sgl + offs_dv[None, :], mask=valid[:, None], other=0.0)
                    dq = _times_state(g, st, STATE_F32, PREC)
                    if HAS_C:
                        c = tl.load(C + i_bh * L + rows, mask=valid, other=0.0)
                        dq += c[:, None] * z[None, :]
                    tl.store(dq_base + r64 * sdql + offs_dk[None, :], dq.to(DQ.dtype.element_ty),
                             mask=valid[:, None])
        elif which == 1:
            v_base = V + i_b.to(tl.int64) * svb + i_h * svh
            dk_base = DK_OUT + i_b.to(tl.int64) * sdkb + i_h * sdkh
            st = _load_state(T, st_base, DV, DK, True)
            if not STATE_F32:
                st = st.to(V.dtype.element_ty)
            if HAS_C:
                t_vec = tl.load(TV + i_bh * DK + offs_dk)
            for p0 in range(0, BL, BM):
                if i_s * BL + p0 < L:
                    rows = i_s * BL + p0 + tl.arange(0, BM)
                    valid = rows < L
                    kv_valid = valid
                    if HAS_KM:
                        kv_valid = kv_valid & (tl.load(KM + i_b * L + rows, mask=valid, other=0) != 0)
                    r64 = rows.to(tl.int64)[:, None]
                    v = tl.load(v_base + r64 * svl + offs_dv[None, :], mask=kv_valid[:, None], other=0.0)
                    dk = _times_state(v, st, STATE_F32, PREC)
                    if HAS_C:
                        dk += t_vec[None, :]
                    # a padded key gets no gradient (it is an exact zero in the function)
                    dk = tl.where(kv_valid[:, None], dk, 0.0)
                    tl.store(dk_base + r64 * sdkl + offs_dk[None, :], dk.to(DK_OUT.dtype.element_ty),
                             mask=valid[:, None])
        else:
            k_base = K + i_b.to(tl.int64) * skb + i_h * skh
            dv_base = DV_OUT + i_b.to(tl.int64) * sdvb + i_h * sdvh
            st = _load_state(T, st_base, DK, DV, False)
            if not STATE_F32:
                st = st.to(K.dtype.element_ty)
            for p0 in range(0, BL, BM):
                if i_s * BL + p0 < L:
                    rows = i_s * BL + p0 + tl.arange(0, BM)
                    valid = rows < L
                    kv_valid = valid
                    if HAS_KM:
                        kv_valid = kv_valid & (tl.load(KM + i_b * L + rows, mask=valid, other=0) != 0)
                    r64 = rows.to(tl.int64)[:, None]
                    k = tl.load(k_base + r64 * skl + offs_dk[None, :], mask=kv_valid[:, None], other=0.0)
                    dv = tl.where(kv_valid[:, None], _times_state(k, st, STATE_F32, PREC), 0.0)
                    tl.store(dv_base + r64 * sdvl + offs_dv[None, :], dv.to(DV_OUT.dtype.element_ty),
                             mask=valid[:, None])


def _precision(dtype: torch.dtype) -> str:
    # fp32 inputs get true fp32 products (tf32 would cost ~3e-4 relative, above fp32 tolerances)
    return "ieee" if dtype == torch.float32 else "tf32"


def _key_mask(key_mask: torch.Tensor | None):
    """``[B, L]`` uint8 (1 = real key) for the kernels, or ``None``."""
    return None if key_mask is None else key_mask.to(torch.uint8).contiguous()


def _launch(dk: int, dv: int, name: str, length: int = 0, programs: int = 1, device=None):
    """``(positions per program, rows per tile, num_warps)`` of the ``"global_reduce"`` or ``"global_apply"``
    passes; ``programs`` (batch * heads), ``length`` and ``device`` size the reduction's split."""
    if _INTERPRETED:
        positions, warps = INTERPRETER_LAUNCH
        return positions, INTERPRETER_TILE, warps
    if name == "global_reduce":
        # as few pieces as fill the GPU: fewer partial states to write and sum, no sum at all for one piece
        min_positions, per_sm, warps = launch(name)
        pieces = max(1, min(cdiv(length, min_positions), cdiv(per_sm * _sm_count(device), programs)))
        positions = cdiv(cdiv(max(length, 1), pieces), TILE) * TILE
    else:
        positions, warps = launch(name)[:2]
    if max(dk, dv) >= 128:  # a [128, 128] fp32 state tile: twice the threads to hold it
        warps *= 2
    tile = min(TILE, positions)
    return max(positions // tile, 1) * tile, tile, warps


@functools.lru_cache(maxsize=None)
def _sm_count(device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _reduce(x, y, w, km, with_z: bool):
    """``(sum_p x_p y_p^T [B*H, Dx, Dy], sum_p w_p x_p [B*H, Dx] or None)`` in fp32 over the real positions
    (``km``: uint8 ``[B, L]`` or ``None``; ``w``: fp32 ``[B, H, L]`` or ``None`` for ones)."""
    batch, heads, length, dx = x.shape
    dy = y.shape[-1]
    bh = batch * heads
    positions, tile, warps = _launch(dx, dy, "global_reduce", length, bh, x.device)
    ns = cdiv(length, positions)
    s_part = torch.empty(ns, bh, dx, dy, device=x.device, dtype=torch.float32)
    z_part = torch.empty(ns, bh, dx, device=x.device, dtype=torch.float32) if with_z else None
    if ns and bh:
        run_kernel(_state_kernel, (ns, bh), x, y, w if w is not None else x, km if km is not None else x, s_part,
                                z_part if z_part is not None else s_part, length, heads,
                                *strides3(x), *strides3(y), DX=dx, DY=dy, BL=positions, BC=tile,
                                HAS_Z=with_z, HAS_W=w is not None, HAS_KM=km is not None,
                                PREC=_precision(x.dtype), Z_MMA=vector_states_by_mma(with_z, w is None, x.dtype),
                                num_warps=warps)
    # deterministic: a fixed-order sum of the partials (no atomics)
    s = s_part[0] if ns == 1 else s_part.sum(0)
    z = None if z_part is None else (z_part[0] if ns == 1 else z_part.sum(0))
    return s.contiguous(), None if z is None else z.contiguous()


def global_state(k, v, key_mask: torch.Tensor | None = None, with_z: bool = True):
    """The forward's states ``(S = K^T V [B*H, Dk, Dv], z = sum_j k_j [B*H, Dk] or None)``, fp32,
    over the real keys (``key_mask`` ``[B, L]`` bool, ``True`` = real)."""
    dtype = kernel_dtype(k.dtype)
    k, v = (row_major_last(t, dtype) for t in (k, v))
    return _reduce(k, v, None, _key_mask(key_mask), with_z)


def global_forward(q, k, v, mode: int, with_den: bool, scale: float, eps: float,
                   key_mask: torch.Tensor | None = None, state: tuple | None = None):
    """LION-LIT through its global state. Returns ``(out, den)`` exactly as
    :func:`~lion_hf.kernels.triton.attention.attention_forward` does with no decay: ``out`` is fp32 ``num``
    (``PARTS``) or the normalised/scaled output in the kernels' dtype, ``[B,H,L,Dv]`` in token-major memory
    (:func:`~lion_hf.kernels.triton.utils.empty_blhd`); ``den`` is fp32 ``[B,H,L]`` (``NORMALIZED``, or
    ``with_den``) or ``None``.

    q, k, v are read through their strides (last dim contiguous). ``key_mask`` ``[B, L]`` bool: padded keys
    are exact zeros. ``state``: ``(S, z)`` from :func:`global_state` (computed when not given; ``z`` may be
    ``None`` when no denominator is needed)."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    has_den = with_den or mode == NORMALIZED
    if state is None:
        state = global_state(k, v, key_mask, with_z=has_den)
    s, z = state
    if has_den and z is None:
        raise ValueError("global_forward: a denominator needs the state z (global_state(..., with_z=True))")
    q = row_major_last(q, dtype)
    out = empty_blhd(batch, heads, length, dv, torch.float32 if mode == PARTS else dtype, q.device)
    den = torch.empty(batch, heads, length, device=q.device, dtype=torch.float32) if has_den else None
    positions, tile, warps = _launch(dk, dv, "global_apply")
    if length and batch * heads:
        run_kernel(_global_fwd_kernel, (cdiv(length, positions), batch * heads),
            q, s, z if z is not None else s, out, den if den is not None else out, length, heads,
            *strides3(q), *strides3(out), float(scale), float(eps), DK=dk, DV=dv, BL=positions, BM=tile,
            OUT_MODE=mode,
            HAS_DEN=has_den, STATE_F32=dtype != torch.bfloat16, PREC=_precision(dtype), num_warps=warps)
    return out, den


def global_backward(q, k, v, g, c, key_mask: torch.Tensor | None = None, state: tuple | None = None,
                    grads: tuple | None = None):
    """``(dq, dk, dv)`` (kernel dtype, token-major memory) from ``g' [B,H,L,Dv]`` and the row bias
    ``c [B,H,L]`` fp32 (or ``None``) of :func:`~lion_hf.kernels.triton.common.grad_inputs`.

    ``state``: the forward's ``(S, z)`` (recomputed from k, v when not given; ``z`` is only needed with ``c``).
    ``grads``: ``(dq, dk, dv)`` buffers to write instead (any strides, last dim contiguous, e.g. slices of
    the fused projection's gradient)."""
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    dtype = kernel_dtype(q.dtype)
    q, k, v, g = (row_major_last(t, dtype) for t in (q, k, v, g))
    km = _key_mask(key_mask)
    if state is None or (c is not None and state[1] is None):
        state = _reduce(k, v, None, km, with_z=c is not None)
    s, z = state
    c = None if c is None else c.float().contiguous()
    t_mat, t_vec = _reduce(q, g, c, None, with_z=c is not None)
    if grads is None:
        grads = (empty_blhd(batch, heads, length, dk, dtype, q.device),
                 empty_blhd(batch, heads, length, dk, dtype, q.device),
                 empty_blhd(batch, heads, length, dv, dtype, q.device))
    dq, dk_, dv_ = grads
    positions, tile, warps = _launch(dk, dv, "global_apply")
    if length and batch * heads:
        dummy = s
        run_kernel(_global_bwd_kernel, (cdiv(length, positions), batch * heads, 3),
            k, v, g, c if c is not None else dummy, km if km is not None else dummy, s,
            z if z is not None else dummy, t_mat, t_vec if t_vec is not None else dummy, dq, dk_, dv_,
            length, heads, *strides3(k), *strides3(v), *strides3(g), *strides3(dq), *strides3(dk_),
            *strides3(dv_), DK=dk, DV=dv, BL=positions, BM=tile, HAS_C=c is not None, HAS_KM=km is not None,
            STATE_F32=dtype != torch.bfloat16, PREC=_precision(dtype), num_warps=warps)
    return dq, dk_, dv_


class LionGlobalFunction(torch.autograd.Function):
    """Autograd wrapper of the global-state kernels (LION-LIT only). ``forward`` returns ``(out, den)``;
    see :mod:`lion_hf.kernels.triton.common` for the three output modes. ``key_mask`` ``[B, L]`` bool.
    The forward's states ``(S, z)`` (``B*H*Dk*(Dv+1)`` fp32) are kept for the backward."""

    @staticmethod
    def forward(ctx, q, k, v, mode: int, with_den: bool, scale: float, eps: float, key_mask=None):
        s, z = global_state(k, v, key_mask, with_z=with_den or mode == NORMALIZED)
        out, den = global_forward(q, k, v, mode, with_den, scale, eps, key_mask=key_mask, state=(s, z))
        ctx.save_for_backward(q, k, v, out if mode == NORMALIZED else None, den, key_mask, s, z)
        ctx.mode, ctx.scale, ctx.eps = mode, scale, eps
        return out, den

    @staticmethod
    def backward(ctx, grad_out, grad_den):
        q, k, v, out, den, key_mask, s, z = ctx.saved_tensors
        g, c = grad_inputs(ctx.mode, grad_out, grad_den if ctx.mode == PARTS else None, out, den,
                           ctx.scale, ctx.eps, v, kernel_dtype(q.dtype))
        dq, dk, dv = global_backward(q, k, v, g, c, key_mask=key_mask, state=(s, z))
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None, None


__all__ = ["INTERPRETER_LAUNCH", "LionGlobalFunction", "global_backward", "global_forward", "global_state",
           "PARTS", "NORMALIZED", "SCALED"]
