"""The models' LayerNorms under autocast in one Triton launch each way (:mod:`lion_hf.kernels.triton.layer_norm`).

* :func:`layer_norm_into_linear`: a LayerNorm whose result only Linear layers read (the pre-norm blocks'
  ``norm1``/``norm2``, LION-LIT text's output norm). Under autocast ``layer_norm`` runs in fp32 and the Linear
  casts its result to the autocast dtype; the kernels read the input in its own dtype, compute in fp32 and
  write the result in the autocast dtype: the same values without the casts around it.
* :func:`layer_norm_of_sum`: a post-norm block's ``norm(stream + branch)`` (fp32 stream, half-precision branch),
  the sum formed inside the kernel and both inputs' gradients written by one backward launch.

At ViT-B size the casts around PyTorch's LayerNorm and its kernels took more of a LION step than the LION
kernels (BENCHMARKS.md, eleventh pass). Everywhere else (no autocast, the PyTorch backend, ``torch.compile``, a
LayerNorm subclass or one with hooks) they are ``norm(x)`` and ``norm(stream + branch)``.
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
    if backend == "torch":
        return None
    settings = _triton_settings()
    if settings is None:
        return None
    launch, interpreter_enabled, max_width = settings
    # the size rule first: below it (ViT-B 512 px b16, BERT-large L 128) every call ends here, and those steps wait
    # on the host (BENCHMARKS.md, thirteenth pass)
    enabled, min_elements = launch("layer_norm_kernels")
    numel = x.numel()
    if not enabled or numel < min_elements or numel == 0:
        return None
    device_type = x.device.type
    # (autocast knows no other device types: the meta device, for one, would raise)
    if device_type not in ("cuda", "cpu") or torch.compiler.is_compiling() \
            or not torch.is_autocast_enabled(device_type):
        return None
    out_dtype = torch.get_autocast_dtype(device_type)
    if out_dtype not in _AUTOCAST_DTYPES or x.dtype not in (*_AUTOCAST_DTYPES, torch.float32) \
            or not plain_module(norm, nn.LayerNorm) or len(norm.normalized_shape) != 1:
        return None
    if not (x.is_cuda or (backend == "triton" and interpreter_enabled())):
        return None
    return out_dtype if x.shape[-1] == norm.normalized_shape[0] <= max_width else None


_TRITON_SETTINGS: list = []


def _triton_settings():
    """``(launch, interpreter_enabled, MAX_WIDTH)`` of the Triton modules, imported once; ``None`` without Triton."""
    if not _TRITON_SETTINGS:
        from .triton.utils import triton_available

        if not triton_available():
            return None
        from .triton.layer_norm import MAX_WIDTH
        from .triton.tuning import launch
        from .triton.utils import interpreter_enabled

        _TRITON_SETTINGS.append((launch, interpreter_enabled, MAX_WIDTH))
    return _TRITON_SETTINGS[0]


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


def layer_norm_of_sum(norm: nn.Module, stream: torch.Tensor, branch: torch.Tensor,
                      backend: str = "auto") -> torch.Tensor:
    """``norm(stream + branch)`` of a post-norm block: with an fp32 ``stream`` and a ``branch`` of the same shape
    under autocast (fp16/bf16) on the Triton backend, one launch each way (the sum in fp32, as ``stream +
    branch`` promotes it; the result fp32, as autocast's ``layer_norm`` returns it); else the two operations."""
    fits = stream.dtype == torch.float32 and branch.shape == stream.shape \
        and branch.dtype in (*_AUTOCAST_DTYPES, torch.float32)
    if not fits or _kernel_dtype(norm, stream, backend) is None:
        return norm(stream + branch)
    from .triton.layer_norm import LayerNormFunction

    return LayerNormFunction.apply(stream, norm.weight, norm.bias, norm.eps, torch.float32, branch)


__all__ = ["layer_norm_into_linear", "layer_norm_of_sum", "layer_norm_reference"]
