#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Validation on real data through the example scripts: every model, one recipe, one budget.

Two tasks, each a list of models trained by the example scripts exactly as a user runs them (the commands are
printed and recorded):

* ``cifar10``: ``run_image_classification.py`` on CIFAR-10 image folders (``<data_root>/cifar10/{train,test}``),
  32 px, patch 4, 6 layers x 192, ``--recipe small``, 20 epochs, batch 256, bf16; LION-LIT (with and without
  position embeddings), LION-D, LION-D♮, LION-S, LION-S♮, LightNet and transformers' ViT (``--baseline vit``).
* ``text``: ``run_mlm.py`` pretraining (the paper's masking: 30 % train, 15 % eval) on the gensim Wikipedia + news
  corpus that ``examples/mlm/prepare_corpus.py`` writes (``<data_root>/wiki_news``), then ``run_glue.py``
  fine-tuning on SST-2 (``<data_root>/sst2/{train,dev}.tsv``); LION-LIT/D/S, LightNet and BERT (``--baseline bert``).

Each run's ``all_results.json`` (final metrics and the evaluation history) is copied to
``<results_dir>/<stage>-<model>.json`` (stage: cifar10, mlm, sst2) with the command, wall time, device, date and how many runs shared the
machine (``--parallel``). ``examples/validation/report.py`` turns them into tables and learning curves.

Example (one GPU; two runs at a time share it)::

    python examples/validation/run_validation.py --task cifar10 --data_root data --parallel 2 \\
        --output_root runs/validation --results_dir results/validation/h200-2026-12-01
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE_SCRIPT = ROOT / "examples" / "image_classification" / "run_image_classification.py"
MLM_SCRIPT = ROOT / "examples" / "mlm" / "run_mlm.py"
GLUE_SCRIPT = ROOT / "examples" / "glue" / "run_glue.py"

#: The one CIFAR-10 recipe (the examples' small-data recipe: AdamW 1e-3, label smoothing 0.1, crop + flip, no
#: Mixup/CutMix/RandAugment/erasing/drop path, 1 warm-up epoch then cosine), every model the same.
CIFAR_RECIPE = ["--image_size", "32", "--patch_size", "4", "--hidden_size", "192", "--num_hidden_layers", "6",
                "--num_attention_heads", "3", "--recipe", "small", "--num_train_epochs", "20",
                "--per_device_train_batch_size", "256", "--per_device_eval_batch_size", "500",
                "--mixed_precision", "bf16", "--image_check", "none", "--logging_steps", "50"]
CIFAR_MODELS: dict[str, list[str]] = {
    "vit": ["--baseline", "vit"],
    "lion-lit": ["--mask_type", "lit"],
    "lion-lit-pos": ["--mask_type", "lit", "--use_position_embeddings"],
    "lion-d": ["--mask_type", "decay"],
    "lion-d-natural": ["--mask_type", "decay", "--patch_order", "s"],
    "lion-s": ["--mask_type", "selective"],
    "lion-s-natural": ["--mask_type", "selective", "--patch_order", "s"],
    # LightNet's order information comes from position encodings (it has no decay): learned absolute ones here
    "lightnet": ["--attention_type", "lightnet", "--use_position_embeddings"],
}
#: MLM pretraining of every text model: 4 layers x 256, 128-token packed blocks, batch 128, 50 epochs of the corpus.
MLM_RECIPE = ["--hidden_size", "256", "--num_hidden_layers", "4", "--num_attention_heads", "4", "--pack",
              "--max_seq_length", "128", "--per_device_train_batch_size", "128", "--per_device_eval_batch_size", "256",
              "--num_train_epochs", "50", "--learning_rate", "5e-4", "--mixed_precision", "bf16", "--logging_steps", "50"]
#: SST-2 fine-tuning of each pretrained model (Trainer).
GLUE_RECIPE = ["--task_name", "sst2", "--do_train", "--do_eval", "--max_seq_length", "128",
               "--per_device_train_batch_size", "64", "--per_device_eval_batch_size", "256", "--learning_rate", "1e-4",
               "--num_train_epochs", "2", "--warmup_steps", "0.06", "--bf16", "--eval_strategy", "epoch",
               "--logging_steps", "100", "--save_strategy", "no", "--report_to", "none"]
TEXT_MODELS: dict[str, list[str]] = {
    "bert": ["--baseline", "bert"],
    "lion-lit": ["--mask_type", "lit"],
    "lion-d": ["--mask_type", "decay"],
    "lion-s": ["--mask_type", "selective"],
    "lightnet": ["--attention_type", "lightnet"],
}
TASKS = {"cifar10": CIFAR_MODELS, "text": TEXT_MODELS}


def _device() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "unknown"


def _run(command: list[str], log: Path) -> tuple[int, float]:
    started = time.time()
    with open(log, "w") as out:
        out.write("$ " + shlex.join(command) + "\n")
        out.flush()
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return code, time.time() - started


def _record(results_dir: Path, task: str, name: str, entry: dict) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{task}-{name}.json").write_text(json.dumps(entry, indent=2))


def cifar_commands(name: str, data_root: Path, output_root: Path, seed: int, workers: int) -> list[list[str]]:
    data = data_root / "cifar10"
    return [[sys.executable, str(IMAGE_SCRIPT.relative_to(ROOT)), "--dataset", "imagefolder", "--train_dir",
             str(data / "train"), "--validation_dir", str(data / "test"), *CIFAR_RECIPE, *CIFAR_MODELS[name],
             "--num_workers", str(workers), "--seed", str(seed), "--output_dir", str(output_root / "cifar10" / name),
             "--overwrite_output_dir"]]


def text_commands(name: str, data_root: Path, output_root: Path, seed: int, workers: int) -> list[list[str]]:
    corpus, sst2 = data_root / "wiki_news", data_root / "sst2"
    mlm_out = output_root / "mlm" / name
    return [[sys.executable, str(MLM_SCRIPT.relative_to(ROOT)), "--train_files", str(corpus / "train.txt"),
             "--validation_files", str(corpus / "validation.txt"), "--tokenizer_name", str(corpus / "tokenizer"),
             *MLM_RECIPE, *TEXT_MODELS[name], "--num_workers", str(workers), "--seed", str(seed),
             "--output_dir", str(mlm_out), "--overwrite_output_dir"],
            [sys.executable, str(GLUE_SCRIPT.relative_to(ROOT)), "--model_name_or_path", str(mlm_out),
             "--train_file", str(sst2 / "train.tsv"), "--validation_file", str(sst2 / "dev.tsv"), *GLUE_RECIPE,
             "--seed", str(seed), "--output_dir", str(output_root / "sst2" / name), "--overwrite_output_dir"]]


def run_model(task: str, name: str, args: argparse.Namespace) -> dict:
    build = cifar_commands if task == "cifar10" else text_commands
    commands = build(name, args.data_root, args.output_root, args.seed, args.num_workers)
    stages = ["cifar10"] if task == "cifar10" else ["mlm", "sst2"]
    logs = args.output_root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    summary = {}
    for stage, command in zip(stages, commands):
        code, seconds = _run(command, logs / f"{stage}-{name}.log")
        out = Path(command[command.index("--output_dir") + 1])
        results_file = out / "all_results.json"
        results = json.loads(results_file.read_text()) if code == 0 and results_file.is_file() else None
        entry = {"model": name, "stage": stage, "returncode": code, "wall_seconds": round(seconds, 1),
                 "command": shlex.join(command), "device": _device(), "date": datetime.date.today().isoformat(),
                 "parallel_runs": args.parallel, "seed": args.seed, "results": results}
        if results is not None:
            config = json.loads((out / "config.json").read_text())
            entry["model_type"] = config.get("model_type")
            entry["num_parameters"] = _parameters(out)
        _record(args.results_dir, stage, name, entry)
        summary[stage] = {"returncode": code, "wall_seconds": round(seconds, 1)}
        print(f"[{stage}] {name}: exit {code}, {seconds:.0f} s", flush=True)
        if code != 0:
            tail = (logs / f"{stage}-{name}.log").read_text().splitlines()[-15:]
            print("\n".join(tail), flush=True)
            break
    return summary


def _parameters(folder: Path) -> int | None:
    """Parameter count of a saved model (tied weights are stored once)."""
    try:
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            return sum(_numel(f.get_slice(k).get_shape()) for k in f.keys())
    except (ImportError, OSError):
        return None


def _numel(shape) -> int:
    count = 1
    for size in shape:
        count *= int(size)
    return count


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--models", default=None, help="comma-separated subset (default: all of the task's models)")
    p.add_argument("--data_root", type=Path, required=True)
    p.add_argument("--output_root", type=Path, required=True, help="model folders and logs")
    p.add_argument("--results_dir", type=Path, required=True, help="the small per-run json files")
    p.add_argument("--parallel", type=int, default=1, help="runs sharing the machine at a time")
    p.add_argument("--num_workers", type=int, default=None, help="data loader workers per run (default: cores/runs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    models = TASKS[args.task]
    names = list(models) if args.models is None else [m.strip() for m in args.models.split(",")]
    unknown = [m for m in names if m not in models]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)} for --task {args.task}; choose from {', '.join(models)}")
    if args.parallel < 1:
        p.error("--parallel must be >= 1")
    if args.num_workers is None:
        args.num_workers = max(1, (os.cpu_count() or 2) // args.parallel - 1)
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        summaries = dict(zip(names, pool.map(lambda n: run_model(args.task, n, args), names)))
    print(json.dumps(summaries, indent=2))


if __name__ == "__main__":
    main()
