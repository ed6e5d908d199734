"""The fused LION layer in Triton: from the fused q/k/v projection to the input of ``out_proj``.

``LionLayerFunction`` takes the projection's output ``qkv [B, L, 3, H, D]`` as it comes out of the
``Linear`` (any dtype autocast gave it) and returns the context ``[B, H, L, D]`` laid out as
``[B, L, H, D]`` in memory, so ``out_proj`` reads it as ``[B, L, H*D]`` without a copy:

* one launch applies the feature map to q and k (:data:`FEATURE_MAPS`; ``identity`` needs none: the
  kernels then read q and k straight from ``qkv`` through their strides), and for LION-S also forms every
  scan order's log-decays from the gate logits (a launch of the glue costs ~40 us of host time on the
  H200 machines, and ViT-B-size steps are host-bound there); v is always read in place;
* the attention form (one launch, also for both scan orders of the natural variants: its tiles are tokens
  and each entry's two mask values come from the tokens' positions in either order, summed in registers;
  with attention dropout a second launch adds the other order's parts) or the chunk form (one launch per
  scan order, the second adding the first's parts) runs on those views, padded keys masked as they load;
* the backward writes ``d qkv`` in one buffer: the kernels store ``dv`` (and ``dq``, ``dk`` without a
  feature map) straight into its slices. The normalised output's row gradients (``g'``, ``c``) are formed by
  the attention form's dq launch, before the dkv launch reads them, or by the chunk form's query-side state
  pass. One launch turns the feature gradients into ``dq``, ``dk`` (in the attention form the dq and dkv
  launches can apply the feature map's backward themselves instead, ``LAUNCH["layer_feature_grad_in_attention"]``,
  off: slower on the H200). LION-S's statistics become the gate logits' gradient in the feature map's launch
  (its gate programs alone when the attention kernels applied the feature map's backward).

The PyTorch reference of this layer is the unfused path of :func:`lion_hf.kernels.fused.lion_fused_attention`.
"""

from __future__ import annotations

import torch

from .attention import attention_backward, attention_forward, fused_dq
from .chunk import chunk_backward, chunk_forward, keep_forward_states
from .common import NORMALIZED, PARTS, SCALED, grad_inputs
from .global_state import global_backward, global_forward, global_state
from .tuning import launch
from .launcher import run_kernel
from .utils import cdiv, empty_blhd, interpreter_enabled, kernel_dtype, strides3

#: how Triton runs this module's kernels, fixed when it defined them (at import): read once, not per launch
_INTERPRETED = interpreter_enabled()

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None

#: feature maps the kernels apply (their ids are the kernels' ``FMAP`` constant)
FEATURE_MAPS = {"identity": 0, "elu_plus_one": 1, "silu_l2": 2}

if triton is not None:
    from .common import _feature, _feature_grad  # the feature maps (also the attention backward's epilogues)

    @triton.jit
    def _feature_fwd_kernel(XQ, XK, YQ, YK, L, H, sxb, sxh, sxl, syb, syh, syl,
                            Z, IDX1, IDX2, A, F, szb, szl, D: tl.constexpr, BR: tl.constexpr, FMAP: tl.constexpr,
                            DECAY: tl.constexpr, BL: tl.constexpr, HAS_IDX: tl.constexpr, CLS_ZERO: tl.constexpr):
        # program_id(2): 0 for q, 1 for k (both read with the same strides from the one qkv buffer); 2 + o for
        # LION-S's decay of scan order o (one program per head, the rest of that row of the grid returns): the
        # layer's forward then makes one launch before the attention kernels, not one per step of the glue
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        role = tl.program_id(2)
        if DECAY and role >= 2:
            if tl.program_id(0) == 0:
                order = role - 2
                n_bh = tl.num_programs(1)
                a_out = A + order.to(tl.int64) * n_bh * L
                f_out = F + order.to(tl.int64) * n_bh * (L + 1)
                if order == 0:
                    _selective_decay_row(Z, IDX1, a_out, f_out, i_bh, i_b, i_h, L, szb, szl, order * H, BL, HAS_IDX,
                                         CLS_ZERO)
                else:
                    _selective_decay_row(Z, IDX2, a_out, f_out, i_bh, i_b, i_h, L, szb, szl, order * H, BL, HAS_IDX,
                                         CLS_ZERO)
            return
        rows = tl.program_id(0) * BR + tl.arange(0, BR)
        valid = rows < L
        offs = tl.arange(0, D)
        r64 = rows.to(tl.int64)[:, None]
        src = i_b.to(tl.int64) * sxb + i_h * sxh + r64 * sxl + offs[None, :]
        dst = i_b.to(tl.int64) * syb + i_h * syh + r64 * syl + offs[None, :]
        if role == 0:
            x = tl.load(XQ + src, mask=valid[:, None], other=0.0).to(tl.float32)
            tl.store(YQ + dst, _feature(x, FMAP).to(YQ.dtype.element_ty), mask=valid[:, None])
        else:
            x = tl.load(XK + src, mask=valid[:, None], other=0.0).to(tl.float32)
            tl.store(YK + dst, _feature(x, FMAP).to(YK.dtype.element_ty), mask=valid[:, None])

    @triton.jit
    def _feature_bwd_kernel(XQ, XK, DYQ, DYK, DXQ, DXK, L, H, sxb, sxh, sxl, sdqb, sdqh, sdql,
                            sdkb, sdkh, sdkl, sob, soh, sol,
                            Z, IDX1, IDX2, RL1, RU1, CL1, CU1, RL2, RU2, CL2, CU2, DZ, szb, szl, sdb, sdl,
                            D: tl.constexpr, BR: tl.constexpr, FMAP: tl.constexpr, DECAY: tl.constexpr,
                            BL: tl.constexpr, HAS_IDX: tl.constexpr, CLS_ZERO: tl.constexpr, QK: tl.constexpr):
        # program_id(2): 0 for q, 1 for k; 2 + o for d z of LION-S's scan order o from its statistics (as above);
        # without QK (the attention backward applied the feature map's backward) only the d z programs
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        if QK:
            role = tl.program_id(2)
        else:
            role = tl.program_id(2) + 2
        if DECAY and role >= 2:
            if tl.program_id(0) == 0:
                order = role - 2
                if order == 0:
                    _selective_decay_grad_row(Z, IDX1, RL1, RU1, CL1, CU1, DZ, i_bh, i_b, i_h, L, szb, szl, sdb, sdl,
                                              order * H, BL, HAS_IDX, CLS_ZERO)
                else:
                    _selective_decay_grad_row(Z, IDX2, RL2, RU2, CL2, CU2, DZ, i_bh, i_b, i_h, L, szb, szl, sdb, sdl,
                                              order * H, BL, HAS_IDX, CLS_ZERO)
            return
        rows = tl.program_id(0) * BR + tl.arange(0, BR)
        valid = rows < L
        offs = tl.arange(0, D)
        r64 = rows.to(tl.int64)[:, None]
        src = i_b.to(tl.int64) * sxb + i_h * sxh + r64 * sxl + offs[None, :]
        dst = i_b.to(tl.int64) * sob + i_h * soh + r64 * sol + offs[None, :]
        if role == 0:
            x = tl.load(XQ + src, mask=valid[:, None], other=0.0).to(tl.float32)
            dy = tl.load(DYQ + i_b.to(tl.int64) * sdqb + i_h * sdqh + r64 * sdql + offs[None, :],
                         mask=valid[:, None], other=0.0).to(tl.float32)
            tl.store(DXQ + dst, _feature_grad(x, dy, FMAP).to(DXQ.dtype.element_ty), mask=valid[:, None])
        else:
            x = tl.load(XK + src, mask=valid[:, None], other=0.0).to(tl.float32)
            dy = tl.load(DYK + i_b.to(tl.int64) * sdkb + i_h * sdkh + r64 * sdkl + offs[None, :],
                         mask=valid[:, None], other=0.0).to(tl.float32)
            tl.store(DXK + dst, _feature_grad(x, dy, FMAP).to(DXK.dtype.element_ty), mask=valid[:, None])

    @triton.jit
    def _selective_decay_row(Z, IDX, A, F, i_bh, i_b, i_h, L, szb, szl, col0, BL: tl.constexpr,
                             HAS_IDX: tl.constexpr, CLS_ZERO: tl.constexpr):
        """LION-S's decay of one (batch, head) from its gate logits ``z`` (``Z[b, token, col0 + h]``):
        ``a = logsigmoid(-z)`` (0 for the class token with ``CLS_ZERO``) in scan order, ``A [B*H, L]`` fp32,
        and its exclusive prefix sums ``F [B*H, L+1]`` in float64 (what the attention kernels read)."""
        running = tl.zeros([1], dtype=tl.float64)
        tl.store(F + i_bh.to(tl.int64) * (L + 1) + tl.arange(0, 1), running)
        for p0 in range(0, L, BL):
            offs = p0 + tl.arange(0, BL)
            valid = offs < L
            if HAS_IDX:
                tok = tl.load(IDX + offs, mask=valid, other=0).to(tl.int64)
            else:
                tok = offs.to(tl.int64)
            z = tl.load(Z + i_b.to(tl.int64) * szb + tok * szl + col0 + i_h, mask=valid, other=0.0).to(tl.float32)
            a = -(tl.maximum(z, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(z))))  # logsigmoid(-z) = -softplus(z)
            if CLS_ZERO:
                a = tl.where(tok == 0, 0.0, a)
            a = tl.where(valid, a, 0.0)
            tl.store(A + i_bh.to(tl.int64) * L + offs, a, mask=valid)
            a64 = a.to(tl.float64)
            inclusive = tl.cumsum(a64, 0)
            tl.store(F + i_bh.to(tl.int64) * (L + 1) + offs + 1, inclusive + running, mask=valid)
            running += tl.sum(a64, 0)

    @triton.jit
    def _selective_decay_kernel(Z, IDX, A, F, L, H, szb, szl, col0, BL: tl.constexpr, HAS_IDX: tl.constexpr,
                                CLS_ZERO: tl.constexpr):
        i_bh = tl.program_id(0)
        _selective_decay_row(Z, IDX, A, F, i_bh, i_bh // H, i_bh % H, L, szb, szl, col0, BL, HAS_IDX, CLS_ZERO)

    @triton.jit
    def _selective_decay_grad_row(Z, IDX, RL, RU, CL, CU, DZ, i_bh, i_b, i_h, L, szb, szl, sdb, sdl, col0,
                                  BL: tl.constexpr, HAS_IDX: tl.constexpr, CLS_ZERO: tl.constexpr):
        """``d z`` from the attention kernels' row/column sums of ``P = dA * A`` (scan order): with
        ``d_F = row_lo - col_lo`` and ``d_G = col_up - row_up``, ``d a_m = sum_{t >= m} (d_F + d_G)_t - d_F_m``
        (float64, walked from the end), then ``d z = -sigmoid(z) d a`` (0 for the class token)."""
        base = i_bh.to(tl.int64) * L
        running = tl.zeros([1], dtype=tl.float64)  # sum over the positions after this block
        n_blocks = tl.cdiv(L, BL)
        for i in range(0, n_blocks):
            p0 = (n_blocks - 1 - i) * BL
            offs = p0 + tl.arange(0, BL)
            valid = offs < L
            d_f = (tl.load(RL + base + offs, mask=valid, other=0.0) - tl.load(CL + base + offs, mask=valid, other=0.0))
            d_g = (tl.load(CU + base + offs, mask=valid, other=0.0) - tl.load(RU + base + offs, mask=valid, other=0.0))
            d_f = d_f.to(tl.float64)
            both = d_f + d_g.to(tl.float64)
            inclusive = tl.cumsum(both, 0)
            total = tl.sum(both, 0)
            suffix = total - inclusive + both + running  # sum over t >= m
            running += total
            da = (suffix - d_f).to(tl.float32)
            if HAS_IDX:
                tok = tl.load(IDX + offs, mask=valid, other=0).to(tl.int64)
            else:
                tok = offs.to(tl.int64)
            z = tl.load(Z + i_b.to(tl.int64) * szb + tok * szl + col0 + i_h, mask=valid, other=0.0).to(tl.float32)
            dz = -tl.sigmoid(z) * da
            if CLS_ZERO:
                dz = tl.where(tok == 0, 0.0, dz)
            tl.store(DZ + i_b.to(tl.int64) * sdb + tok * sdl + col0 + i_h, dz.to(DZ.dtype.element_ty), mask=valid)

    @triton.jit
    def _selective_decay_grad_kernel(Z, IDX, RL, RU, CL, CU, DZ, L, H, szb, szl, sdb, sdl, col0,
                                     BL: tl.constexpr, HAS_IDX: tl.constexpr, CLS_ZERO: tl.constexpr):
        i_bh = tl.program_id(0)
        _selective_decay_grad_row(Z, IDX, RL, RU, CL, CU, DZ, i_bh, i_bh // H, i_bh % H, L, szb, szl, sdb, sdl,
                                  col0, BL, HAS_IDX, CLS_ZERO)


def _decay_block() -> int:
    return 16 if _INTERPRETED else 256


def selective_decay(gate: torch.Tensor, order_index: int, heads: int, perm: torch.Tensor | None, cls_zero: bool):
    """``(a [B, H, L] fp32, F [B*H, L+1] float64)`` of scan order ``order_index`` from gate logits
    ``gate [B, L, orders*H]`` (``perm``: that order's int32 index table, or ``None`` for token order)."""
    batch, length, _ = gate.shape
    a = torch.empty(batch, heads, length, device=gate.device, dtype=torch.float32)
    prefix = torch.empty(batch * heads, length + 1, device=gate.device, dtype=torch.float64)
    block = _decay_block()
    run_kernel(_selective_decay_kernel, (batch * heads,), gate, perm if perm is not None else gate, a, prefix,
               length, heads, gate.stride(0), gate.stride(1), order_index * heads, BL=block,
               HAS_IDX=perm is not None, CLS_ZERO=cls_zero)
    return a, prefix


def selective_decay_grad(gate: torch.Tensor, order_index: int, heads: int, perm: torch.Tensor | None,
                         cls_zero: bool, stats, d_gate: torch.Tensor) -> None:
    """Write ``d gate[..., order_index*H : (order_index+1)*H]`` from the attention kernels' statistics."""
    batch, length, _ = gate.shape
    block = _decay_block()
    run_kernel(_selective_decay_grad_kernel, (batch * heads,),
        gate, perm if perm is not None else gate, *stats, d_gate, length, heads, gate.stride(0), gate.stride(1),
        d_gate.stride(0), d_gate.stride(1), order_index * heads, BL=block, HAS_IDX=perm is not None,
        CLS_ZERO=cls_zero)


def _rows_per_program(dim: int) -> tuple[int, int]:
    if _INTERPRETED:
        return 16, 1
    rows, warps = launch("feature_map")
    return (rows if dim <= 64 else max(16, rows // 2)), warps


def feature_forward(q_raw: torch.Tensor, k_raw: torch.Tensor, fmap: int, decay=None):
    """``(phi(q), phi(k), decays)`` of two ``[B, H, L, D]`` views with equal strides, written token-major.

    ``decay``: ``None``, or LION-S's ``(gate [B, L, orders*H], perms, cls_zero)`` (``perms``: one int32 index
    table or ``None`` per scan order), whose log-decays and prefix sums (as :func:`selective_decay` returns
    them, one pair per order) the same launch forms; ``decays`` is then their list, else empty."""
    batch, heads, length, dim = q_raw.shape
    yq = empty_blhd(batch, heads, length, dim, q_raw.dtype, q_raw.device)
    yk = empty_blhd(batch, heads, length, dim, k_raw.dtype, k_raw.device)
    rows, warps = _rows_per_program(dim)
    if decay is None:
        run_kernel(_feature_fwd_kernel, (cdiv(length, rows), batch * heads, 2),
            q_raw, k_raw, yq, yk, length, heads, *strides3(q_raw), *strides3(yq), q_raw, q_raw, q_raw, q_raw, q_raw,
            0, 0, D=dim, BR=rows, FMAP=fmap, DECAY=False, BL=16, HAS_IDX=False, CLS_ZERO=False, num_warps=warps)
        return yq, yk, []
    gate, perms, cls_zero = decay
    orders = len(perms)
    a = torch.empty(orders, batch, heads, length, device=gate.device, dtype=torch.float32)
    prefix = torch.empty(orders, batch * heads, length + 1, device=gate.device, dtype=torch.float64)
    has_idx = perms[0] is not None
    run_kernel(_feature_fwd_kernel, (cdiv(length, rows), batch * heads, 2 + orders),
        q_raw, k_raw, yq, yk, length, heads, *strides3(q_raw), *strides3(yq), gate,
        perms[0] if has_idx else gate, perms[-1] if has_idx else gate, a, prefix, gate.stride(0), gate.stride(1),
        D=dim, BR=rows, FMAP=fmap, DECAY=True, BL=_decay_block(), HAS_IDX=has_idx, CLS_ZERO=cls_zero,
        num_warps=warps)
    return yq, yk, list(zip(a.unbind(0), prefix.unbind(0)))


def feature_backward(q_raw, k_raw, dyq, dyk, dq_out, dk_out, fmap: int, decay_grad=None, qk: bool = True) -> None:
    """Write ``J_phi(q)^T dyq`` into ``dq_out`` and the same for k (all ``[B, H, L, D]``, any strides;
    ``dq_out``/``dk_out`` share their strides). ``decay_grad``: ``None``, or LION-S's ``(gate, perms, cls_zero,
    stats, d_gate)`` (``stats``: each order's four statistics, see :func:`selective_decay_grad`), whose
    ``d gate`` the same launch writes; with ``qk=False`` only that (``dyq``.. ``dk_out`` unused)."""
    batch, heads, length, dim = q_raw.shape
    rows, warps = _rows_per_program(dim)
    if not qk:
        dyq = dyk = dq_out = dk_out = q_raw
    args = (q_raw, k_raw, dyq, dyk, dq_out, dk_out, length, heads, *strides3(q_raw), *strides3(dyq), *strides3(dyk),
            *strides3(dq_out))
    if decay_grad is None:
        run_kernel(_feature_bwd_kernel, (cdiv(length, rows), batch * heads, 2), *args, *(q_raw,) * 12, 0, 0, 0, 0,
                   D=dim, BR=rows, FMAP=fmap, DECAY=False, BL=16, HAS_IDX=False, CLS_ZERO=False, QK=True,
                   num_warps=warps)
        return
    gate, perms, cls_zero, stats, d_gate = decay_grad
    has_idx = perms[0] is not None
    grid = (cdiv(length, rows), batch * heads, 2 + len(perms)) if qk else (1, batch * heads, len(perms))
    run_kernel(_feature_bwd_kernel, grid, *args,
               gate, perms[0] if has_idx else gate, perms[-1] if has_idx else gate, *stats[0], *stats[-1], d_gate,
               gate.stride(0), gate.stride(1), d_gate.stride(0), d_gate.stride(1), D=dim, BR=rows, FMAP=fmap,
               DECAY=True, BL=_decay_block(), HAS_IDX=has_idx, CLS_ZERO=cls_zero, QK=qk, num_warps=warps)


def _views(qkv: torch.Tensor):
    """q, k, v of ``[B, L, 3, H, D]`` as ``[B, H, L, D]`` views (no copy; two operators, not four)."""
    return qkv.transpose(1, 3).unbind(2)


def _unpack(projection: torch.Tensor, packing: tuple[int, int, int, int, int]):
    """``(qkv [B, L, 3, H, D], gate [B, L, width])`` as views of the columns of ``projection [B, L, W]`` that
    ``packing = (qkv column, gate column, gate width, heads, head dim)`` names."""
    qkv_col, gate_col, gate_width, heads, dim = packing
    qkv = projection[..., qkv_col:qkv_col + 3 * heads * dim].unflatten(-1, (3, heads, dim))
    return qkv, projection[..., gate_col:gate_col + gate_width]


def _zero_unpacked_columns(d_projection: torch.Tensor, packing) -> None:
    """Zero the gradient of the columns of the projection that neither q, k, v nor the gate use (padding)."""
    qkv_col, gate_col, gate_width, heads, dim = packing
    used = sorted([(qkv_col, qkv_col + 3 * heads * dim), (gate_col, gate_col + gate_width)])
    start = 0
    for lo, hi in used + [(d_projection.shape[-1], d_projection.shape[-1])]:
        if lo > start:
            d_projection[..., start:lo].zero_()
        start = max(start, hi)


class LionLayerFunction(torch.autograd.Function):
    """``context [B,H,L,D]`` (token-major memory) of LION from ``qkv [B, L, 3, H, D]`` (module doc).

    Decays, one per scan order: ``log_decay_1``/``log_decay_2`` (``None`` or LION-D's ``[H]``), or LION-S's
    raw gate logits ``gate [B, L, orders*H]`` (``a = logsigmoid(-gate)``, zero on the class token with
    ``cls_zero``), turned into log-decays and their prefix sums, and differentiated, by the feature map's
    launches (both scan orders in one; without a feature map, by one launch per order each way). ``orders``:
    ``None`` (one order, the token order) or ``((perm, inverse), ...)`` (two scan orders; ``perm`` int32).
    ``mode`` is ``NORMALIZED`` or ``SCALED``.
    ``packing``: ``qkv`` is instead one projection ``[B, L, W]`` holding q, k, v and the gate logits as column
    slices (:func:`_unpack`); its gradient is then written in one buffer, not one per slice."""

    @staticmethod
    def forward(ctx, qkv, log_decay_1, log_decay_2, gate, cls_zero: bool, fmap: int, form: str, mode: int,
                scale: float, eps: float, chunk: int, key_mask, dropout_p: float, seed, orders, packing=None):
        projection = qkv
        if packing is not None:
            qkv, gate = _unpack(projection, packing)
        q_raw, k_raw, v = _views(qkv)
        n_orders = 1 if orders is None else 2
        perms = [None] if orders is None else [order[0] for order in orders]
        gate_decays = []  # LION-S's, formed by the feature-map launch where there is one
        in_feature_launch = bool(fmap) and gate is not None and bool(launch("layer_gate_in_feature_map")[0])
        if fmap:
            q, k, gate_decays = feature_forward(q_raw, k_raw, fmap, (gate, perms, cls_zero) if in_feature_launch
                                                else None)
        else:
            q, k = q_raw, k_raw
        heads = q.shape[1]
        kernel_decays, prefixes = [], []
        for i in range(n_orders):
            perm = perms[i]
            if gate is not None:
                a, prefix = gate_decays[i] if gate_decays else selective_decay(gate, i, heads, perm, cls_zero)
            else:
                a, prefix = (log_decay_1, log_decay_2)[i], None
                if a is not None and a.dim() == 3 and perm is not None:
                    a = a.index_select(-1, perm)  # the kernels read a scan order's decays in scan order
            kernel_decays.append(a)
            prefixes.append(prefix)
        one_launch = _orders_in_one_launch(form, orders, kernel_decays, dropout_p, q.shape[2])
        if form == "attention":
            if orders is None:
                out, den = attention_forward(q, k, v, kernel_decays[0], mode, mode == NORMALIZED, scale, eps,
                                             f64=prefixes[0], key_mask=key_mask, dropout_p=dropout_p, seed=seed)
            elif one_launch:
                out, den = attention_forward(q, k, v, kernel_decays[0], mode, True, scale, eps, f64=prefixes[0],
                                             key_mask=key_mask, second=_second(orders, kernel_decays, prefixes))
            else:
                prev = attention_forward(q, k, v, kernel_decays[0], PARTS, True, 1.0, 0.0, f64=prefixes[0],
                                         key_mask=key_mask, order=orders[0][0], dropout_p=dropout_p,
                                         seed=seed[0:1] if seed is not None else None)
                out, den = attention_forward(q, k, v, kernel_decays[1], mode, True, scale, eps, f64=prefixes[1],
                                             key_mask=key_mask, order=orders[1][0], prev=prev,
                                             dropout_p=dropout_p, seed=seed[1:2] if seed is not None else None)
            states = ()
        elif kernel_decays[0] is None:
            # LION-LIT over long sequences: one global state per head (global_state.py), kept for the backward
            states = global_state(k, v, key_mask)
            out, den = global_forward(q, k, v, mode, mode == NORMALIZED, scale, eps, key_mask=key_mask, state=states)
        else:
            # the forward's chunk states serve the backward (one state pass fewer, chunk.keep_forward_states);
            # LION-D's backward also reads first-moment states. Two scan orders: two launches, the second adding
            # the first's parts (token rows) before it normalises.
            keep = any(ctx.needs_input_grad[:4]) and keep_forward_states()
            states, prev = [], None
            for i in range(n_orders):
                perm = orders[i][0] if orders is not None else None
                moment = keep and kernel_decays[i].dim() == 1 and ctx.needs_input_grad[1 + i]
                last = i == n_orders - 1
                out, den, *kept = chunk_forward(
                    q, k, v, kernel_decays[i], mode if last else PARTS, True if not last else mode == NORMALIZED,
                    scale if last else 1.0, eps if last else 0.0, chunk, keep_states=keep, moment=moment,
                    key_mask=key_mask, order=perm, prev=prev, out_layout="blhd")
                prev = (out, den)
                states.extend(kept[0] if keep else ())
            states = tuple(states)
        ctx.save_for_backward(projection, q if fmap else None, k if fmap else None, out, den, key_mask, seed,
                              gate if packing is None else None, *kernel_decays, *prefixes, *states)
        ctx.meta = (fmap, form, mode, scale, eps, chunk, dropout_p, orders, n_orders, cls_zero, packing, perms,
                    in_feature_launch)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (fmap, form, mode, scale, eps, chunk, dropout_p, orders, n_orders, cls_zero, packing, perms,
         gate_in_feature_launch) = ctx.meta
        qkv, q, k, out, den, key_mask, seed, gate, *rest = ctx.saved_tensors
        if packing is not None:
            projection = qkv
            qkv, gate = _unpack(projection, packing)
        kernel_decays, prefixes, states = rest[:n_orders], rest[n_orders:2 * n_orders], rest[2 * n_orders:]
        q_raw, k_raw, v = _views(qkv)
        if not fmap:
            q, k = q_raw, k_raw
        # the normalised output's g' and c formed by the attention form's dq launch or the chunk form's query-side
        # state pass (one launch fewer), or by a launch of their own (grad_inputs; the LIT global-state form)
        # the attention form's backward with its own dq launch (the other one sums dq atomically in the dkv launch)
        separate_dq = form == "attention" and not fused_dq(q_raw.shape[2], dropout=dropout_p > 0)
        in_kernels = separate_dq if form == "attention" else kernel_decays[0] is not None
        prep_in_kernels = in_kernels and mode == NORMALIZED and grad_out is not None \
            and bool(launch("layer_grad_prep_in_backward")[0])
        if prep_in_kernels:
            batch, heads, length, dv = v.shape
            g = empty_blhd(batch, heads, length, dv, kernel_dtype(qkv.dtype), qkv.device)
            c = torch.empty(batch, heads, length, device=qkv.device, dtype=torch.float32)
        else:
            g, c = grad_inputs(mode, grad_out, None, out, den, scale, eps, v, qkv.dtype)
        if packing is not None:
            d_projection = torch.empty_like(projection)
            _zero_unpacked_columns(d_projection, packing)
            d_qkv, d_gate = _unpack(d_projection, packing)
        else:
            d_qkv = torch.empty_like(qkv)
        dq_slot, dk_slot, dv_slot = _views(d_qkv)
        # the feature map's backward in the attention kernels' epilogues (one launch and two buffers fewer) or
        # in a launch of its own after the other forms and the atomic-dq backward
        epilogue = bool(fmap) and separate_dq and bool(launch("layer_feature_grad_in_attention")[0])
        if fmap and not epilogue:
            batch, heads, length, dim = q.shape
            dq_f = empty_blhd(batch, heads, length, dim, qkv.dtype, qkv.device)
            dk_f = empty_blhd(batch, heads, length, dim, qkv.dtype, qkv.device)
        else:
            dq_f, dk_f = dq_slot, dk_slot
        heads = q.shape[1]
        if packing is not None:
            gate_grad = True  # backward runs because the projection needs its gradient, gate columns included
        else:
            gate_grad = gate is not None and ctx.needs_input_grad[3]
            d_gate = torch.empty_like(gate) if gate_grad else None
        needs = [kernel_decays[i] is not None and (gate_grad if gate is not None else ctx.needs_input_grad[1 + i])
                 for i in range(n_orders)]
        dlogs = [None, None]
        gate_stats = []  # LION-S: each order's statistics, turned into d gate by one launch at the end

        def collect(i: int, dlog) -> None:
            """Keep scan order ``i``'s ``d log_decay`` (by token) or LION-S's statistics (by scan position)."""
            if gate_grad:  # the statistics are by scan position: one launch turns them into d gate by token
                gate_stats.append(dlog)
            elif dlog is not None and dlog.dim() == 3 and orders is not None:
                dlogs[i] = dlog.index_select(-1, orders[i][1])  # scan order -> token order
            else:
                dlogs[i] = dlog if needs[i] else None

        if form == "attention" and _orders_in_one_launch(form, orders, kernel_decays, dropout_p, q.shape[2]):
            _, _, _, pair = attention_backward(
                q, k, v, kernel_decays[0], g, c, needs[0] or needs[1], f64=prefixes[0], key_mask=key_mask,
                grads=(dq_f, dk_f, dv_slot), return_stats=gate is not None,
                feature=(fmap, q_raw, k_raw) if epilogue else None,
                prep=(grad_out, out, den, eps) if prep_in_kernels else None,
                second=_second(orders, kernel_decays, prefixes))
            for i, dlog in enumerate(pair):
                collect(i, dlog)
        elif form == "attention":
            for i in range(n_orders):
                perm = perms[i]
                _, _, _, dlog = attention_backward(
                    q, k, v, kernel_decays[i], g, c, needs[i], f64=prefixes[i], key_mask=key_mask, order=perm,
                    grads=(dq_f, dk_f, dv_slot), accumulate=i > 0, dropout_p=dropout_p,
                    seed=seed[i:i + 1] if seed is not None and orders is not None else seed,
                    return_stats=gate is not None, feature=(fmap, q_raw, k_raw) if epilogue else None,
                    prep=(grad_out, out, den, eps) if prep_in_kernels and i == 0 else None)
                collect(i, dlog)
        elif kernel_decays[0] is None:
            global_backward(q, k, v, g, c, key_mask=key_mask, state=tuple(states), grads=(dq_f, dk_f, dv_slot))
        else:
            for i in range(n_orders):
                perm = perms[i]
                kept = tuple(states[4 * i:4 * i + 4]) if states else None
                _, _, _, dlog = chunk_backward(q, k, v, kernel_decays[i], g, c, needs[i], chunk, states=kept,
                                               key_mask=key_mask, order=perm, grads=(dq_f, dk_f, dv_slot),
                                               accumulate=i > 0, return_stats=gate is not None,
                                               prep=(grad_out, out, den, eps) if prep_in_kernels and i == 0
                                               else None)
                collect(i, dlog)
        # d gate where the forward formed the decays: in the feature map's launch or in its own
        in_feature_launch = gate_in_feature_launch and bool(gate_stats)
        if fmap and (not epilogue or in_feature_launch):
            feature_backward(q_raw, k_raw, dq_f, dk_f, dq_slot, dk_slot, fmap,
                             (gate, perms, cls_zero, gate_stats, d_gate) if in_feature_launch else None,
                             qk=not epilogue)
        if not in_feature_launch:
            for i, stats in enumerate(gate_stats):
                selective_decay_grad(gate, i, heads, perms[i], cls_zero, stats, d_gate)
        if packing is not None:
            return (d_projection, dlogs[0], dlogs[1], None) + (None,) * 12
        return (d_qkv, dlogs[0], dlogs[1], d_gate) + (None,) * 12


def _orders_in_one_launch(form: str, orders, kernel_decays: list, dropout_p: float, length: int) -> bool:
    """Whether the attention form runs both scan orders in one launch each way
    (``LAUNCH["attn_orders_in_one_launch"]``): not with attention dropout (each order draws its own mask, as the
    PyTorch path does) nor with the atomic-dq backward."""
    return (form == "attention" and orders is not None and kernel_decays[0] is not None and dropout_p == 0
            and not fused_dq(length) and bool(launch("attn_orders_in_one_launch")[0]))


def _second(orders, kernel_decays: list, prefixes: list) -> tuple:
    """The attention kernels' ``second`` argument: each token's position in either order, the second order's decays."""
    return _int32_table(orders[0][1], orders[1][1]), kernel_decays[1], prefixes[1]


_INT32_TABLES: dict[tuple[int, ...], tuple[tuple[torch.Tensor, ...], torch.Tensor]] = {}


def _int32_table(*tables: torch.Tensor) -> torch.Tensor:
    """``tables`` (one, or stacked) as the int32 index table the kernels read, converted once per (cached) scan
    order."""
    key = tuple(id(t) for t in tables)
    hit = _INT32_TABLES.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], tables)):
        if len(_INT32_TABLES) > 64:
            _INT32_TABLES.clear()
        table = tables[0] if len(tables) == 1 else torch.stack(tables)
        hit = _INT32_TABLES[key] = (tables, table.to(torch.int32).contiguous())
    return hit[1]


def lion_layer(qkv: torch.Tensor, log_decays: list, fmap: int, form: str, mode: int, scale: float, eps: float,
               chunk: int, key_mask: torch.Tensor | None, dropout_p: float, orders=None,
               gate: torch.Tensor | None = None, cls_zero: bool = False, packing=None) -> torch.Tensor:
    """Run :class:`LionLayerFunction`; returns the context ``[B, H, L, D]`` (token-major memory).
    ``gate`` (LION-S's raw logits ``[B, L, orders*H]``) replaces ``log_decays``; with ``packing``, ``qkv`` is
    the projection holding both (``LionLayerFunction``)."""
    # one seed per scan order, from torch's generator (interface.dropout_seed draws the single-order one)
    seed = torch.randint(0, 2**31 - 1, (2,), device=qkv.device, dtype=torch.int64) if dropout_p > 0 else None
    if orders is not None:
        orders = tuple((_int32_table(perm), inverse) for perm, inverse in orders)
    if gate is not None or packing is not None:
        log_decays = [None, None]
    log_decay_2 = log_decays[1] if len(log_decays) > 1 else None
    return LionLayerFunction.apply(qkv, log_decays[0], log_decay_2, gate, bool(cls_zero), fmap, form, mode,
                                   float(scale), float(eps), chunk, key_mask, float(dropout_p), seed, orders, packing)


__all__ = ["FEATURE_MAPS", "LionLayerFunction", "feature_backward", "feature_forward", "lion_layer",
           "selective_decay", "selective_decay_grad"]
