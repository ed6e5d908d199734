"""Whole-model speed and memory of LION against the Hugging Face Transformer it replaces, same process.

What a user runs: ViT-B/16-sized image classifiers (768 x 12 layers, 12 heads) and BERT-large-sized MLM
models (1024 x 24, 16 heads), bf16 autocast, AdamW. Every LION figure comes with the HF baseline
(``ViTForImageClassification`` / ``BertForMaskedLM``, SDPA) measured in the same run, and the ratio.

    PYTHONPATH=. python benchmarks/models.py --train 224:128 512:16 1024:8 --infer 224 512 1024 2048 \\
        --mlm 128 512 --compile eager,layers --json out.json

Sections (each optional): ``--train RES:BATCH`` training steps (forward + backward + AdamW) of every
variant (``--variants``) on every backend (``--backends``) and compile mode (``--compile``: ``eager``,
``model`` = ``torch.compile(model, fullgraph=True)``, ``layers`` = each block compiled with
``fullgraph=True``, which compiles one block's graph for all twelve); ``--infer RES`` inference time and
peak memory at batch ``--infer-batch``; ``--mlm L`` MLM training steps at batch ``--mlm-batch`` with the
presets' dropout (0.1, attention dropout included); ``--check`` the Triton and PyTorch backends on the
same weights (logits and gradients). Timing: per-step CUDA events, median of ``--steps`` after
``--warmup`` steps; with ``--rounds R`` every model of a training section stays in memory and all are timed
again in turn R - 1 times (the figure is the median of the rounds), so that a drift of the GPU's clocks
during the section does not land on one model. A figure that cannot run (out of memory) is recorded as such, not skipped silently.
Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import traceback

import torch

VARIANTS = {"lit": ("lit", "normal"), "decay": ("decay", "normal"), "selective": ("selective", "normal"),
            "decay-natural": ("decay", "s"), "selective-natural": ("selective", "s")}
#: Other attention types of the same models, benchmarked with ``--variants lightnet`` / ``--mlm-variants lightnet``.
ATTENTION_TYPES = {"lightnet": "lightnet"}
VIT_B = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, patch_size=16)
#: ``--vision-shape``: ViT-B/16, or the CIFAR-10 validation models (RESULTS.md: 6 x 192, 3 heads, patch 4, 10 classes).
VISION_SHAPES = {"vit-b": (VIT_B, 1000),
                 "cifar": (dict(hidden_size=192, num_hidden_layers=6, num_attention_heads=3, intermediate_size=768,
                                patch_size=4), 10)}
VISION = {"shape": VIT_B, "labels": 1000, "position_encoding": "none"}
BERT_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)


def vit(resolution: int):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(image_size=resolution, num_labels=VISION["labels"], attn_implementation="sdpa",
                       **VISION["shape"])
    return ViTForImageClassification(config)


def lion_vision(variant: str, resolution: int, backend: str, form: str = "auto"):
    from lion_hf import LionConfig, LionForImageClassification

    if variant in ATTENTION_TYPES:
        config = LionConfig(modality="vision", attention_type=ATTENTION_TYPES[variant], image_size=resolution,
                            num_labels=VISION["labels"], attention_backend=backend,
                            position_encoding=VISION["position_encoding"], **VISION["shape"])
    else:
        mask, order = VARIANTS[variant]
        config = LionConfig(modality="vision", mask_type=mask, patch_order=order, image_size=resolution,
                            num_labels=VISION["labels"], attention_backend=backend,
                            position_encoding=VISION["position_encoding"], attention_form=form,
                            **VISION["shape"])
    return LionForImageClassification(config)


def bert_mlm():
    from transformers import BertConfig, BertForMaskedLM

    return BertForMaskedLM(BertConfig(vocab_size=30522, attn_implementation="sdpa", **BERT_LARGE))


def lion_mlm(variant: str, backend: str):
    from lion_hf import LionConfig, LionForMaskedLM

    if variant in ATTENTION_TYPES:  # BERT-large size, the text defaults (dropout 0.1, attention dropout 0.1)
        config = LionConfig(modality="text", attention_type=ATTENTION_TYPES[variant], vocab_size=30522,
                            attention_backend=backend, **BERT_LARGE)
    else:
        config = LionConfig.from_preset(f"lion-{ {'lit': 'lit', 'decay': 'd', 'selective': 's'}[variant]}-large-mlm",
                                        attention_backend=backend)
    return LionForMaskedLM(config)


def compiled(model, mode: str):
    if mode == "model":
        return torch.compile(model, fullgraph=True)
    if mode == "layers":
        from transformers.modeling_layers import GradientCheckpointingLayer

        # the transformer blocks of either library (LionLayer, ViTLayer, BertLayer)
        for block in [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]:
            block.compile(fullgraph=True)
    return model


def warm_up_gpu(seconds: float = 3.0) -> None:
    """Matrix products for a few seconds, so that the first model timed (a baseline) does not run on a
    GPU still ramping its clocks: without it one H200 run timed BERT-large at L 128 at 109 ms, another at 62."""
    import time

    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            a @ a
        torch.cuda.synchronize()


def _events_median(step, steps: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def training_step(model, inputs: dict, run=None, device_type: str = "cuda"):
    """One bf16-autocast training step (forward, backward, fused AdamW) of ``model`` as a callable;
    ``run`` (e.g. a compiled ``model``) is what the forward calls; ``device_type``: autocast's."""
    model.train()
    run = model if run is None else run
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def step():
        with torch.autocast(device_type, dtype=torch.bfloat16):
            loss = run(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _under(settings: dict | None, step):
    """``step`` run with these entries of the launch table set first (``--compare``), or ``step`` itself."""
    if not settings:
        return step
    from lion_hf.kernels.triton import tuning

    def run():
        tuning.LAUNCH.update(settings)
        step()

    return run


def train_ms(model, inputs: dict, steps: int, warmup: int, mode: str = "eager", keep: list | None = None,
             settings: dict | None = None):
    """(median training-step ms, peak GB) of ``model`` on ``inputs`` (bf16 autocast, AdamW). With ``keep``
    the step is appended to it for later rounds (:func:`more_rounds`) and the peak counts only this
    model's memory, not that of the models kept before it. ``settings``: launch-table entries every step
    sets before it runs (``--compare``)."""
    resident = torch.cuda.memory_allocated() - _INPUT_BYTES[0] if keep is not None else 0
    step = _under(settings, training_step(model, inputs, compiled(model, mode)))
    step()  # compile / first launch outside the peak-memory window's warm-up count
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = _events_median(step, steps, warmup)
    if keep is not None:
        keep.append(step)
    return ms, (torch.cuda.max_memory_allocated() - resident) / 2**30


#: bytes the section's inputs hold, so that ``train_ms(keep=...)`` can tell kept models' memory from them
_INPUT_BYTES = [0]


def more_rounds(rows: list[dict], steps: list, rounds: int, n_steps: int) -> None:
    """Time every kept step again, ``rounds - 1`` more times in turn (baseline and variants interleaved,
    so that a drift of the GPU's clocks reaches all of them alike); each row's ``ms`` becomes the median of
    its rounds' medians and ``ms_rounds`` keeps them all."""
    for row in rows:
        row["ms_rounds"] = [row["ms"]]
    for _ in range(rounds - 1):
        for row, step in zip(rows, steps):
            row["ms_rounds"].append(_events_median(step, n_steps, 1))
    for row in rows:
        row["ms"] = statistics.median(row["ms_rounds"])


def infer_ms(model, inputs: dict, steps: int, warmup: int, settings: dict | None = None) -> tuple[float, float]:
    """(median ms, peak GB) of a bf16-autocast forward without gradients; ``settings`` as for :func:`train_ms`."""
    model.eval()

    @torch.no_grad()
    def forward():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(**inputs)

    step = _under(settings, forward)
    step()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    ms = _events_median(step, steps, warmup)
    return ms, torch.cuda.max_memory_allocated() / 2**30


def backend_agreement(model, inputs: dict) -> tuple[float, float]:
    """Relative difference of logits and of all gradients, Triton vs PyTorch backend, same weights."""
    results = {}
    model.train()
    for backend in ("torch", "triton"):
        model.set_attention_form("auto", backend=backend)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(**inputs)
        out.loss.backward()
        grads = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])
        results[backend] = (out.logits.float(), grads)
    model.zero_grad(set_to_none=True)
    (lt, gt), (lk, gk) = results["torch"], results["triton"]
    return ((lk - lt).norm() / lt.norm()).item(), ((gk - gt).norm() / gt.norm()).item()


def _vision_inputs(resolution: int, batch: int) -> dict:
    return {"pixel_values": torch.randn(batch, 3, resolution, resolution, device="cuda"),
            "labels": torch.randint(0, VISION["labels"], (batch,), device="cuda")}


def _mlm_inputs(length: int, batch: int) -> dict:
    ids = torch.randint(1000, 30000, (batch, length), device="cuda")
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(batch, length, device="cuda") < 0.15
    labels[chosen] = ids[chosen]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def _record(results: list, row: dict, fn) -> None:
    try:
        row.update(fn())
    except torch.cuda.OutOfMemoryError:
        row["error"] = "out of memory"
    except Exception as exc:  # a figure that fails is reported, the run goes on
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        traceback.print_exc(file=sys.stderr)
    results.append(row)
    torch.cuda.empty_cache()
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="*", default=[], metavar="RES:BATCH")
    parser.add_argument("--infer", nargs="*", type=int, default=[], metavar="RES")
    parser.add_argument("--infer-batch", type=int, default=16)
    parser.add_argument("--mlm", nargs="*", type=int, default=[], metavar="LENGTH")
    parser.add_argument("--mlm-batch", type=int, default=64)
    parser.add_argument("--vision-shape", default="vit-b", choices=sorted(VISION_SHAPES),
                        help="model size of --train/--infer (cifar: the CIFAR-10 validation models)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join([*VARIANTS, *ATTENTION_TYPES])}")
    parser.add_argument("--position-encoding", default="none", help="LION/LightNet vision models' position_encoding")
    parser.add_argument("--attention-form", default="auto",
                        help="comma list of the LION vision models' attention_form (auto, attention, chunk: all "
                             "compute the same function); with several, each variant is timed in each (model@form)")
    parser.add_argument("--mlm-variants", default="lit,decay,selective")
    parser.add_argument("--backends", default="triton")
    parser.add_argument("--compile", default="eager", help="comma list of eager, model, layers")
    parser.add_argument("--compile-variants", default=None, help="variants to compile (default: all)")
    parser.add_argument("--check", action="store_true", help="Triton vs PyTorch backend on the same weights")
    parser.add_argument("--rounds", type=int, default=1,
                        help="training sections: keep every model and time them all again in turn, so many rounds "
                             "in all (the figure is the median of the rounds' medians)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--launch", nargs="*", default=[], metavar="NAME=V1,V2",
                        help="override entries of lion_hf.kernels.triton.tuning.LAUNCH in this process (recorded)")
    parser.add_argument("--compare", default=None, metavar="NAME=V1:V2",
                        help="training sections: time every LION model once per value of this LAUNCH entry, in one "
                             "process and interleaved by --rounds (rows lion-<variant>[NAME=V]; values comma-separated)")
    parser.add_argument("--report", nargs="*", default=None, metavar="JSON",
                        help="print the table of earlier runs' json files (later files replace equal rows)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.report is not None:
        merged: dict = {}
        for path in args.report:
            with open(path) as handle:
                for row in json.load(handle)["results"]:
                    merged[(_key(row), row["model"], row.get("backend"))] = row
        print_table(list(merged.values()))
        return
    VISION["shape"], VISION["labels"] = VISION_SHAPES[args.vision_shape]
    VISION["position_encoding"] = args.position_encoding
    forms = args.attention_form.split(",")
    if any(f not in ("auto", "attention", "chunk") for f in forms):
        parser.error("--attention-form takes auto, attention and chunk")
    variants = args.variants.split(",")
    backends = args.backends.split(",")
    modes = args.compile.split(",")
    compile_variants = args.compile_variants.split(",") if args.compile_variants else variants
    results: list[dict] = []
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
            "device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "attention_form": args.attention_form}
    try:
        import transformers
        import triton

        meta.update(transformers=transformers.__version__, triton=triton.__version__)
    except ImportError:
        pass
    if args.launch:
        from lion_hf.kernels.triton import tuning

        for item in args.launch:
            name, _, values = item.partition("=")
            if name not in tuning.LAUNCH:
                sys.exit(f"--launch: {name!r} is not an entry of LAUNCH ({', '.join(tuning.LAUNCH)})")
            try:
                value = tuple(int(x) for x in values.split(","))
            except ValueError:
                sys.exit(f"--launch {item!r}: give NAME=V1,V2,... with integers, e.g. {name}="
                         f"{','.join(map(str, tuning.LAUNCH[name]))}")
            if len(value) != len(tuning.LAUNCH[name]):
                sys.exit(f"--launch {item!r}: {name} takes {len(tuning.LAUNCH[name])} values "
                         f"(now {','.join(map(str, tuning.LAUNCH[name]))})")
            tuning.LAUNCH[name] = value
        meta["launch"] = args.launch
    settings: list[dict | None] = [None]
    if args.compare:
        from lion_hf.kernels.triton import tuning

        name, _, values = args.compare.partition("=")
        if name not in tuning.LAUNCH or ":" not in values:
            sys.exit(f"--compare takes NAME=V1:V2 with NAME an entry of LAUNCH ({', '.join(tuning.LAUNCH)})")
        settings = [{name: tuple(int(x) for x in v.split(","))} for v in values.split(":")]
        if any(len(s[name]) != len(tuning.LAUNCH[name]) for s in settings):
            sys.exit(f"--compare: {name} takes {len(tuning.LAUNCH[name])} values per setting")
        meta["compare"] = args.compare
    print(json.dumps(meta), flush=True)
    warm_up_gpu()
    torch.manual_seed(0)
    def section_rounds(start: int, kept: list) -> None:
        rows = [row for row in results[start:] if "ms" in row]
        if args.rounds > 1 and len(rows) == len(kept):
            more_rounds(rows, kept, args.rounds, args.steps)
        kept.clear()
        torch.cuda.empty_cache()

    for spec in args.train:
        resolution, batch = (int(x) for x in spec.split(":"))
        inputs = _vision_inputs(resolution, batch)
        _INPUT_BYTES[0] = torch.cuda.memory_allocated()
        for mode in modes:
            kept: list = [] if args.rounds > 1 else None
            start = len(results)
            base = {"section": "train", "resolution": resolution, "batch": batch, "compile": mode,
                    "shape": args.vision_shape, "position_encoding": args.position_encoding}
            _record(results, {**base, "model": "vit-sdpa"},
                    lambda: dict(zip(("ms", "peak_gb"), train_ms(vit(resolution).cuda(), inputs, args.steps,
                                                                  args.warmup, mode, keep=kept))))
            for variant in variants:
                if mode != "eager" and variant not in compile_variants:
                    continue
                for backend in backends:
                    for form in forms:
                        for setting in settings:
                            _record(results, {**base, "model": _lion_name(variant, form, forms, setting),
                                              "backend": backend, "attention_form": form},
                                    lambda: dict(zip(("ms", "peak_gb"), train_ms(
                                        lion_vision(variant, resolution, backend, form).cuda(), inputs, args.steps,
                                        args.warmup, mode, keep=kept, settings=setting))))
            if kept is not None:
                section_rounds(start, kept)
        if args.check:
            small = {k: v[: min(batch, 16)] for k, v in inputs.items()}
            for variant in variants:
                _record(results, {"section": "check", "resolution": resolution, "model": f"lion-{variant}",
                                  "position_encoding": args.position_encoding},
                        lambda: dict(zip(("logits_rel", "grads_rel"), backend_agreement(
                            lion_vision(variant, resolution, "auto").cuda(), small))))
    for resolution in args.infer:
        inputs = _vision_inputs(resolution, args.infer_batch)
        inputs.pop("labels")
        base = {"section": "infer", "resolution": resolution, "batch": args.infer_batch, "shape": args.vision_shape}
        _record(results, {**base, "model": "vit-sdpa"},
                lambda: dict(zip(("ms", "peak_gb"), infer_ms(vit(resolution).cuda(), inputs, args.steps, args.warmup))))
        for variant in variants:
            for form in forms:
                for setting in settings:
                    _record(results, {**base, "model": _lion_name(variant, form, forms, setting),
                                      "backend": backends[0], "attention_form": form},
                            lambda: dict(zip(("ms", "peak_gb"), infer_ms(
                                lion_vision(variant, resolution, backends[0], form).cuda(), inputs, args.steps,
                                args.warmup, settings=setting))))
    for length in args.mlm:
        inputs = _mlm_inputs(length, args.mlm_batch)
        _INPUT_BYTES[0] = torch.cuda.memory_allocated()
        kept = [] if args.rounds > 1 else None
        start = len(results)
        base = {"section": "mlm", "length": length, "batch": args.mlm_batch}
        _record(results, {**base, "model": "bert-large-sdpa"},
                lambda: dict(zip(("ms", "peak_gb"), train_ms(bert_mlm().cuda(), inputs, args.steps, args.warmup,
                                                             keep=kept))))
        for variant in args.mlm_variants.split(","):
            for backend in backends:
                for setting in settings:
                    _record(results, {**base, "model": _lion_name(variant, "auto", [], setting), "backend": backend},
                            lambda: dict(zip(("ms", "peak_gb"), train_ms(lion_mlm(variant, backend).cuda(), inputs,
                                                                         args.steps, args.warmup, keep=kept,
                                                                         settings=setting))))
        if kept is not None:
            section_rounds(start, kept)
    print_table(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "results": results}, handle, indent=1)


def _lion_name(variant: str, form: str, forms: list[str], setting: dict | None = None) -> str:
    """A LION row's model name: ``lion-<variant>``, with ``@<form>`` when several forms are timed and
    ``[NAME=V]`` for a ``--compare`` setting."""
    name = f"lion-{variant}" + (f"@{form}" if len(forms) > 1 else "")
    for key, value in (setting or {}).items():
        name += f"[{key}={','.join(map(str, value))}]"
    return name


def print_table(results: list[dict]) -> None:
    """Markdown table of every figure with its ratio to the baseline of the same section and size."""
    baselines = {}
    for row in results:
        if row["model"] in ("vit-sdpa", "bert-large-sdpa") and "ms" in row:
            baselines[_key(row)] = row["ms"]
    print("\n| section | size | model | backend | compile | ms | / baseline | peak GB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in results:
        if row["section"] == "check":
            print(f"| check | {row['resolution']} | {row['model']} | triton vs torch | - | "
                  f"logits {row.get('logits_rel', float('nan')):.1e} | grads {row.get('grads_rel', float('nan')):.1e} | - |")
            continue
        size = f"{row.get('resolution', row.get('length'))}/b{row['batch']}"
        if row.get("shape", "vit-b") != "vit-b":
            size = f"{row['shape']} {size}"
        if "ms" not in row:
            print(f"| {row['section']} | {size} | {row['model']} | {row.get('backend', '-')} | "
                  f"{row.get('compile', 'eager')} | {row.get('error')} | - | - |")
            continue
        base = baselines.get(_key(row))
        ratio = f"{row['ms'] / base:.2f}" if base else "-"
        print(f"| {row['section']} | {size} | {row['model']} | {row.get('backend', '-')} | {row.get('compile', 'eager')} "
              f"| {row['ms']:.1f} | {ratio} | {row['peak_gb']:.1f} |")


def _key(row: dict) -> tuple:
    return (row["section"], row.get("shape", "vit-b"), row.get("resolution", row.get("length")), row.get("batch"),
            row.get("compile", "eager"))


if __name__ == "__main__":
    main()
