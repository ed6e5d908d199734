"""The one public entry point of the LION operator: argument checks, form choice and dispatch.

Everything above this module (the models) calls :func:`lion_attention` or
:func:`lion_attention_parts` and never knows which form runs.
"""

from __future__ import annotations

import torch
from transformers.utils import logging

from .attention import attention_parts
from .chunk import DEFAULT_CHUNK_SIZE, chunk_parts
from .masks import compute_dtype_for
from .recurrent import recurrent_parts

logger = logging.get_logger(__name__)

FORMS = ("auto", "attention", "chunk", "recurrent")
BACKENDS = ("auto", "torch", "triton")
#: ``form="auto"`` takes the attention form up to this length and the chunk form beyond it: the
#: attention form's L x L scores stop fitting comfortably in memory around here, while the chunk form
#: is linear in L. The Triton kernels refine this crossover with measured timings.
AUTO_ATTENTION_MAX_LENGTH = 1024


#: The same crossover for the Triton kernels, from the H100 measurements (BENCHMARKS.md, "Kernels"): B=8, H=12,
#: D=64, bf16, forward+backward of LION-S: attention 0.79 ms vs chunk 0.89 ms at L=1024, 1.60 vs 0.92 at 1536
#: (LIT: 0.46 vs 0.77 at 1024). Quadratic against linear cost puts the break-even near 1.13 x 1024; 1152 keeps
#: the 1025 tokens of a 512 px ViT-B/16 image (and its natural variants, fused only there) in the attention form.
AUTO_ATTENTION_MAX_LENGTH_TRITON = 1152


#: ``log_decay = -inf`` means a hard cut (lambda = 0: nothing is carried across that token). Every form
#: clamps log-decays to this floor first, so that they all compute the same limit instead of forming
#: ``-inf - (-inf)`` in their prefix sums: ``exp(-30) ~ 1e-13`` is below fp32 resolution against any other
#: term, and a chunk of 128 such entries (-3840) keeps fp32 chunk-local sums precise to ~2e-4.
LOG_DECAY_FLOOR = -30.0


def floor_log_decay(log_decay: torch.Tensor | None) -> torch.Tensor | None:
    """``log_decay`` with ``-inf`` (and anything below :data:`LOG_DECAY_FLOOR`) raised to the floor."""
    return None if log_decay is None else log_decay.clamp_min(LOG_DECAY_FLOOR)


def _empty_result(q, k, v, with_den: bool, parts: bool):
    """What every form returns for inputs with no elements (batch, heads or length 0): empty outputs of
    the right shape and dtype, still connected to q, k, v for autograd (their gradients are empty too)."""
    dtype = compute_dtype_for(q.dtype) if parts else q.dtype
    link = (q.sum() + k.sum() + v.sum()).to(dtype) * 0  # sums of nothing: 0
    out = torch.zeros(q.shape[:3] + (v.shape[-1],), dtype=dtype, device=q.device) + link
    if not parts:
        return out
    return out, (torch.zeros(q.shape[:3], dtype=dtype, device=q.device) + link if with_den else None)


def resolve_form(form: str, length: int, device: torch.device | None = None, backend: str = "torch") -> str:
    """The concrete form (``attention``/``chunk``/``recurrent``) that ``form`` stands for at ``length``.

    ``backend`` is the resolved backend (``"torch"`` or ``"triton"``): each has its own measured crossover
    (:data:`AUTO_ATTENTION_MAX_LENGTH`, :data:`AUTO_ATTENTION_MAX_LENGTH_TRITON`).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if form != "auto":
        return form
    limit = AUTO_ATTENTION_MAX_LENGTH_TRITON if backend == "triton" else AUTO_ATTENTION_MAX_LENGTH
    return "attention" if length <= limit else "chunk"


def dropout_form(form: str, backend: str, dropout_p: float, probe: torch.Tensor) -> tuple[str, float]:
    """``(form, dropout_p)`` a layer runs with when training with attention dropout.

    Attention dropout acts on the ``L x L`` scores, which only the attention form builds: with ``dropout_p > 0``
    the form becomes ``"attention"`` when ``form`` resolves to it at this length, and otherwise (an explicit
    chunk/recurrent form, or ``"auto"`` past the crossover) the dropout is skipped with a one-time warning.
    ``probe``: ``[B, H, L, D]``-shaped queries (any strides), for the device, dtype and length.
    """
    if not dropout_p:
        return form, 0.0
    concrete_backend = resolve_backend(backend, probe, probe, dropout_p)
    if resolve_form(form, probe.shape[-2], probe.device, concrete_backend) != "attention":
        logger.warning_once("attention dropout acts on the L x L scores and is skipped outside the attention form")
        return form, 0.0
    return "attention", dropout_p


def resolve_backend(backend: str, q: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0,
                    chunk_size: int | None = None) -> str:
    """The concrete backend (``"torch"`` or ``"triton"``) that ``backend`` stands for on these inputs.

    ``"auto"`` takes Triton for CUDA tensors of dtype fp16/bf16/fp32 when Triton is importable and the
    head dims are supported, PyTorch otherwise. ``"triton"`` forces the kernels (CPU tensors need
    ``TRITON_INTERPRET=1`` set before the first use); it still falls back to PyTorch, with a logged
    notice, for head dims outside 32/64/128. Dropout (attention form) runs inside the kernels.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    if backend == "auto" and (q.device.type != "cuda" or q.dtype not in (torch.float16, torch.bfloat16,
                                                                           torch.float32)):
        return "torch"
    from .triton.utils import head_dims_supported, interpreter_enabled, triton_available

    if not triton_available():
        if backend == "triton":
            raise ValueError("backend='triton' needs the triton package; install it or pass backend='torch'")
        return "torch"
    if backend == "triton" and q.device.type != "cuda" and not interpreter_enabled():
        raise ValueError("backend='triton' on CPU tensors needs TRITON_INTERPRET=1 in the environment before "
                         "the kernels are first imported; move the tensors to CUDA or pass backend='torch'")
    if not head_dims_supported(q.shape[-1], v.shape[-1]):
        logger.warning_once(f"lion_attention: head dims dk={q.shape[-1]}, dv={v.shape[-1]} have no Triton "
                            "kernel (32, 64 or 128 only); using the PyTorch backend")
        return "torch"
    return "triton"


def _check_inputs(q, k, v, log_decay, key_padding_mask, chunk_size):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a 4-D tensor [batch, heads, length, head_dim], "
                             f"got {getattr(t, 'shape', type(t))}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must match q in [batch, heads, length], got {tuple(v.shape)} and {tuple(q.shape)}")
    if not (q.device == k.device == v.device):
        raise ValueError("q, k and v must be on the same device")
    batch, heads, length, _ = q.shape
    if log_decay is not None:
        if not isinstance(log_decay, torch.Tensor) or not log_decay.is_floating_point():
            raise ValueError("log_decay must be None or a floating-point tensor")
        if tuple(log_decay.shape) not in ((heads,), (batch, heads, length)):
            raise ValueError(
                f"log_decay must be None (LION-LIT), [heads]=({heads},) (LION-D) or "
                f"[batch, heads, length]=({batch}, {heads}, {length}) (LION-S); got {tuple(log_decay.shape)}")
        # A value check on an accelerator would force a host sync on every call; CPU inputs are
        # checked, and the models build log-decays with logsigmoid, which is <= 0 by construction.
        if log_decay.device.type == "cpu" and not torch.compiler.is_compiling() and log_decay.numel():
            if bool(torch.isnan(log_decay).any()):
                raise ValueError("log_decay holds NaN; a log-decay is a number <= 0 (or -inf for a hard cut, "
                                 "lambda = 0): check what produced it (e.g. NaN gate logits)")
            if bool((log_decay > 0).any()):
                raise ValueError("log_decay entries must be <= 0 (lambda = exp(log_decay) in (0, 1]); "
                                 "build them with torch.nn.functional.logsigmoid")
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != (batch, length):
            raise ValueError(f"key_padding_mask must be a bool tensor [batch, length]=({batch}, {length}) "
                             f"with True for real tokens; got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")


def lion_attention_parts(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         log_decay: torch.Tensor | None = None, *, form: str = "auto",
                         chunk_size: int | None = None, key_padding_mask: torch.Tensor | None = None,
                         dropout_p: float = 0.0, with_denominator: bool = True, backend: str = "auto"):
    """Numerator and denominator of LION, separately, in fp32 (fp64 for fp64 inputs on the torch backend).

    ``num_i = sum_j M_ij (q_i . k_j) v_j`` (``[B, H, L, Dv]``) and ``den_i = sum_j M_ij (q_i . k_j)``
    (``[B, H, L]``, or ``None`` when ``with_denominator=False``). Two scan orders of the same tokens
    (the natural-order variants) combine exactly as ``(num_1 + num_2) / (den_1 + den_2)``, see
    :func:`combine_parts`. Arguments are those of :func:`lion_attention`.
    """
    _check_inputs(q, k, v, log_decay, key_padding_mask, chunk_size)
    if q.numel() == 0 or v.numel() == 0:
        return _empty_result(q, k, v, with_denominator, parts=True)
    log_decay = floor_log_decay(log_decay)
    concrete_backend = resolve_backend(backend, q, v, dropout_p, chunk_size)
    concrete = resolve_form(form, q.shape[-2], q.device, concrete_backend)
    if dropout_p and concrete != "attention":
        raise ValueError(f"dropout_p > 0 needs form='attention' (dropout acts on the L x L scores), got {concrete!r}")
    if concrete_backend == "triton":
        from .triton.common import PARTS

        return _triton_call(q, k, v, log_decay, concrete, chunk_size, key_padding_mask, PARTS,
                            with_denominator, 1.0, 0.0, dropout_p)
    dtype = compute_dtype_for(q.dtype)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    k, v = _zero_padded_keys(k, v, key_padding_mask)
    if concrete == "attention":
        return attention_parts(q, k, v, log_decay, with_denominator, dropout_p)
    if concrete == "chunk":
        return chunk_parts(q, k, v, log_decay, with_denominator, chunk_size or DEFAULT_CHUNK_SIZE)
    return recurrent_parts(q, k, v, log_decay, with_denominator)


def _zero_padded_keys(k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None):
    """A padded key must contribute nothing: its key and value become exact zeros. ``where`` rather
    than a product, so that whatever a padded position holds (even inf/NaN from an earlier layer)
    cannot leak as ``0 * inf``. Its decay stays, which for contiguous real tokens (left or right
    padding) never enters a product between two real positions."""
    if key_padding_mask is None:
        return k, v
    keep = key_padding_mask[:, None, :, None]
    return torch.where(keep, k, 0.0), torch.where(keep, v, 0.0)


def dropout_seed(device: torch.device) -> torch.Tensor:
    """A fresh one-element int64 seed on ``device`` for the kernels' counter-based dropout: drawn from
    torch's generator (so ``torch.manual_seed`` reproduces a run) and kept as a tensor, so that a
    compiled graph needs no host value."""
    return torch.randint(0, 2**31 - 1, (1,), device=device, dtype=torch.int64)


def _triton_call(q, k, v, log_decay, form: str, chunk_size: int | None, key_padding_mask, mode: int,
                 with_den: bool, scale: float, eps: float, dropout_p: float = 0.0):
    """Run one Triton form; returns ``(num fp32, den fp32 | None)`` (``PARTS``) or ``(out, den)``."""
    from .triton import LionAttentionFunction, LionChunkFunction, recurrent_forward
    from .triton.ops import lion_forward
    from .triton.utils import SUPPORTED_CHUNK_SIZES, triton_chunk_size

    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, v, log_decay))
    if (form == "chunk" or (form == "recurrent" and needs_grad)) and log_decay is None \
            and not torch.compiler.is_compiling():
        # LION-LIT has one global state per head: no chunks needed (lion_hf.kernels.triton.global_state)
        from .triton.global_state import LionGlobalFunction

        return LionGlobalFunction.apply(q, k, v, mode, with_den, float(scale), float(eps), key_padding_mask)
    key_mask = None
    if form == "attention":
        key_mask = key_padding_mask  # the attention kernels mask padded keys as they load them
    else:
        k, v = _zero_padded_keys(k, v, key_padding_mask)
    if form == "recurrent":
        if not needs_grad:
            return recurrent_forward(q, k, v, log_decay, mode, with_den, scale, eps)
        # the recurrent kernel has no backward: the chunk kernels compute the same function
        form = "chunk"
    chunk = triton_chunk_size(chunk_size, log_decay is not None, max(q.shape[-1], v.shape[-1]),
                              # a limit of the GPU compiler (spills, compile time), not of the interpreter
                              fp32=q.is_cuda and q.dtype not in (torch.float16, torch.bfloat16))
    if form == "chunk" and chunk_size is not None and chunk_size != chunk:
        logger.warning_once(f"lion_attention: the Triton chunk kernels take chunk_size in {SUPPORTED_CHUNK_SIZES} "
                            f"(at most 64 for heads wider than 64; fp32 inputs at most 32, 16 for heads wider "
                            f"than 64); using {chunk} instead of {chunk_size} (the result is the same function)")
    seed = dropout_seed(q.device) if dropout_p > 0 else None
    if torch.compiler.is_compiling():
        # registered custom operators (lion_hf.kernels.triton.ops): torch.compile keeps them in its graph
        out, den = lion_forward(q, k, v, log_decay, key_mask, seed, form, mode, with_den, float(scale),
                                float(eps), chunk, float(dropout_p))
        return out, (den if den.numel() else None)
    # eager: the plain autograd Functions, same kernels. The custom-operator dispatch costs ~0.3-0.6 ms
    # of host time per forward+backward (measured on an H100, BENCHMARKS.md), which dominates at L <= 1024.
    if form == "attention":
        return LionAttentionFunction.apply(q, k, v, log_decay, mode, with_den, float(scale), float(eps), key_mask,
                                           float(dropout_p), seed)
    return LionChunkFunction.apply(q, k, v, log_decay, mode, with_den, float(scale), float(eps), chunk, needs_grad)


def combine_parts(parts, eps: float = 0.0, out_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Normalised output ``sum(num) / (sum(den) + eps)`` of one or more ``(num, den)`` pairs."""
    num = sum(p[0] for p in parts)
    den = sum(p[1] for p in parts) + eps
    # a row with no real key (0 / 0, e.g. a fully padded sequence with eps = 0) is 0, with a zero gradient:
    # the division only sees safe denominators, so no NaN reaches the backward through the unused branch
    nonzero = den != 0
    out = torch.where(nonzero[..., None], num / torch.where(nonzero, den, 1.0)[..., None], 0.0)
    return out if out_dtype is None else out.to(out_dtype)


def lion_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor | None = None,
                   *, normalize: bool = True, form: str = "auto", chunk_size: int | None = None,
                   key_padding_mask: torch.Tensor | None = None, scale: float | None = None,
                   eps: float = 0.0, dropout_p: float = 0.0, backend: str = "auto") -> torch.Tensor:
    """Full bidirectional linear attention with LION's decay mask.

    Args:
        q, k: ``[batch, heads, length, dk]`` queries and keys, after the feature map.
        v: ``[batch, heads, length, dv]`` values.
        log_decay: ``None`` (LION-LIT, no decay), ``[heads]`` (LION-D, one ``log lambda`` per head) or
            ``[batch, heads, length]`` (LION-S, per token); entries ``<= 0``.
        normalize: ``True`` gives ``num / (den + eps)`` (vision models); ``False`` gives
            ``scale * num`` (MLM models).
        form: ``"attention"``, ``"chunk"``, ``"recurrent"`` or ``"auto"`` (see :func:`resolve_form`).
        chunk_size: chunk length of the chunk form (default 64 in PyTorch; the Triton kernels take
            16/32/64/128 and by default 128 for LION-LIT, 64 with a decay: ``triton.utils.triton_chunk_size``).
        key_padding_mask: ``[batch, length]`` bool, ``True`` for real tokens; padded keys contribute nothing.
        scale: multiplier of the unnormalised output, default ``dk ** -0.5``.
        eps: added to the denominator when ``normalize``.
        dropout_p: dropout on the masked scores (attention form; pass 0 in eval). The Triton kernels draw
            it counter-based inside the kernels (the backward regenerates it), PyTorch with ``F.dropout``.
        backend: ``"auto"`` (Triton for CUDA tensors when available, else PyTorch), ``"torch"`` or
            ``"triton"`` (see :func:`resolve_backend`).

    Returns:
        ``[batch, heads, length, dv]`` in the dtype of ``q``; accumulation is fp32 (or fp64).
    """
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be a bool, got {normalize!r}")
    _check_inputs(q, k, v, log_decay, key_padding_mask, chunk_size)
    if q.numel() == 0 or v.numel() == 0:
        return _empty_result(q, k, v, normalize, parts=False)
    log_decay = floor_log_decay(log_decay)
    concrete_backend = resolve_backend(backend, q, v, dropout_p, chunk_size)
    if concrete_backend == "triton":
        from .triton.common import NORMALIZED, SCALED

        concrete = resolve_form(form, q.shape[-2], q.device, "triton")
        if dropout_p and concrete != "attention":
            raise ValueError(f"dropout_p > 0 needs form='attention' (dropout acts on the L x L scores), "
                             f"got {concrete!r}")
        scale_value = q.shape[-1] ** -0.5 if scale is None else scale
        out, _ = _triton_call(q, k, v, log_decay, concrete, chunk_size, key_padding_mask,
                              NORMALIZED if normalize else SCALED, normalize, scale_value, eps, dropout_p)
        return out.to(q.dtype)
    num, den = lion_attention_parts(q, k, v, log_decay, form=form, chunk_size=chunk_size,
                                    key_padding_mask=key_padding_mask, dropout_p=dropout_p,
                                    with_denominator=normalize, backend="torch")
    if normalize:
        return combine_parts([(num, den)], eps=eps, out_dtype=q.dtype)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return (num * scale).to(q.dtype)
