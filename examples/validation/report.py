#!/usr/bin/env python
# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Tables and learning curves of the validation runs that ``run_validation.py`` recorded.

Reads ``<results_dir>/<stage>-<model>.json`` (stage: cifar10, mlm, sst2), prints one markdown table per task
(parameters, accuracy, wall time, time per epoch, ratio to the Transformer baseline) and, with
``--figures DIR``, writes ``cifar10_curves.png`` (top-1 per epoch) and ``mlm_curves.png`` (MLM accuracy per
step) there.

``--from-log STAGE MODEL LOG`` rebuilds a record from a run's log when its json did not come back (the final
metrics from the log's closing line, the history from its evaluation lines, each line's time since the run's
start line); such a record says so (``"source": "log"``).

    python examples/validation/report.py results/validation/h200-2026-12-01 --figures docs/figures
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
from datetime import datetime
from pathlib import Path

BASELINES = {"cifar10": "vit", "mlm": "bert", "sst2": "bert"}
NAMES = {"vit": "ViT (transformers, SDPA)", "bert": "BERT (transformers, SDPA)", "lion-lit": "LION-LIT",
         "lion-lit-pos": "LION-LIT + abs. positions", "lion-d": "LION-D", "lion-d-natural": "LION-D♮",
         "lion-s": "LION-S", "lion-s-natural": "LION-S♮", "lightnet": "LightNet (+ abs. positions)"}
ORDER = list(NAMES)

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_START = re.compile(_STAMP + r" INFO run_\w+: \[RANK 0\] (?:\d+ classes;|\d+ sequences of)")
_IMAGE_EVAL = re.compile(_STAMP + r" INFO run_image_classification: \[RANK 0\] step (\d+) epoch (\d+): (.*?)$",
                         re.MULTILINE)
_SAVED = re.compile(r"INFO run_\w+: \[RANK 0\] saved the model.*? to (\S+): (\{.*\})$", re.MULTILINE)


def _time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")


def cifar_parameters(model: str) -> int:
    """Parameter count of a CIFAR-10 validation model, built (on CPU) from the driver's own command line."""
    import importlib.util
    import sys

    root = Path(__file__).resolve().parents[2]
    modules = {}
    for name, path in (("run_validation", root / "examples" / "validation" / "run_validation.py"),
                       ("run_image_classification", root / "examples" / "image_classification" /
                        "run_image_classification.py")):
        spec = importlib.util.spec_from_file_location(name, path)
        modules[name] = importlib.util.module_from_spec(spec)
        sys.modules[name] = modules[name]
        spec.loader.exec_module(modules[name])
    import tempfile

    with tempfile.TemporaryDirectory() as data:  # the script checks that its data folders exist
        for split in ("train", "test"):
            (Path(data) / "cifar10" / split).mkdir(parents=True)
        argv = modules["run_validation"].cifar_commands(model, Path(data), Path(data) / "runs", 0, 0)[0][2:]
        script = modules["run_image_classification"]
        built = script.build_model(script.parse_args(argv), [f"class{i}" for i in range(10)])
    return sum(p.numel() for p in built.parameters())


def record_from_log(stage: str, model: str, log: Path, parallel_runs: int | None = None) -> dict:
    """A run record (as ``run_validation.py`` writes it) rebuilt from an image-classification run's log
    (``command`` is None where the log does not start with it)."""
    text = log.read_text(errors="replace")
    first = text.splitlines()[0] if text else ""
    command = first.removeprefix("$ ") if first.startswith("$ ") else None
    start = _START.search(text)
    saved = list(_SAVED.finditer(text))
    if start is None or not saved:
        raise ValueError(f"{log}: no start line or no closing 'saved the model' line: the run did not finish")
    results = json.loads(saved[-1].group(2))
    history = []
    started = _time(start.group(1))
    for stamp, step, epoch, metrics in _IMAGE_EVAL.findall(text):
        entry = {"step": int(step), "epoch": int(epoch), "seconds": round((_time(stamp) - started).total_seconds(), 1)}
        for part in metrics.split(", "):
            name, value = part.rsplit(" ", 1)
            entry[name] = float(value)
        history.append(entry)
    results["history"] = history
    argv = shlex.split(command) if command else []
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else None
    record = {"model": model, "stage": stage, "returncode": 0, "command": command, "results": results,
              "parallel_runs": parallel_runs, "seed": seed, "source": "log", "date": started.date().isoformat()}
    if stage == "cifar10":
        record["num_parameters"] = cifar_parameters(model)
    return record


def load(results_dir: Path) -> dict[str, dict[str, dict]]:
    """``{stage: {model: record}}`` of every ``<stage>-<model>.json`` in ``results_dir``."""
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(results_dir.glob("*.json")):
        stage, _, model = path.stem.partition("-")
        if stage not in BASELINES:
            continue
        runs.setdefault(stage, {})[model] = json.loads(path.read_text())
    return runs


def _sorted(models: dict[str, dict]) -> list[str]:
    return sorted(models, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def _params(record: dict) -> str:
    count = record.get("num_parameters")
    return f"{count / 1e6:.2f} M" if count else "-"


def cifar_table(runs: dict[str, dict]) -> str:
    base = runs.get(BASELINES["cifar10"], {}).get("results") or {}
    rows = ["| model | params | top-1 | top-5 | wall time (s) | time per epoch (s) | top-1 − ViT | wall time / ViT (shared GPU) |",
            "|---|---|---|---|---|---|---|---|"]
    for model in _sorted(runs):
        record = runs[model]
        r = record.get("results")
        if not r:
            rows.append(f"| {NAMES.get(model, model)} | - | failed (exit {record.get('returncode')}) | | | | | |")
            continue
        epochs = max((e["epoch"] for e in r.get("history", [])), default=None)
        per_epoch = r["train_seconds"] / epochs if epochs else float("nan")
        delta = f"{100 * (r['eval_top1'] - base['eval_top1']):+.2f}" if base else "-"
        ratio = f"{r['train_seconds'] / base['train_seconds']:.2f}" if base else "-"
        top5 = f"{100 * r['eval_top5']:.2f} %" if "eval_top5" in r else "-"  # fewer than 5 classes: no top-5
        rows.append(f"| {NAMES.get(model, model)} | {_params(record)} | {100 * r['eval_top1']:.2f} % | "
                    f"{top5} | {r['train_seconds']:.0f} | {per_epoch:.1f} | {delta} | {ratio} |")
    return "\n".join(rows)


def text_table(mlm: dict[str, dict], sst2: dict[str, dict]) -> str:
    base_mlm = mlm.get(BASELINES["mlm"], {}).get("results") or {}
    base_sst2 = sst2.get(BASELINES["sst2"], {}).get("results") or {}
    rows = ["| model | params (MLM) | MLM accuracy (top-1 / top-5, 15 % masked) | MLM loss | MLM wall (s) | "
            "SST-2 dev accuracy | SST-2 wall (s) | SST-2 − BERT | MLM time / BERT |",
            "|---|---|---|---|---|---|---|---|---|"]
    for model in _sorted({**mlm, **sst2}):
        m = (mlm.get(model) or {}).get("results") or {}
        s = (sst2.get(model) or {}).get("results") or {}
        mlm_acc = f"{100 * m['eval_mlm_accuracy']:.2f} / {100 * m['eval_mlm_top5_accuracy']:.2f} %" if m else "-"
        loss = f"{m['eval_loss']:.3f}" if m else "-"
        sst = f"{100 * s['eval_accuracy']:.2f} %" if s else "-"
        sst_wall = f"{s['train_runtime']:.0f}" if s.get("train_runtime") is not None else "-"
        delta = f"{100 * (s['eval_accuracy'] - base_sst2['eval_accuracy']):+.2f}" if s and base_sst2 else "-"
        ratio = f"{m['train_seconds'] / base_mlm['train_seconds']:.2f}" if m and base_mlm else "-"
        rows.append(f"| {NAMES.get(model, model).replace(' (+ abs. positions)', '')} | {_params(mlm.get(model, {}))} | "
                    f"{mlm_acc} | {loss} | {m.get('train_seconds', float('nan')):.0f} | {sst} | {sst_wall} | "
                    f"{delta} | {ratio} |")
    return "\n".join(rows)


def figures(runs: dict[str, dict[str, dict]], folder: Path, caption: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stage, x_key, y_key, title, x_label, y_label, name in (
            ("cifar10", "epoch", "top1", "CIFAR-10 (32 px, 6 x 192), top-1 per epoch", "epoch", "top-1 accuracy",
             "cifar10_curves.png"),
            ("mlm", "step", "mlm_accuracy", "MLM (4 x 256, gensim Wikipedia + news), accuracy at 15 % masking",
             "optimizer step", "MLM accuracy", "mlm_curves.png")):
        models = runs.get(stage)
        if not models:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for model in _sorted(models):
            history = (models[model].get("results") or {}).get("history") or []
            points = [(e[x_key], e[y_key]) for e in history if y_key in e]
            if points:
                xs, ys = zip(*points)
                baseline = model == BASELINES[stage]
                ax.plot(xs, [100 * y for y in ys], label=NAMES.get(model, model), linewidth=2.2 if baseline else 1.4,
                        color="black" if baseline else None, linestyle="--" if baseline else "-")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label + " (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.text(0.99, 0.01, caption, ha="right", fontsize=7, color="gray")
        fig.tight_layout()
        path = folder / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--figures", type=Path, default=None, help="write the learning-curve PNGs into this folder")
    p.add_argument("--caption", default="", help="device and date printed on the figures")
    p.add_argument("--from-log", nargs=3, action="append", default=[], metavar=("STAGE", "MODEL", "LOG"),
                   help="rebuild <results_dir>/<STAGE>-<MODEL>.json from a run's log first")
    p.add_argument("--parallel-runs", type=int, default=None, help="recorded with --from-log records")
    args = p.parse_args(argv)
    for stage, model, log in args.from_log:
        record = record_from_log(stage, model, Path(log), args.parallel_runs)
        args.results_dir.mkdir(parents=True, exist_ok=True)
        (args.results_dir / f"{stage}-{model}.json").write_text(json.dumps(record, indent=2))
    runs = load(args.results_dir)
    parts = []
    if "cifar10" in runs:
        parts.append("### CIFAR-10\n\n" + cifar_table(runs["cifar10"]))
    if "mlm" in runs or "sst2" in runs:
        parts.append("### MLM and SST-2\n\n" + text_table(runs.get("mlm", {}), runs.get("sst2", {})))
    report = "\n\n".join(parts)
    print(report)
    if args.figures is not None:
        for path in figures(runs, args.figures, args.caption):
            print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
