"""Shared helpers of the Triton kernels: availability, supported shapes, dtypes and launch constants.

Nothing here imports Triton at module level except through :func:`triton_available`'s guarded import,
so ``import lion_hf`` works where Triton is missing.
"""

from __future__ import annotations

import os

import torch

#: head dims (dk and dv) the kernels are compiled for; other sizes fall back to PyTorch.
SUPPORTED_HEAD_DIMS = (32, 64, 128)
#: chunk sizes the chunk kernels accept (one tile per chunk).
SUPPORTED_CHUNK_SIZES = (16, 32, 64, 128)
DEFAULT_TRITON_CHUNK_SIZE = 64


def triton_chunk_size(requested: int | None, has_decay: bool, head_dim: int, fp32: bool = False) -> int:
    """The chunk length the Triton chunk kernels run with (every choice computes the same function).

    Default, from the H100 measurements in BENCHMARKS.md (L = 4096 and 16384, head dim 64): 128 for
    LION-LIT, whose chunks cost no mask exponentials (fwd+bwd 2.83 vs 2.97 ms at L = 16384, 0.73 vs
    1.17 at 4096), 64 with a decay (LION-D 4.82 vs 5.26 ms, LION-S 4.85 vs 5.85 at L = 16384). Heads
    wider than 64 take at most 64: with 128-wide heads, 128-long chunks failed on an H100 in bf16 (the
    GPU tests at that combination; most likely the gradient kernel's tiles do not fit). fp32 inputs
    (``fp32``) take at most 32, and 16 with 128-wide heads: their products run on the FMA units in
    fp32 tiles, which spill, and the gradient kernel of a 64-long chunk took from 44 s (head dim 64) to
    over 5 minutes (128) to compile for sm_90 (``benchmarks/kernel_resources.py``). A requested size
    outside :data:`SUPPORTED_CHUNK_SIZES` (or too large for the head) becomes the largest supported one
    not above it (16 below that).
    """
    largest = 128 if head_dim <= 64 else 64
    if fp32:
        largest = 32 if head_dim <= 64 else 16
    if requested is None:
        return largest if not has_decay else min(DEFAULT_TRITON_CHUNK_SIZE, largest)
    fitting = [c for c in SUPPORTED_CHUNK_SIZES if c <= min(requested, largest)]
    return fitting[-1] if fitting else SUPPORTED_CHUNK_SIZES[0]

_TRITON_OK: bool | None = None


def triton_available() -> bool:
    """Whether ``import triton`` works here (cached)."""
    global _TRITON_OK
    if _TRITON_OK is None:
        try:
            import triton  # noqa: F401
            import triton.language  # noqa: F401
            _TRITON_OK = True
        except Exception:  # ImportError, or a broken install raising something else at import
            _TRITON_OK = False
    return _TRITON_OK


def interpreter_enabled() -> bool:
    """Whether Triton runs kernels on the CPU through its interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def cdiv(a: int, b: int) -> int:
    """``ceil(a / b)`` for host-side grids: ``triton.cdiv`` is a constexpr function in Triton >= 3.5, whose
    host calls cost ~2 us each (its argument unwrapping), a few per launch."""
    return -(-a // b)


def head_dims_supported(dk: int, dv: int) -> bool:
    return dk in SUPPORTED_HEAD_DIMS and dv in SUPPORTED_HEAD_DIMS


def kernel_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the operands fed to the matrix units: half types stay, everything else is fp32.

    (fp64 inputs are computed in fp32 by the kernels; the PyTorch backend keeps fp64.)"""
    return dtype if dtype in (torch.float16, torch.bfloat16) else torch.float32


def contiguous(*tensors):
    return tuple(None if t is None else t.contiguous() for t in tensors)


def row_major_last(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` (in ``dtype`` if given) if its last dim is contiguous (the kernels read any other strides), else a
    contiguous copy; no operator runs when nothing changes (the host time of a launch matters, launcher.py)."""
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t if t.stride(-1) == 1 or t.shape[-1] == 1 else t.contiguous()


def strides3(t: torch.Tensor) -> tuple[int, int, int]:
    """``(stride_batch, stride_head, stride_position)`` of a ``[B, H, L, D]`` tensor (last dim contiguous)."""
    return t.stride()[:3]  # one call, not three: a launch passes 4-8 tensors' strides (launcher.py)


def empty_blhd(batch: int, heads: int, length: int, dim: int, dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """An uninitialised ``[B, H, L, D]`` tensor laid out as ``[B, L, H, D]`` in memory.

    The kernels write their outputs this way: the models' ``out_proj`` reads ``[B, L, H*D]``, so
    ``x.transpose(1, 2).reshape(B, L, H * D)`` is a view, not a copy."""
    # one operator (empty + transpose would be two: a host step counts, launcher.py)
    return torch.empty_strided((batch, heads, length, dim), (length * heads * dim, dim, heads * dim, 1),
                               device=device, dtype=dtype)


def decay_strides(log_decay: torch.Tensor | None, batch: int, heads: int, length: int):
    """``(tensor, stride_b, stride_h, stride_l, kind)`` to read ``log_decay`` at ``[b, h, t]``.

    ``kind`` is 0 for LIT (no decay), 1 for LION-D (``[H]``, read with zero batch/position strides)
    and 2 for LION-S (``[B, H, L]``). The tensor is fp32 and contiguous.
    """
    if log_decay is None:
        return None, 0, 0, 0, 0
    # no detach: the kernels read the data; callers run inside autograd Functions (one operator fewer)
    a = log_decay if log_decay.dtype == torch.float32 else log_decay.to(torch.float32)
    if a.dim() == 1:
        a = a.contiguous()
        return a, 0, 1, 0, 1
    return a, a.stride(0), a.stride(1), a.stride(2), 2
