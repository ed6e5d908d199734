"""Host-side pieces shared by the Triton forms: output modes and the gradient seen by the kernels.

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

PARTS, NORMALIZED, SCALED = 0, 1, 2

if triton is not None:

    @triton.jit
    def _normalized_grad_kernel(DO, O, DEN, G, C, N, eps, D: tl.constexpr, BR: tl.constexpr):
        """One pass over the rows: ``r = 1/(den+eps)``, ``g' = r * do``, ``c = -r * (do . out)``."""
        rows = tl.program_id(0) * BR + tl.arange(0, BR)
        valid = rows < N
        offs = tl.arange(0, D)
        ptrs = rows.to(tl.int64)[:, None] * D + offs[None, :]
        do = tl.load(DO + ptrs, mask=valid[:, None], other=0.0).to(tl.float32)
        o = tl.load(O + ptrs, mask=valid[:, None], other=0.0).to(tl.float32)
        r = 1.0 / (tl.load(DEN + rows, mask=valid, other=1.0) + eps)
        tl.store(G + ptrs, (do * r[:, None]).to(G.dtype.element_ty), mask=valid[:, None])
        tl.store(C + rows, -r * tl.sum(do * o, 1), mask=valid)


def grad_inputs(mode: int, grad_out: torch.Tensor | None, grad_den: torch.Tensor | None,
                out: torch.Tensor | None, den: torch.Tensor | None, scale: float, eps: float,
                like: torch.Tensor, dtype: torch.dtype):
    """``(g' [B,H,L,Dv] in dtype, c [B,H,L] fp32 or None)`` for the backward kernels (see module doc)."""
    if mode == PARTS:
        g = torch.zeros_like(like, dtype=dtype) if grad_out is None else grad_out.to(dtype)
        c = None if grad_den is None else grad_den.float().contiguous()
        return g.contiguous(), c
    if grad_out is None:
        return torch.zeros_like(like, dtype=dtype), None
    if mode == SCALED:
        return (grad_out.float() * scale).to(dtype).contiguous(), None
    grad_out, out, den = grad_out.contiguous(), out.contiguous(), den.contiguous()
    g = torch.empty(grad_out.shape, device=grad_out.device, dtype=dtype)
    c = torch.empty(den.shape, device=den.device, dtype=torch.float32)
    rows, dv = den.numel(), grad_out.shape[-1]
    block = 64 if dv <= 64 else 32
    _normalized_grad_kernel[(triton.cdiv(rows, block),)](grad_out, out, den, g, c, rows, float(eps), D=dv,
                                                         BR=block, num_warps=4)
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
        return row_distance.double().sum(dim=(0, 2)).to(log_decay.dtype)
    d_f = (row_lower - col_lower).double()
    d_g = (col_upper - row_upper).double()
    inclusive = (d_f + d_g).flip(-1).cumsum(-1).flip(-1)
    return (inclusive - d_f).to(log_decay.dtype)
