"""Triton kernels of the LION operator (attention, chunk and recurrent forms).

Import this package only after checking :func:`lion_hf.kernels.triton.utils.triton_available`;
``lion_hf.kernels.interface`` does so lazily, so ``import lion_hf`` never needs Triton.

Layout: ``attention.py`` (flash-style parallel form), ``chunk.py`` (chunkwise form), ``recurrent.py``
(inference RNN form), each with its kernels, launch functions and a plain ``torch.autograd.Function``;
``ops.py`` registers the attention and chunk forms as ``torch.library`` custom operators, which is what
``lion_attention`` calls (so ``torch.compile`` does not break the graph around them); ``common.py`` holds
the output modes and the backward's input preparation, ``utils.py`` availability and shape checks.
"""

from .attention import LionAttentionFunction, attention_backward, attention_forward
from .chunk import LionChunkFunction, chunk_backward, chunk_forward
from .common import NORMALIZED, PARTS, SCALED
from .ops import lion_backward, lion_forward
from .recurrent import recurrent_forward
from .utils import SUPPORTED_CHUNK_SIZES, SUPPORTED_HEAD_DIMS, head_dims_supported, triton_available

__all__ = [
    "LionAttentionFunction",
    "LionChunkFunction",
    "NORMALIZED",
    "PARTS",
    "SCALED",
    "SUPPORTED_CHUNK_SIZES",
    "SUPPORTED_HEAD_DIMS",
    "attention_backward",
    "attention_forward",
    "chunk_backward",
    "chunk_forward",
    "head_dims_supported",
    "lion_backward",
    "lion_forward",
    "recurrent_forward",
    "triton_available",
]
