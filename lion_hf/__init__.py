"""lion_hf: LION (bidirectional linear attention with decay masks) for the Hugging Face ecosystem.

Importing the package registers ``LionConfig`` (model type ``"lion"``) and the LION models with
transformers' Auto classes, so ``AutoModel*.from_pretrained`` and ``pipeline(...)`` load LION
checkpoints without remote code.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from .kernels import lion_attention, lion_attention_parts
from .modeling import (
    PRESETS,
    LionConfig,
    LionConfigError,
    LionForImageClassification,
    LionForMaskedLM,
    LionForSequenceClassification,
    LionForTokenClassification,
    LionModel,
    LionPreTrainedModel,
    list_presets,
)

__version__ = "0.1.0"

AutoConfig.register(LionConfig.model_type, LionConfig, exist_ok=True)
for _auto, _model in (
    (AutoModel, LionModel),
    (AutoModelForImageClassification, LionForImageClassification),
    (AutoModelForMaskedLM, LionForMaskedLM),
    (AutoModelForSequenceClassification, LionForSequenceClassification),
    (AutoModelForTokenClassification, LionForTokenClassification),
):
    _auto.register(LionConfig, _model, exist_ok=True)

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
    "lion_attention",
    "lion_attention_parts",
    "list_presets",
    "__version__",
]
