"""LayerNorm whose result only Linear layers read: the pre-norm blocks' ``norm1``/``norm2`` and LION-LIT text's
output norm.

Under autocast, ``layer_norm`` runs in fp32 and the Linear that reads its result casts it to the autocast
dtype. :func:`layer_norm_into_linear` gives the same values in one Triton launch each way
(:mod:`lion_hf.kernels.triton.layer_norm`): the input read in its own dtype, fp32 arithmetic, the result
written in the autocast dtype. At ViT-B size the casts around PyTorch's LayerNorm and its kernels took more of a
LION step than the LION kernels (BENCHMARKS.md, eleventh pass). Everywhere else (no autocast, the PyTorch
backend, ``torch.compile``, a LayerNorm subclass or one with hooks) it is ``norm(x)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .modules import plain_module

_AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)


def layer_norm_reference(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float,
                         out_dtype: torch.dtype) -> torch.Tensor:
    """What the kernels compute: ``layer_norm`` over the last dim in fp32, the result cast to ``out_dtype``."""
    return F.layer_norm(x.float(), (x.shape[-1],), None if weight is None else weight.float(),
                        None if bias is None else bias.float(), eps).to(out_dtype)


def _kernel_dtype(norm: nn.Module, x: torch.Tensor, backend: str) -> torch.dtype | None:
    """The dtype the kernels write ``norm(x)`` in (the autocast dtype), or ``None`` where ``norm(x)`` runs."""
    device_type = x.device.type
    if backend == "torch" or torch.compiler.is_compiling() or not torch.is_autocast_enabled(device_type):
        return None
    out_dtype = torch.get_autocast_dtype(device_type)
    if out_dtype not in _AUTOCAST_DTYPES or x.dtype not in (*_AUTOCAST_DTYPES, torch.float32) or x.numel() == 0 \
            or not plain_module(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
        return None
    from .triton.tuning import launch
    from .triton.utils import interpreter_enabled, triton_available

    if not launch("layer_norm_kernels")[0] or not triton_available():
        return None
    if not (x.is_cuda or (backend == "triton" and interpreter_enabled())):
        return None
    from .triton.layer_norm import MAX_WIDTH

    return out_dtype if x.shape[-1] == norm.normalized_shape[0] <= MAX_WIDTH else None


def layer_norm_into_linear(norm: nn.Module, x: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """``norm(x)`` for a result that only Linear layers read (they cast it to the autocast dtype).

    Under autocast (fp16/bf16) on the Triton backend (CUDA; CPU with ``TRITON_INTERPRET=1`` and
    ``backend="triton"``) the result comes back in the autocast dtype from one launch (and the backward from
    one more): the values the Linear would have seen. ``backend``: the model's ``attention_backend``
    (``"torch"`` keeps ``norm(x)``)."""
    out_dtype = _kernel_dtype(norm, x, backend)
    if out_dtype is None:
        return norm(x)
    from .triton.layer_norm import LayerNormFunction

    return LayerNormFunction.apply(x, norm.weight, norm.bias, norm.eps, out_dtype)


__all__ = ["layer_norm_into_linear", "layer_norm_reference"]
