"""Pieces shared by the Triton forms: output modes, the gradient seen by the kernels, the feature maps.

Every form computes ``A = (Q K^T) * M`` implicitly and returns one of three things (``OUT_MODE``):

* ``PARTS`` (0): ``num = A V`` and ``den = A 1`` in fp32 (the parts API, the two-order combination);
* ``NORMALIZED`` (1): ``num / (den + eps)`` in the input dtype (and ``den`` kept for the backward);
* ``SCALED`` (2): ``scale * num`` in the input dtype.

The backward of all three reduces to one shape the kernels understand: with an upstream gradient
``g`` (``[B,H,L,Dv]``) and a row bias ``c`` (``[B,H,L]``), the gradient of the masked scores is

    dA_ij = g'_i . v_j + c_i,    g' = r * g,

where ``r_i`` is ``1`` (parts), ``1 / (den_i + eps)`` (normalized) or ``scale`` (scaled), and ``c_i`` is
``dden_i`` (parts), ``-(g_i . out_i) / (den_i + eps)`` (normalized) or absent (scaled). That is
FlashAttention's ``P * (dP - delta)`` identity with LION's ``[V | 1]`` denominator.
"""

from __future__ import annotations

import torch

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None

from .tuning import launch
from .launcher import run_kernel
from .utils import cdiv, empty_blhd, row_major_last, strides3

PARTS, NORMALIZED, SCALED = 0, 1, 2

if triton is not None:

    @triton.jit
    def _feature(x, FMAP: tl.constexpr):
        """``phi(x)`` of a ``[rows, D]`` fp32 tile (row-wise for the L2-normalised map)."""
        if FMAP == 1:
            return tl.where(x > 0, x + 1.0, tl.exp(tl.minimum(x, 0.0)))
        s = x * tl.sigmoid(x) + 0.5  # silu(x) + 0.5 >= 0.22: the norm never vanishes
        return s / tl.sqrt(tl.sum(s * s, 1))[:, None]

    @triton.jit
    def _feature_grad(x, dy, FMAP: tl.constexpr):
        """``J_phi(x)^T dy`` for a ``[rows, D]`` fp32 tile."""
        if FMAP == 1:
            return tl.where(x > 0, dy, dy * tl.exp(tl.minimum(x, 0.0)))
        sig = tl.sigmoid(x)
        s = x * sig + 0.5
        inv_n = 1.0 / tl.sqrt(tl.sum(s * s, 1))
        y = s * inv_n[:, None]
        ds = (dy - y * tl.sum(y * dy, 1)[:, None]) * inv_n[:, None]
        return ds * (sig + x * sig * (1.0 - sig))

    @triton.jit
    def _scalar_columns(x, BT: tl.constexpr, VW: tl.constexpr, dtype: tl.constexpr):
        """``[BT, VW]`` operand of the vector states' product: ``x`` (fp32 ``[BT]``) in the operands' ``dtype`` as two
        columns, its rounding and the rest (exact to ~2^-16 of ``x`` in bf16, to fp32 in fp32), zeros elsewhere."""
        hi = x.to(dtype)
        lo = (x - hi.to(tl.float32)).to(dtype)
        col = tl.arange(0, VW)[None, :]
        return tl.where(col == 0, hi[:, None], tl.where(col == 1, lo[:, None], tl.zeros([BT, VW], dtype)))

    @triton.jit
    def _normalized_row_grads(do, o, den_eps):
        """``(g' = r * do, c = -r * (do . o))`` of fp32 ``[rows, D]`` tiles, ``r = 1 / den_eps`` (0 where that is
        1/0): the normalised output's row gradients (module doc), shared by every launch that forms them."""
        r = tl.where(den_eps != 0.0, 1.0 / tl.where(den_eps != 0.0, den_eps, 1.0), 0.0)
        return do * r[:, None], -r * tl.sum(do * o, 1)

    @triton.jit
    def _normalized_grad_kernel(DO, O, DEN, G, C, L, H, sdb, sdh, sdl, sob, soh, sol, sgb, sgh, sgl, eps,
                                D: tl.constexpr, BR: tl.constexpr):
        """One pass over a block of rows of one (batch, head): ``r = 1/(den+eps)`` (0 where that is 1/0),
        ``g' = r * do``, ``c = -r * (do . out)``; do, out and g' through their strides."""
        i_bh = tl.program_id(1)
        i_b = i_bh // H
        i_h = i_bh % H
        rows = tl.program_id(0) * BR + tl.arange(0, BR)
        valid = rows < L
        offs = tl.arange(0, D)
        r64 = rows.to(tl.int64)[:, None]
        do = tl.load(DO + i_b.to(tl.int64) * sdb + i_h * sdh + r64 * sdl + offs[None, :], mask=valid[:, None],
                     other=0.0).to(tl.float32)
        o = tl.load(O + i_b.to(tl.int64) * sob + i_h * soh + r64 * sol + offs[None, :], mask=valid[:, None],
                    other=0.0).to(tl.float32)
        g, c = _normalized_row_grads(do, o, tl.load(DEN + i_bh * L + rows, mask=valid, other=1.0) + eps)
        tl.store(G + i_b.to(tl.int64) * sgb + i_h * sgh + r64 * sgl + offs[None, :], g.to(G.dtype.element_ty),
                 mask=valid[:, None])
        tl.store(C + i_bh * L + rows, c, mask=valid)


def vector_states_by_mma(vec: bool, ones: bool, dtype: torch.dtype) -> bool:
    """Whether a state pass (the chunk form's, LIT's global one) forms its vector state by a matrix product with
    :func:`_scalar_columns` (VEC_MMA): as ``LAUNCH["chunk_state_vector_mma"]`` says, except a per-position bias in
    fp16 (the backward's ``c`` can leave fp16's range where the row gradients do not: its fp32 row sums stay)."""
    return vec and bool(launch("chunk_state_vector_mma")[0]) and (ones or dtype != torch.float16)


def prep_buffers(grad_out: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Empty ``(g [B,H,L,Dv] in dtype, token-major; c [B,H,L] fp32)`` for a backward launch that forms g' and c itself."""
    g = empty_blhd(*grad_out.shape, dtype, grad_out.device)
    return g, torch.empty(grad_out.shape[:3], device=grad_out.device, dtype=torch.float32)


def check_prep_buffers(g: torch.Tensor, c: torch.Tensor | None, dtype: torch.dtype) -> None:
    """Raise unless ``g`` (``[B,H,L,Dv]``, the kernels' ``dtype``, contiguous last dim) and ``c`` (``[B,H,L]`` fp32
    contiguous) can take the ``g'`` and ``c`` that a backward launch forms itself (``prep``): a converted copy
    of either would leave the caller's buffer unwritten."""
    if c is None or not c.is_contiguous() or c.dtype != torch.float32 or g.dtype != dtype or g.stride(-1) != 1:
        raise ValueError("prep needs c as a [B, H, L] fp32 contiguous buffer and g in the kernels' dtype with a "
                         "contiguous last dim")


def grad_inputs(mode: int, grad_out: torch.Tensor | None, grad_den: torch.Tensor | None,
                out: torch.Tensor | None, den: torch.Tensor | None, scale: float, eps: float,
                like: torch.Tensor, dtype: torch.dtype):
    """``(g' [B,H,L,Dv] in dtype, c [B,H,L] fp32 or None)`` for the backward kernels (see module doc).

    ``g'`` comes back in token-major memory (``empty_blhd``) or in ``grad_out``'s own strides; the
    kernels read either."""
    if mode == PARTS:
        g = torch.zeros_like(like, dtype=dtype) if grad_out is None else row_major_last(grad_out, dtype)
        c = None if grad_den is None else grad_den.float().contiguous()
        return g, c
    if grad_out is None:
        return torch.zeros_like(like, dtype=dtype), None
    if mode == SCALED:  # one pass: the elementwise product is taken in fp32 and rounded once, as before
        return row_major_last((grad_out * scale).to(dtype)), None
    grad_out, out = row_major_last(grad_out), row_major_last(out)
    den = den.contiguous()
    batch, heads, length, dv = grad_out.shape
    g = empty_blhd(batch, heads, length, dv, dtype, grad_out.device)
    c = torch.empty(den.shape, device=den.device, dtype=torch.float32)
    block, warps = launch("norm_grad")
    if dv > 64:
        block = max(16, block // 2)
    run_kernel(_normalized_grad_kernel, (cdiv(length, block), batch * heads),
        grad_out, out, den, g, c, length, heads, *strides3(grad_out), *strides3(out), *strides3(g), float(eps),
        D=dv, BR=block, num_warps=warps)
    return g, c


def log_decay_grad(log_decay: torch.Tensor, row_lower: torch.Tensor | None, row_upper: torch.Tensor | None,
                   col_lower: torch.Tensor | None, col_upper: torch.Tensor | None,
                   row_distance: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient of ``log_decay`` from the kernels' row/column sums of ``P = dA * A`` (all ``[B,H,L]`` fp32).

    ``log M_ij = F_i - F_j`` below the diagonal and ``G_j - G_i`` above it, so
    ``dF_t = sum_{j<t} P_tj - sum_{i>t} P_it`` and ``dG_t = sum_{i<t} P_it - sum_{j>t} P_tj``; with
    ``F_t = sum_{m<t} a_m`` and ``G_t = sum_{m<=t} a_m``,
    ``da_m = sum_{t>m} dF_t + sum_{t>=m} dG_t`` (two reverse cumulative sums, taken in float64).
    LION-D (``[H]``) instead gets ``sum_{b,i,j} P_ij |i - j|`` from ``row_distance``.
    """
    if log_decay.dim() == 1:
        return row_distance.sum(dim=(0, 2), dtype=torch.float64).to(log_decay.dtype)
    d_f = (row_lower - col_lower).double()
    d_g = (col_upper - row_upper).double()
    inclusive = (d_f + d_g).flip(-1).cumsum(-1).flip(-1)
    return (inclusive - d_f).to(log_decay.dtype)
