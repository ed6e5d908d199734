# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards of the planned LION checkpoint families, rendered from one template.

A *family* is one planned checkpoint: a preset of :mod:`lion_hf.modeling.configuration_lion` (vision
LION-LIT/D/D♮/S/S♮ at tiny/small/base on ImageNet-1k, MLM LION-LIT/D/S at base/large on C4 + GLUE, and
LightNet at vision tiny/small/base and MLM base, for comparison), with the results the paper reports for
it (only those the LION paper gives: ImageNet-1k top-1 at base size, C4 MLM accuracy and GLUE average at
large size; none for LightNet, whose paper evaluates models with its own positional encodings) and the
results still to be measured.

:func:`render_card` turns a family (or a custom configuration) plus optional results of our own runs
into a :class:`huggingface_hub.ModelCard`, through :func:`lion_hf.hub.cards.render_run_card` and the one
card template of the package (``lion_hf/hub/templates/model_card.md``). Our own results replace the
paper's in ``model-index`` (the paper's value stays in the body as the reference); a metric nobody has
measured is written "not yet measured", never guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from huggingface_hub import ModelCard
from transformers.utils import logging

from .cards import (
    AUTO_CLASS_OF_HEAD,
    CITATION,
    LICENSE,
    LIGHTNET,
    PAPER_ARXIV_ID,
    PAPER_SOURCE_NAME,
    PAPER_TITLE,
    PAPER_URL,
    PIPELINE_TAGS,
    VARIANT_DESCRIPTIONS,
    VARIANT_NAMES,
    Result,
    count_parameters,
    merge_results,
    pipeline_tag_of,
    render_run_card,
    shape_of,
    variant_of,
)

logger = logging.get_logger(__name__)

DEFAULT_NAMESPACE = "lion-hf"

IMAGENET = {"dataset_type": "ILSVRC/imagenet-1k", "dataset_name": "ImageNet-1k", "dataset_split": "validation"}
C4 = {"dataset_type": "allenai/c4", "dataset_name": "C4", "dataset_config": "en", "dataset_split": "validation"}
GLUE = {"dataset_type": "nyu-mll/glue", "dataset_name": "GLUE", "dataset_split": "validation"}

# Values from the paper (spec section 3): ImageNet-1k top-1 of the 86M (base) vision models, and
# C4 MLM accuracy / GLUE average of the 334M (large) MLM models. Nothing else is reported.
_PAPER_IMAGENET_TOP1_BASE = {"LION-LIT": 74.7, "LION-D": 77.8, "LION-D♮": 80.2, "LION-S": 76.3, "LION-S♮": 79.9}
_PAPER_MLM_LARGE = {"LION-LIT": (67.11, 80.76), "LION-D": (68.64, 81.34), "LION-S": (69.16, 81.58)}
_PAPER_TRAINING_TIME = {"vision": {"LION-LIT": 0.73, "LION-D": 1.39, "LION-S": 1.46},
                        "text": {"LION-LIT": 0.95, "LION-D": 1.10, "LION-S": 1.32}}


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
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
        return pipeline_tag_of(self.head, self.modality)

    @property
    def recipe(self) -> str | None:
        """The training recipe the paper uses for this family's modality (None for a custom model)."""
        if self.preset is None:
            return None
        if self.variant == LIGHTNET:
            return LIGHTNET_VISION_RECIPE if self.modality == "vision" else LIGHTNET_TEXT_RECIPE
        return VISION_RECIPE if self.modality == "vision" else TEXT_RECIPE

    @property
    def paper_training_time(self) -> float | None:
        """Training time relative to a Transformer of the same size, as the paper reports it (None for a
        custom model: the paper's number is about its own runs)."""
        if self.preset is None:
            return None
        return _PAPER_TRAINING_TIME.get(self.modality, {}).get(self.variant.replace("♮", ""))

    @property
    def data_limitations(self) -> list[str]:
        """What the family's training data leaves untested (the card's limitations)."""
        if self.preset is None:
            data = ", ".join(self.datasets) or "the data named above"
            return [f"Trained and evaluated on {data} only; not evaluated for robustness, fairness or "
                    "out-of-distribution data."]
        if self.modality == "vision":
            return ["ImageNet-1k labels only; not evaluated for robustness, fairness or out-of-distribution data."]
        if self.variant == LIGHTNET:
            return ["Pretrained with 128-token sequences; longer inputs run up to the position table's 512 tokens, "
                    "but quality beyond 128 tokens is not measured.",
                    "English C4 text only, with the biases of web text; uncased vocabulary."]
        return ["Pretrained with 128-token sequences; longer inputs run (the mask has no length limit) but "
                "quality beyond 128 tokens is not measured.",
                "English C4 text only, with the biases of web text; uncased vocabulary."]

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
    # LightNet at LION's sizes, for comparison; no paper numbers (see _results_note in cards.py)
    for size in ("tiny", "small", "base"):
        name = f"lightnet-{size}-patch16-224"
        families[name] = CheckpointFamily(
            name=name, variant=LIGHTNET, modality="vision", size=size, preset=name,
            head="LionForImageClassification", datasets=("ILSVRC/imagenet-1k",), results=(_imagenet_top1(),),
            extra_tags=("lightnet",))
    families["lightnet-base-mlm"] = CheckpointFamily(
        name="lightnet-base-mlm", variant=LIGHTNET, modality="text", size="base", preset="lightnet-base-mlm",
        head="LionForMaskedLM", datasets=("allenai/c4", "nyu-mll/glue"), results=(_c4_mlm(), _glue_average()),
        extra_tags=("lightnet",))
    return families


FAMILIES: dict[str, CheckpointFamily] = _build_families()


def list_families() -> list[str]:
    """Names of the planned checkpoint families (equal to their preset names)."""
    return sorted(FAMILIES)


def family_for_config(config: Any) -> CheckpointFamily | None:
    """The planned family whose preset and head match ``config`` (``architectures[0]``), or None (a custom model)."""
    from lion_hf.modeling.configuration_lion import PRESETS

    shape_fields = ("modality", "attention_type", "mask_type", "patch_order", "hidden_size", "num_hidden_layers",
                    "num_attention_heads", "intermediate_size")
    head = (getattr(config, "architectures", None) or [None])[0]
    for name, family in FAMILIES.items():
        if head is not None and head != family.head:
            continue  # e.g. a GLUE fine-tune of an MLM family: the family's results are not its results
        preset = PRESETS[family.preset]
        reference = {f: preset.get(f) for f in shape_fields}
        reference["patch_order"] = preset.get("patch_order", "normal")
        reference["attention_type"] = preset.get("attention_type", "lion")
        reference["mask_type"] = preset.get("mask_type", "lit" if reference["attention_type"] == "lightnet" else None)
        if family.modality == "vision":
            reference.update(image_size=224, patch_size=16)
            if (config.image_size, config.patch_size) != (224, 16):
                continue
        if all(getattr(config, f, "lion" if f == "attention_type" else None) == reference[f] for f in shape_fields):
            return family
    return None


def custom_family(config: Any, datasets: Iterable[str] = ()) -> CheckpointFamily:
    """A family for a configuration that matches no preset (no paper results apply to it)."""
    head = (getattr(config, "architectures", None) or ["LionModel"])[0]
    return CheckpointFamily(name="lion-custom", variant=variant_of(config), modality=config.modality,
                            size=f"custom ({shape_of(config)})",
                            preset=None, head=head, datasets=tuple(datasets))


# --------------------------------------------------------------------------------------------------
# Run results
# --------------------------------------------------------------------------------------------------
#: Trainer metric names that describe speed, size or bookkeeping, not quality; never put into a card.
_NON_QUALITY_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch", "loss", "total_flos",
                        "model_preparation_time", "jit_compilation_time", "samples", "masked_tokens", "tokens",
                        "steps", "seconds", "batch_size")
#: Metrics reported as fractions by evaluate/Trainer but as percentages by the paper.
_PERCENT_METRICS = ("accuracy", "f1", "precision", "recall", "matthews_correlation", "mlm_accuracy",
                    "top1_accuracy", "glue_average", "pearson", "spearmanr")


def _metric_identity(metric: str, task_type: str) -> tuple[str, str]:
    """(Hub metric type, display name) of a run's metric key (without its ``eval_`` prefix)."""
    top = re.fullmatch(r"top(\d+)(?:_accuracy)?", metric)
    if metric in ("accuracy", "top1", "top1_accuracy") or (top and top.group(1) == "1"):
        return "accuracy", "Top-1 accuracy" if task_type == "image-classification" else "Accuracy"
    if top:
        return f"top{top.group(1)}_accuracy", f"Top-{top.group(1)} accuracy"
    if metric == "mlm_accuracy":
        return "accuracy", "MLM accuracy"
    return metric, metric.replace("_", " ").capitalize()


def _is_percent_metric(metric: str) -> bool:
    return metric in _PERCENT_METRICS or bool(re.fullmatch(r"top\d+(_accuracy)?", metric))


def results_from_metrics(metrics: Mapping[str, Any], *, task_type: str, dataset_type: str, dataset_name: str,
                         dataset_config: str | None = None, dataset_split: str | None = None,
                         source_name: str = "this checkpoint's evaluation run",
                         prefix: str = "eval_", percent: bool = True) -> list[Result]:
    """Card results from a run's metrics (``eval_results.json``/``all_results.json`` of a Trainer run).

    Keys ``<prefix><metric>`` with a finite numeric value become results; speed, loss and counts (samples,
    masked tokens, steps) are skipped: they are not results. With ``percent`` (a card whose paper rows are
    percentages) every fraction-type metric (accuracy, top-k, F1, ...) becomes a percentage, else every value
    stays as the run measured it: one unit per card either way. ``top1``/``topk`` keys become the Hub's
    ``accuracy``/``topk_accuracy``.
    """
    results = []
    for key, value in sorted(metrics.items()):
        if not key.startswith(prefix) or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if not math.isfinite(value):
            logger.warning("metric %s is %s: left out of the card", key, value)
            continue
        metric = key[len(prefix):]
        if metric in _NON_QUALITY_METRICS or metric.endswith(tuple("_" + m for m in _NON_QUALITY_METRICS)) \
                or metric.startswith("num_"):
            continue
        metric_type, pretty = _metric_identity(metric, task_type)
        if percent and _is_percent_metric(metric) and 0.0 <= value <= 1.0:
            value, unit = round(100.0 * value, 2), " (%)"
        else:
            value, unit = round(float(value), 4), ""
        results.append(Result(task_type, metric_type, pretty + unit, dataset_type, dataset_name, dataset_config,
                              dataset_split, value=value, source="run", source_name=source_name))
    return results


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
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


#: The LightNet paper's ImageNet-1k recipe (arXiv 2405.21022, appendix A.3, Table 4, column "IM").
LIGHTNET_VISION_RECIPE = (
    "ImageNet-1k from scratch with the recipe the LightNet paper gives for image classification (arXiv 2405.21022, "
    "appendix Table 4): 300 epochs, total batch size 2048, AdamW (peak learning rate 5e-4, ε 1e-8, β (0.9, 0.98), "
    "weight decay 0.1 for base and 0.05 for the smaller sizes), cosine schedule with 20 warm-up epochs, gradient "
    "clipping 5.0; 224×224 inputs, 16×16 patches, a class token, learned absolute position embeddings (in place of "
    "the paper's MD-TPE/MD-LRPE), mean pooling over all tokens. Trained on the same data as the LION vision "
    "families, for comparison.")
LIGHTNET_TEXT_RECIPE = (
    "The LightNet paper trains its bidirectional language models with the configuration of Cramming (Geiping & "
    "Goldstein, 2022). For comparison with the LION MLM families this checkpoint follows their recipe instead: "
    + TEXT_RECIPE[0].lower() + TEXT_RECIPE[1:])


def render_card(family: CheckpointFamily | str, *, config: Any = None, repo_id: str | None = None,
                run_results: Iterable[Result] = (), datasets: Iterable[str] | None = None,
                base_model: str | None = None, training: str | None = None, status: str | None = None,
                license: str = LICENSE, extra_tags: Iterable[str] = (), processor_class: str | None = None,
                template: str | None = None, dataset_description: str | None = None) -> ModelCard:
    """Render the card of ``family`` (a name of :func:`list_families` or a :class:`CheckpointFamily`).

    The card of a planned checkpoint, or of one published with its remote code (``lion-publish``):
    :func:`lion_hf.hub.cards.render_run_card` with the family and ``remote_code=True``.

    Args:
        config: the checkpoint's :class:`~lion_hf.LionConfig` (default: the family's preset).
        repo_id: repository the snippets load from (default ``lion-hf/<family name>``).
        run_results: results of our own runs (:func:`results_from_metrics`); they replace the paper's.
        datasets: Hub ids of the training/evaluation datasets (default: the family's).
        base_model: the checkpoint this one was fine-tuned from, if any.
        training: the training recipe paragraph (default: the paper's recipe for the family).
        status: a one-line status shown under the title (e.g. "planned checkpoint").
        processor_class: ``AutoImageProcessor``/``AutoTokenizer`` for the loading snippet (default by modality).
        template: a jinja2 template string replacing the package's card template.
        dataset_description: the "Data" line of the training section.
    """
    return render_run_card(family=family, config=config, repo_id=repo_id, results=run_results,
                           dataset_description=dataset_description,
                           hub_datasets=list(datasets) if datasets is not None else None, base_model=base_model,
                           training=training, status=status, license=license, tags=extra_tags,
                           processor_class=processor_class, remote_code=True, template=template)


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
    "AUTO_CLASS_OF_HEAD",
    "CITATION",
    "DEFAULT_NAMESPACE",
    "FAMILIES",
    "PAPER_ARXIV_ID",
    "PAPER_SOURCE_NAME",
    "PAPER_TITLE",
    "PAPER_URL",
    "PIPELINE_TAGS",
    "TEXT_RECIPE",
    "VARIANT_DESCRIPTIONS",
    "VARIANT_NAMES",
    "VISION_RECIPE",
    "LIGHTNET_TEXT_RECIPE",
    "LIGHTNET_VISION_RECIPE",
    "CheckpointFamily",
    "Result",
    "count_parameters",
    "custom_family",
    "family_for_config",
    "list_families",
    "merge_results",
    "render_card",
    "render_family_cards",
    "results_from_metrics",
    "variant_of",
]
