"""The Triton forms registered as PyTorch custom operators, so that ``torch.compile`` keeps them in its graph.

``torch.library.custom_op`` makes each launcher an opaque node: ``register_fake`` gives its output
shapes to the compiler and ``register_autograd`` connects the backward operator. Without this, Dynamo
would try to trace the host code of the launchers (Triton grids, environment reads) and break the graph.

Two operators, both taking ``form`` (``"attention"`` or ``"chunk"``) and the output ``mode`` of
:mod:`lion_hf.kernels.triton.common`:

* ``lion_forward(q, k, v, log_decay, ...) -> (out, den)``; ``den`` is an empty tensor when not computed
  (custom operators cannot return ``None``);
* ``lion_backward(...) -> (dq, dk, dv, dlog_decay)``; ``dlog_decay`` is empty when not needed.

The namespace is derived from this module's import name, so a second copy of the code (for example
the flat Hub bundle next to an installed ``lion_hf``) registers its own operators instead of clashing.
"""

from __future__ import annotations

from typing import Optional

import torch

from .attention import attention_backward, attention_forward
from .chunk import chunk_backward, chunk_forward
from .common import NORMALIZED, PARTS, grad_inputs, prep_buffers
from .tuning import launch
from .utils import empty_blhd, kernel_dtype

_NAMESPACE = "lion_" + "".join(ch if ch.isalnum() else "_" for ch in __name__)


def _output_like(form: str, batch: int, heads: int, length: int, dim: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    """The layout each form's launcher returns (and so the fake kernels too): the attention kernels
    write token-major ``[B, L, H, D]`` memory, the chunk launchers contiguous ``[B, H, L, D]``."""
    if form == "attention":
        return empty_blhd(batch, heads, length, dim, dtype, device)
    return torch.empty(batch, heads, length, dim, device=device, dtype=dtype)


def _canonical(t: torch.Tensor, form: str) -> torch.Tensor:
    """``t`` in the layout :func:`_output_like` promises (a no-op for what the launchers return)."""
    return _as_layout(t, _output_like(form, *t.shape, t.dtype, t.device))


def _as_layout(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` with ``like``'s strides (``like`` itself, filled, when they differ)."""
    return t if like.stride() == t.stride() else like.copy_(t)


def _grad_like(form: str, x: torch.Tensor) -> torch.Tensor:
    """The buffer of ``x``'s gradient, in the layout the backward promises (and so the fake kernel too): the
    attention kernels' token-major memory; for the chunk form ``x``'s own strides where ``x`` is dense
    (``empty_like``), so that autograd need not copy the gradient into a leaf's layout (three strided copies,
    0.83 ms of a 4.5 ms LION-D forward + backward at L = 16384: BENCHMARKS.md, eleventh pass)."""
    if form == "attention":
        return empty_blhd(*x.shape, x.dtype, x.device)
    return torch.empty_like(x)


@torch.library.custom_op(f"{_NAMESPACE}::lion_forward", mutates_args=())
def lion_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: Optional[torch.Tensor],
                 key_mask: Optional[torch.Tensor], seed: Optional[torch.Tensor],
                 form: str, mode: int, with_den: bool, scale: float, eps: float,
                 chunk: int, dropout_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(out [B,H,L,Dv], den [B,H,L] fp32 or empty)`` of one Triton form (see module doc)."""
    if form == "attention":
        out, den = attention_forward(q, k, v, log_decay, mode, with_den, scale, eps, key_mask=key_mask,
                                     dropout_p=dropout_p, seed=seed)
    else:
        out, den = chunk_forward(q, k, v, log_decay, mode, with_den, scale, eps, chunk)
    if den is None:
        den = q.new_empty((0,), dtype=torch.float32)
    return _canonical(out, form), den


@lion_forward.register_fake
def _lion_forward_fake(q, k, v, log_decay, key_mask, seed, form, mode, with_den, scale, eps, chunk, dropout_p):
    batch, heads, length, _ = q.shape
    out = _output_like(form, batch, heads, length, v.shape[-1],
                       torch.float32 if mode == PARTS else kernel_dtype(q.dtype), q.device)
    has_den = with_den or mode == NORMALIZED
    den = q.new_empty((batch, heads, length) if has_den else (0,), dtype=torch.float32)
    return out, den


@torch.library.custom_op(f"{_NAMESPACE}::lion_backward", mutates_args=())
def lion_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: Optional[torch.Tensor],
                  key_mask: Optional[torch.Tensor], seed: Optional[torch.Tensor],
                  out: Optional[torch.Tensor], den: torch.Tensor, grad_out: torch.Tensor,
                  grad_den: Optional[torch.Tensor],
                  form: str, mode: int, scale: float, eps: float, chunk: int, dropout_p: float,
                  needs_decay: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dq, dk, dv, dlog_decay or empty)`` of :func:`lion_forward`, in :func:`_output_like`'s layout
    (whatever the strides of q, k, v: the compiler is told the same by the fake kernel)."""
    dtype = kernel_dtype(q.dtype)
    grads = None
    if form == "attention":
        g, c = grad_inputs(mode, grad_out, grad_den, out, den, scale, eps, v, dtype)
        dq, dk, dv, dlog = attention_backward(q, k, v, log_decay, g, c, needs_decay, key_mask=key_mask,
                                              dropout_p=dropout_p, seed=seed)
    else:
        # the gradients go straight into buffers of the promised layout (the kernels write through strides)
        grads = tuple(_grad_like(form, x) if x.dtype == dtype else None for x in (q, k, v))
        grads = grads if all(b is not None for b in grads) else None
        if mode == NORMALIZED and launch("layer_grad_prep_in_backward")[0]:
            # the query-side state pass forms g' and c itself: one launch fewer (as the fused layer does)
            g, c = prep_buffers(grad_out, dtype)
            dq, dk, dv, dlog = chunk_backward(q, k, v, log_decay, g, c, needs_decay, chunk, grads=grads,
                                              prep=(grad_out, out, den, eps))
        else:
            g, c = grad_inputs(mode, grad_out, grad_den, out, den, scale, eps, v, dtype)
            dq, dk, dv, dlog = chunk_backward(q, k, v, log_decay, g, c, needs_decay, chunk, grads=grads)
    dlog = q.new_empty((0,), dtype=torch.float32) if dlog is None else dlog.contiguous()
    # the chunk form's buffers already have the promised strides: a new buffer only to compare them otherwise
    layouts = grads or tuple(_grad_like(form, x) for x in (q, k, v))
    return tuple(_as_layout(d.to(x.dtype), like) for d, x, like in zip((dq, dk, dv), (q, k, v), layouts)) + (dlog,)


@lion_backward.register_fake
def _lion_backward_fake(q, k, v, log_decay, key_mask, seed, out, den, grad_out, grad_den, form, mode, scale, eps,
                        chunk, dropout_p, needs_decay):
    dlog = (torch.empty(log_decay.shape, device=log_decay.device, dtype=log_decay.dtype)
            if needs_decay and log_decay is not None else q.new_empty((0,), dtype=torch.float32))
    return _grad_like(form, q), _grad_like(form, k), _grad_like(form, v), dlog


def _setup_context(ctx, inputs, output):
    q, k, v, log_decay, key_mask, seed, form, mode, with_den, scale, eps, chunk, dropout_p = inputs
    out, den = output
    ctx.save_for_backward(q, k, v, log_decay, key_mask, seed, out if mode == NORMALIZED else None, den)
    ctx.form, ctx.mode, ctx.scale, ctx.eps, ctx.chunk, ctx.dropout_p = form, mode, scale, eps, chunk, dropout_p


def _backward(ctx, grad_out, grad_den):
    q, k, v, log_decay, key_mask, seed, out, den = ctx.saved_tensors
    needs_decay = log_decay is not None and ctx.needs_input_grad[3]
    if grad_out is None:
        grad_out = torch.zeros(q.shape[:3] + (v.shape[-1],), device=q.device, dtype=torch.float32)
    if ctx.mode != PARTS or grad_den is None or grad_den.numel() == 0:
        grad_den = None
    dq, dk, dv, dlog = lion_backward(q, k, v, log_decay, key_mask, seed, out, den, grad_out, grad_den, ctx.form,
                                     ctx.mode, ctx.scale, ctx.eps, ctx.chunk, ctx.dropout_p, needs_decay)
    return dq, dk, dv, (dlog if needs_decay else None), None, None, None, None, None, None, None, None, None


lion_forward.register_autograd(_backward, setup_context=_setup_context)

__all__ = ["lion_backward", "lion_forward"]
