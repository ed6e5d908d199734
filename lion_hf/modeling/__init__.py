"""LION configuration and models (transformers ``PreTrainedModel`` subclasses)."""

from .configuration_lion import PRESETS, LionConfig, LionConfigError, list_presets
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
    "LionConfigError",
    "LionForImageClassification",
    "LionForMaskedLM",
    "LionForSequenceClassification",
    "LionForTokenClassification",
    "LionModel",
    "LionPreTrainedModel",
    "list_presets",
]
