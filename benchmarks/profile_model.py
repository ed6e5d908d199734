"""Where a LION training step spends its time: torch.profiler over a few steps, kernels grouped.

    PYTHONPATH=. python benchmarks/profile_model.py --variant decay --resolution 224 --batch 128
    PYTHONPATH=. python benchmarks/profile_model.py --variant lit --mlm 128 --batch 64 --host
    PYTHONPATH=. python benchmarks/profile_model.py --variant decay --resolution 2048 --batch 16 --infer

Prints the CUDA time per step of the top kernels (name, calls per step, ms per step) and the share of
the LION kernels, matrix products and everything else; ``--model vit`` (or ``bert`` with ``--mlm``)
profiles the HF baseline (SDPA) instead; ``--infer`` profiles an eval-mode forward without gradients instead of a
training step (every report). ``--host`` measures the host instead: the time the step takes to
*issue* while the GPU is kept busy (so no wait on the GPU hides in it), the synchronising calls made (a
host wait inside the step shows as an issue time near the busy spell), and the operators with the most
CPU time. A step whose issue time is close to its wall time is host-bound. ``--python`` profiles the host's
Python instead (cProfile over the steps: the functions with the most own time, and this project's functions
by cumulative time); run it at a small batch, where the step is all host. ``--gaps`` finds where the GPU waits
for the host: the idle spells between consecutive kernels of a step, summed by the kernel that ends each spell
(its launch came late), with the step's GPU busy time and wall time. ``--timers`` times the host spent inside
the fused layer's own functions (wrapped with wall-clock timers, no profiler; inclusive of what they call) per
call and per step; at a small batch nothing in them waits for the GPU. ``--ops`` attributes the GPU time
to the operators that launched it instead (name, input shapes and the innermost Python frames of this
project or transformers), to tell which copies and casts are the model's own.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time
import warnings

import torch
from torch.profiler import ProfilerActivity, profile

from models import (_events_median, _mlm_inputs, _vision_inputs, bert_mlm, lion_mlm, lion_vision,  # noqa: E402
                    training_step, vit)  # (run from benchmarks/ or with it on the path)


def inference_step(model, inputs: dict):
    """One bf16-autocast forward of ``model`` in eval mode without gradients, as a callable (what
    ``models.py --infer`` times)."""
    model.eval()

    @torch.no_grad()
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(**inputs)
    return step


def _cycles_per_ms() -> float:
    """GPU clock cycles per millisecond of ``torch.cuda._sleep`` (measured, the clock varies)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(1_000_000)
    start.record()
    torch.cuda._sleep(20_000_000)
    end.record()
    torch.cuda.synchronize()
    return 20_000_000 / start.elapsed_time(end)


def host_report(step, steps: int, top: int) -> None:
    """Issue time of ``step`` with the GPU busy, synchronising calls, and the operators' CPU time."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    rows = prof.key_averages()
    launches = sum(e.count for e in rows if "LaunchKernel" in e.key) / steps
    step_ms = _events_median(step, steps, 2)
    cpu_ms = 0.0
    for _ in range(steps):
        torch.cuda.synchronize()
        t0 = time.process_time()
        step()
        torch.cuda.synchronize()
        cpu_ms += (time.process_time() - t0) * 1e3 / steps
    # the launch queue holds about a thousand launches: past that, launches wait for the GPU whatever the host
    issue_ms = None
    if launches < 900:
        busy_ms = max(200.0, 4 * step_ms)
        cycles = _cycles_per_ms()
        issue = []
        for _ in range(steps):
            torch.cuda.synchronize()
            torch.cuda._sleep(int(busy_ms * cycles))  # the GPU is busy for busy_ms: launches only queue
            t0 = time.perf_counter()
            step()
            issue.append((time.perf_counter() - t0) * 1e3)
            torch.cuda.synchronize()
        issue_ms = statistics.median(issue)
    torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step()
        torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode(0)
    syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message)]
    issued = (f"issue {issue_ms:.2f} ms with the GPU busy ({100 * issue_ms / step_ms:.0f} % of the step)"
              if issue_ms is not None else "issue time not measurable (more launches than the queue holds)")
    print(f"step {step_ms:.2f} ms (GPU-timed), {issued}; process CPU time {cpu_ms:.2f} ms per step (all threads, "
          f"spinning included); {launches:.0f} kernel launches and {len(syncs)} synchronising calls per step")
    for line in sorted(set(syncs)):
        print(f"  synchronising call made from {line}")
    print("| operator | calls/step | self CPU ms/step |")
    print("|---|---|---|")
    for e in sorted(rows, key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"| {e.key[:70]} | {e.count // steps} | {e.self_cpu_time_total / steps / 1e3:.3f} |")


def python_report(step, steps: int, top: int) -> None:
    """Wall time per step, then cProfile of ``steps`` steps: top functions by own time, and this project's by
    cumulative time (what each of its calls costs the host, callees included)."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    print(f"wall {(time.perf_counter() - t0) * 1e3 / steps:.2f} ms per step (no profiler)")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    profiler.disable()
    for sort, restrict in (("tottime", ()), ("cumtime", ("lion_hf",))):
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).sort_stats(sort)
        stats.print_stats(*restrict, top)
        lines = text.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
        print(f"by {sort}{' (lion_hf)' if restrict else ''}, over {steps} steps:")
        print("\n".join(lines[start:start + top + 1]))


def gaps_report(step, steps: int, top: int) -> None:
    """GPU idle time of ``step`` between consecutive kernels, by the kernel after each idle spell."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    kernels = sorted((e for e in prof.events() if e.device_type.name == "CUDA"),
                     key=lambda e: e.time_range.start)
    step_ms = _events_median(step, steps, 2)
    busy = sum(e.time_range.end - e.time_range.start for e in kernels) / steps / 1e3
    idle: dict[str, list[float]] = {}
    spells = []
    for before, after in zip(kernels, kernels[1:]):
        gap = after.time_range.start - before.time_range.end
        if gap <= 0:
            continue
        spells.append(gap)
        row = idle.setdefault(after.name[:80], [0, 0.0])
        row[0] += 1
        row[1] += gap / 1e3
    # the spells between the profiled steps (the host finishing one step and starting the next) count too
    total = sum(spells) / steps / 1e3
    print(f"step {step_ms:.2f} ms (GPU-timed, no profiler); kernels busy {busy:.2f} ms per step; idle between "
          f"kernels {total:.2f} ms per step ({sum(g > 20 for g in spells) // steps} spells over 20 us per step)")
    print("| kernel after the idle spell | spells/step | idle ms/step |")
    print("|---|---|---|")
    for name, (count, ms) in sorted(idle.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"| {name} | {count // steps} | {ms / steps:.3f} |")


#: (module, attribute path) of the host functions ``--timers`` wraps: the fused layer from the model's call in
TIMED_FUNCTIONS = (
    ("lion_hf.modeling.modeling_lion", "LionAttention.forward"),
    ("lion_hf.modeling.modeling_lion", "LionAttention._projections"),
    ("lion_hf.kernels.fused", "lion_fused_attention"),
    ("lion_hf.kernels.triton.fused", "LionLayerFunction.forward"),
    ("lion_hf.kernels.triton.fused", "LionLayerFunction.backward"),
    ("lion_hf.kernels.triton.fused", "feature_forward"),
    ("lion_hf.kernels.triton.fused", "feature_backward"),
    ("lion_hf.kernels.triton.fused", "selective_decay"),
    ("lion_hf.kernels.triton.fused", "selective_decay_grad"),
    ("lion_hf.kernels.triton.attention", "attention_forward"),
    ("lion_hf.kernels.triton.attention", "attention_backward"),
    ("lion_hf.kernels.triton.chunk", "chunk_forward"),
    ("lion_hf.kernels.triton.chunk", "chunk_backward"),
    ("lion_hf.kernels.triton.common", "grad_inputs"),
    ("lion_hf.kernels.triton.common", "log_decay_grad"),
    ("lion_hf.kernels.triton.launcher", "run_kernel"),
)


def timers_report(step, steps: int) -> None:
    """Host microseconds inside each of :data:`TIMED_FUNCTIONS` (inclusive), per call and per step."""
    import functools
    import importlib
    import sys

    totals: dict[str, list[float]] = {}
    undo = []

    def wrap(name, fn):
        row = totals.setdefault(name, [0, 0.0])

        @functools.wraps(fn)
        def timed(*args, **kwargs):
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                row[0] += 1
                row[1] += (time.perf_counter_ns() - t0) / 1e3
        return timed

    for module_name, path in TIMED_FUNCTIONS:
        module = importlib.import_module(module_name)
        class_name, _, attr = path.rpartition(".")
        owner = getattr(module, class_name) if class_name else module
        original = owner.__dict__[attr]
        fn = original.__func__ if isinstance(original, staticmethod) else original
        timed = wrap(path, fn)
        setattr(owner, attr, staticmethod(timed) if isinstance(original, staticmethod) else timed)
        undo.append((owner, attr, original))
        if not class_name:  # the modules that imported the function by name call their own reference
            for other in list(sys.modules.values()):
                if other is not module and getattr(other, "__name__", "").startswith("lion_hf") \
                        and other.__dict__.get(attr) is fn:
                    setattr(other, attr, timed)
                    undo.append((other, attr, fn))
    try:
        for _ in range(2):
            step()
        torch.cuda.synchronize()
        for row in totals.values():
            row[0], row[1] = 0, 0.0
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) * 1e3 / steps
    finally:
        for owner, attr, fn in reversed(undo):
            setattr(owner, attr, fn)
    print(f"wall {wall:.2f} ms per step (timers on)")
    print("| function | calls/step | host us/call | host ms/step |")
    print("|---|---|---|---|")
    for name, (count, us) in totals.items():
        if count:
            print(f"| {name} | {count // steps} | {us / count:.1f} | {us / steps / 1e3:.3f} |")


def _caller(event) -> str:
    """Where ``event`` came from: the innermost two frames of this project or transformers' models, or
    for the backward (no Python stack) the autograd node that ran it."""
    mine = [f for f in event.stack if ("lion_hf" in f or "transformers/models" in f)]
    if mine:
        return " < ".join(f.split("/")[-1] for f in mine[:2])
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function: "):
            return parent.name.split(": ", 1)[1]
        parent = parent.cpu_parent
    return "-"


def ops_report(step, steps: int, top: int) -> None:
    """GPU time of ``step`` per (operator, input shapes, caller): the kernels each operator launched itself."""
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True, with_stack=True) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    totals: dict[tuple[str, str, str], list[float]] = {}
    for e in prof.events():
        ms = getattr(e, "self_device_time_total", 0.0)
        if e.device_type.name != "CPU" or not ms or not e.name.startswith("aten::"):
            continue
        key = (e.name, str(e.input_shapes)[:60], _caller(e))
        row = totals.setdefault(key, [0, 0.0])
        row[0] += 1
        row[1] += ms / 1e3
    print("| operator | input shapes | caller | calls/step | GPU ms/step |")
    print("|---|---|---|---|---|")
    for (name, shapes, caller), (count, ms) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"| {name} | {shapes} | {caller[:90]} | {count // steps} | {ms / steps:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lion", choices=["lion", "vit", "bert"])
    parser.add_argument("--variant", default="decay")
    parser.add_argument("--backend", default="triton")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--attention-form", default="auto", choices=["auto", "attention", "chunk"],
                        help="the LION vision model's attention_form")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--mlm", type=int, default=0, metavar="LENGTH",
                        help="BERT-large-size masked LM at this length instead of the ViT-B-size classifier")
    parser.add_argument("--host", action="store_true", help="host-side report instead of the kernels' (module doc)")
    parser.add_argument("--ops", action="store_true", help="GPU time by launching operator and caller (module doc)")
    parser.add_argument("--python", action="store_true", help="cProfile of the host's Python (module doc)")
    parser.add_argument("--gaps", action="store_true", help="where the GPU waits for the host (module doc)")
    parser.add_argument("--timers", action="store_true", help="host time inside the fused layer's functions")
    parser.add_argument("--infer", action="store_true",
                        help="profile a bf16-autocast forward without gradients (eval mode) instead of a training step")
    args = parser.parse_args()
    if args.mlm:
        model = bert_mlm() if args.model == "bert" else lion_mlm(args.variant, args.backend)
        inputs, size = _mlm_inputs(args.mlm, args.batch), f"L{args.mlm}"
    else:
        model = vit(args.resolution) if args.model == "vit" else lion_vision(args.variant, args.resolution, args.backend,
                                                                             args.attention_form)
        inputs, size = _vision_inputs(args.resolution, args.batch), f"{args.resolution}px"
    step = inference_step(model.cuda(), inputs) if args.infer else training_step(model.cuda(), inputs)
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    title = (f"{args.model} {args.variant if args.model == 'lion' else ''} {size} b{args.batch}"
             f"{' inference' if args.infer else ''}")
    reports = {"host": ("host", lambda: host_report(step, args.steps, args.top)),
               "timers": ("host timers", lambda: timers_report(step, args.steps)),
               "gaps": ("GPU idle spells", lambda: gaps_report(step, args.steps, args.top)),
               "python": ("host Python", lambda: python_report(step, args.steps, args.top)),
               "ops": ("by operator", lambda: ops_report(step, args.steps, args.top))}
    for flag, (heading, report) in reports.items():
        if getattr(args, flag):
            print(f"{title}, {heading}:")
            report()
            return
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
    rows = [e for e in prof.key_averages() if e.device_type.name == "CUDA" or getattr(e, "self_device_time_total", 0)]
    total = sum(e.self_device_time_total for e in rows) / args.steps / 1e3
    groups = {"lion kernels": 0.0, "matrix products": 0.0, "other": 0.0}
    for e in rows:
        ms = e.self_device_time_total / args.steps / 1e3
        name = e.key
        if "_attn_" in name or "_feature_" in name or "_normalized_grad" in name or "_chunk" in name or "_state_kernel" in name \
                or "_output_kernel" in name or "_grad_kernel" in name or "_weights_kernel" in name:
            groups["lion kernels"] += ms
        elif "gemm" in name or "sm90" in name or "cutlass" in name or "cublas" in name.lower():
            groups["matrix products"] += ms
        else:
            groups["other"] += ms
    print(f"{title}: {total:.2f} ms of GPU time per step")
    for name, ms in groups.items():
        print(f"  {name}: {ms:.2f} ms ({100 * ms / total:.0f} %)")
    print("| kernel | calls/step | ms/step |")
    print("|---|---|---|")
    for e in sorted(rows, key=lambda e: -e.self_device_time_total)[: args.top]:
        print(f"| {e.key[:90]} | {e.count // args.steps} | {e.self_device_time_total / args.steps / 1e3:.3f} |")


if __name__ == "__main__":
    main()
