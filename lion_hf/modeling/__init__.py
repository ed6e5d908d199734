"""LION configuration and models (transformers ``PreTrainedModel`` subclasses)."""

from .configuration_lion import PRESETS, LionConfig, list_presets
from .modeling_lion import (
    LionForImageClassification,
    LionForMaskedLM,
    LionForSequenceClassification,
    LionForTokenClassification,
    LionModel,
    LionPreTrainedModel,
)

__all__ = [
    "PRESETS",
    "LionConfig",
    "LionForImageClassification",
    "LionForMaskedLM",
    "LionForSequenceClassification",
    "LionForTokenClassification",
    "LionModel",
    "LionPreTrainedModel",
    "list_presets",
]
