# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards written at the end of a training run of the example scripts.

:func:`render_run_card` fills the Jinja template ``model_cards/template.md`` (repository root) from
what the run knows: the model's configuration, the data, the hyperparameters, the final metrics and
the logged training curve. The YAML header is built with :class:`huggingface_hub.ModelCardData`
(``library_name: transformers``, ``pipeline_tag``, ``license``, ``datasets``, ``tags`` and a
``model-index`` of :class:`huggingface_hub.EvalResult`), so the card is what the Hub expects.

Rendering works offline; :meth:`ModelCard.validate` and :meth:`ModelCard.push_to_hub` need the
network (the Hub validates the YAML), which the scripts only use with ``--push_to_hub``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

logger = logging.get_logger(__name__)

__all__ = ["DEFAULT_TEMPLATE_PATH", "RunMetric", "render_run_card"]

#: The card template of the repository (``model_cards/template.md``).
DEFAULT_TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "model_cards" / "template.md"

_CITATION = """@article{afzal2025linear,
  title   = {Linear Attention for Efficient Bidirectional Sequence Modeling},
  author  = {Afzal, Arshia and Abad Rocamora, Elias and Candogan, Leyla Naz and Puigdemont, Pol and
             Tonin, Francesco and Wu, Yongtao and Shoaran, Mahsa and Cevher, Volkan},
  journal = {arXiv preprint arXiv:2502.16249},
  year    = {2025}
}"""

_MASK_DESCRIPTIONS = {
    "lit": "LION-LIT: no decay, plain bidirectional linear attention",
    "decay": "LION-D: one learned decay per head, mask entries λ^|i-j|",
    "selective": "LION-S: selective, input-dependent decay per token and head",
}

_PIPELINE_TAGS = {
    "LionForImageClassification": "image-classification",
    "LionForMaskedLM": "fill-mask",
    "LionForSequenceClassification": "text-classification",
    "LionForTokenClassification": "token-classification",
}


@dataclass(frozen=True)
class RunMetric:
    """One final metric of a run, for ``model-index`` and the card's results table.

    Attributes:
        metric_type: a Hub metric id (``"accuracy"``, ``"f1"``, ``"matthews_correlation"``, ...).
        value: the value as the run reports it (fractions stay fractions).
        name: display name (default: ``metric_type``).
        split: the evaluated split (default: the card's ``eval_split``).
    """

    metric_type: str
    value: float
    name: str | None = None
    split: str | None = None


@dataclass
class _Row:
    metric: str
    split: str
    value: str


@dataclass
class _LogRow:
    step: int
    epoch: str
    loss: str
    metrics: dict[str, str] = field(default_factory=dict)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_run_card(
    *,
    model_name: str,
    config: Any,
    dataset_id: str,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    eval_split: str = "validation",
    metrics: Sequence[RunMetric] = (),
    hyperparameters: Mapping[str, Any] | None = None,
    training_log: Iterable[Mapping[str, Any]] | None = None,
    script: str = "",
    summary: str | None = None,
    dataset_description: str | None = None,
    hub_datasets: Sequence[str] | None = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    tags: Sequence[str] = (),
    num_parameters: int | None = None,
    license: str = "apache-2.0",
    template_path: str | Path | None = None,
) -> ModelCard:
    """Render the model card of a finished run.

    Args:
        model_name: the model's name (title, and ``model-index`` name).
        config: the trained model's :class:`~lion_hf.LionConfig`; architecture, mask and sizes come from it,
            and the pipeline tag from ``config.architectures[0]``.
        dataset_id: the data set's Hub id (``"ILSVRC/imagenet-1k"``) or a local description
            (``"imagefolder"``, ``"digits"``): the ``dataset_type`` of each ``model-index`` result.
        dataset_name: display name of the data (default ``dataset_id``).
        dataset_config: data set configuration (``"en"``, ``"sst2"``).
        eval_split: the split the metrics were measured on.
        metrics: the final metrics; an empty list gives a card without ``model-index``.
        hyperparameters: shown as a table (learning rate, batch size, epochs, ...).
        training_log: rows with ``step``, ``epoch``, ``loss`` and eval metrics, shown as a table.
        script: the command or script that trained the model.
        summary: one paragraph under the title (default: generated from the config).
        dataset_description: the "Data" line of the training section (default: the data set name).
        hub_datasets: Hub ids for the ``datasets`` metadata (leave empty for local data).
        base_model: the checkpoint this run started from, if any.
        repo_id: where the model will live, for the usage snippet (default: ``model_name``).
        tags: extra tags (``lion``, the mask type and the modality are always added).
        num_parameters: shown in the details (default: not shown).
        license: a Hub licence id.
        template_path: a Jinja template (default :data:`DEFAULT_TEMPLATE_PATH`; when that file is not
            there, e.g. in a wheel install, ``huggingface_hub``'s generic template is used).

    Returns:
        the :class:`huggingface_hub.ModelCard`; ``card.save(path)`` writes ``README.md``.
    """
    architecture = (getattr(config, "architectures", None) or ["LionModel"])[0]
    pipeline_tag = _PIPELINE_TAGS.get(architecture, "feature-extraction")
    mask_type = getattr(config, "mask_type", "decay")
    modality = getattr(config, "modality", "vision")
    eval_results = [
        EvalResult(task_type=pipeline_tag, dataset_type=dataset_id, dataset_name=dataset_name or dataset_id,
                   dataset_config=dataset_config, dataset_split=m.split or eval_split, metric_type=m.metric_type,
                   metric_name=m.name or m.metric_type, metric_value=float(m.value))
        for m in metrics
    ]
    all_tags = list(dict.fromkeys(["lion", "linear-attention", f"lion-{mask_type}", modality, *tags]))
    card_data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag=pipeline_tag, tags=all_tags,
        datasets=list(hub_datasets) if hub_datasets else None, base_model=base_model,
        metrics=sorted({m.metric_type for m in metrics}) or None,
        model_name=model_name, eval_results=eval_results or None)

    log_rows: list[_LogRow] = []
    log_metric_names: list[str] = []
    for entry in training_log or ():
        extra = {k: _fmt(v) for k, v in entry.items() if k not in ("step", "epoch", "loss")}
        for name in extra:
            if name not in log_metric_names:
                log_metric_names.append(name)
        log_rows.append(_LogRow(step=int(entry.get("step", 0)), epoch=_fmt(entry.get("epoch", "")),
                                loss=_fmt(entry.get("loss", "")), metrics=extra))

    if summary is None:
        task = pipeline_tag.replace("-", " ")
        summary = (f"A LION model ({_MASK_DESCRIPTIONS.get(mask_type, mask_type)}) trained for {task} on "
                   f"{dataset_name or dataset_id} with `lion_hf`.")
    variables = dict(
        model_name=model_name, summary=summary, mask_type=mask_type,
        mask_description=_MASK_DESCRIPTIONS.get(mask_type, mask_type), architecture=architecture,
        modality=modality, num_parameters=f"{num_parameters:,}" if num_parameters else "an unreported number of",
        patch_order=getattr(config, "patch_order", None), hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers, num_attention_heads=config.num_attention_heads,
        image_size=getattr(config, "image_size", None) if modality == "vision" else None,
        patch_size=getattr(config, "patch_size", None), base_model=base_model, pipeline_tag=pipeline_tag,
        repo_id=repo_id or model_name, dataset_description=dataset_description or (dataset_name or dataset_id),
        script=script, hyperparameters={k: _fmt(v) for k, v in (hyperparameters or {}).items()},
        results=[_Row(m.name or m.metric_type, m.split or eval_split, _fmt(m.value)) for m in metrics],
        training_log=log_rows, log_metric_names=log_metric_names, citation=_CITATION,
        # Names the generic huggingface_hub template uses, in case the fallback is taken.
        model_id=model_name, model_summary=summary, license=license, model_type=f"LION ({architecture})",
    )
    path = Path(template_path) if template_path is not None else DEFAULT_TEMPLATE_PATH
    if path.is_file():
        return ModelCard.from_template(card_data, template_path=str(path), **variables)
    if template_path is not None:
        raise FileNotFoundError(f"model card template not found: {path}")
    logger.warning("model card template %s not found (installed without the repository?); "
                   "using huggingface_hub's generic template", path)
    return ModelCard.from_template(card_data, **variables)
