"""Host cost of a whole training step on the CPU: the Python, the operators' dispatch and the launch path, no GPU.

    PYTHONPATH=.:benchmarks python benchmarks/host_step.py [--steps 30] [--variants decay,selective]

At ViT-B sizes the lent machines' steps wait on the host (BENCHMARKS.md, sixth pass): what the host spends per
step decides the step there. This script measures that part alone, on any CPU: models of ViT-B's depth (12
layers, patch 16) but tiny (64 wide, two heads of 32, 32 px: five tokens, batch 1, so that no operator's
arithmetic counts; the host path does not depend on the sizes), a bf16-autocast training step (forward, backward,
fused AdamW, as ``models.py`` times them) of HF ViT with SDPA and of the LION variants on the Triton backend. Each Triton launch goes through :func:`lion_hf.kernels.triton.launcher
.run_kernel`'s cache-hit path (key, lookup, grid) to a stand-in compiled kernel whose launch does nothing: the
kernels' outputs stay unwritten (their values do not matter here), and the compiled kernel's own launch (9-10 us
on the lent machines, ``launch_overhead.py``) is not in the time but counted in the launches column.

Per model: host ms per step (wall, median of ``--steps``), its ratio to ViT-B's, the PyTorch operators dispatched per
step (``aten`` calls, counted in one step under a dispatch mode), the Triton launches per step and the Python function
calls per step (cProfile's count over five steps).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import pstats
import statistics
import sys
import time
from collections import Counter

os.environ.setdefault("TRITON_INTERPRET", "1")  # lets backend="triton" take CPU tensors; no kernel is interpreted

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402


IMAGE = 32
NARROW = dict(hidden_size=64, num_hidden_layers=12, num_attention_heads=2, intermediate_size=256, patch_size=16)
#: wall time (the development VM's thread CPU time varied as much between processes)
CLOCK = time.perf_counter
KERNEL_MODULES = ("attention", "chunk", "common", "fused", "global_state", "recurrent")


class _StandInCompiled:
    function = "function"
    packed_metadata = "metadata"

    def run(self, *args) -> None:  # the compiled kernel's launch: nothing here
        pass


class _StandInKernel:
    """What ``run_kernel`` sees of a kernel: its argument names, and ``kernel[grid](...)`` for the first launch."""

    def __init__(self, kernel) -> None:
        self.arg_names = list(kernel.arg_names)

    def __getitem__(self, grid):
        return lambda *args, **meta: _StandInCompiled()


class LaunchCounter:
    """Replaces ``run_kernel`` in the kernel modules of ``package`` (a copy of ``lion_hf.kernels.triton``) by
    that package's own launch cache onto stand-in kernels, counting the launches."""

    def __init__(self, package: str = "lion_hf.kernels.triton") -> None:
        self.package = package
        self.launches = 0
        self._stand_ins: dict[int, _StandInKernel] = {}
        self._run = importlib.import_module(f"{package}.launcher").run_kernel

    def __call__(self, kernel, grid, *args, **meta) -> None:
        self.launches += 1
        stand_in = self._stand_ins.get(id(kernel))
        if stand_in is None:
            stand_in = self._stand_ins[id(kernel)] = _StandInKernel(kernel)
        self._run(stand_in, grid, *args, **meta)

    def install(self) -> "LaunchCounter":
        launcher = importlib.import_module(f"{self.package}.launcher")
        launcher.interpreter_enabled = lambda: False  # the cache path, as on a GPU
        launcher._current_stream = lambda device: 0
        torch.cuda.current_device = lambda: 0
        for name in KERNEL_MODULES:
            module = importlib.import_module(f"{self.package}.{name}")
            if hasattr(module, "run_kernel"):
                module.run_kernel = self
        return self


class OperatorCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.calls[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def vit_model():
    from transformers import ViTConfig, ViTForImageClassification

    return ViTForImageClassification(ViTConfig(image_size=IMAGE, num_labels=10, attn_implementation="sdpa", **NARROW))


def lion_model(variant: str, form: str = "auto"):
    from lion_hf import LionConfig, LionForImageClassification
    from models import VARIANTS

    mask, order = VARIANTS[variant]
    return LionForImageClassification(LionConfig(modality="vision", mask_type=mask, patch_order=order, image_size=IMAGE,
                                                 num_labels=10, attention_backend="triton", attention_form=form,
                                                 **NARROW))


def training_step(model):
    from models import training_step as bf16_step

    inputs = {"pixel_values": torch.randn(1, 3, IMAGE, IMAGE), "labels": torch.tensor([1])}
    return bf16_step(model, inputs, device_type="cpu")


def python_calls(step, steps: int = 5) -> int:
    """Python function calls per step (cProfile's count, builtins included): the host's own work, which unlike its
    time does not move from one run or machine to the next."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    return pstats.Stats(profiler).total_calls // steps


def measure(step, steps: int, counter: LaunchCounter) -> dict:
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = CLOCK()
        step()
        times.append(CLOCK() - start)
    before = counter.launches
    with OperatorCounter() as ops:
        step()
    return {"ms": statistics.median(times) * 1e3, "ops": sum(ops.calls.values()), "launches": counter.launches - before,
            "top": ops.calls.most_common(8), "calls": python_calls(step)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--variants", default="lit,decay,selective,decay-natural,selective-natural")
    parser.add_argument("--rounds", type=int, default=2, help="time every model again in turn, so many rounds")
    parser.add_argument("--top", action="store_true", help="also print each model's most frequent operators")
    parser.add_argument("--form", default="auto", help="the LION models' attention_form (auto: the attention form "
                        "at these five tokens; chunk: the form of 1025 tokens and more with a decay)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    counter = LaunchCounter().install()
    models = {"vit-sdpa": vit_model()}
    models.update({f"lion-{v}": lion_model(v, args.form) for v in args.variants.split(",") if v})
    steps = {name: training_step(model) for name, model in models.items()}
    rows: dict[str, list[dict]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, step in steps.items():
            rows[name].append(measure(step, args.steps, counter))
    base = statistics.median(r["ms"] for r in rows["vit-sdpa"])
    print(f"host step on the CPU ({torch.__version__}, {torch.get_num_threads()} thread), ms per round; ratio of the "
          "rounds' median to ViT-B's")
    print("| model | host ms per step | / ViT-B | aten ops per step | Triton launches per step | Python calls per step |")
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        ms = statistics.median(r["ms"] for r in runs)
        per_round = ", ".join(f"{r['ms']:.2f}" for r in runs)
        print(f"| {name} | {per_round} | {ms / base:.2f} | {runs[-1]['ops']} | {runs[-1]['launches']} | "
              f"{runs[-1]['calls']} |")
    if args.top:
        for name, runs in rows.items():
            print(f"{name}: " + ", ".join(f"{op} {n}" for op, n in runs[-1]["top"]))


if __name__ == "__main__":
    sys.exit(main())
