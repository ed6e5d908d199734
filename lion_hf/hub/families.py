# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards of the planned LION checkpoint families, rendered from one template.

A *family* is one planned checkpoint: a preset of :mod:`lion_hf.modeling.configuration_lion` (vision
LION-LIT/D/D♮/S/S♮ at tiny/small/base on ImageNet-1k, MLM LION-LIT/D/S at base/large on C4 + GLUE),
with the results the paper reports for it (only those the paper gives: ImageNet-1k top-1 at base
size, C4 MLM accuracy and GLUE average at large size) and the results still to be measured.

:func:`render_card` turns a family (or a custom configuration) plus optional results of our own runs
into a :class:`huggingface_hub.ModelCard`: YAML metadata through :class:`~huggingface_hub.ModelCardData`
(``model-index`` from :class:`~huggingface_hub.EvalResult`) and a Markdown body from the template
:data:`CARD_TEMPLATE`. Our own results replace the paper's in ``model-index`` (the paper's value stays
in the body as the reference); a metric nobody has measured is written "not yet measured", never guessed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

logger = logging.get_logger(__name__)

PAPER_ARXIV_ID = "2502.16249"
PAPER_URL = f"https://arxiv.org/abs/{PAPER_ARXIV_ID}"
PAPER_TITLE = "Linear Attention for Efficient Bidirectional Sequence Modeling"
PAPER_SOURCE_NAME = f"reported by the paper (arXiv {PAPER_ARXIV_ID})"
CITATION = """@article{afzal2025linear,
  title   = {Linear Attention for Efficient Bidirectional Sequence Modeling},
  author  = {Afzal, Arshia and Abad Rocamora, Elias and Candogan, Leyla Naz and Puigdemont, Pol and
             Tonin, Francesco and Wu, Yongtao and Shoaran, Mahsa and Cevher, Volkan},
  journal = {arXiv preprint arXiv:2502.16249},
  year    = {2025},
  url     = {https://arxiv.org/abs/2502.16249},
  doi     = {10.48550/arXiv.2502.16249}
}"""
LICENSE = "apache-2.0"
DEFAULT_NAMESPACE = "lion-hf"

IMAGENET = {"dataset_type": "ILSVRC/imagenet-1k", "dataset_name": "ImageNet-1k", "dataset_split": "validation"}
C4 = {"dataset_type": "allenai/c4", "dataset_name": "C4", "dataset_config": "en", "dataset_split": "validation"}
GLUE = {"dataset_type": "nyu-mll/glue", "dataset_name": "GLUE", "dataset_split": "validation"}

#: Head class (``config.architectures[0]``) -> Hub pipeline tag.
PIPELINE_TAGS = {
    "LionForImageClassification": "image-classification",
    "LionForMaskedLM": "fill-mask",
    "LionForSequenceClassification": "text-classification",
    "LionForTokenClassification": "token-classification",
}
AUTO_CLASS_OF_HEAD = {
    "LionForImageClassification": "AutoModelForImageClassification",
    "LionForMaskedLM": "AutoModelForMaskedLM",
    "LionForSequenceClassification": "AutoModelForSequenceClassification",
    "LionForTokenClassification": "AutoModelForTokenClassification",
    "LionModel": "AutoModel",
}

VARIANT_NAMES = {("lit", "normal"): "LION-LIT", ("decay", "normal"): "LION-D", ("decay", "s"): "LION-D♮",
                 ("selective", "normal"): "LION-S", ("selective", "s"): "LION-S♮"}
VARIANT_DESCRIPTIONS = {
    "LION-LIT": "no decay (the mask is all ones): plain bidirectional linear attention",
    "LION-D": "one learned decay per head, mask entries λ^|i-j|",
    "LION-D♮": "LION-D over two snake scan orders of the patch grid (row- and column-major), "
               "each with its own decays, averaged before normalisation",
    "LION-S": "selective, input-dependent decay per token and head",
    "LION-S♮": "LION-S over two snake scan orders of the patch grid, each with its own gate, "
               "averaged before normalisation",
}

# Values from the paper (spec section 3): ImageNet-1k top-1 of the 86M (base) vision models, and
# C4 MLM accuracy / GLUE average of the 334M (large) MLM models. Nothing else is reported.
_PAPER_IMAGENET_TOP1_BASE = {"LION-LIT": 74.7, "LION-D": 77.8, "LION-D♮": 80.2, "LION-S": 76.3, "LION-S♮": 79.9}
_PAPER_MLM_LARGE = {"LION-LIT": (67.11, 80.76), "LION-D": (68.64, 81.34), "LION-S": (69.16, 81.58)}
_PAPER_TRAINING_TIME = {"vision": {"LION-LIT": 0.73, "LION-D": 1.39, "LION-S": 1.46},
                        "text": {"LION-LIT": 0.95, "LION-D": 1.10, "LION-S": 1.32}}


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """One evaluation result of a card: a metric on a dataset, its value and where the value comes from.

    ``value=None`` means "not yet measured": the row is shown in the card body but has no
    ``model-index`` entry. ``source`` is ``"paper"`` (reported by the paper) or ``"run"`` (our run).
    """

    task_type: str
    metric_type: str
    metric_name: str
    dataset_type: str
    dataset_name: str
    dataset_config: str | None = None
    dataset_split: str | None = None
    value: float | None = None
    source: str | None = None
    source_name: str | None = None
    source_url: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """What a result measures; a run's result replaces the paper's result with the same key."""
        return (self.task_type, self.metric_type, self.dataset_type, self.dataset_config)

    def to_eval_result(self) -> EvalResult:
        if self.value is None:
            raise ValueError(f"{self.metric_name} on {self.dataset_name} has no value; it cannot go into model-index")
        return EvalResult(
            task_type=self.task_type, dataset_type=self.dataset_type, dataset_name=self.dataset_name,
            dataset_config=self.dataset_config, dataset_split=self.dataset_split,
            metric_type=self.metric_type, metric_name=self.metric_name, metric_value=self.value,
            verified=False,
            # The Hub needs a URL with a source name; a run's own results need neither (a card's
            # results are self-reported by default), so the source goes in only when it has a URL.
            source_name=self.source_name if self.source_url else None, source_url=self.source_url)

    def describe_source(self) -> str:
        if self.value is None:
            return "not yet measured"
        if self.source == "paper":
            return PAPER_SOURCE_NAME
        return self.source_name or "this checkpoint's evaluation run"


def _imagenet_top1(value: float | None = None) -> Result:
    return Result("image-classification", "accuracy", "Top-1 accuracy (%)", **IMAGENET, value=value,
                  source="paper" if value is not None else None,
                  source_name=PAPER_SOURCE_NAME if value is not None else None,
                  source_url=PAPER_URL if value is not None else None)


def _c4_mlm(value: float | None = None) -> Result:
    return Result("fill-mask", "accuracy", "MLM accuracy (%)", **C4, value=value,
                  source="paper" if value is not None else None,
                  source_name=PAPER_SOURCE_NAME if value is not None else None,
                  source_url=PAPER_URL if value is not None else None)


def _glue_average(value: float | None = None) -> Result:
    return Result("text-classification", "glue_average", "GLUE average (dev)", **GLUE, value=value,
                  source="paper" if value is not None else None,
                  source_name=PAPER_SOURCE_NAME if value is not None else None,
                  source_url=PAPER_URL if value is not None else None)


# --------------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckpointFamily:
    """A planned checkpoint: a preset, its task and dataset, and the results known for it."""

    name: str
    variant: str
    modality: str
    size: str
    preset: str | None
    head: str
    datasets: tuple[str, ...]
    results: tuple[Result, ...] = ()
    extra_tags: tuple[str, ...] = ()

    @property
    def pipeline_tag(self) -> str:
        return PIPELINE_TAGS.get(self.head, "image-feature-extraction" if self.modality == "vision"
                                 else "feature-extraction")

    def repo_id(self, namespace: str = DEFAULT_NAMESPACE) -> str:
        return f"{namespace}/{self.name}"


def _build_families() -> dict[str, CheckpointFamily]:
    families: dict[str, CheckpointFamily] = {}
    vision = (("lit", "LION-LIT"), ("d", "LION-D"), ("d-natural", "LION-D♮"), ("s", "LION-S"), ("s-natural", "LION-S♮"))
    for key, variant in vision:
        for size in ("tiny", "small", "base"):
            name = f"lion-{key}-{size}-patch16-224"
            top1 = _PAPER_IMAGENET_TOP1_BASE[variant] if size == "base" else None
            families[name] = CheckpointFamily(
                name=name, variant=variant, modality="vision", size=size, preset=name,
                head="LionForImageClassification", datasets=("ILSVRC/imagenet-1k",),
                results=(_imagenet_top1(top1),))
    for key, variant in (("lit", "LION-LIT"), ("d", "LION-D"), ("s", "LION-S")):
        for size in ("base", "large"):
            name = f"lion-{key}-{size}-mlm"
            mlm, glue = _PAPER_MLM_LARGE[variant] if size == "large" else (None, None)
            families[name] = CheckpointFamily(
                name=name, variant=variant, modality="text", size=size, preset=name,
                head="LionForMaskedLM", datasets=("allenai/c4", "nyu-mll/glue"),
                results=(_c4_mlm(mlm), _glue_average(glue)))
    return families


FAMILIES: dict[str, CheckpointFamily] = _build_families()


def list_families() -> list[str]:
    """Names of the planned checkpoint families (equal to their preset names)."""
    return sorted(FAMILIES)


def variant_of(config: Any) -> str:
    """``LION-LIT``/``LION-D``/``LION-D♮``/``LION-S``/``LION-S♮`` of a :class:`~lion_hf.LionConfig`."""
    return VARIANT_NAMES[(config.mask_type, getattr(config, "patch_order", "normal"))]


def family_for_config(config: Any) -> CheckpointFamily | None:
    """The planned family whose preset and head match ``config`` (``architectures[0]``), or None (a custom model)."""
    from lion_hf.modeling.configuration_lion import PRESETS

    shape_fields = ("modality", "mask_type", "patch_order", "hidden_size", "num_hidden_layers",
                    "num_attention_heads", "intermediate_size")
    head = (getattr(config, "architectures", None) or [None])[0]
    for name, family in FAMILIES.items():
        if head is not None and head != family.head:
            continue  # e.g. a GLUE fine-tune of an MLM family: the family's results are not its results
        preset = PRESETS[family.preset]
        reference = {f: preset.get(f) for f in shape_fields}
        reference["patch_order"] = preset.get("patch_order", "normal")
        if family.modality == "vision":
            reference.update(image_size=224, patch_size=16)
            if (config.image_size, config.patch_size) != (224, 16):
                continue
        if all(getattr(config, f, None) == reference[f] for f in shape_fields):
            return family
    return None


def custom_family(config: Any, datasets: Iterable[str] = ()) -> CheckpointFamily:
    """A family for a configuration that matches no preset (no paper results apply to it)."""
    head = (getattr(config, "architectures", None) or ["LionModel"])[0]
    size = f"custom ({config.hidden_size} hidden, {config.num_hidden_layers} layers, {config.num_attention_heads} heads)"
    return CheckpointFamily(name="lion-custom", variant=variant_of(config), modality=config.modality, size=size,
                            preset=None, head=head, datasets=tuple(datasets))


# --------------------------------------------------------------------------------------------------
# Run results
# --------------------------------------------------------------------------------------------------
#: Trainer metric names that describe speed or bookkeeping, not quality; never put into a card.
_NON_QUALITY_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch", "loss", "total_flos",
                        "model_preparation_time", "jit_compilation_time")
#: Metrics reported as fractions by evaluate/Trainer but as percentages by the paper.
_PERCENT_METRICS = ("accuracy", "f1", "precision", "recall", "matthews_correlation", "mlm_accuracy",
                    "top1_accuracy", "glue_average", "pearson", "spearmanr")


def results_from_metrics(metrics: Mapping[str, Any], *, task_type: str, dataset_type: str, dataset_name: str,
                         dataset_config: str | None = None, dataset_split: str | None = None,
                         source_name: str = "this checkpoint's evaluation run",
                         prefix: str = "eval_") -> list[Result]:
    """Card results from a run's metrics (``eval_results.json``/``all_results.json`` of a Trainer run).

    Keys ``<prefix><metric>`` with a numeric value become results; speed and loss entries are skipped.
    Fractions of accuracy-like metrics are turned into percentages so they compare with the paper's.
    """
    results = []
    for key, value in sorted(metrics.items()):
        if not key.startswith(prefix) or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        metric = key[len(prefix):]
        if metric in _NON_QUALITY_METRICS or metric.endswith(_NON_QUALITY_METRICS):
            continue
        if metric in _PERCENT_METRICS and 0.0 <= value <= 1.0:
            value, unit = round(100.0 * value, 2), " (%)"
        else:
            value, unit = round(float(value), 4), ""
        metric_type = "accuracy" if metric in ("mlm_accuracy", "top1_accuracy") else metric
        pretty = {"accuracy": "Top-1 accuracy" if task_type == "image-classification" else "Accuracy",
                  "mlm_accuracy": "MLM accuracy", "top1_accuracy": "Top-1 accuracy"}.get(metric,
                                                                                     metric.replace("_", " ").capitalize())
        results.append(Result(task_type, metric_type, pretty + unit, dataset_type, dataset_name, dataset_config,
                              dataset_split, value=value, source="run", source_name=source_name))
    return results


def merge_results(family_results: Iterable[Result], run_results: Iterable[Result]) -> tuple[list[Result], list[Result]]:
    """(results of the card's ``model-index``, all rows of the body table).

    A run result replaces the family's result with the same key (task, metric, dataset, config) in
    ``model-index``; the paper's value stays in the body table as a reference row.
    """
    run_results = list(run_results)
    measured = {r.key for r in run_results}
    index = [r for r in family_results if r.value is not None and r.key not in measured] + run_results
    table = run_results + [r for r in family_results if not (r.value is None and r.key in measured)]
    return index, table


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
#: The one template every LION card is rendered from (jinja2, as ModelCard.from_template expects).
CARD_TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

{% if status %}> **Status:** {{ status }}

{% endif %}## Model details

| | |
|---|---|
| Architecture | LION ({{ variant }}: {{ variant_description }}) |
| Task | {{ task }} |
| Size | {{ size }} |
| Parameters | {{ parameters }} |
| Input | {{ input_description }} |
{% if preset %}| Preset | `LionConfig.from_preset("{{ preset }}")` |
{% endif %}| Paper | [{{ paper_title }}]({{ paper_url }}) |

LION computes bidirectional linear attention `y_i = Σ_j M_ij (q_i·k_j) v_j` (normalised for vision) with
a decay mask `M`; the same function runs as full attention (short inputs), chunkwise (long inputs) or
as two linear recurrences (constant memory per token at inference).

## Results

| Metric | Dataset | Value | Source |
|---|---|---|---|
{% for row in results %}| {{ row.metric_name }} | {{ row.dataset_name }}{% if row.dataset_config %} ({{ row.dataset_config }}){% endif %}{% if row.dataset_split %}, {{ row.dataset_split }}{% endif %} | {{ row.value if row.value is not none else "—" }} | {{ row.describe_source() }} |
{% endfor %}

{{ results_note }}

## How to load

With `lion_hf` installed (`pip install lion_hf`), the model classes are registered with transformers:

```python
import lion_hf  # registers LionConfig and the LION models with the Auto classes
from transformers import {{ auto_class }}{% if processor_class %}, {{ processor_class }}{% endif %}

model = {{ auto_class }}.from_pretrained("{{ repo_id }}")
{% if processor_class %}processor = {{ processor_class }}.from_pretrained("{{ repo_id }}")
{% endif %}```

Without `lion_hf`, the repository carries its own modeling code (a flat bundle generated from the
package sources, with `auto_map` for every head), so `trust_remote_code=True` is enough:

```python
from transformers import {{ auto_class }}, pipeline

model = {{ auto_class }}.from_pretrained("{{ repo_id }}", trust_remote_code=True)
{% if pipeline_tag %}pipe = pipeline("{{ pipeline_tag }}", model="{{ repo_id }}", trust_remote_code=True)
{% endif %}```

Any head loads from the same checkpoint (`AutoModel`, `AutoModelForImageClassification`,
`AutoModelForMaskedLM`, `AutoModelForSequenceClassification`, `AutoModelForTokenClassification`);
weights the checkpoint lacks (a new head) are initialised and reported by transformers.
The attention form is a run-time choice: `model.set_attention_form("chunk")` (or `"attention"`,
`"recurrent"`, `"auto"`) changes speed and memory, not results.

## Configuration

```json
{{ config_json }}
```

## Training recipe

{{ training }}

## Limitations

{% for item in limitations %}- {{ item }}
{% endfor %}
## Citation

```bibtex
{{ citation }}
```
"""

_TASK_TEXT = {"image-classification": "image classification", "fill-mask": "masked language modeling",
              "text-classification": "text classification", "token-classification": "token classification",
              "feature-extraction": "feature extraction", "image-feature-extraction": "image feature extraction"}

VISION_RECIPE = (
    "ImageNet-1k from scratch with the DeiT recipe the paper uses: 300 epochs, AdamW (learning rate "
    "5e-4 × batch/512, weight decay 0.05), cosine schedule with 5 warm-up epochs, drop path 0.1, label "
    "smoothing 0.1, Mixup 0.8 / CutMix 1.0, RandAugment m9-mstd0.5-inc1, random erasing 0.25, repeated "
    "augmentation; 224×224 inputs, 16×16 patches, a class token, no position embeddings, mean pooling over "
    "all tokens (class token included).")
TEXT_RECIPE = (
    "Masked language modeling on C4 (English) with the M2-BERT recipe the paper uses: the BERT uncased "
    "WordPiece vocabulary, sequences of 128 tokens, 30% of the tokens masked during pretraining (15% at "
    "evaluation), BERT post-norm layers; then fine-tuning on each GLUE task, the GLUE average being the "
    "mean of the task scores on the dev sets.")


def count_parameters(config: Any, head: str) -> int:
    """Parameter count of ``head`` built from ``config`` on the meta device (no memory, no init)."""
    import torch

    import lion_hf.modeling.modeling_lion as modeling

    with torch.device("meta"):
        model = getattr(modeling, head)(config)
    return sum(p.numel() for p in model.parameters())


def _format_parameters(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count / 1e3:.1f}K"


def _limitations(family: CheckpointFamily, config: Any) -> list[str]:
    items = [
        "Trained with `lion_hf`, not converted from the authors' release: the original checkpoints carry a "
        "non-commercial licence and are not republished here.",
        "Paper values describe the paper's runs; until this checkpoint's own evaluation is published they are a "
        "reference, not a measurement of these weights.",
    ]
    if family.modality == "vision":
        items.append(f"Trained at {config.image_size}×{config.image_size}; other resolutions change the number of "
                     "tokens, which the decay mask handles, but accuracy away from the training resolution is not "
                     "measured.")
        items.append("ImageNet-1k labels only; not evaluated for robustness, fairness or out-of-distribution data.")
    else:
        items.append("Pretrained with 128-token sequences; longer inputs run (the mask has no length limit) but "
                     "quality beyond 128 tokens is not measured.")
        items.append("English C4 text only, with the biases of web text; uncased vocabulary.")
    if config.mask_type == "lit":
        order = ("knows token order only through its position embeddings" if config.use_position_embeddings
                 else "has no notion of token order at all (no decay and, as in the paper's setup, no position "
                      "embeddings)")
        items.append(f"LION-LIT has no decay mask, so it {order}; the paper reports it as the weakest variant.")
    items.append("`output_attentions=True` materialises the L×L attention, so it needs the attention form.")
    return items


def _config_json(config: Any) -> str:
    keep = ("model_type", "modality", "mask_type", "patch_order", "feature_map", "normalize_attention",
            "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "layer_norm_position",
            "use_position_embeddings", "attention_output_norm", "image_size", "patch_size", "pooling",
            "vocab_size", "max_position_embeddings", "num_labels", "attention_form")
    text_only = ("vocab_size", "max_position_embeddings", "use_position_embeddings", "attention_output_norm")
    vision_only = ("image_size", "patch_size", "pooling")
    data = {}
    for name in keep:
        if (config.modality == "vision" and name in text_only) or (config.modality == "text" and name in vision_only):
            continue
        if name == "num_labels" and config.modality == "text" and len(getattr(config, "id2label", {}) or {}) <= 2:
            continue
        data[name] = getattr(config, name, None)
    return json.dumps(data, indent=2, ensure_ascii=False)


def render_card(family: CheckpointFamily | str, *, config: Any = None, repo_id: str | None = None,
                run_results: Iterable[Result] = (), datasets: Iterable[str] | None = None,
                base_model: str | None = None, training: str | None = None, status: str | None = None,
                license: str = LICENSE, extra_tags: Iterable[str] = (), processor_class: str | None = None,
                template: str | None = None) -> ModelCard:
    """Render the card of ``family`` (a name of :func:`list_families` or a :class:`CheckpointFamily`).

    Args:
        config: the checkpoint's :class:`~lion_hf.LionConfig` (default: the family's preset).
        repo_id: repository the snippets load from (default ``lion-hf/<family name>``).
        run_results: results of our own runs (:func:`results_from_metrics`); they replace the paper's.
        datasets: Hub ids of the training/evaluation datasets (default: the family's).
        base_model: the checkpoint this one was fine-tuned from, if any.
        training: the training recipe paragraph (default: the paper's recipe for the family).
        status: a one-line status shown under the title (e.g. "planned checkpoint").
        processor_class: ``AutoImageProcessor``/``AutoTokenizer`` for the loading snippet (default by modality).
        template: a jinja2 template string replacing :data:`CARD_TEMPLATE`.
    """
    from lion_hf.modeling.configuration_lion import LionConfig

    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"unknown LION checkpoint family {family!r}; available: {', '.join(list_families())}")
        family = FAMILIES[family]
    if config is None:
        if family.preset is None:
            raise ValueError(f"family {family.name!r} has no preset; pass config=")
        config = LionConfig.from_preset(family.preset)
    repo_id = repo_id or family.repo_id()
    index_results, table_results = merge_results(family.results, run_results)
    head = (getattr(config, "architectures", None) or [family.head])[0]
    pipeline_tag = PIPELINE_TAGS.get(head, family.pipeline_tag)
    datasets = list(datasets) if datasets is not None else list(family.datasets)
    variant_tag = family.variant.lower().replace("♮", "-natural")
    tags = ["lion", "linear-attention", "bidirectional", variant_tag, family.modality, "custom_code",
            f"arxiv:{PAPER_ARXIV_ID}", *family.extra_tags, *extra_tags]
    card_data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(tags)), datasets=datasets or None, base_model=base_model,
        metrics=sorted({r.metric_type for r in index_results}) or None,
        model_name=repo_id.split("/")[-1] if index_results else None,
        eval_results=[r.to_eval_result() for r in index_results] or None)
    if processor_class is None:
        processor_class = "AutoImageProcessor" if family.modality == "vision" else "AutoTokenizer"
    if family.modality == "vision":
        input_description = (f"{config.image_size}×{config.image_size} RGB images, {config.patch_size}×{config.patch_size} "
                              f"patches ({(config.image_size // config.patch_size) ** 2} tokens + a class token)")
    else:
        positions = [] if config.mask_type == "lit" else ["the decay mask"]
        if config.use_position_embeddings:
            positions.append(f"learned absolute positions (up to {config.max_position_embeddings} tokens)")
        input_description = (f"token ids (vocabulary {config.vocab_size}); word order from "
                             f"{' and '.join(positions) or 'nothing (no decay, no position embeddings)'}")
    any_paper = any(r.source == "paper" and r.value is not None for r in table_results)
    missing = [r for r in table_results if r.value is None]
    notes = []
    if any_paper:
        notes.append("Rows marked *reported by the paper* are the paper's numbers for this architecture and size "
                     f"([arXiv {PAPER_ARXIV_ID}]({PAPER_URL})); they are not measurements of these weights.")
    if missing:
        notes.append("*Not yet measured*: the paper reports no number for this size and no evaluation of this "
                     "checkpoint has been published yet.")
    speed = _PAPER_TRAINING_TIME.get(family.modality, {}).get(family.variant.replace("♮", ""))
    if speed is not None:
        notes.append(f"The paper reports a training time of {speed}× that of a Transformer of the same size for "
                     f"{family.variant.replace('♮', '')}.")
    title = f"{family.variant} {family.size} — {_TASK_TEXT.get(pipeline_tag, pipeline_tag)}"
    summary = (f"`{repo_id}` is a LION model ({family.variant}) for {_TASK_TEXT.get(pipeline_tag, pipeline_tag)}"
               + (f" (data: {', '.join(datasets)})" if datasets else "") + ". LION (Afzal et al., 2025) is "
               "bidirectional linear attention with decay masks: it trains in parallel like a Transformer and "
               "runs inference as a bidirectional RNN.")
    variables = dict(
        title=title, summary=summary, status=status, variant=family.variant,
        variant_description=VARIANT_DESCRIPTIONS[family.variant], task=_TASK_TEXT.get(pipeline_tag, pipeline_tag),
        size=family.size, parameters=_format_parameters(count_parameters(config, head)),
        input_description=input_description, preset=family.preset, paper_title=PAPER_TITLE, paper_url=PAPER_URL,
        results=table_results, results_note="\n\n".join(notes), auto_class=AUTO_CLASS_OF_HEAD.get(head, "AutoModel"),
        processor_class=processor_class, repo_id=repo_id, pipeline_tag=pipeline_tag,
        config_json=_config_json(config), training=training or (VISION_RECIPE if family.modality == "vision" else TEXT_RECIPE),
        limitations=_limitations(family, config), citation=CITATION)
    return ModelCard.from_template(card_data, template_str=template or CARD_TEMPLATE, **variables)


def render_family_cards(namespace: str = DEFAULT_NAMESPACE, names: Iterable[str] | None = None) -> dict[str, ModelCard]:
    """Cards of the planned families (all, or ``names``), keyed by family name."""
    cards = {}
    for name in names or list_families():
        family = FAMILIES[name] if name in FAMILIES else None
        if family is None:
            raise ValueError(f"unknown LION checkpoint family {name!r}; available: {', '.join(list_families())}")
        cards[name] = render_card(family, repo_id=family.repo_id(namespace),
                                  status="planned checkpoint: the weights will be trained with `lion_hf` and "
                                         "published under this name; the results below are updated when they are.")
    return cards


__all__ = [
    "CARD_TEMPLATE",
    "CITATION",
    "FAMILIES",
    "CheckpointFamily",
    "Result",
    "custom_family",
    "family_for_config",
    "list_families",
    "merge_results",
    "render_card",
    "render_family_cards",
    "results_from_metrics",
    "variant_of",
]
