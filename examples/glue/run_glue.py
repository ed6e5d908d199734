#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Fine-tune a LION text model on a GLUE task with the 🤗 Trainer.

Data: any GLUE task from the Hub (``--task_name sst2`` loads ``nyu-mll/glue``) or local ``.tsv`` /
``.csv`` files with the same columns as the Hub's (``--train_file``, ``--validation_file``, optional
``--test_file``; e.g. ``sentence`` and ``label`` for SST-2, ``sentence1``, ``sentence2``, ``label`` for
MRPC). STS-B is a regression (one output, mean squared error).

The metric is the task's official one through ``evaluate``: the Hub's ``glue`` module when it can be
fetched, otherwise the copy shipped in ``lion_hf/metrics/glue`` (``--metric_source`` forces one).
All standard ``TrainingArguments`` flags apply (``--learning_rate``, ``--num_train_epochs``,
``--per_device_train_batch_size``, ``--bf16``, ``--gradient_checkpointing``, ``--push_to_hub``, ...).
The results go to ``<output_dir>/all_results.json`` (and ``eval_results.json``/``train_results.json``),
with a model card filled from the run in ``README.md``.

Example::

    python examples/glue/run_glue.py --model_name_or_path runs/mlm --task_name sst2 \\
        --do_train --do_eval --num_train_epochs 3 --learning_rate 5e-5 --output_dir runs/sst2
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import lion_hf  # noqa: F401  (registers the LION classes with the Auto classes)
from lion_hf import LionConfig, LionForSequenceClassification
from lion_hf.metrics import load_glue_metric
from lion_hf.training import CheckpointError, OutputGuard, configure_logging

logger = logging.getLogger("run_glue")

#: Text columns of each task (as in nyu-mll/glue) and the names of its labels (None: regression).
TASKS: dict[str, tuple[tuple[str, str | None], list[str] | None]] = {
    "cola": (("sentence", None), ["unacceptable", "acceptable"]),
    "sst2": (("sentence", None), ["negative", "positive"]),
    "mrpc": (("sentence1", "sentence2"), ["not_equivalent", "equivalent"]),
    "qqp": (("question1", "question2"), ["not_duplicate", "duplicate"]),
    "stsb": (("sentence1", "sentence2"), None),
    "mnli": (("premise", "hypothesis"), ["entailment", "neutral", "contradiction"]),
    "qnli": (("question", "sentence"), ["entailment", "not_entailment"]),
    "rte": (("sentence1", "sentence2"), ["entailment", "not_entailment"]),
    "wnli": (("sentence1", "sentence2"), ["not_entailment", "entailment"]),
}


DEFAULT_DATASET = "nyu-mll/glue"
#: Non-LION checkpoints this script fine-tunes too, as the Transformer baseline of a comparison.
BASELINE_MODEL_TYPES = ("bert",)


class ScriptError(ValueError):
    """A bad argument or input; the message says what to change."""


def label_value(value: Any, label_names: list[str] | None) -> int | float:
    """A label read from the data as the model's target; ``ValueError`` says why it is not one.

    Classification labels are class ids ``0 .. n-1`` (an integer-valued number, or the class name); ``1.7``
    is not class 1. Regression (STS-B) labels are finite numbers.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip()):
        raise ValueError("is empty")
    if label_names is None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError("is not a number") from None
        if not math.isfinite(number):
            raise ValueError("is not a finite number")
        return number
    if isinstance(value, str):
        text = value.strip()
        if text in label_names:
            return label_names.index(text)
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"is neither a class id nor a class name ({', '.join(label_names)})") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or float(value) != int(value):
        raise ValueError("is not a whole number (a class id)")
    if not 0 <= int(value) < len(label_names):
        raise ValueError(f"is out of range: the classes are 0..{len(label_names) - 1}")
    return int(value)


def check_labels(raw: Any, data_args: "DataArguments", task: str, label_names: list[str] | None) -> None:
    """Every label of the train and validation splits is a valid target; errors name the file, line and value."""
    for split_name, split in raw.items():
        if "label" not in split.column_names or split_name.startswith("test"):  # GLUE's test labels are -1
            continue
        source = getattr(data_args, f"{split_name}_file", None)
        for row, value in enumerate(split["label"]):
            try:
                label_value(value, label_names)
            except ValueError as err:
                where = f"{source}, line {row + 2}" if source else f"{data_args.dataset_name}/{task} {split_name}, row {row}"
                allowed = "a finite number" if label_names is None else \
                    f"0..{len(label_names) - 1} ({', '.join(label_names)})"
                raise ScriptError(f"{where}: the label {value!r} {err}; {task} labels are {allowed}") from None


@dataclass
class ModelArguments:
    model_name_or_path: str = field(metadata={"help": "a LION checkpoint (e.g. the output of run_mlm.py)"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "a tokenizer (when not given: the checkpoint's)"})
    attention_form: str | None = field(default=None, metadata={"help": "auto, attention, chunk or recurrent"})


@dataclass
class DataArguments:
    task_name: str = field(metadata={"help": f"one of {', '.join(TASKS)} (any case; SST-2 is sst2)"})
    dataset_name: str = field(default=DEFAULT_DATASET,
                              metadata={"help": "the Hub data set holding the tasks (not with local files)"})
    train_file: str | None = field(default=None, metadata={"help": "local .tsv/.csv with the task's columns"})
    validation_file: str | None = field(default=None, metadata={"help": "local .tsv/.csv with the task's columns"})
    test_file: str | None = field(default=None, metadata={"help": "local .tsv/.csv to predict (labels optional)"})
    max_seq_length: int = field(default=128)
    pad_to_max_length: bool = field(default=False, metadata={"help": "pad every example (else pad per batch)"})
    max_train_samples: int | None = field(default=None)
    max_eval_samples: int | None = field(default=None)
    metric_source: str = field(default="auto", metadata={"help": "auto (Hub, else shipped), hub or local"})
    overwrite_output_dir: bool = field(default=False, metadata={
        "help": "allow writing into a non-empty --output_dir (with --resume_from_checkpoint, a folder holding only "
                "this script's files needs no flag)"})


def _check(model_args: ModelArguments, data_args: DataArguments, training_args) -> None:
    given = data_args.task_name
    data_args.task_name = given.strip().lower().replace("-", "").replace("_", "")
    if data_args.task_name not in TASKS:
        raise ScriptError(f"unknown GLUE task {given!r}; choose one of {', '.join(TASKS)}")
    local = any(getattr(data_args, name) is not None for name in ("train_file", "validation_file", "test_file"))
    if local and data_args.dataset_name != DEFAULT_DATASET:
        raise ScriptError(f"--dataset_name {data_args.dataset_name!r} would be ignored: the data come from the local "
                          "files; drop one or the other")
    for name in ("max_seq_length", "max_train_samples", "max_eval_samples"):
        value = getattr(data_args, name)
        if value is not None and value < 1:
            raise ScriptError(f"--{name} must be at least 1, got {value}")
    for name in ("train_file", "validation_file", "test_file"):
        value = getattr(data_args, name)
        if value is not None:
            if not Path(value).is_file():
                raise ScriptError(f"--{name} {value!r} does not exist")
            if not value.endswith((".tsv", ".csv")):
                raise ScriptError(f"--{name} must be a .tsv or .csv file, got {value!r}")
    if data_args.train_file is None and training_args.do_train and data_args.validation_file is not None:
        raise ScriptError("--do_train with local files needs --train_file")
    if data_args.metric_source not in ("auto", "hub", "local"):
        raise ScriptError("--metric_source must be auto, hub or local")


def _source(data_args: DataArguments, split: str) -> str:
    file = getattr(data_args, f"{split}_file", None)
    return f" ({file} holds a header and no rows)" if file else ""


def load_data(data_args: DataArguments) -> Any:
    """A DatasetDict with train / validation(_matched, _mismatched) / test splits."""
    import datasets

    local = {k: getattr(data_args, f"{k}_file") for k in ("train", "validation", "test")
             if getattr(data_args, f"{k}_file") is not None}
    if local:
        kinds = {Path(v).suffix for v in local.values()}
        if len(kinds) > 1:
            raise ScriptError(f"the local files mix {' and '.join(sorted(kinds))}: give them all as .tsv or all as .csv "
                              "(they are read with one delimiter)")
        tsv = kinds == {".tsv"}
        # GLUE text holds quotes: read the TSV verbatim (no quoting), as the GLUE files are written.
        extra = {"delimiter": "\t", "quoting": 3} if tsv else {}
        try:
            return datasets.load_dataset("csv", data_files=local, **extra)
        except datasets.exceptions.DatasetGenerationError as err:
            cause = err.__cause__ or err.__context__ or err
            raise ScriptError(f"cannot read {', '.join(local.values())} as {'TSV' if tsv else 'CSV'} "
                              f"({type(cause).__name__}: {cause}); every line needs the header's number of "
                              "fields") from err
        except ValueError as err:
            if "corresponds to no data" not in str(err):
                raise
            split = next((k for k in local if f'"{k}"' in str(err)), None)
            raise ScriptError(f"the {split or 'a'} split is empty{_source(data_args, split) if split else ''}") from err
    try:
        return datasets.load_dataset(data_args.dataset_name, data_args.task_name)
    except ConnectionError as err:
        raise ScriptError(f"cannot load {data_args.dataset_name}/{data_args.task_name} from the Hub ({err}); offline "
                          "(HF_HUB_OFFLINE=1) pass --train_file/--validation_file") from err


def main(argv: list[str] | None = None) -> dict[str, float]:
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        DataCollatorWithPadding,
        HfArgumentParser,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    _check(model_args, data_args, training_args)
    configure_logging()
    set_seed(training_args.seed)
    task = data_args.task_name
    (key1, key2), label_names = TASKS[task]
    regression = label_names is None

    output_dir = Path(training_args.output_dir)
    try:
        guard = OutputGuard(output_dir)
        guard.check(overwrite=data_args.overwrite_output_dir, resuming=training_args.resume_from_checkpoint is not None)
        if output_dir.is_dir():
            guard.snapshot()
    except CheckpointError as err:
        raise ScriptError(str(err)) from err
    raw = load_data(data_args)
    for split in raw.values():
        missing = [c for c in (key1, key2, "label") if c is not None and c not in split.column_names]
        if missing and not (missing == ["label"] and split is raw.get("test")):
            raise ScriptError(f"the {task} data lacks the columns {missing} (has {split.column_names})")
    check_labels(raw, data_args, task, label_names)
    try:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path)
    except (OSError, ValueError) as err:
        raise ScriptError(f"cannot load --model_name_or_path {model_args.model_name_or_path!r}: {err}") from err
    is_lion = config.model_type == LionConfig.model_type
    if is_lion and getattr(config, "modality", None) != "text":
        raise ScriptError(f"--model_name_or_path {model_args.model_name_or_path!r} is a LION "
                          f"{getattr(config, 'modality', None)!r} checkpoint; this script fine-tunes LION text models")
    if not is_lion and config.model_type not in BASELINE_MODEL_TYPES:
        raise ScriptError(f"--model_name_or_path {model_args.model_name_or_path!r} is a {config.model_type!r} "
                          f"checkpoint; this script fine-tunes LION text models (and, as baselines to compare with, "
                          f"{', '.join(BASELINE_MODEL_TYPES)} checkpoints such as run_mlm.py --baseline bert writes)")
    if not is_lion and model_args.attention_form is not None:
        raise ScriptError("--attention_form applies to LION models only; drop it for a baseline checkpoint")
    tokenizer_name = model_args.tokenizer_name or model_args.model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name)
    except (OSError, ValueError, TypeError) as err:
        raise ScriptError(f"cannot load the tokenizer {tokenizer_name!r} ({err}); pass --tokenizer_name") from err
    if len(tokenizer) > config.vocab_size:
        raise ScriptError(f"the tokenizer {tokenizer_name!r} has {len(tokenizer)} tokens, the model's vocabulary "
                          f"{config.vocab_size}: they do not belong together (use the checkpoint's own tokenizer)")
    if getattr(config, "use_position_embeddings", False) and data_args.max_seq_length > config.max_position_embeddings:
        raise ScriptError(f"--max_seq_length {data_args.max_seq_length} exceeds the model's position table "
                          f"(max_position_embeddings={config.max_position_embeddings}); pass at most that")

    num_labels = 1 if regression else len(label_names)
    id2label = {0: "score"} if regression else dict(enumerate(label_names))
    if is_lion:
        model_class = LionForSequenceClassification
    else:
        from transformers import AutoModelForSequenceClassification as model_class

        logger.info("fine-tuning the %s baseline %s (no LION model card is written)", config.model_type,
                    model_args.model_name_or_path)
    try:
        model = model_class.from_pretrained(
            model_args.model_name_or_path, num_labels=num_labels, id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            problem_type="regression" if regression else "single_label_classification")
    except OSError as err:  # no weights in the folder, unreadable files
        raise ScriptError(f"cannot load --model_name_or_path {model_args.model_name_or_path!r}: {err}") from err
    model.config.architectures = [type(model).__name__]
    if model_args.attention_form is not None:
        model.set_attention_form(model_args.attention_form)

    padding = "max_length" if data_args.pad_to_max_length else False

    def preprocessor(with_labels: bool):
        def preprocess(batch: dict) -> dict:
            texts = (batch[key1],) if key2 is None else (batch[key1], batch[key2])
            texts = tuple([t if isinstance(t, str) else "" for t in column] for column in texts)  # empty cells
            encoded = tokenizer(*texts, padding=padding, max_length=data_args.max_seq_length, truncation=True)
            if with_labels:
                encoded["labels"] = [label_value(v, label_names) for v in batch["label"]]
            return encoded
        return preprocess

    import datasets

    processed = datasets.DatasetDict({
        name: split.map(preprocessor("label" in split.column_names and not name.startswith("test")), batched=True,
                        remove_columns=split.column_names, desc=f"tokenizing {name}")
        for name, split in raw.items()})
    eval_names = ["validation_matched", "validation_mismatched"] if task == "mnli" and "validation_matched" in processed \
        else ["validation"]
    train_dataset = processed.get("train")
    if training_args.do_train:
        if train_dataset is None:
            raise ScriptError("--do_train needs a train split")
        if len(train_dataset) == 0:
            raise ScriptError(f"the train split is empty{_source(data_args, 'train')}")
        if data_args.max_train_samples is not None:
            train_dataset = train_dataset.select(range(min(data_args.max_train_samples, len(train_dataset))))
    eval_sets = {}
    if training_args.do_eval:
        for name in eval_names:
            if name not in processed:
                raise ScriptError(f"--do_eval needs a {name} split")
            data = processed[name]
            if data_args.max_eval_samples is not None:
                data = data.select(range(min(data_args.max_eval_samples, len(data))))
            if len(data) == 0:
                raise ScriptError(f"the {name} split is empty{_source(data_args, name)}")
            eval_sets[name] = data

    metrics_by_eval = {}
    for name in eval_sets:
        metric_task = {"validation_matched": "mnli_matched", "validation_mismatched": "mnli_mismatched"}.get(name, task)
        metrics_by_eval[name] = load_glue_metric(metric_task, source=data_args.metric_source, keep_in_memory=True)

    def make_compute_metrics(metric):
        def compute(prediction) -> dict[str, float]:
            logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
            predicted = np.squeeze(logits, axis=-1) if regression else np.argmax(logits, axis=-1)
            scores = metric.compute(predictions=predicted, references=prediction.label_ids)
            if len(scores) > 1:
                scores["combined_score"] = float(np.mean(list(scores.values())))
            return scores
        return compute

    first_eval = next(iter(eval_sets), None)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=train_dataset if training_args.do_train else None,
        eval_dataset=eval_sets.get(first_eval) if first_eval else None, processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if training_args.fp16 else None),
        compute_metrics=make_compute_metrics(metrics_by_eval[first_eval]) if first_eval else None)

    all_metrics: dict[str, float] = {}
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        trainer.save_model()
        train_metrics = {**result.metrics, "train_samples": len(train_dataset)}
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()
        all_metrics.update(train_metrics)
    for name, data in eval_sets.items():
        trainer.compute_metrics = make_compute_metrics(metrics_by_eval[name])
        prefix = "eval" if name == "validation" or name == "validation_matched" else "eval_mm"
        scores = trainer.evaluate(eval_dataset=data, metric_key_prefix=prefix)
        scores[f"{prefix}_samples"] = len(data)
        trainer.log_metrics(prefix, scores)
        trainer.save_metrics(prefix, scores)
        all_metrics.update(scores)
    if "test" in processed and data_args.test_file is not None:
        test = processed["test"].remove_columns([c for c in ("labels",) if c in processed["test"].column_names])
        logits = trainer.predict(test, metric_key_prefix="test").predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        predicted = np.squeeze(logits, axis=-1) if regression else np.argmax(logits, axis=-1)
        if trainer.is_world_process_zero():
            with open(Path(training_args.output_dir) / f"predict_results_{task}.txt", "w") as out:
                out.write("index\tprediction\n")
                for i, value in enumerate(predicted):
                    out.write(f"{i}\t{value:.3f}\n" if regression else f"{i}\t{label_names[int(value)]}\n")

    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        # the Trainer's log (training loss and evaluations per logging step) as the run's learning curve
        results = {"task": task, **all_metrics, "history": trainer.state.log_history}
        (output_dir / "all_results.json").write_text(json.dumps(results, indent=2))
        if is_lion:
            card = build_card(model_args, data_args, training_args, trainer.model, all_metrics)
            if training_args.push_to_hub:
                trainer.push_to_hub()  # writes Trainer's own README; ours replaces it just below and on the Hub
                card.push_to_hub(training_args.hub_model_id or output_dir.name, token=training_args.hub_token)
            card.save(str(output_dir / "README.md"))
        elif training_args.push_to_hub:
            trainer.push_to_hub()
        guard.record()
    return all_metrics


def build_card(model_args, data_args, training_args, model, metrics: dict[str, float]):
    from lion_hf.hub import RunMetric, render_run_card

    task = data_args.task_name
    run_metrics = []
    main_split = "validation_matched" if task == "mnli" else "validation"
    for prefix, split in (("eval_", main_split), ("eval_mm_", "validation_mismatched")):
        for name in ("accuracy", "f1", "matthews_correlation", "pearson", "spearmanr"):
            if prefix + name in metrics:
                run_metrics.append(RunMetric(name, round(float(metrics[prefix + name]), 4), f"{task} {name}", split=split))
    local = data_args.train_file is not None or data_args.validation_file is not None
    hyper = {"learning rate": training_args.learning_rate, "epochs": training_args.num_train_epochs,
             "batch size per device": training_args.per_device_train_batch_size,
             "weight decay": training_args.weight_decay, "warmup": training_args.warmup_steps or 0,
             "max sequence length": data_args.max_seq_length, "seed": training_args.seed}
    name = training_args.hub_model_id or Path(training_args.output_dir).resolve().name
    return render_run_card(
        model_name=name, config=model.config, dataset_id="glue (local files)" if local else data_args.dataset_name,
        dataset_name=f"GLUE {task.upper()}", dataset_config=task, metrics=run_metrics, hyperparameters=hyper,
        script="examples/glue/run_glue.py", hub_datasets=None if local else [data_args.dataset_name],
        base_model=model_args.model_name_or_path, repo_id=name,
        num_parameters=sum(p.numel() for p in model.parameters()), tags=["text-classification", "glue"])


if __name__ == "__main__":
    try:
        main()
    except ScriptError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
