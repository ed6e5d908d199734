"""The LION layer from the fused projection to ``out_proj``: the one call the models make.

:func:`lion_fused_attention` takes the ``qkv`` projection output and returns the context ``[B, L, H*D]``.
On the Triton backend in eager mode it runs :class:`lion_hf.kernels.triton.fused.LionLayerFunction`
(feature maps, decays and both scan orders inside the kernels, no permute copies, no fp32 round trip);
everywhere else, and as the reference the tests compare it with, it runs :func:`unfused_attention`:
the feature map in PyTorch and the operator :func:`lion_hf.kernels.lion_attention`. Under
``torch.compile`` the unfused path is traced (inductor fuses its elementwise glue itself) around the
kernels' registered custom operators.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .interface import combine_parts, lion_attention, lion_attention_parts, resolve_backend, resolve_form
from .triton.tuning import LAUNCH  # (plain Python: no Triton import)


def elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1``: positive features of LION-LIT (vision)."""
    return F.elu(x) + 1.0


def silu_l2(x: torch.Tensor) -> torch.Tensor:
    """``(silu(x) + 0.5) / ||silu(x) + 0.5||_2`` over the head dimension (vision D and S), in ``x``'s dtype.

    ``silu(x) + 0.5 >= 0.5 - 0.279 > 0``, so the norm never vanishes and no epsilon is needed. CUDA
    autocast runs ``vector_norm`` in fp32, which would promote the result (and send fp32 q, k with bf16
    v into the kernels' slow fp32 path): the result is cast back to the input dtype.
    """
    y = F.silu(x) + 0.5
    return (y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)).to(x.dtype)


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


FEATURE_MAP_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "elu_plus_one": elu_plus_one, "silu_l2": silu_l2, "identity": identity}


def selective_log_decays(gate_logits: torch.Tensor, num_orders: int, cls_zero: bool) -> list[torch.Tensor]:
    """LION-S's log-decays ``logsigmoid(-z)`` per scan order, ``[B, H, L]`` fp32 in token order, from the gate
    logits ``z [B, L, orders*H]``; ``cls_zero``: the class token (position 0) never decays (vision)."""
    batch, length, width = gate_logits.shape
    logits = gate_logits.float().view(batch, length, num_orders, width // num_orders)
    log_decay = F.logsigmoid(-logits).permute(2, 0, 3, 1)  # [orders, B, H, L]
    if cls_zero:
        log_decay = torch.cat([torch.zeros_like(log_decay[..., :1]), log_decay[..., 1:]], dim=-1)
    return list(log_decay.unbind(0))


def unfused_attention(qkv: torch.Tensor, log_decays: Sequence[torch.Tensor | None], *, feature_map: str,
                      normalize: bool, scale: float, eps: float, form: str, chunk_size: int | None,
                      key_padding_mask: torch.Tensor | None, dropout_p: float, backend: str,
                      orders=None) -> torch.Tensor:
    """The reference path: feature map in PyTorch, then the operator (per scan order for ♮)."""
    batch, length, _, heads, dim = qkv.shape
    qkv_h = qkv.permute(2, 0, 3, 1, 4)
    phi = FEATURE_MAP_FUNCTIONS[feature_map]
    q, k, v = phi(qkv_h[0]), phi(qkv_h[1]), qkv_h[2]
    options = {"form": form, "chunk_size": chunk_size, "key_padding_mask": key_padding_mask,
               "dropout_p": dropout_p, "backend": backend}
    if orders is None:
        context = lion_attention(q, k, v, log_decays[0], normalize=normalize, scale=scale, eps=eps, **options)
    else:
        parts = []
        for (perm, inverse), log_decay in zip(orders, log_decays):
            if log_decay is not None and log_decay.dim() == 3:
                log_decay = log_decay[..., perm]
            # the padding mask is by token: it moves with the keys into scan order
            in_order = {**options, "key_padding_mask": None if key_padding_mask is None else key_padding_mask[:, perm]}
            num, den = lion_attention_parts(q[:, :, perm], k[:, :, perm], v[:, :, perm], log_decay, **in_order)
            parts.append((num[:, :, inverse], den[:, :, inverse]))
        context = combine_parts(parts, eps=eps, out_dtype=q.dtype)
    return context.transpose(1, 2).reshape(batch, length, heads * dim)


def layer_form(form: str, qkv: torch.Tensor, backend: str, dropout_p: float, has_decay: bool) -> str:
    """``form`` as one model layer runs it: ``"auto"`` on the Triton backend without attention dropout becomes
    the form the whole-model measurements chose for this length and mask
    (``LAUNCH["layer_attention_max_length"]``, :mod:`lion_hf.kernels.triton.tuning`, measured on the fused
    layer); otherwise, and under ``torch.compile`` (whose graphs call the operator), ``form`` is returned as
    given and the operator's own crossover applies (:func:`resolve_form`)."""
    return _layer_form(form, qkv.shape[1], _concrete_backend(backend, qkv, dropout_p), dropout_p, has_decay)


def _concrete_backend(backend: str, qkv: torch.Tensor, dropout_p: float) -> str | None:
    """:func:`resolve_backend` for ``qkv`` (it reads the device, dtype and head dim), or ``None`` while
    ``torch.compile`` traces (its graphs call the operator, never the fused layer)."""
    return None if torch.compiler.is_compiling() else resolve_backend(backend, qkv, qkv, dropout_p)


def _layer_form(form: str, length: int, concrete_backend: str | None, dropout_p: float, has_decay: bool) -> str:
    if form != "auto" or dropout_p or concrete_backend != "triton":
        return form
    from .triton.tuning import launch

    limit = launch("layer_attention_max_length")[1 if has_decay else 0]
    return "attention" if length <= limit else "chunk"


def _fused_form(qkv: torch.Tensor, form: str, concrete_backend: str | None, dropout_p: float,
                grad_enabled: bool) -> str | None:
    """The form the fused Triton layer runs, or ``None`` when the unfused path must (see module doc)."""
    if concrete_backend != "triton":
        return None
    concrete = resolve_form(form, qkv.shape[1], qkv.device, "triton")
    if concrete == "recurrent":
        if not grad_enabled:
            return None  # the memory-lean inference kernel runs through the operator
        concrete = "chunk"  # as the operator does: the chunk kernels compute the same function
    if concrete == "chunk" and dropout_p:
        return None  # dropout acts on the L x L scores: the operator refuses it outside the attention form
    return concrete


#: (inputs of a layer's choice of path) -> (form, fused form or None, chunk): the choice reads the device, dtype,
#: shape, Triton's availability and the launch table through a dozen calls, and ViT-B-size steps wait on the host
#: (BENCHMARKS.md, thirteenth pass); never filled while torch.compile traces
_PLANS: dict[tuple, tuple[str, str | None, int]] = {}


def _layer_plan(qkv: torch.Tensor, form: str, backend: str, dropout_p: float, has_decay: bool,
                chunk_size: int | None) -> tuple[str, str | None, int]:
    """``(form, fused, chunk)`` of one layer call: the form after ``"auto"`` (:func:`_layer_form`), the form the
    fused Triton layer runs (``None``: the unfused path, :func:`_fused_form`) and its chunk length."""
    if torch.compiler.is_compiling():
        return _choose_plan(qkv, form, backend, dropout_p, has_decay, chunk_size)
    key = (form, backend, dropout_p > 0, has_decay, chunk_size, qkv.device.type, qkv.dtype, qkv.shape[1],
           qkv.shape[-1], torch.is_grad_enabled(), LAUNCH["layer_attention_max_length"])
    plan = _PLANS.get(key)
    if plan is None:
        plan = _choose_plan(qkv, form, backend, dropout_p, has_decay, chunk_size)
        if len(_PLANS) >= 256:  # lengths vary in text: keep the table small
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _choose_plan(qkv: torch.Tensor, form: str, backend: str, dropout_p: float, has_decay: bool,
                 chunk_size: int | None) -> tuple[str, str | None, int]:
    concrete_backend = _concrete_backend(backend, qkv, dropout_p)
    form = _layer_form(form, qkv.shape[1], concrete_backend, dropout_p, has_decay)
    fused = _fused_form(qkv, form, concrete_backend, dropout_p, torch.is_grad_enabled())
    if fused is None:
        return form, None, 0
    from .triton.utils import triton_chunk_size

    chunk = triton_chunk_size(chunk_size, has_decay, qkv.shape[-1],
                              fp32=qkv.is_cuda and qkv.dtype not in (torch.float16, torch.bfloat16))
    return form, fused, chunk


@functools.cache
def _triton_fused():
    """:mod:`lion_hf.kernels.triton.fused`, imported at the first fused call (Triton stays optional) and only then:
    an import statement in the layer's call costs host time on every call. Its attributes are read per call."""
    from .triton import fused

    return fused


def _column_slice(projection: torch.Tensor, part: torch.Tensor, width: int) -> int | None:
    """The first column of ``projection [B, L, W]`` (contiguous) that ``part`` (``[B, L, ...]``, ``width``
    columns in row-major order) starts at, if ``part`` is that slice of it; else ``None``."""
    if part.untyped_storage().data_ptr() != projection.untyped_storage().data_ptr() \
            or part.shape[:2] != projection.shape[:2] or part.stride()[:2] != projection.stride()[:2] \
            or math.prod(part.shape[2:]) != width or part.stride(-1) != 1:
        return None
    column = part.storage_offset() - projection.storage_offset()
    return column if 0 <= column and column + width <= projection.shape[-1] else None


def _packing(projection: torch.Tensor | None, qkv: torch.Tensor, gate_logits: torch.Tensor | None):
    """``LionLayerFunction``'s packing of ``qkv`` and ``gate_logits`` as column slices of ``projection``, or
    ``None`` (no projection, or they are not disjoint column slices of it)."""
    if projection is None or gate_logits is None or projection.dim() != 3 or not projection.is_contiguous() \
            or projection.dtype != qkv.dtype or gate_logits.dtype != qkv.dtype:
        return None
    _, _, _, heads, dim = qkv.shape
    qkv_col = _column_slice(projection, qkv, 3 * heads * dim)
    gate_col = _column_slice(projection, gate_logits, gate_logits.shape[-1])
    if qkv_col is None or gate_col is None or qkv.stride()[2:] != (heads * dim, dim, 1) \
            or (gate_col < qkv_col + 3 * heads * dim and qkv_col < gate_col + gate_logits.shape[-1]):
        return None
    return qkv_col, gate_col, gate_logits.shape[-1], heads, dim


def lion_fused_attention(qkv: torch.Tensor, log_decays: Sequence[torch.Tensor | None], *, feature_map: str,
                         normalize: bool, scale: float, eps: float, form: str = "auto",
                         chunk_size: int | None = None, key_padding_mask: torch.Tensor | None = None,
                         dropout_p: float = 0.0, backend: str = "auto", orders=None,
                         gate_logits: torch.Tensor | None = None, cls_zero: bool = False,
                         projection: torch.Tensor | None = None) -> torch.Tensor:
    """LION attention of one layer from its fused projection.

    Args:
        qkv: ``[B, L, 3, H, D]``, the ``qkv`` Linear's output viewed per head (q, k, v stacked).
        log_decays: one per scan order: ``None`` (LIT), ``[H]`` (D) or ``[B, H, L]`` (S, token order).
        feature_map: a key of :data:`FEATURE_MAP_FUNCTIONS`, applied to q and k.
        normalize: ``num / (den + eps)`` (vision) or ``scale * num`` (text).
        scale, eps, form, chunk_size, key_padding_mask, dropout_p, backend: as for
            :func:`lion_hf.kernels.lion_attention` (``eps`` already divided by ``scale``).
        orders: ``None`` or the ♮ variants' ``((perm, inverse), (perm, inverse))`` (int64, over tokens);
            the two orders' parts are summed before normalising (``normalize`` must be ``True``).
        gate_logits, cls_zero: LION-S given by its gate's raw output ``[B, L, orders*H]`` instead of
            ``log_decays`` (see :func:`selective_log_decays`); the fused path then forms the log-decays and
            their prefix sums, and their gradient, inside the feature map's launches (without a feature map, in
            one launch per order each way).
        projection: the contiguous ``[B, L, W]`` tensor whose column slices ``qkv`` and ``gate_logits`` are (one
            matrix product for both): the fused path then takes its gradient in one buffer instead of one
            per slice. Ignored elsewhere, or when they are not its slices.

    Returns:
        ``[B, L, H*D]`` in ``qkv``'s dtype.
    """
    if qkv.dim() != 5 or qkv.shape[2] != 3:
        raise ValueError(f"qkv must be [batch, length, 3, heads, head_dim], got {tuple(qkv.shape)}")
    if orders is not None and not normalize:
        raise ValueError("two scan orders combine only normalised outputs; set normalize=True")
    if orders is not None and gate_logits is None and (log_decays is None or log_decays[0] is None):
        raise ValueError("two scan orders need a decay mask (LION-LIT's result does not depend on the order); "
                         "pass orders=None")
    if feature_map not in FEATURE_MAP_FUNCTIONS:
        raise ValueError(f"feature_map must be one of {sorted(FEATURE_MAP_FUNCTIONS)}, got {feature_map!r}")
    has_decay = gate_logits is not None or (log_decays is not None and log_decays[0] is not None)
    form, fused, chunk = _layer_plan(qkv, form, backend, dropout_p, has_decay, chunk_size)
    if gate_logits is not None and (fused is None or qkv.shape[1] == 0 or qkv.shape[0] == 0):
        log_decays = selective_log_decays(gate_logits, 1 if orders is None else len(orders), cls_zero)
    if fused is None or qkv.shape[1] == 0 or qkv.shape[0] == 0:
        return unfused_attention(qkv, log_decays, feature_map=feature_map, normalize=normalize, scale=scale,
                                 eps=eps, form=form, chunk_size=chunk_size, key_padding_mask=key_padding_mask,
                                 dropout_p=dropout_p, backend=backend, orders=orders)
    triton_fused = _triton_fused()

    batch, length, _, heads, dim = qkv.shape
    packing = _packing(projection, qkv, gate_logits)
    if packing is not None:
        qkv, gate = projection, None
    else:
        qkv = qkv if qkv.is_contiguous() else qkv.contiguous()
        gate = None if gate_logits is None else (gate_logits if gate_logits.stride(-1) == 1
                                                 else gate_logits.contiguous())
    context = triton_fused.lion_layer(
        qkv, list(log_decays) if log_decays is not None else [None], triton_fused.FEATURE_MAPS[feature_map], fused,
        triton_fused.NORMALIZED if normalize else triton_fused.SCALED, scale, eps, chunk, key_padding_mask, dropout_p,
        orders, gate=gate, cls_zero=cls_zero, packing=packing)
    context = context.transpose(1, 2).reshape(batch, length, heads * dim)
    # the kernels compute float64 inputs in fp32 (kernel_dtype): the result still comes back in qkv's dtype
    return context if context.dtype == qkv.dtype else context.to(qkv.dtype)


__all__ = ["FEATURE_MAP_FUNCTIONS", "elu_plus_one", "identity", "layer_form", "lion_fused_attention",
           "selective_log_decays", "silu_l2", "unfused_attention"]
