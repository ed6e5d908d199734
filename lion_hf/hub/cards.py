# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Model cards of LION checkpoints, rendered from one template shipped with the package.

Every card (the card an example script writes at the end of a training run, the card ``lion-publish``
uploads, the cards of the planned checkpoint families in ``model_cards/``) is rendered by
:func:`render_run_card` from the Jinja template ``lion_hf/hub/templates/model_card.md``. The template is
package data, loaded through :mod:`importlib.resources` (:func:`template_file`), so an installed wheel
renders the same cards as a checkout.

The YAML header is built with :class:`huggingface_hub.ModelCardData` (``library_name: transformers``,
``pipeline_tag``, ``license``, ``datasets``, ``tags`` and a ``model-index`` of
:class:`huggingface_hub.EvalResult`), so the card is what the Hub expects. The body has optional blocks:
the results table (with a Source column and "not yet measured" rows), loading without ``lion_hf``
(``trust_remote_code=True``, for repositories that carry the code bundle), the configuration, the
training recipe, hyperparameters and training log, and limitations.

Rendering works offline; :meth:`ModelCard.validate` and :meth:`ModelCard.push_to_hub` need the
network (the Hub validates the YAML), which the scripts only use with ``--push_to_hub``.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers.utils import logging

if TYPE_CHECKING:
    from .families import CheckpointFamily

logger = logging.get_logger(__name__)

__all__ = [
    "AUTO_CLASS_OF_HEAD",
    "CITATION",
    "DEFAULT_TEMPLATE_PATH",
    "LICENSE",
    "PAPER_ARXIV_ID",
    "PAPER_SOURCE_NAME",
    "PAPER_TITLE",
    "PAPER_URL",
    "PIPELINE_TAGS",
    "VARIANT_DESCRIPTIONS",
    "VARIANT_NAMES",
    "Result",
    "RunMetric",
    "card_template",
    "count_parameters",
    "merge_results",
    "pipeline_tag_of",
    "render_run_card",
    "shape_of",
    "template_file",
    "variant_of",
]

# --------------------------------------------------------------------------------------------------
# What every card shares: the paper, the citation, head -> pipeline tag / Auto class, variant names
# --------------------------------------------------------------------------------------------------
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

#: The LightNet paper, for checkpoints with ``attention_type="lightnet"`` (its cards cite it, not LION's).
LIGHTNET_PAPER_ARXIV_ID = "2405.21022"
LIGHTNET_PAPER_URL = f"https://arxiv.org/abs/{LIGHTNET_PAPER_ARXIV_ID}"
LIGHTNET_PAPER_TITLE = "You Only Scan Once: Efficient Multi-dimension Sequential Modeling with LightNet"
LIGHTNET_CITATION = """@article{qin2024lightnet,
  title   = {You Only Scan Once: Efficient Multi-dimension Sequential Modeling with LightNet},
  author  = {Qin, Zhen and Mao, Yuxin and Shen, Xuyang and Li, Dong and Zhang, Jing and Dai, Yuchao and
             Zhong, Yiran},
  journal = {arXiv preprint arXiv:2405.21022},
  year    = {2024},
  url     = {https://arxiv.org/abs/2405.21022}
}"""
LIGHTNET = "LightNet"


@dataclass(frozen=True)
class Paper:
    """The paper a card cites for its architecture."""

    arxiv_id: str
    title: str
    url: str
    citation: str


def paper_of(variant: str) -> Paper:
    """The LightNet paper for the ``LightNet`` variant, LION's paper for every LION variant."""
    if variant == LIGHTNET:
        return Paper(LIGHTNET_PAPER_ARXIV_ID, LIGHTNET_PAPER_TITLE, LIGHTNET_PAPER_URL, LIGHTNET_CITATION)
    return Paper(PAPER_ARXIV_ID, PAPER_TITLE, PAPER_URL, CITATION)

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
_TASK_TEXT = {"image-classification": "image classification", "fill-mask": "masked language modeling",
              "text-classification": "text classification", "token-classification": "token classification",
              "feature-extraction": "feature extraction", "image-feature-extraction": "image feature extraction"}

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
    LIGHTNET: "SiLU queries, keys softmax-normalised over the positions, one global state "
              "per head (additive recurrence, no decay), RMSNorm and a low-rank output gate",
}
#: The architecture paragraph of a card, per family of attention.
ARCHITECTURE_TEXT = {
    "lion": ("LION computes bidirectional linear attention `y_i = Σ_j M_ij (q_i·k_j) v_j` (normalised for vision) "
             "with\na decay mask `M`; the same function runs as full attention (short inputs), chunkwise (long "
             "inputs) or\nas two linear recurrences (constant memory per token at inference)."),
    "lightnet": ("LightNet (Qin et al., 2024) replaces the decaying recurrence of linear attention by an additive "
                 "one: every\ntoken reads one global state per head, `o_t = SiLU(q_t) Σ_j softmax_j(k)_j v_j^T`, "
                 "which does not depend on the\nscan order; this model runs it on the LION operator of `lion_hf` "
                 "(as full attention, chunkwise or as a\nrecurrence, all the same function). Learned absolute "
                 "position embeddings stand in for the paper's\nMD-TPE/MD-LRPE encodings."),
}


#: How the cards name a ``config.position_encoding`` (LightNet's multi-dimensional encodings).
POSITION_ENCODING_NAMES = {"md_lrpe": "MD-LRPE (a rotary encoding, one group of features per grid axis)",
                           "md_tpe": "MD-TPE (a Toeplitz relative-position mixer per grid axis)",
                           "md_lrpe_tpe": "MD-LRPE and MD-TPE (rotary and Toeplitz relative-position encodings per "
                                          "grid axis)"}


def position_encoding_name(config: Any) -> str | None:
    """The card's name of the config's MD encodings, None without them."""
    return POSITION_ENCODING_NAMES.get(getattr(config, "position_encoding", "none") or "none")


def architecture_text(config: Any, lightnet: bool) -> str:
    """The architecture paragraph: the family's, with where LightNet's token order comes from."""
    text = ARCHITECTURE_TEXT["lightnet" if lightnet else "lion"]
    encoding = position_encoding_name(config)
    if lightnet and encoding:
        text = text.replace("Learned absolute position embeddings stand in for the paper's\nMD-TPE/MD-LRPE "
                            "encodings.", f"Token order comes from the paper's {encoding}.")
    elif encoding:
        text += f" Token order also comes from LightNet's {encoding}."
    return text


#: How to install the package, as the cards say it (it is not on PyPI).
INSTALL_TEXT = ("install it from a checkout of its repository (`pip install -e .` in the checkout, or `pip install` "
                "with the repository's path or git URL).")
#: The heads each modality's checkpoints load into (a head of the other modality raises).
HEADS_OF_MODALITY = {
    "vision": ("AutoModel", "AutoModelForImageClassification"),
    "text": ("AutoModel", "AutoModelForMaskedLM", "AutoModelForSequenceClassification",
             "AutoModelForTokenClassification"),
}
OUTPUT_ATTENTIONS_TEXT = "`output_attentions=True` returns no attention maps (`attentions` is None)."


def heads_text(modality: str) -> str:
    """Which Auto classes load a checkpoint of ``modality`` (the card's "How to load" section)."""
    own = HEADS_OF_MODALITY.get(modality, ("AutoModel",))
    other = "text" if modality == "vision" else "vision"
    return (f"This {modality} checkpoint loads into the {modality} heads ({', '.join(f'`{h}`' for h in own)}); "
            "weights the checkpoint lacks (a new head) are initialised and reported by transformers. A head of the "
            f"{other} modality refuses it with an error.")


def public_name(value: Any) -> Any:
    """``value`` unless it is a path of the machine that wrote the card (an absolute or home path, a temporary
    folder, a relative path with folders): those say nothing to a reader and leak the machine's layout, so
    they become "a local path". A bare name (``bert-base-uncased``) and ``owner/name`` stay."""
    if not isinstance(value, str) or not value or " " in value.strip():
        return value
    local = value.startswith(("/", "./", "../", "~", "\\")) or "\\" in value or value.count("/") > 1 \
        or (len(value) > 1 and value[1] == ":") or ("/" in value and _exists(value))
    return "a local path (not on the Hub)" if local else value


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:
        return False


def hub_id_or_none(value: str | None) -> str | None:
    """``value`` if it can be a Hub repository id (``name`` or ``owner/name``) and is no local path, else None."""
    import re

    if not value or public_name(value) != value or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", value):
        return None  # (an owner/name that is a folder here is a local checkpoint: public_name says so)
    return value


def pipeline_tag_of(head: str, modality: str) -> str:
    """The Hub pipeline tag of a head class; a head without a task (``LionModel``) extracts features."""
    return PIPELINE_TAGS.get(head) or ("image-feature-extraction" if modality == "vision" else "feature-extraction")


def variant_of(config: Any) -> str:
    """``LION-LIT``/``LION-D``/``LION-D♮``/``LION-S``/``LION-S♮`` (or ``LightNet``) of a :class:`~lion_hf.LionConfig`."""
    if getattr(config, "attention_type", "lion") == "lightnet":
        return LIGHTNET
    return VARIANT_NAMES[(config.mask_type, getattr(config, "patch_order", "normal"))]


def shape_of(config: Any) -> str:
    """``"<hidden> hidden, <layers> layers, <heads> heads"``: the size of a model that is no preset."""
    def count(n: int, word: str) -> str:
        return f"{n} {word}" + ("" if n == 1 else "s")

    return (f"{config.hidden_size} hidden, {count(config.num_hidden_layers, 'layer')}, "
            f"{count(config.num_attention_heads, 'head')}")


# --------------------------------------------------------------------------------------------------
# The template
# --------------------------------------------------------------------------------------------------
def template_file() -> Traversable:
    """The card template inside the installed package (``lion_hf/hub/templates/model_card.md``).

    Found through :func:`importlib.resources.files`, never through the repository layout, so it is the
    same file in a checkout, an editable install and a wheel install (``setup.cfg`` ships it as package data).
    """
    return resources.files(__package__) / "templates" / "model_card.md"


@functools.cache
def card_template() -> str:
    """The text of :func:`template_file` (read once)."""
    return template_file().read_text(encoding="utf-8")


#: The card template (a :class:`~importlib.resources.abc.Traversable`; a :class:`~pathlib.Path` in a
#: regular install). Kept under its old name; prefer :func:`template_file`/:func:`card_template`.
DEFAULT_TEMPLATE_PATH = template_file()


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

    def table_row(self) -> list[str]:
        """The row of the card's results table: metric, dataset (config, split), value, source."""
        dataset = self.dataset_name + (f" ({self.dataset_config})" if self.dataset_config else "")
        dataset += f", {self.dataset_split}" if self.dataset_split else ""
        value = "—" if self.value is None else f"{self.value:g}"
        return [self.metric_name, dataset, value, self.describe_source()]


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


def merge_results(family_results: Iterable[Result], run_results: Iterable[Result]) -> tuple[list[Result], list[Result]]:
    """(results of the card's ``model-index``, all rows of the body table).

    A run result replaces the family's result with the same key (task, metric, dataset, config) in
    ``model-index``; the paper's value stays in the body table as a reference row. Rows without a value
    ("not yet measured") only go into the table.
    """
    run_results = list(run_results)
    measured = {r.key for r in run_results if r.value is not None}
    index = [r for r in family_results if r.value is not None and r.key not in measured]
    index += [r for r in run_results if r.value is not None]
    table = run_results + [r for r in family_results if not (r.value is None and r.key in measured)]
    return index, table


def _results_note(rows: Sequence[Result], paper_training_time: float | None, variant: str,
                  encoded: bool = False) -> str:
    """``encoded``: the model has the paper's MD encodings (LightNet's numbers could then describe it)."""
    notes = []
    if any(r.source == "paper" and r.value is not None for r in rows):
        notes.append("Rows marked *reported by the paper* are the paper's numbers for this architecture and size "
                     f"([arXiv {PAPER_ARXIV_ID}]({PAPER_URL})); they are not measurements of these weights.")
    if any(r.value is None for r in rows) and variant == LIGHTNET and encoded:
        notes.append("*Not yet measured*: no evaluation of this checkpoint has been published yet, and no LightNet "
                     "paper number is quoted.")
    elif any(r.value is None for r in rows) and variant == LIGHTNET:
        notes.append("*Not yet measured*: no evaluation of this checkpoint has been published yet. No LightNet paper "
                     "number is quoted: the paper's models use its MD-TPE/MD-LRPE positional encodings, which this "
                     "model does not have, so their results would not describe it.")
    elif any(r.value is None for r in rows):
        notes.append("*Not yet measured*: the paper reports no number for this size and no evaluation of this "
                     "checkpoint has been published yet.")
    if paper_training_time is not None:
        notes.append(f"The paper reports a training time of {paper_training_time}× that of a Transformer of the "
                     f"same size for {variant.replace('♮', '')}.")
    return "\n\n".join(notes)


# --------------------------------------------------------------------------------------------------
# Body helpers
# --------------------------------------------------------------------------------------------------
def count_parameters(config: Any, head: str) -> int:
    """Parameter count of ``head`` built from ``config`` on the meta device (no memory, no init)."""
    import torch

    import lion_hf.modeling.modeling_lion as modeling

    with torch.device("meta"):
        model = getattr(modeling, head)(config)
    return sum(p.numel() for p in model.parameters())


def _format_parameters(count: int) -> str:
    return f"{count / 1e6:.1f}M" if count >= 1e6 else f"{count:,}"


def _one_line(value: Any) -> Any:
    return " ".join(value.split()) if isinstance(value, str) else value


def _fmt(value: Any) -> str:
    """A table cell: numbers shortened; a ``|`` or a line break (which would end the row) escaped."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return " ".join(text.split()).replace("|", "\\|")


def _input_description(config: Any) -> str:
    if config.modality == "vision":
        return (f"{config.image_size}×{config.image_size} RGB images, {config.patch_size}×{config.patch_size} "
                f"patches ({(config.image_size // config.patch_size) ** 2} tokens + a class token)")
    positions = [] if config.mask_type == "lit" else ["the decay mask"]
    if position_encoding_name(config):
        positions.append(position_encoding_name(config).split(" (")[0])
    if config.use_position_embeddings:
        positions.append(f"learned absolute positions (up to {config.max_position_embeddings} tokens)")
    return (f"token ids (vocabulary {config.vocab_size}); word order from "
            f"{' and '.join(positions) or 'nothing (no decay, no position embeddings)'}")


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
        if name == "model_type" and getattr(config, "attention_type", "lion") != "lion":
            data["attention_type"] = config.attention_type
        if name == "model_type" and position_encoding_name(config):
            data["position_encoding"] = config.position_encoding
    return json.dumps(data, indent=2, ensure_ascii=False)


def _limitations(config: Any, data_items: Sequence[str], provenance: bool) -> list[str]:
    """The card's limitations: provenance (family cards), resolution, data, LION-LIT, output_attentions."""
    items = []
    lightnet = getattr(config, "attention_type", "lion") == "lightnet"
    if provenance and lightnet:
        items.append("Trained with `lion_hf` from scratch; no weights of the LightNet authors are converted or "
                     "republished, and no LightNet paper number is quoted as this checkpoint's result.")
    elif provenance:
        items += [
            "Trained with `lion_hf`, not converted from the authors' release: the original checkpoints carry a "
            "non-commercial licence and are not republished here.",
            "Paper values describe the paper's runs; until this checkpoint's own evaluation is published they are a "
            "reference, not a measurement of these weights.",
        ]
    if config.modality == "vision" and lightnet:
        items.append(f"Trained at {config.image_size}×{config.image_size}; other resolutions change the number of "
                     "tokens (LightNet's global state takes any number) and need `interpolate_pos_encoding=True` "
                     "for the position table; accuracy away from the training resolution is not measured.")
    elif config.modality == "vision":
        items.append(f"Trained at {config.image_size}×{config.image_size}; other resolutions change the number of "
                     "tokens, which the decay mask handles, but accuracy away from the training resolution is not "
                     "measured.")
    items += data_items
    encoding = position_encoding_name(config)
    if lightnet and encoding:
        items.append(f"This LightNet model has no decay; it knows token order through the paper's {encoding}"
                     + (" and learned absolute position embeddings." if config.use_position_embeddings else "."))
    elif lightnet:
        order = ("knows token order only through its learned absolute position embeddings" if
                 config.use_position_embeddings else "has no notion of token order at all (no position embeddings)")
        items.append(f"This LightNet model has no decay and not the paper's MD-TPE/MD-LRPE encodings, so it {order}.")
    elif config.mask_type == "lit" and encoding:
        items.append(f"LION-LIT has no decay mask; it knows token order through LightNet's {encoding}"
                     + (" and its position embeddings." if config.use_position_embeddings else "."))
    elif config.mask_type == "lit":
        order = ("knows token order only through its position embeddings" if config.use_position_embeddings
                 else "has no notion of token order at all (no decay and, as in the paper's setup, no position "
                      "embeddings)")
        items.append(f"LION-LIT has no decay mask, so it {order}"
                     + ("; the paper reports it as the weakest variant." if provenance else "."))
    items.append(OUTPUT_ATTENTIONS_TEXT)
    return items


#: Metrics that are fractions in [0, 1] as the runs report them (percentages in the paper's tables).
FRACTION_METRICS = ("accuracy", "f1", "precision", "recall", "matthews_correlation", "glue_average")


def is_fraction_metric(metric_type: str) -> bool:
    """Whether ``metric_type`` is a fraction as runs report it (accuracy, top-k accuracy, F1, ...)."""
    return metric_type in FRACTION_METRICS or metric_type.endswith("_accuracy")


def _run_result(metric: RunMetric, task: str, dataset_id: str | None, dataset_name: str | None,
                dataset_config: str | None, eval_split: str, percent: bool) -> Result:
    """A run's metric as a card result; a fraction becomes a percentage on a card whose paper rows are in %."""
    value, name = float(metric.value), _one_line(metric.name or metric.metric_type)
    if percent and is_fraction_metric(metric.metric_type) and 0.0 <= value <= 1.0:
        value = round(100.0 * value, 2)
        name = name if name.endswith("(%)") else f"{name} (%)"
    return Result(task, metric.metric_type, name, dataset_id, dataset_name, dataset_config, metric.split or eval_split,
                  value=value, source="run", source_name="this training run")


def _local_data_name(value: str | None) -> str | None:
    """A data set named by a local path keeps only its file or folder name (``local data (corpus.txt)``)."""
    if value is None or public_name(value) == value:
        return value
    return f"local data ({Path(value).name})"


def _resolve_family(family: CheckpointFamily | str | None) -> CheckpointFamily | None:
    if not isinstance(family, str):
        return family
    from .families import FAMILIES, list_families  # families builds on this module: imported when needed

    if family not in FAMILIES:
        raise ValueError(f"unknown LION checkpoint family {family!r}; available: {', '.join(list_families())}")
    return FAMILIES[family]


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------
def render_run_card(
    *,
    model_name: str | None = None,
    config: Any = None,
    dataset_id: str | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    eval_split: str = "validation",
    metrics: Sequence[RunMetric] = (),
    results: Iterable[Result] = (),
    family: CheckpointFamily | str | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    training_log: Iterable[Mapping[str, Any]] | None = None,
    script: str = "",
    summary: str | None = None,
    status: str | None = None,
    training: str | None = None,
    dataset_description: str | None = None,
    hub_datasets: Sequence[str] | None = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    tags: Iterable[str] = (),
    num_parameters: int | None = None,
    license: str = LICENSE,
    processor_class: str | None = None,
    remote_code: bool = False,
    limitations: Sequence[str] | None = None,
    template_path: str | Path | None = None,
    template: str | None = None,
) -> ModelCard:
    """Render the model card of a LION checkpoint: a finished run, a published checkpoint or a planned family.

    Args:
        model_name: the card's title and ``model-index`` name (default: the last part of ``repo_id``; the
            title of a family card is "<variant> <size> — <task>").
        config: the model's :class:`~lion_hf.LionConfig` (default: the family's preset); architecture, mask
            and sizes come from it, and the pipeline tag from ``config.architectures[0]``.
        dataset_id: the Hub id of the data ``metrics`` were measured on (``"ILSVRC/imagenet-1k"``) or a local
            description (``"imagefolder"``, ``"digits"``): the ``dataset_type`` of their ``model-index`` results
            (default: the family's first dataset).
        dataset_name: display name of the data (default: the family's name for it, else ``dataset_id``).
        dataset_config: data set configuration (``"en"``, ``"sst2"``; default: the family's for that data).
        eval_split: the split the metrics were measured on.
        metrics: the run's final metrics, as the run reports them.
        results: further rows of the results table (:class:`Result`; e.g. from
            :func:`lion_hf.hub.families.results_from_metrics`); a row with ``value=None`` is "not yet measured".
        family: a planned checkpoint family (:class:`~lion_hf.hub.families.CheckpointFamily` or its name):
            its preset, size, paper results (replaced in ``model-index`` by measured ones with the same key),
            training recipe and data limitations go into the card.
        hyperparameters: shown as a table (learning rate, batch size, epochs, ...).
        training_log: rows with ``step``, ``epoch``, ``loss`` and eval metrics, shown as a table.
        script: the command or script that trained the model.
        summary: one paragraph under the title (default: generated).
        status: a one-line status shown under the title (e.g. "planned checkpoint").
        training: the training recipe paragraph (default: the family's recipe, if any).
        dataset_description: the "Data" line of the training section (default for a run without a recipe: the
            data set name).
        hub_datasets: Hub ids for the ``datasets`` metadata (default: the family's; leave empty for local data).
        base_model: the checkpoint this one started from, if any.
        repo_id: where the model will live, for the loading snippets (default: ``model_name``, or
            ``lion-hf/<family>``).
        tags: extra tags (``lion``, the variant, the modality and the paper are always added).
        num_parameters: shown in the details (default: counted from ``config`` on the meta device).
        license: a Hub licence id.
        processor_class: ``AutoImageProcessor``/``AutoTokenizer`` for the loading snippet (default by modality).
        remote_code: the repository carries the remote-code bundle (``lion-publish``): the card shows loading
            with ``trust_remote_code=True`` and is tagged ``custom_code``.
        limitations: the limitations list (default: generated from the config, the family and the data).
        template_path: a Jinja template file replacing the package's template.
        template: a Jinja template string replacing the package's template.

    Returns:
        the :class:`huggingface_hub.ModelCard`; ``card.save(path)`` writes ``README.md``.
    """
    family = _resolve_family(family)
    if config is None:
        if family is None or family.preset is None:
            raise ValueError("render_run_card needs config= (or a family with a preset)")
        from lion_hf.modeling.configuration_lion import LionConfig

        config = LionConfig.from_preset(family.preset)
    if template_path is not None:
        path = Path(template_path)
        if not path.is_file():
            raise FileNotFoundError(f"model card template not found: {path}")
        template = path.read_text(encoding="utf-8")

    # Names go into headings, sentences and table rows: one line each.
    model_name, repo_id, dataset_id, dataset_name, dataset_config, eval_split = (
        _one_line(v) for v in (model_name, repo_id, dataset_id, dataset_name, dataset_config, eval_split))
    modality = getattr(config, "modality", "vision")
    head = (getattr(config, "architectures", None) or [family.head if family else "LionModel"])[0]
    pipeline_tag = PIPELINE_TAGS.get(head) or (family.pipeline_tag if family else pipeline_tag_of(head, modality))
    task = _TASK_TEXT.get(pipeline_tag, pipeline_tag)
    variant = variant_of(config) if family is None else family.variant
    paper = paper_of(variant)
    repo_id = repo_id or model_name or (family.repo_id() if family else None)
    if repo_id is None:
        raise ValueError("render_run_card needs model_name= or repo_id= (or a family)")
    if hub_datasets is None:
        hub_datasets = list(family.datasets) if family else []
    dataset_id = dataset_id or (family.datasets[0] if family and family.datasets else None)
    if metrics and dataset_id is None:
        raise ValueError("render_run_card got metrics but no dataset_id they were measured on")
    reference = next((r for r in (family.results if family else ()) if r.dataset_type == dataset_id), None)
    if reference is not None:  # the family's own data: its display name and configuration
        dataset_name = dataset_name or reference.dataset_name
        dataset_config = dataset_config or reference.dataset_config
    dataset_name = dataset_name or dataset_id
    dataset_id, dataset_name = _local_data_name(dataset_id), _local_data_name(dataset_name)
    base_model_text = None
    if base_model:
        hub_base = hub_id_or_none(base_model)
        base_model_text = f"`{hub_base}`" if hub_base else "a local checkpoint (not on the Hub)"
        base_model = hub_base

    is_family = family is not None and family.preset is not None
    percent = is_family  # the family's rows (paper, not yet measured) are percentages
    finite = []
    for m in metrics:
        if isinstance(m.value, int | float) and not isinstance(m.value, bool) and math.isfinite(m.value):
            finite.append(m)
        else:
            logger.warning("metric %s is %r, not a finite number: left out of the card's results", m.metric_type,
                           m.value)
    run_results = [_run_result(m, pipeline_tag, dataset_id, dataset_name, dataset_config, eval_split, percent)
                   for m in finite]
    index_results, table_results = merge_results(family.results if family else (), [*run_results, *results])

    variant_tag = variant.lower().replace("♮", "-natural")
    all_tags = ["lion", "linear-attention", "bidirectional", variant_tag, modality,
                *(["custom_code"] if remote_code else []), f"arxiv:{paper.arxiv_id}",
                *(family.extra_tags if family else ()), *tags]
    card_data = ModelCardData(
        license=license, library_name="transformers", pipeline_tag=pipeline_tag,
        tags=list(dict.fromkeys(all_tags)), datasets=list(hub_datasets) or None, base_model=base_model,
        metrics=sorted({r.metric_type for r in index_results}) or None,
        model_name=(model_name or repo_id.split("/")[-1]) if index_results else None,
        eval_results=[r.to_eval_result() for r in index_results] or None)

    if is_family and training and training != family.recipe:
        training = f"{training}\n\nThe family's reference recipe (the paper's): {family.recipe}"
    training = training or (family.recipe if is_family else None)
    if dataset_description is None and training is None:
        dataset_description = dataset_name
    if summary is None:
        data = list(hub_datasets) or ([dataset_name] if dataset_name else [])
        data_text = f" (data: {', '.join(data)})" if data else ""
        if variant == LIGHTNET:
            summary = (f"`{repo_id}` is a LightNet model for {task}{data_text}, built with `lion_hf` (model type "
                       "`lion`, `attention_type=\"lightnet\"`). LightNet (Qin et al., 2024) is linear attention with an "
                       "additive recurrence: one global state per head serves every token in a single pass.")
        else:
            summary = (f"`{repo_id}` is a LION model ({variant}) for {task}{data_text}. LION (Afzal et al., 2025) is "
                       "bidirectional linear attention with decay masks: it trains in parallel like a Transformer and "
                       "runs inference as a bidirectional RNN.")
    if limitations is None:
        data_items = family.data_limitations if is_family else [
            f"Trained and evaluated on {dataset_name or 'the data above'} only; not evaluated for robustness, "
            "fairness or out-of-distribution data."]
        limitations = _limitations(config, data_items, provenance=is_family)

    training_log = list(training_log or ())
    log_metric_names = list(dict.fromkeys(k for e in training_log for k in e if k not in ("step", "epoch", "loss")))
    log_rows = [[str(int(e.get("step", 0))), _fmt(e.get("epoch", "")), _fmt(e.get("loss", "")),
                 *(_fmt(e[name]) if name in e else "" for name in log_metric_names)] for e in training_log]

    if num_parameters is None:
        num_parameters = count_parameters(config, head)
    variables = dict(
        title=" ".join((model_name or (f"{family.variant} {family.size} — {task}" if is_family
                                       else repo_id.split("/")[-1])).split()),
        summary=summary, status=status, variant="bidirectional" if variant == LIGHTNET else variant,
        variant_description=VARIANT_DESCRIPTIONS.get(variant, ""),
        task=task, size=family.size if family else shape_of(config), parameters=_format_parameters(num_parameters),
        input_description=_input_description(config), preset=family.preset if is_family else None,
        base_model=base_model_text, paper_title=paper.title, paper_url=paper.url,
        architecture="LightNet" if variant == LIGHTNET else "LION",
        architecture_text=architecture_text(config, variant == LIGHTNET),
        results=[[_fmt(cell) for cell in r.table_row()] for r in table_results],
        results_note=_results_note(table_results, family.paper_training_time if is_family else None, variant,
                                   encoded=position_encoding_name(config) is not None),
        install_text=INSTALL_TEXT, heads_text=heads_text(modality),
        auto_class=AUTO_CLASS_OF_HEAD.get(head, "AutoModel"),
        processor_class=processor_class or ("AutoImageProcessor" if modality == "vision" else "AutoTokenizer"),
        repo_id=repo_id, pipeline_tag=pipeline_tag, remote_code=remote_code, config_json=_config_json(config),
        training=training, dataset_description=dataset_description, script=script,
        hyperparameters=[[_fmt(name), _fmt(public_name(value))] for name, value in (hyperparameters or {}).items()],
        training_log=log_rows, log_metric_names=[_fmt(n) for n in log_metric_names],
        limitations=list(limitations), citation=paper.citation,
        model_name=model_name or repo_id.split("/")[-1], mask_type=config.mask_type, modality=modality)
    return ModelCard.from_template(card_data, template_str=template or card_template(), **variables)
