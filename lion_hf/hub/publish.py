# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Publish a trained LION checkpoint to the Hugging Face Hub: ``lion_hf.hub.publish`` and ``lion-publish``.

The steps, each of which refuses with a ``ValueError`` that names the problem and its fix:

1. find the checkpoint: a ``save_pretrained`` folder, or a Trainer output folder (its top level, else
   ``best_model_checkpoint`` from ``trainer_state.json``, else the last ``checkpoint-N``);
2. check it is complete: ``config.json`` of a LION model with ``architectures``, safetensors weights (pickle
   ``.bin`` weights are never uploaded), and the image processor or tokenizer the task's pipeline needs;
3. stage the upload in a clean folder with only the files the checkpoint needs: the weights (the shards the
   index lists), the config (with ``auto_map`` for every head), the image processor or the tokenizer files
   its class names, the run's metrics, the flat remote-code bundle (:mod:`lion_hf.hub.bundle`), the card
   and a manifest (:data:`MANIFEST_NAME`) of what was uploaded. Every file read is a regular file inside
   the given folder: a symbolic link out of it is refused;
4. validate the card metadata locally (required fields, ``model-index`` structure) and, when the Hub is
   reachable, with the Hub's own validator;
5. compare with the repository (:func:`plan_upload`): files an earlier lion-publish wrote (its manifest)
   that this upload no longer has are deleted, files of anybody else are left alone; the plan is handed to
   ``before_upload`` (``lion-publish`` prints it) before anything is sent;
6. create the repository (and branch) if needed and upload everything in one commit
   (``huggingface_hub.HfApi``).

``dry_run=True`` (``--dry-run``) stops after the plan (it reads the repository when the Hub is reachable)
and leaves the staged folder, which loads with ``from_pretrained(folder, trust_remote_code=True)`` exactly
as the repository will.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard
from huggingface_hub.errors import HfHubHTTPError
from transformers.utils import logging

from .bundle import AUTO_MAP, BUNDLE_HEADER, BundleError, check_bundle, write_bundle
from .families import (
    FAMILIES,
    PIPELINE_TAGS,
    TEXT_RECIPE,
    VISION_RECIPE,
    CheckpointFamily,
    custom_family,
    family_for_config,
    render_card,
    results_from_metrics,
)

logger = logging.get_logger(__name__)

WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
#: Pickle formats: they can run code when loaded, so they are never uploaded.
PICKLE_WEIGHT_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
#: The image processor file the image-classification pipeline reads.
IMAGE_PROCESSOR_FILES = ("preprocessor_config.json",)
#: Tokenizer files every tokenizer may have; the vocabulary files come from the tokenizer class
#: (``vocab_files_names``: ``vocab.txt`` for BERT, ``spiece.model`` for T5, ...), see :func:`tokenizer_files`.
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja")
#: Vocabulary files of a tokenizer class transformers does not know (no ``*.model``: such a file is only
#: uploaded when the tokenizer's class names it).
FALLBACK_VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt")
#: Kept for callers of earlier versions: every processor/tokenizer file name lion-publish may upload.
PROCESSOR_PATTERNS = IMAGE_PROCESSOR_FILES + TOKENIZER_FILES + FALLBACK_VOCAB_FILES
METRICS_FILES = ("all_results.json", "eval_results.json", "test_results.json", "metrics.json")
TRAIN_METRICS_FILES = ("train_results.json",)
REQUIRED_CARD_FIELDS = ("license", "library_name", "pipeline_tag", "tags")
KNOWN_PIPELINE_TAGS = frozenset(PIPELINE_TAGS.values()) | {"feature-extraction", "image-feature-extraction"}
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class StagedCheckpoint:
    """A checkpoint staged for upload: the folder that becomes the repository, and how it was made."""

    folder: Path
    checkpoint_dir: Path
    files: list[str]
    card: ModelCard
    family: CheckpointFamily
    metrics: dict[str, Any] = field(default_factory=dict)
    #: where each file copied from the user's folder came from (generated files are not listed)
    sources: dict[str, Path] = field(default_factory=dict)


@dataclass
class PublishResult:
    """What :func:`publish` did: the staged folder and, unless ``dry_run``, the Hub commit."""

    repo_id: str
    staged: StagedCheckpoint
    repo_url: str | None = None
    commit_url: str | None = None
    commit_oid: str | None = None
    revision: str | None = None
    plan: UploadPlan | None = None


# --------------------------------------------------------------------------------------------------
# Finding and checking the checkpoint
# --------------------------------------------------------------------------------------------------
def safe_source(path: Path, root: Path) -> Path:
    """``path`` if it is a regular file whose real location lies inside ``root`` (symbolic links that stay
    inside are followed); a ``ValueError`` otherwise. Nothing outside the published folder is ever read."""
    real_root = root.resolve()
    real = path.resolve()
    if real != real_root and real_root not in real.parents:
        raise ValueError(f"{path} is a symbolic link to {real}, outside {root}: lion-publish uploads only files "
                         f"inside the folder; copy the file in (cp -L) if it belongs to the checkpoint")
    if not real.is_file():
        raise ValueError(f"{path} is not a regular file")
    return path


def _read_json_object(path: Path, root: Path, what: str) -> dict[str, Any]:
    safe_source(path, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold a JSON object")
    return data


def tokenizer_files(tokenizer_config: Mapping[str, Any]) -> tuple[str, ...]:
    """The file names a tokenizer may need: :data:`TOKENIZER_FILES` and its class's vocabulary files."""
    import transformers

    cls = getattr(transformers, str(tokenizer_config.get("tokenizer_class") or ""), None)
    names = getattr(cls, "vocab_files_names", None)
    vocab = tuple(str(v) for v in names.values()) if isinstance(names, Mapping) else FALLBACK_VOCAB_FILES
    plain = tuple(v for v in vocab if "/" not in v and v not in (".", ".."))
    return TOKENIZER_FILES + tuple(dict.fromkeys(plain))


def _has_weights(folder: Path) -> bool:
    return (folder / WEIGHTS_NAME).is_file() or (folder / WEIGHTS_INDEX_NAME).is_file()


def _is_branch_name(name: str) -> bool:
    return bool(re.fullmatch(r"[\w][\w./-]*", name)) and ".." not in name and not name.endswith(("/", ".lock", "."))


def check_repo_id(repo_id: str) -> None:
    """Refuse a repository id the Hub would refuse (``owner/name``; no ``..``, ``--``, leading/trailing dots)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise ValueError(f"repo_id must be 'owner/name', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ValueError(f"repo_id {repo_id!r} is not a valid Hub repository id: {error}") from error


def _check_card_options(dataset: str | None, dataset_split: str | None, datasets: Sequence[str] | None,
                        base_model: str | None, license: str | None, tags: Iterable[str]) -> None:
    """Refuse card options that would put something untrue or malformed into the card."""
    from .cards import hub_id_or_none

    if base_model is not None and hub_id_or_none(base_model) is None:
        raise ValueError(f"base_model {base_model!r} is not a Hub repository id (owner/name): name the checkpoint "
                         "on the Hub this one was fine-tuned from, or leave it out")
    for name in ([dataset] if dataset is not None else []) + list(datasets or []):
        if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", name):
            raise ValueError(f"dataset {name!r} is not a Hub dataset id (owner/name) or a plain name such as 'digits'")
    if dataset_split is not None and not str(dataset_split).strip():
        raise ValueError("dataset_split is empty: name the split the metrics were measured on (e.g. validation, test)")
    if license is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", str(license)):
        raise ValueError(f"license {license!r} is not a Hub licence id (e.g. apache-2.0, mit, other)")
    if any(not isinstance(t, str) or not t.strip() for t in tags):
        raise ValueError("tags must be non-empty strings")


def _trainer_state(folder: Path) -> dict[str, Any]:
    """``trainer_state.json`` of a run (empty when absent, unreadable or a link out of the folder)."""
    path = folder / "trainer_state.json"
    if not path.is_file():
        return {}
    try:
        return _read_json_object(path, folder, "trainer state")
    except ValueError as error:
        logger.warning("ignoring %s: %s", path, error)
        return {}


def find_checkpoint(folder: str | os.PathLike) -> Path:
    """The folder holding the model to publish, inside a ``save_pretrained`` folder or a training run.

    A Trainer run's top level wins when it has config and weights (``trainer.save_model()`` was called);
    otherwise the run's ``best_model_checkpoint`` (``trainer_state.json``), otherwise its last
    ``checkpoint-N``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: pass the folder written by model.save_pretrained(...) "
                         f"or a training run's output_dir")
    if (folder / "config.json").is_file() and _has_weights(folder):
        return folder
    best = _trainer_state(folder).get("best_model_checkpoint")
    if isinstance(best, str) and best:
        best_dir = folder / Path(best).name
        if (best_dir / "config.json").is_file():
            logger.info("publishing the run's best checkpoint %s", best_dir)
            return best_dir
    checkpoints = sorted(((int(m.group(1)), p) for p in folder.iterdir()
                          if p.is_dir() and (m := _CHECKPOINT_DIR.match(p.name))), reverse=True)
    for step, path in checkpoints:
        if (path / "config.json").is_file() and _has_weights(path):
            logger.info("publishing the run's last complete checkpoint %s", path)
            return path
        logger.warning("skipping %s: it has no config.json or no safetensors weights (an interrupted save?)", path)
    if checkpoints:
        return checkpoints[0][1]  # none is complete: check_checkpoint names what the last one lacks
    return folder  # incomplete: check_checkpoint names what is missing


def check_checkpoint(checkpoint_dir: str | os.PathLike, *, require_processor: bool = True,
                     root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Refuse an incomplete checkpoint; returns its parsed ``config.json``.

    ``root`` is the folder the user passed (default ``checkpoint_dir``): every file read must lie inside it.

    Raises:
        ValueError: naming the missing or invalid file or field and how to produce it.
    """
    folder = Path(checkpoint_dir)
    root = Path(root) if root is not None else folder
    config_path = folder / "config.json"
    if not config_path.is_file() and not config_path.is_symlink():
        raise ValueError(f"{config_path} is missing: save the model with model.save_pretrained({str(folder)!r}) "
                         f"(a training run: call trainer.save_model())")
    config = _read_json_object(config_path, root, "config")
    if config.get("model_type") != "lion":
        raise ValueError(f"{config_path}: model_type is {config.get('model_type')!r}, not 'lion'; lion-publish "
                         f"publishes LION checkpoints (lion_hf.LionConfig)")
    architectures = config.get("architectures") or []
    if not architectures:
        raise ValueError(f"{config_path}: the field 'architectures' is missing; it names the head (e.g. "
                         f"LionForImageClassification) and is written by model.save_pretrained, not by "
                         f"config.save_pretrained")
    if not isinstance(architectures, list) or not isinstance(architectures[0], str) \
            or architectures[0] not in HEADS_OF_MODALITY.get(config.get("modality"), ()):
        known = ", ".join(sorted({h for heads in HEADS_OF_MODALITY.values() for h in heads}))
        first = architectures[0] if isinstance(architectures, list) else architectures
        raise ValueError(f"{config_path}: architectures[0] is {first!r}, not a LION model class for "
                         f"modality={config.get('modality')!r} (LION heads: {known})")

    _check_weights(folder, root)

    head = architectures[0]
    if _is_vision(config):
        if require_processor:
            path = folder / "preprocessor_config.json"
            if not path.exists() and not path.is_symlink():
                raise ValueError(f"{path} is missing: save the image processor next to the model (e.g. "
                                 f"ViTImageProcessor(size=...).save_pretrained(folder)); the image-classification "
                                 f"pipeline needs it")
            _refuse_remote_code(path, _read_json_object(path, root, "image processor config"))
    elif require_processor:
        tokenizer_config_path = folder / "tokenizer_config.json"
        if not tokenizer_config_path.exists() and not tokenizer_config_path.is_symlink():
            raise ValueError(f"{tokenizer_config_path} is missing: save the tokenizer next to the model "
                             f"(tokenizer.save_pretrained(folder))")
        tokenizer_config = _read_json_object(tokenizer_config_path, root, "tokenizer config")
        _refuse_remote_code(tokenizer_config_path, tokenizer_config)
        if not isinstance(tokenizer_config.get("tokenizer_class"), str) or not tokenizer_config["tokenizer_class"]:
            raise ValueError(f"{tokenizer_config_path}: the field 'tokenizer_class' is missing; 'lion' has no "
                             f"tokenizer mapping in transformers, so AutoTokenizer needs it (e.g. \"BertTokenizer\")")
        vocab = [n for n in tokenizer_files(tokenizer_config) if n not in TOKENIZER_FILES]
        if not any((folder / name).is_file() for name in vocab):
            raise ValueError(f"{folder} has a tokenizer_config.json but no vocabulary ({', '.join(vocab)}): save the "
                             f"tokenizer with tokenizer.save_pretrained(folder)")
    if head in ("LionForImageClassification", "LionForSequenceClassification", "LionForTokenClassification"):
        if not config.get("id2label"):
            raise ValueError(f"{config_path}: the field 'id2label' is missing; set config.id2label/label2id "
                             f"before training so the pipeline can name the classes")
    return config


def _publish_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The uploaded ``config.json``: the checkpoint's, with ``auto_map`` naming exactly the LION bundle. Entries
    for other classes (``"AutoX": "other/repo--module.Class"`` would make the repository run another
    repository's code) are dropped, with a notice."""
    auto_map = config.get("auto_map") if isinstance(config.get("auto_map"), Mapping) else {}
    foreign = {k: v for k, v in auto_map.items() if AUTO_MAP.get(k) != v}
    if foreign:
        logger.warning("config.json: auto_map entries not of the LION bundle are not published: %s", foreign)
    return {**{k: v for k, v in config.items() if k != "auto_map"}, "auto_map": dict(AUTO_MAP)}


def _refuse_remote_code(path: Path, data: Mapping[str, Any]) -> None:
    if data.get("auto_map"):
        raise ValueError(f"{path} has an auto_map ({data['auto_map']}): it makes the repository load code from "
                         "elsewhere, and lion-publish uploads no code but the LION bundle; remove the auto_map entry")


#: The head classes each modality's checkpoints may be saved from.
HEADS_OF_MODALITY = {"vision": ("LionModel", "LionForImageClassification"),
                     "text": ("LionModel", "LionForMaskedLM", "LionForSequenceClassification",
                              "LionForTokenClassification")}


def _check_processor_loads(staged: Path, config: Mapping[str, Any]) -> None:
    """Load the staged image processor or tokenizer the way the pipeline will (no remote code): its files
    must parse, and a tokenizer must not produce ids beyond the model's vocabulary."""
    from transformers import AutoImageProcessor, AutoTokenizer

    vision = _is_vision(config)
    what = "image processor (preprocessor_config.json)" if vision else "tokenizer"
    try:
        processor = (AutoImageProcessor if vision else AutoTokenizer).from_pretrained(str(staged),
                                                                                     trust_remote_code=False)
    except Exception as error:  # each tokenizer backend raises its own errors for broken files
        raise ValueError(f"the checkpoint's {what} does not load ({' '.join(str(error).split())[:300]}); re-save it "
                         "with save_pretrained next to the model") from error
    vocab_size = config.get("vocab_size")
    if not vision and isinstance(vocab_size, int) and len(processor) > vocab_size:
        raise ValueError(f"the tokenizer has {len(processor)} tokens but the model's vocabulary has {vocab_size}: "
                         "ids beyond it would fail in the embedding; save the tokenizer the model was trained with")


def _is_vision(config: Mapping[str, Any]) -> bool:
    return (config.get("architectures") or [None])[0] == "LionForImageClassification" \
        or config.get("modality") == "vision"


def weight_files(folder: Path) -> list[str]:
    """The weight files of a checkpoint: ``model.safetensors``, or the index and the shards it lists."""
    if (folder / WEIGHTS_INDEX_NAME).is_file():
        try:
            index = json.loads((folder / WEIGHTS_INDEX_NAME).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{folder / WEIGHTS_INDEX_NAME} is not valid JSON ({error}); re-save with "
                             "save_pretrained") from error
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards:
            raise ValueError(f"{folder / WEIGHTS_INDEX_NAME} has no weight_map; re-save with save_pretrained")
        bad = [s for s in shards if not isinstance(s, str) or Path(s).name != s or not s.endswith(".safetensors")]
        if bad:
            raise ValueError(f"{folder / WEIGHTS_INDEX_NAME} lists shards that are not .safetensors files of the "
                             f"folder itself: {bad[:4]}; re-save with save_pretrained")
        return [WEIGHTS_INDEX_NAME, *shards]
    return [WEIGHTS_NAME]


def _check_weights(folder: Path, root: Path | None = None) -> None:
    from safetensors import safe_open

    root = root or folder
    if not _has_weights(folder):
        pickles = [p.name for pattern in PICKLE_WEIGHT_PATTERNS for p in folder.glob(pattern)
                   if p.name not in ("training_args.bin",)]
        if pickles:
            raise ValueError(f"{folder} has only pickle weights ({', '.join(sorted(pickles))}); lion-publish uploads "
                             f"safetensors only: load the model and re-save it with model.save_pretrained(folder)")
        raise ValueError(f"{folder / WEIGHTS_NAME} is missing: save the model with model.save_pretrained(folder)")
    names = weight_files(folder)
    missing = [s for s in names if not (folder / s).exists()]
    if missing:
        raise ValueError(f"{folder}: weight shards listed in {WEIGHTS_INDEX_NAME} are missing: {', '.join(missing)}")
    for name in names:
        path = safe_source(folder / name, root)
        if name == WEIGHTS_INDEX_NAME:
            continue
        try:
            with safe_open(str(path), framework="pt") as handle:
                if not list(handle.keys()):
                    raise ValueError(f"{path} holds no tensors")
        except ValueError:
            raise
        except Exception as error:  # safetensors raises its own error types for corrupt headers
            raise ValueError(f"{path} is not a readable safetensors file ({error}); re-save the model") from error


def checkpoint_files(checkpoint_dir: str | os.PathLike, config: Mapping[str, Any],
                     root: str | os.PathLike | None = None) -> dict[str, Path]:
    """What the repository takes from the checkpoint (name -> source): the weights (the index and only the
    shards it lists), and the image processor or the tokenizer files its class needs. Each source is a
    regular file inside ``root``; ``config.json`` is rewritten, not copied, so it is not listed."""
    folder = Path(checkpoint_dir)
    root = Path(root) if root is not None else folder
    names = weight_files(folder)
    if _is_vision(config):
        names += list(IMAGE_PROCESSOR_FILES)
    elif (folder / "tokenizer_config.json").is_file():
        names += list(tokenizer_files(_read_json_object(folder / "tokenizer_config.json", root, "tokenizer config")))
    files = {}
    for name in dict.fromkeys(names):
        path = folder / name
        if path.exists() or path.is_symlink():
            files[name] = safe_source(path, root)
    return files


def _run_dirs(folder: str | os.PathLike, checkpoint_dir: Path) -> list[Path]:
    """Where a run's metrics and state live: the checkpoint, then the run folder it was found in
    (a Trainer writes ``all_results.json`` at the run's top level, not in ``checkpoint-N``)."""
    return [checkpoint_dir] + ([Path(folder)] if Path(folder).resolve() != checkpoint_dir.resolve() else [])


def load_run_metrics(folders: str | os.PathLike | Sequence[str | os.PathLike],
                     metrics_file: str | os.PathLike | None = None,
                     root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Evaluation metrics of a run: ``metrics_file``, else the first of :data:`METRICS_FILES` found in
    ``folders`` (in order; a file found there must lie inside ``root``, default the last folder). Empty if
    there are none."""
    folders = [folders] if isinstance(folders, str | os.PathLike) else list(folders)
    if metrics_file:
        path = Path(metrics_file)
        if not path.is_file():
            raise ValueError(f"metrics file {path} {'is not a file' if path.exists() else 'does not exist'}")
        candidates, base = [path], path.parent
    else:
        candidates = [Path(b) / name for b in folders for name in METRICS_FILES]
        base = Path(root) if root is not None else Path(folders[-1])
    for path in candidates:
        if path.is_file() or path.is_symlink():
            metrics = _read_json_object(path, base, "metrics file")
            logger.info("card metrics from %s", path)
            return metrics
    return {}


def _training_paragraph(run_dirs: Sequence[Path], family: CheckpointFamily) -> str | None:
    """This run's training facts (steps, epochs, batch, final loss) from the Trainer's files, if any.

    Only what the run did: a family's reference recipe is never attached here (the card shows it only for
    a checkpoint of that family, in its own section)."""
    facts = []
    for base in run_dirs:
        state = _trainer_state(base)
        if state:
            if isinstance(state.get("global_step"), int) and state["global_step"] > 0:
                facts.append(f"{state['global_step']} optimisation steps")
            if isinstance(state.get("epoch"), int | float) and state["epoch"]:
                facts.append(f"{state['epoch']:.3g} epochs")
            if isinstance(state.get("train_batch_size"), int) and state["train_batch_size"]:
                facts.append(f"batch size {state['train_batch_size']} per device")
            break
    for base in run_dirs:
        for name in TRAIN_METRICS_FILES:
            if (base / name).is_file():
                try:
                    train = _read_json_object(base / name, run_dirs[-1], "training metrics")
                except ValueError as error:
                    logger.warning("ignoring %s: %s", base / name, error)
                    continue
                if isinstance(train.get("train_loss"), int | float):
                    facts.append(f"final training loss {train['train_loss']:.4g}")
        if facts:
            break
    if not facts:
        return None
    return "This checkpoint was trained with `lion_hf`: " + ", ".join(facts) + "."


# --------------------------------------------------------------------------------------------------
# Card validation
# --------------------------------------------------------------------------------------------------
def validate_card_metadata(card: ModelCard | Mapping[str, Any]) -> None:
    """Local checks of a card's YAML metadata (the Hub's own validator needs the network).

    ``card`` is a :class:`ModelCard` or its metadata as a dict (the YAML header, parsed).

    Raises:
        ValueError: naming the missing field or the malformed ``model-index`` entry.
    """
    data = card.data.to_dict() if isinstance(card, ModelCard) else dict(card)
    for name in REQUIRED_CARD_FIELDS:
        if not data.get(name):
            raise ValueError(f"card metadata: required field {name!r} is missing or empty")
    if data["library_name"] != "transformers":
        raise ValueError(f"card metadata: library_name must be 'transformers', got {data['library_name']!r}")
    if data["pipeline_tag"] not in KNOWN_PIPELINE_TAGS:
        raise ValueError(f"card metadata: pipeline_tag {data['pipeline_tag']!r} is not one of {sorted(KNOWN_PIPELINE_TAGS)}")
    if not isinstance(data["tags"], list) or not all(isinstance(t, str) and t for t in data["tags"]):
        raise ValueError("card metadata: tags must be a list of non-empty strings")
    for name in ("datasets", "base_model"):
        value = data.get(name)
        values = [value] if isinstance(value, str) else value or []
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ValueError(f"card metadata: {name} must be a Hub id or a list of Hub ids, got {value!r}")
    if data.get("base_model") and not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(data["base_model"])):
        raise ValueError(f"card metadata: base_model {data['base_model']!r} is not a Hub repository id (owner/name)")
    if "model-index" in data:
        _validate_model_index(data["model-index"])
    if isinstance(card, ModelCard):
        # The YAML must survive a round trip: what the Hub parses is what we meant.
        reloaded = ModelCard(str(card)).data.to_dict()
        if reloaded != data:
            raise ValueError("card metadata does not survive a YAML round trip; check for unusual values")


def _validate_model_index(model_index: Any) -> None:
    def fail(where: str, what: str) -> None:
        raise ValueError(f"card metadata: model-index{where}: {what}")

    if not isinstance(model_index, list) or not model_index:
        fail("", "must be a non-empty list")
    for i, entry in enumerate(model_index):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            fail(f"[{i}]", "needs a non-empty 'name' (the model name)")
        results = entry.get("results")
        if not isinstance(results, list) or not results:
            fail(f"[{i}].results", "must be a non-empty list")
        for j, result in enumerate(results):
            where = f"[{i}].results[{j}]"
            task, dataset, metrics = result.get("task"), result.get("dataset"), result.get("metrics")
            if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                fail(where, "needs task.type (e.g. image-classification)")
            if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), str) and dataset[k] for k in ("type", "name")):
                fail(where, "needs dataset.type (a Hub dataset id) and dataset.name")
            if not isinstance(metrics, list) or not metrics:
                fail(where, "needs a non-empty metrics list")
            for k, metric in enumerate(metrics):
                value = metric.get("value") if isinstance(metric, dict) else None
                if not isinstance(metric, dict) or not isinstance(metric.get("type"), str):
                    fail(f"{where}.metrics[{k}]", "needs a type")
                if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                    fail(f"{where}.metrics[{k}]", f"value must be a finite number, got {value!r}")


def validate_card_remote(card: ModelCard, endpoint: str | None = None) -> bool:
    """Ask the Hub's validator (``ModelCard.validate``) when that is possible; True if it accepted.

    ``ModelCard.validate`` posts to the endpoint configured at import time (``HF_ENDPOINT``); with an
    explicit other ``endpoint`` it is skipped (the upload validates README.md against that endpoint
    anyway). Offline (``HF_HUB_OFFLINE=1``) or unreachable, it is skipped with a log message.

    Raises:
        ValueError: the Hub rejected the metadata (its message is included).
    """
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    if constants.HF_HUB_OFFLINE:
        logger.info("HF_HUB_OFFLINE is set: the card metadata was validated locally only")
        return False
    if endpoint is not None and endpoint.rstrip("/") != constants.ENDPOINT.rstrip("/"):
        logger.info("card validation by the Hub skipped: %s is not the configured endpoint %s (the upload "
                    "validates README.md there)", endpoint, constants.ENDPOINT)
        return False
    try:
        card.validate()
    except ValueError as error:
        raise ValueError(f"the Hub rejected the card metadata: {error}") from error
    except (OfflineModeIsEnabled, OSError) as error:
        logger.warning("could not reach %s to validate the card (%s); validated locally only", constants.ENDPOINT, error)
        return False
    except Exception as error:  # httpx transport errors do not derive from OSError
        if type(error).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore"):
            logger.warning("could not reach %s to validate the card (%s); validated locally only", constants.ENDPOINT, error)
            return False
        raise
    return True


# --------------------------------------------------------------------------------------------------
# Staging
# --------------------------------------------------------------------------------------------------
def _choose_family(config: Any, family: str | CheckpointFamily | None, dataset: str | None,
                   datasets: Sequence[str] | None) -> CheckpointFamily:
    """The family whose card the checkpoint gets. A planned family (its paper numbers, recipe and data text)
    only for a checkpoint of that family: its config matches the preset and it was named (``family=``) or
    measured on the family's data (``dataset=``); anything else is a custom model."""
    matched = family_for_config(config)
    if family is None:
        if matched is not None and dataset is not None and dataset in matched.datasets:
            return matched
        return custom_family(config, datasets or ([dataset] if dataset else ()))
    if isinstance(family, str):
        if family not in FAMILIES:
            raise ValueError(f"unknown LION checkpoint family {family!r}; available: {', '.join(sorted(FAMILIES))}")
        family = FAMILIES[family]
    # A family card carries the paper's numbers for that architecture: never attach them to another one.
    if family.preset is not None and (matched is None or matched.name != family.name):
        raise ValueError(
            f"the checkpoint's config does not match the family {family.name!r} (preset {family.preset}: "
            f"modality, mask, patch order, sizes); its card would show that family's paper results. Pass "
            f"family=None (--family omitted) to describe it as "
            f"{'the family ' + matched.name if matched else 'a custom model'}")
    if family.preset is not None and dataset is not None and dataset not in family.datasets:
        raise ValueError(f"the family {family.name!r} is trained on {', '.join(family.datasets)}, not {dataset}: omit "
                         f"--family to publish this run as a custom model")
    return family


def _render_publish_card(family: CheckpointFamily, config: Any, config_dict: Mapping[str, Any], *, repo_id: str,
                         metrics: Mapping[str, Any], dataset: str | None, dataset_name: str | None,
                         dataset_config: str | None, dataset_split: str | None, datasets: Sequence[str] | None,
                         base_model: str | None, training: str | None, license: str | None,
                         tags: Iterable[str]) -> ModelCard:
    """The card of a checkpoint without a run card of its own: the family's, or a custom model's."""
    head = config_dict["architectures"][0]
    run_results = []
    if metrics:
        dataset = dataset or (family.datasets[0] if family.preset is not None and family.datasets else None)
        if not dataset:
            raise ValueError("the run has metrics but no dataset to attach them to: pass dataset='<hub dataset id>' "
                             "(--dataset), the dataset the run was evaluated on")
        task_type = PIPELINE_TAGS.get(head, family.pipeline_tag)
        percent = family.preset is not None  # the family's rows (paper, not yet measured) are percentages
        run_results = results_from_metrics(metrics, task_type=task_type, dataset_type=dataset,
                                           dataset_name=dataset_name or dataset, dataset_config=dataset_config,
                                           dataset_split=dataset_split, percent=percent)
        if not run_results:
            logger.warning("no evaluation metric (eval_*) found in the run's metrics %s; the card has no results "
                           "of this checkpoint", sorted(metrics))
    card_datasets = list(datasets) if datasets is not None else (
        list(family.datasets) or ([dataset] if dataset else []))
    description = None
    if family.preset is None:
        description = dataset_name or dataset or "not recorded (the run left no model card; pass --dataset)"
    return render_card(family, config=config, repo_id=repo_id, run_results=run_results, datasets=card_datasets,
                       base_model=base_model, training=training, license=license or "apache-2.0", extra_tags=tags,
                       dataset_description=description)


def find_run_card(run_dirs: Sequence[Path], root: Path) -> ModelCard | None:
    """The card a ``lion_hf`` example script wrote for this run (the first ``README.md`` of ``run_dirs``), or
    None. A README of somebody else (no ``lion`` tag, not from the package's template) does not count."""
    for base in run_dirs:
        path = base / "README.md"
        if not path.is_file():
            continue
        try:
            safe_source(path, root)
            card = ModelCard.load(path)
        except Exception as error:  # not a card at all: unreadable YAML, a link out, ...
            logger.warning("ignoring %s: %s", path, " ".join(str(error).split())[:200])
            continue
        data = card.data.to_dict()
        if data.get("library_name") == "transformers" and "lion" in (data.get("tags") or []) \
                and "## How to load" in card.text:
            return card
    return None


def _card_split(card: ModelCard | None) -> str | None:
    """The split the first result of a card's ``model-index`` was measured on, if any."""
    results = getattr(card.data, "eval_results", None) if card is not None else None
    return next((r.dataset_split for r in results or () if r.dataset_split), None)


_SECTION = re.compile(r"^## How to load\n.*?(?=^## |\Z)", re.S | re.M)
_OLD_ATTENTIONS_LINE = re.compile(r"^- `output_attentions=True`.*$", re.M)


def card_from_run_card(run_card: ModelCard, *, config: Any, repo_id: str, license: str | None = None,
                       base_model: str | None = None, tags: Iterable[str] = ()) -> ModelCard:
    """The run's own card, made ready for the repository: its metadata and body (data, split, metrics as
    measured, recipe, hyperparameters, training log) kept; the "How to load" section rendered anew for
    ``repo_id`` with the remote code (``custom_code`` tag), and statements of older templates corrected."""
    from .cards import OUTPUT_ATTENTIONS_TEXT, hub_id_or_none, render_run_card

    fresh = render_run_card(config=config, repo_id=repo_id, model_name=repo_id.split("/")[-1], remote_code=True,
                            num_parameters=0, limitations=[])
    loading = _SECTION.search(fresh.text)
    text = run_card.text
    if loading is not None and _SECTION.search(text):
        text = _SECTION.sub(lambda _: loading.group(0), text, count=1)
    text = _OLD_ATTENTIONS_LINE.sub(lambda _: f"- {OUTPUT_ATTENTIONS_TEXT}", text)
    data = run_card.data
    data.tags = list(dict.fromkeys([*(data.tags or []), "custom_code", *tags]))
    if license:
        data.license = license
    if base_model:
        data.base_model = base_model
    elif data.base_model and not hub_id_or_none(str(data.base_model)):
        data.base_model = None  # a path of the training machine (cards of older versions)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{text}")


def stage_checkpoint(
    folder: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    repo_id: str,
    family: str | CheckpointFamily | None = None,
    metrics: Mapping[str, Any] | None = None,
    metrics_file: str | os.PathLike | None = None,
    dataset: str | None = None,
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    dataset_split: str | None = None,
    datasets: Sequence[str] | None = None,
    base_model: str | None = None,
    license: str | None = None,
    tags: Iterable[str] = (),
    require_processor: bool = True,
) -> StagedCheckpoint:
    """Check ``folder`` and write everything the repository will hold into ``output_dir``.

    Args:
        folder: a ``save_pretrained`` folder or a Trainer run (see :func:`find_checkpoint`).
        output_dir: an empty (or new) folder; it becomes the repository's content.
        repo_id: the target repository (``owner/name``), used in the card's loading snippets.
        family: a planned family name (:func:`lion_hf.hub.families.list_families`); by default the family
            whose preset matches the config when ``dataset`` is that family's data, else a custom model (no
            paper results, no family text). Without card options, a card the run wrote itself (an example
            script's ``README.md``) is kept, with its "How to load" section made for ``repo_id``.
        metrics / metrics_file: the run's evaluation metrics (Trainer names, ``eval_accuracy`` ...); by
            default read from ``all_results.json``/``eval_results.json``/``metrics.json``.
        dataset, dataset_name, dataset_config, dataset_split: what the metrics were measured on (a Hub
            dataset id; ``dataset`` is needed with metrics unless the run's card says it); the split by
            default the one the run's own card names, else ``validation``.
        datasets: the card's ``datasets`` field (default: the family's, or ``[dataset]``).
        base_model: the checkpoint this one was fine-tuned from.
    """
    from lion_hf.modeling.configuration_lion import LionConfig

    tags = list(tags)
    _check_card_options(dataset, dataset_split, datasets, base_model, license, tags)
    root = Path(folder)
    checkpoint_dir = find_checkpoint(folder)
    run_dirs = _run_dirs(folder, checkpoint_dir)
    if checkpoint_dir.resolve() != root.resolve() and root.resolve() not in checkpoint_dir.resolve().parents:
        raise ValueError(f"{checkpoint_dir} is a symbolic link out of {root}: publish the folder it points to")
    config_dict = check_checkpoint(checkpoint_dir, require_processor=require_processor, root=root)
    sources = checkpoint_files(checkpoint_dir, config_dict, root)
    try:
        config = LionConfig.from_pretrained(checkpoint_dir)
    except Exception as error:
        raise ValueError(f"{checkpoint_dir / 'config.json'} is not a valid LionConfig: {error}") from error

    overrides = any(v is not None for v in (family, metrics, metrics_file, dataset, dataset_name, dataset_config,
                                            datasets))
    # Only a card next to the weights describes them: a run's top-level card is about its final model, not
    # about the checkpoint-N published when that model is missing.
    own_card = find_run_card([checkpoint_dir], root)
    run_card = None if overrides else own_card
    if dataset_split is None:
        dataset_split = _card_split(own_card) or "validation"
    family = _choose_family(config, family, dataset, datasets)
    if run_card is not None and family.preset is None:
        # The run's own card says what the run did (data, split, steps, recipe, log, metrics as measured).
        card = card_from_run_card(run_card, config=config, repo_id=repo_id, license=license, base_model=base_model,
                                  tags=tags)
        metrics = load_run_metrics(run_dirs, root=root)
    else:
        if run_card is None and not overrides and any(p.name == "README.md" for p in checkpoint_dir.iterdir()):
            logger.warning("%s is not a lion_hf run card: the repository gets a generated card instead",
                           checkpoint_dir / "README.md")
        metrics = dict(metrics) if metrics is not None else load_run_metrics(run_dirs, metrics_file, root=root)
        card = _render_publish_card(family, config, config_dict, repo_id=repo_id, metrics=metrics, dataset=dataset,
                                    dataset_name=dataset_name, dataset_config=dataset_config,
                                    dataset_split=dataset_split, datasets=datasets, base_model=base_model,
                                    training=_training_paragraph(run_dirs, family), license=license, tags=tags)
    validate_card_metadata(card)

    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"staging folder {out} is a file; pass a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ValueError(f"staging folder {out} is not empty; pass a new or empty folder")
    for name in METRICS_FILES + TRAIN_METRICS_FILES:
        source = next((b / name for b in run_dirs if (b / name).is_file() or (b / name).is_symlink()), None)
        if source is not None:
            _read_json_object(source, root, "metrics file")  # only regular JSON files of the run go up
            sources[name] = source
    skipped = sorted(p.name for p in checkpoint_dir.iterdir() if p.name not in sources and p.name != "config.json")
    if skipped:
        logger.info("not uploaded from %s (not part of the checkpoint): %s", checkpoint_dir, ", ".join(skipped))
    files: list[str] = []
    for name, source in sources.items():
        shutil.copyfile(source, out / name)
        files.append(name)
    if require_processor:
        _check_processor_loads(out, config_dict)
    (out / "config.json").write_text(json.dumps(_publish_config(config_dict), indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    files.append("config.json")
    files += write_bundle(out)
    problems = check_bundle(out)
    if problems:
        raise BundleError("the generated remote-code bundle would not load: " + "; ".join(problems))
    card.save(out / "README.md")
    files.append("README.md")
    files.append(write_manifest(out, files))
    return StagedCheckpoint(folder=out, checkpoint_dir=checkpoint_dir, files=sorted(files), card=card,
                            family=family, metrics=metrics, sources={n: Path(p) for n, p in sources.items()})


# --------------------------------------------------------------------------------------------------
# What an upload changes in the repository
# --------------------------------------------------------------------------------------------------
#: The file in which each publish records what it uploaded, so that the next publish deletes only
#: files written by lion-publish (never a file somebody else put in the repository).
MANIFEST_NAME = "lion_publish.json"
#: The first line of every remote-code file the bundle writes (how files of an earlier publish that
#: predates the manifest are recognised).
BUNDLE_MARKER = BUNDLE_HEADER.split("{", 1)[0]


@dataclass
class UploadPlan:
    """What one publish will do to the repository, known before anything is sent.

    Attributes:
        upload: every file of the commit (the staged folder).
        delete: files an earlier lion-publish wrote that this upload no longer has.
        replace: files already in the repository, not written by an earlier lion-publish, that the upload
            overwrites (typically the owner's ``README.md``).
        foreign: files of the repository lion-publish did not write; they are left as they are.
        changed: files an earlier lion-publish wrote that were changed since; never deleted (listed in
            ``replace`` when the upload overwrites them, in ``foreign`` otherwise).
        repo_exists: whether the repository (and revision) exists; None when it could not be asked.
        head: the commit the plan was made from; the upload is refused if the branch moved since.
        private: the existing repository's visibility (None when unknown or new).
        note: why the repository could not be asked (offline, unreachable), if so.
    """

    repo_id: str
    revision: str | None
    upload: list[str]
    delete: list[str] = field(default_factory=list)
    replace: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    repo_exists: bool | None = None
    head: str | None = None
    private: bool | None = None
    note: str | None = None


def write_manifest(staged_folder: Path, files: Iterable[str]) -> str:
    """Write :data:`MANIFEST_NAME` into the staged folder: every file of the upload (and itself), with the
    content hashes the Hub reports (git blob id, and sha256 for files stored with LFS), so that the next
    publish can tell a file it wrote from one that somebody changed since. Returns the manifest's name."""
    from lion_hf import __version__

    names = sorted({*files, MANIFEST_NAME})
    hashes = {name: _content_hashes(staged_folder / name) for name in names if name != MANIFEST_NAME}
    data = {"written_by": "lion_hf.hub.publish", "lion_hf_version": __version__, "files": names, "hashes": hashes}
    (staged_folder / MANIFEST_NAME).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return MANIFEST_NAME


def _content_hashes(path: Path) -> dict[str, str]:
    """``{"git": <git blob id>, "sha256": <sha256>}`` of a file, read once in blocks."""
    size = path.stat().st_size
    git, sha256 = hashlib.sha1(b"blob %d\0" % size), hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            git.update(block)
            sha256.update(block)
    return {"git": git.hexdigest(), "sha256": sha256.hexdigest()}


def _download_text(api: HfApi, repo_id: str, filename: str, revision: str | None, limit: int = 1 << 20) -> str | None:
    """A small text file of the repository, or None when it is absent, too large or unreadable."""
    try:
        path = api.hf_hub_download(repo_id, filename, revision=revision)
        if Path(path).stat().st_size > limit:
            return None
        return Path(path).read_text(encoding="utf-8")
    except Exception as error:  # missing file, network, decoding: the file just does not count as ours
        logger.info("could not read %s from %s (%s)", filename, repo_id, error)
        return None


def _previous_files(api: HfApi, repo_id: str, revision: str | None,
                    existing: Mapping[str, dict[str, str]]) -> tuple[set[str], set[str]]:
    """``(ours, changed)``: files of the repository an earlier lion-publish wrote and nobody changed since,
    and files it wrote that were changed since (they are no longer only ours: never deleted).

    The manifest of the last publish says which files it wrote and their hashes; a repository published
    before the manifest existed is recognised by the remote-code files that carry the bundle's header.
    ``existing`` maps each file of the repository to the hashes the Hub reports for it."""
    if MANIFEST_NAME in existing:
        text = _download_text(api, repo_id, MANIFEST_NAME, revision)
        try:
            manifest = json.loads(text or "")
        except json.JSONDecodeError:
            manifest = None
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if isinstance(listed, list):
            hashes = manifest.get("hashes") if isinstance(manifest.get("hashes"), dict) else {}
            # Only names lion-publish can write: a hand-edited manifest cannot make it delete notes or data.
            names = {n for n in listed if isinstance(n, str) and n in existing and _publishable_name(n)}
            changed = {n for n in names if n != MANIFEST_NAME and not _unchanged(hashes.get(n), existing[n])}
            return names - changed, changed
    ours = set()
    for name in existing:
        if "/" not in name and name.endswith(".py"):
            text = _download_text(api, repo_id, name, revision)
            if text is not None and text.startswith(BUNDLE_MARKER):
                ours.add(name)
    return ours, set()


def _unchanged(recorded: Any, current: Mapping[str, str]) -> bool:
    """Whether a file still has the content a publish recorded (a manifest without hashes: assumed so)."""
    if not isinstance(recorded, dict):
        return True
    if current.get("sha256"):
        return recorded.get("sha256") == current["sha256"]
    return bool(current.get("git")) and recorded.get("git") == current["git"]


def _repo_files(api: HfApi, repo_id: str, revision: str | None) -> dict[str, dict[str, str]]:
    """Every file of the repository with the hashes the Hub reports (git blob id; sha256 for LFS files)."""
    files = {}
    for entry in api.list_repo_tree(repo_id, revision=revision, recursive=True):
        if getattr(entry, "blob_id", None) is None and getattr(entry, "lfs", None) is None:
            continue  # a folder
        lfs = getattr(entry, "lfs", None)
        files[entry.path] = {"git": getattr(entry, "blob_id", None) or "",
                             "sha256": (getattr(lfs, "sha256", None) or "") if lfs is not None else ""}
    return files


def _publishable_name(name: str) -> bool:
    """Whether lion-publish could have written a file of this name (top level, one of its kinds)."""
    if "/" in name:
        return False
    return (name.endswith((".py", ".safetensors")) or name in (WEIGHTS_INDEX_NAME, "config.json", "README.md",
            MANIFEST_NAME) or name in METRICS_FILES + TRAIN_METRICS_FILES or name in PROCESSOR_PATTERNS
            or name.endswith(".model"))


def plan_upload(api: HfApi, repo_id: str, revision: str | None, upload: Iterable[str]) -> UploadPlan:
    """Compare the staged files with the repository: what the commit deletes, replaces and leaves alone.

    Read-only (it lists the repository and reads the manifest); a repository or branch that does not exist
    yet gives a plan with nothing to delete.
    """
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    upload = sorted(upload)
    plan = UploadPlan(repo_id=repo_id, revision=revision, upload=upload)
    try:
        info = api.model_info(repo_id, revision=revision)
    except RepositoryNotFoundError:
        plan.repo_exists = False
        return plan
    except RevisionNotFoundError:  # a new branch starts from main: compare with main
        info = api.model_info(repo_id)
    plan.head, plan.private = info.sha, getattr(info, "private", None)
    plan.repo_exists = True
    # One snapshot: the files, the manifest and the commit the upload will build on are all of plan.head.
    existing = _repo_files(api, repo_id, plan.head)
    ours, changed = _previous_files(api, repo_id, plan.head, existing)
    plan.changed = sorted(changed)
    new = set(upload)
    plan.delete = sorted(n for n in ours if n not in new)
    plan.replace = sorted(n for n in existing if n in new and n not in ours)
    plan.foreign = sorted(n for n in existing if n not in new and n not in ours and n != ".gitattributes")
    return plan


def _offline_plan(repo_id: str, revision: str | None, upload: Iterable[str], note: str) -> UploadPlan:
    return UploadPlan(repo_id=repo_id, revision=revision, upload=sorted(upload), note=note)


# --------------------------------------------------------------------------------------------------
# Publishing
# --------------------------------------------------------------------------------------------------
def publish(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    create_pr: bool = False,
    token: str | bool | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
    staging_dir: str | os.PathLike | None = None,
    before_upload: Callable[[UploadPlan], None] | None = None,
    **card_options: Any,
) -> PublishResult:
    """Publish a trained LION checkpoint (weights, config, processor/tokenizer, remote code, card).

    Args:
        folder: a ``save_pretrained`` folder or a training run's output folder.
        repo_id: ``owner/name`` of the Hub repository; created if it does not exist.
        private: visibility of a newly created repository (None: the Hub's default, public).
        revision: branch to commit to; created from ``main`` if missing (default ``main``).
        commit_message, commit_description, create_pr: passed to the commit.
        token: Hub token (default: ``HF_TOKEN`` or the saved login).
        endpoint: Hub endpoint (default: ``HF_ENDPOINT`` or huggingface.co).
        dry_run: stage and validate only; nothing is sent.
        staging_dir: where to stage (default: a temporary folder, removed after the upload unless ``dry_run``).
        before_upload: called with the :class:`UploadPlan` (every file to upload, every file to delete or
            replace) before anything is sent; it may raise to stop. Also called on a dry run.
        card_options: :func:`stage_checkpoint` options (family, metrics, metrics_file, dataset, base_model, ...).

    Raises:
        ValueError: the folder is incomplete or the card metadata is invalid (the message says what to fix).
    """
    check_repo_id(repo_id)
    if revision is not None and not _is_branch_name(revision):
        raise ValueError(f"revision {revision!r} is not a usable branch name (letters, digits, '.', '_', '-', '/'; "
                         "no '..', no leading '-' or '/')")
    cleanup = None
    if staging_dir is None:
        cleanup = tempfile.TemporaryDirectory(prefix="lion-publish-")
        staging_dir = Path(cleanup.name) / repo_id.split("/")[-1]
    try:
        staged = stage_checkpoint(folder, staging_dir, repo_id=repo_id, **card_options)
        result = PublishResult(repo_id=repo_id, staged=staged, revision=revision)
        api = HfApi(endpoint=endpoint, token=token)
        result.plan = _plan_or_note(api, repo_id, revision, staged.files, dry_run)
        logger.info("upload to %s: %s; deletes: %s", repo_id, ", ".join(result.plan.upload),
                    ", ".join(result.plan.delete) or "nothing")
        plan = result.plan
        if private is not None and plan.repo_exists and plan.private is not None and plan.private != private:
            raise ValueError(f"{repo_id} exists and is {'private' if plan.private else 'public'}; "
                             f"{'--private' if private else '--public'} does not change an existing repository's "
                             "visibility: change it in the repository's settings on the Hub first, or leave the "
                             "flag out")
        if before_upload is not None:
            before_upload(result.plan)
        if dry_run:
            if cleanup is not None:
                cleanup = None  # keep the staged folder: it is the dry run's output
            logger.info("dry run: staged %s in %s", ", ".join(staged.files), staged.folder)
            return result
        validate_card_remote(staged.card, endpoint)

        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        result.repo_url = str(repo_url)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        try:
            commit = api.upload_folder(
                repo_id=repo_id, folder_path=staged.folder, revision=revision,
                commit_message=commit_message or f"Upload {staged.family.variant} checkpoint with lion_hf",
                commit_description=commit_description, create_pr=create_pr, parent_commit=result.plan.head,
                delete_patterns=[glob.escape(name) for name in result.plan.delete] or None)
        except HfHubHTTPError as error:
            if getattr(error.response, "status_code", None) == 412:
                raise ValueError(f"{repo_id} changed while publishing (a commit after {result.plan.head}): nothing "
                                 "was uploaded; run lion-publish again to see the new plan") from error
            raise
        result.commit_url, result.commit_oid = commit.commit_url, commit.oid
        logger.info("published %s at %s", repo_id, commit.commit_url)
        return result
    finally:
        if cleanup is not None:
            cleanup.cleanup()


def _plan_or_note(api: HfApi, repo_id: str, revision: str | None, files: Sequence[str], dry_run: bool) -> UploadPlan:
    """:func:`plan_upload`; a dry run that cannot reach the Hub gets a plan saying so instead of failing."""
    from huggingface_hub import constants

    if dry_run and constants.HF_HUB_OFFLINE:
        return _offline_plan(repo_id, revision, files, "HF_HUB_OFFLINE is set: the repository was not asked "
                                                       "which files it holds (nothing is deleted by a dry run)")
    try:
        return plan_upload(api, repo_id, revision, files)
    except Exception as error:
        if not dry_run:
            raise
        return _offline_plan(repo_id, revision, files, f"could not list the repository ({_first_line(error)})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:200]
