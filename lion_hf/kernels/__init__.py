"""The LION operator: bidirectional linear attention with a decay mask, in every form.

``lion_attention`` is the single entry point the models call; ``naive`` holds the float64 reference
used by the tests. ``backend="triton"`` (or ``"auto"`` on CUDA) runs the kernels of
``lion_hf.kernels.triton``, imported lazily so that Triton stays optional.
"""

from .interface import (
    AUTO_ATTENTION_MAX_LENGTH,
    AUTO_ATTENTION_MAX_LENGTH_TRITON,
    BACKENDS,
    FORMS,
    combine_parts,
    dropout_form,
    lion_attention,
    lion_attention_parts,
    resolve_backend,
    resolve_form,
)
from .naive import naive_lion_attention, naive_lion_parts

__all__ = [
    "AUTO_ATTENTION_MAX_LENGTH",
    "AUTO_ATTENTION_MAX_LENGTH_TRITON",
    "BACKENDS",
    "FORMS",
    "combine_parts",
    "dropout_form",
    "lion_attention",
    "lion_attention_parts",
    "naive_lion_attention",
    "naive_lion_parts",
    "resolve_backend",
    "resolve_form",
]
