"""LayerNorm over the last dim in one launch each way, its result written in the dtype its reader wants.

Under CUDA autocast ``layer_norm`` runs in fp32: the LION vision models' bf16 residual stream is cast to fp32
(a copy), normalised by PyTorch's kernel (fp32 out), and cast back to bf16 by the Linear that reads the result
(another copy); the backward casts the two gradients back the same way. :class:`LayerNormFunction` reads the
input in its own dtype, computes in fp32 and writes the result in ``out_dtype`` (the autocast dtype: what the
Linear would have cast it to); its backward reads the result's gradient in that dtype, writes the input's
gradient in the input's dtype, and sums the weight and bias gradients from fp32 partial sums, one row of
partials per program. A second input (``branch``) is added in fp32 first: a post-norm block's
``norm(stream + branch)`` in one launch, its backward writing the gradient once per input dtype. The
reference is :func:`lion_hf.kernels.layer_norm.layer_norm_reference`.
"""

from __future__ import annotations

import functools

import torch

from .launcher import run_kernel
from .tuning import launch
from .utils import cdiv, interpreter_enabled

#: how Triton runs this module's kernels, fixed when it defined them (at import): read once, not per launch
_INTERPRETED = interpreter_enabled()

try:  # optional dependency
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover
    triton = None
    tl = None

#: the widest row the kernels hold in registers (one program normalises whole rows)
MAX_WIDTH = 8192

if triton is not None:

    @triton.jit
    def _normalized_rows(X, BR, MEAN, RSTD, rows, cols, row_ok, col_ok, sx, sbr, N, eps, STATS: tl.constexpr,
                         HAS_BRANCH: tl.constexpr):
        """``(x_hat, rstd)`` of a ``[ROWS, BLOCK_N]`` tile in fp32 (zero outside the rows and columns) of ``x``
        (plus the branch ``BR``, added in fp32, with ``HAS_BRANCH``); ``STATS``: the rows' mean and rstd are
        computed (and stored), else read back."""
        ok = row_ok[:, None] & col_ok[None, :]
        x = tl.load(X + rows.to(tl.int64)[:, None] * sx + cols[None, :], mask=ok, other=0.0).to(tl.float32)
        if HAS_BRANCH:
            x += tl.load(BR + rows.to(tl.int64)[:, None] * sbr + cols[None, :], mask=ok, other=0.0).to(tl.float32)
        if STATS:
            mean = tl.sum(x, 1) / N
            centred = tl.where(ok, x - mean[:, None], 0.0)
            rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, 1) / N + eps)  # biased variance, as torch's
            tl.store(MEAN + rows, mean, mask=row_ok)
            tl.store(RSTD + rows, rstd, mask=row_ok)
        else:
            mean = tl.load(MEAN + rows, mask=row_ok, other=0.0)
            rstd = tl.load(RSTD + rows, mask=row_ok, other=0.0)
            centred = tl.where(ok, x - mean[:, None], 0.0)
        return centred * rstd[:, None], rstd

    @triton.jit
    def _layer_norm_forward_kernel(X, BR, W, B, Y, MEAN, RSTD, M, N, sx, sbr, sy, eps, BLOCK_N: tl.constexpr,
                                   ROWS: tl.constexpr, HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr,
                                   HAS_BRANCH: tl.constexpr):
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK_N)
        row_ok = rows < M
        col_ok = cols < N
        y, _ = _normalized_rows(X, BR, MEAN, RSTD, rows, cols, row_ok, col_ok, sx, sbr, N, eps, True, HAS_BRANCH)
        if HAS_WEIGHT:
            y = y * tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        if HAS_BIAS:
            y = y + tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        tl.store(Y + rows.to(tl.int64)[:, None] * sy + cols[None, :], y.to(Y.dtype.element_ty),
                 mask=row_ok[:, None] & col_ok[None, :])

    @triton.jit
    def _layer_norm_backward_kernel(X, BR, W, DY, MEAN, RSTD, DX, DXB, DW, DB, M, N, sx, sbr, sdy, sdx, sdxb,
                                    rows_per_program, BLOCK_N: tl.constexpr, ROWS: tl.constexpr,
                                    HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_BRANCH: tl.constexpr):
        # dx = rstd * (w dy - mean(w dy) - x_hat * mean(w dy x_hat)); the program's rows add their dy x_hat and
        # dy to one row of partials of dw and db. With a branch (x + branch normalised) dx is also the branch's
        # gradient, written a second time in its dtype (DXB)
        pid = tl.program_id(0)
        cols = tl.arange(0, BLOCK_N)
        col_ok = cols < N
        if HAS_WEIGHT:
            w = tl.load(W + cols, mask=col_ok, other=0.0).to(tl.float32)
        dw = tl.zeros([BLOCK_N], dtype=tl.float32)
        db = tl.zeros([BLOCK_N], dtype=tl.float32)
        first = pid * rows_per_program
        end = tl.minimum(first + rows_per_program, M)
        for start in range(first, end, ROWS):
            rows = start + tl.arange(0, ROWS)
            row_ok = rows < end
            ok = row_ok[:, None] & col_ok[None, :]
            x_hat, rstd = _normalized_rows(X, BR, MEAN, RSTD, rows, cols, row_ok, col_ok, sx, sbr, N, 0.0, False,
                                           HAS_BRANCH)
            dy = tl.load(DY + rows.to(tl.int64)[:, None] * sdy + cols[None, :], mask=ok, other=0.0).to(tl.float32)
            if HAS_WEIGHT:
                w_dy = dy * w[None, :]
            else:
                w_dy = dy
            mean_w_dy = tl.sum(w_dy, 1) / N
            mean_w_dy_x = tl.sum(w_dy * x_hat, 1) / N
            dx = (w_dy - mean_w_dy[:, None] - x_hat * mean_w_dy_x[:, None]) * rstd[:, None]
            tl.store(DX + rows.to(tl.int64)[:, None] * sdx + cols[None, :], dx.to(DX.dtype.element_ty), mask=ok)
            if HAS_BRANCH:
                tl.store(DXB + rows.to(tl.int64)[:, None] * sdxb + cols[None, :], dx.to(DXB.dtype.element_ty),
                         mask=ok)
            if HAS_WEIGHT:
                dw += tl.sum(dy * x_hat, 0)
            if HAS_BIAS:
                db += tl.sum(dy, 0)
        if HAS_WEIGHT:
            tl.store(DW + pid.to(tl.int64) * N + cols, dw, mask=col_ok)
        if HAS_BIAS:
            tl.store(DB + pid.to(tl.int64) * N + cols, db, mask=col_ok)


#: the interpreter runs every program in NumPy: a few rows per program, a handful of backward programs
_INTERPRETER_LAUNCH = (2, 1, 4)


@functools.lru_cache(maxsize=None)
def _sm_count(device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count


def _block(width: int) -> int:
    """The power of two that holds a row (``triton.next_power_of_2`` costs ~4 us of host time per call)."""
    return 1 << (width - 1).bit_length()


def _rows2d(t: torch.Tensor) -> torch.Tensor:
    """``t`` as ``[rows, N]`` with a contiguous last dim (a view where the strides allow it)."""
    t = t if t.stride(-1) == 1 else t.contiguous()
    return t.reshape(-1, t.shape[-1])


def layer_norm_forward(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
                       out_dtype: torch.dtype, branch: torch.Tensor | None = None):
    """``(y [M, N] in out_dtype, mean [M], rstd [M] fp32)`` of ``x [M, N]`` (plus ``branch [M, N]``, added in
    fp32; last dims contiguous)."""
    rows, width = x.shape
    y = torch.empty(rows, width, device=x.device, dtype=out_dtype)
    mean, rstd = torch.empty(2, rows, device=x.device, dtype=torch.float32)
    per_program, warps = (_INTERPRETER_LAUNCH[0], 1) if _INTERPRETED else launch("layer_norm_forward")
    run_kernel(_layer_norm_forward_kernel, (cdiv(rows, per_program),),
               x, branch if branch is not None else x, weight if weight is not None else x,
               bias if bias is not None else x, y, mean, rstd, rows, width, x.stride(0),
               branch.stride(0) if branch is not None else 0, y.stride(0), float(eps),
               BLOCK_N=_block(width), ROWS=per_program, HAS_WEIGHT=weight is not None,
               HAS_BIAS=bias is not None, HAS_BRANCH=branch is not None, num_warps=warps)
    return y, mean, rstd


def layer_norm_backward(dy: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None, has_bias: bool,
                        mean: torch.Tensor, rstd: torch.Tensor, branch: torch.Tensor | None = None):
    """``(dx [M, N] in x's dtype, d branch in branch's dtype or None, dw [N] or None, db [N] or None)`` (the
    weight and bias gradients from fp32 sums, in ``weight``'s dtype); ``branch``: the forward's."""
    rows, width = x.shape
    dx = torch.empty_like(x)
    d_branch = torch.empty_like(branch) if branch is not None else None
    if _INTERPRETED:
        per_block, warps, programs = _INTERPRETER_LAUNCH
    else:
        per_block, warps, per_sm = launch("layer_norm_backward")
        programs = per_sm * _sm_count(x.device)
    programs = max(1, min(programs, cdiv(rows, per_block)))
    rows_per_program = cdiv(cdiv(rows, programs), per_block) * per_block
    programs = cdiv(rows, rows_per_program) if rows else 1
    partial = torch.empty(2, programs, width, device=x.device, dtype=torch.float32)
    run_kernel(_layer_norm_backward_kernel, (programs,),
               x, branch if branch is not None else x, weight if weight is not None else x, dy, mean, rstd, dx,
               d_branch if d_branch is not None else dx, partial[0], partial[1], rows, width, x.stride(0),
               branch.stride(0) if branch is not None else 0, dy.stride(0), dx.stride(0),
               d_branch.stride(0) if d_branch is not None else 0, rows_per_program,
               BLOCK_N=_block(width), ROWS=per_block, HAS_WEIGHT=weight is not None,
               HAS_BIAS=has_bias, HAS_BRANCH=branch is not None, num_warps=warps)
    param_dtype = weight.dtype if weight is not None else torch.float32
    sums = partial.sum(1).to(param_dtype)  # one reduction launch for both
    return dx, d_branch, sums[0] if weight is not None else None, sums[1] if has_bias else None


class LayerNormFunction(torch.autograd.Function):
    """``layer_norm(x [+ branch], (N,), weight, bias, eps)`` computed in fp32 and returned in ``out_dtype``; the
    gradients of ``x`` and ``branch`` come back in their own dtypes. ``x``, ``branch``: ``[..., N]`` of one
    shape (a last dim that is not contiguous is copied); ``branch`` (e.g. a post-norm block's bf16 residual
    branch next to its fp32 stream) is added in fp32, as ``x + branch`` would promote it."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps: float, out_dtype: torch.dtype, branch=None):
        shape = x.shape
        x2 = _rows2d(x)
        branch2 = _rows2d(branch) if branch is not None else None
        y, mean, rstd = layer_norm_forward(x2, weight, bias, eps, out_dtype, branch2)
        ctx.save_for_backward(x2, branch2, weight, mean, rstd)
        ctx.has_bias = bias is not None
        ctx.shape = shape
        return y.view(shape)

    @staticmethod
    def backward(ctx, grad):
        x2, branch2, weight, mean, rstd = ctx.saved_tensors
        dx, d_branch, dw, db = layer_norm_backward(_rows2d(grad), x2, weight, ctx.has_bias, mean, rstd, branch2)
        return (dx.view(ctx.shape), dw, db, None, None,
                d_branch.view(ctx.shape) if d_branch is not None else None)


__all__ = ["MAX_WIDTH", "LayerNormFunction", "layer_norm_backward", "layer_norm_forward"]
