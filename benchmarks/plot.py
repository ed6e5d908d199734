"""The three figures of BENCHMARKS.md and the README from the benchmark json files (matplotlib).

    python benchmarks/plot.py benchmarks/results/h200-2026-12-01-s3 docs/figures [KERNELS_FOLDER]

Reads ``final_train_infer.json`` (``benchmarks/models.py --train ... --infer ...``), ``compile_model.json``
if present (``--compile model``, drawn as crosses) and
``final_kernels.json`` (``benchmarks/kernel_times.py --json``) in the results folder (or in ``KERNELS_FOLDER``, when
the kernels were last timed in another run) and writes
``train_step_vs_resolution.png``, ``inference_vs_resolution.png`` and ``kernel_time_vs_length.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"vit-sdpa": "HF ViT-B (SDPA)", "lion-lit": "LION-LIT", "lion-decay": "LION-D", "lion-selective": "LION-S",
         "lion-decay-natural": "LION-D♮", "lion-selective-natural": "LION-S♮"}


def _series(rows, section, key):
    out = {}
    for row in rows:
        if row["section"] == section and "ms" in row and row.get("compile", "eager") == "eager":
            out.setdefault(row["model"], []).append((row["resolution"], row[key]))
    return {model: sorted(points) for model, points in out.items()}  # merged files need not come in order


def main() -> None:
    results, target = Path(sys.argv[1]), Path(sys.argv[2])
    kernels_folder = Path(sys.argv[3]) if len(sys.argv) > 3 else results
    target.mkdir(parents=True, exist_ok=True)
    data = json.loads((results / "final_train_infer.json").read_text())
    rows, device = data["results"], data["meta"]["device"]
    day = data["meta"]["date"][:10]  # the run's own date (models.py writes it)
    stamp = f"{device}, {day}, bf16 autocast"

    fig, ax = plt.subplots(figsize=(7, 4.2))
    base = dict(_series(rows, "train", "ms")["vit-sdpa"])
    for model, points in _series(rows, "train", "ms").items():
        xs = [r for r, _ in points]
        ax.plot(xs, [ms / base[r] for r, ms in points], marker="o", label=NAMES[model])
    compiled_path = results / "compile_model.json"
    if compiled_path.exists():  # torch.compile(model) of both, ratio to the compiled ViT of that run
        comp = [r for r in json.loads(compiled_path.read_text())["results"] if "ms" in r and r.get("compile") == "model"]
        comp_base = {r["resolution"]: r["ms"] for r in comp if r["model"] == "vit-sdpa"}
        for i, r in enumerate(r for r in comp if r["model"] != "vit-sdpa" and r["resolution"] in comp_base):
            ax.scatter([r["resolution"]], [r["ms"] / comp_base[r["resolution"]]], marker="x", color="black",
                       label="compiled (torch.compile of the whole model,\nratio to compiled ViT-B)" if i == 0 else None)
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xticks([224, 512, 1024], ["224 px\nbatch 128", "512 px\nbatch 16", "1024 px\nbatch 8"])
    ax.set_ylabel("training step / HF ViT-B (same run)")
    ax.set_title(f"ViT-B/16-sized training step, eager{' (x: compiled)' if compiled_path.exists() else ''}\n{stamp}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(target / "train_step_vs_resolution.png", dpi=110)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for model, points in _series(rows, "infer", "ms").items():
        left.plot([r for r, _ in points], [ms for _, ms in points], marker="o", label=NAMES[model])
    for model, points in _series(rows, "infer", "peak_gb").items():
        right.plot([r for r, _ in points], [gb for _, gb in points], marker="o", label=NAMES[model])
    for ax, label in ((left, "inference ms (batch 16)"), (right, "peak GPU memory, GB")):
        ax.set_xscale("log", base=2)
        ax.set_xticks([224, 512, 1024, 2048], ["224", "512", "1024", "2048"])
        ax.set_xlabel("image size, px (patch 16)")
        ax.set_ylabel(label)
    left.set_yscale("log")
    left.legend(fontsize=8)
    fig.suptitle(f"ViT-B/16-sized inference\n{stamp}")
    fig.tight_layout()
    fig.savefig(target / "inference_vs_resolution.png", dpi=110)

    kernels = json.loads((kernels_folder / "final_kernels.json").read_text())
    fig, ax = plt.subplots(figsize=(7, 4.2))
    curves = {}
    for row in kernels:
        if row["form"] == "sdpa":
            name = "SDPA (FlashAttention)"
        elif row["mask"] == "lit" and row["form"] == "chunk":
            name = "LION lit global state (form='chunk')"
        else:
            name = f"LION {row['mask']} {row['form']}"
        curves.setdefault(name, []).append((row["L"], row["fwd_bwd"]))
    for name, points in curves.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name,
                lw=2.5 if "SDPA" in name else 1.2)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length L")
    ax.set_ylabel("forward + backward, ms")
    # kernel_times.py's json has no date of its own: the models' run's when both come from one folder
    ax.set_title(f"Kernels, B=8 H=12 D=64 bf16\n{device}" + (f", {day}" if kernels_folder == results else ""))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(target / "kernel_time_vs_length.png", dpi=110)


if __name__ == "__main__":
    main()
