"""Host time of the fused LION layer, this tree against another tree's kernels, in one process on the CPU.

    git archive <rev> lion_hf/kernels/triton | tar -x -C /tmp/base
    PYTHONPATH=.:benchmarks python benchmarks/layer_host_ab.py --base /tmp/base/lion_hf/kernels/triton

The lent GPU machines' steps at ViT-B sizes wait on the host, and a whole-model step there moves by 5-15 % from
one process to the next (BENCHMARKS.md): too much to see a change of a few launches. This script times only what
such a change touches, the fused layer's forward and backward (``lion_layer`` and its autograd Function) with the
launches made through each tree's own launch cache onto stand-in kernels (as ``host_step.py``), on the same
inputs, the two trees alternated call by call so that the machine's drift falls on both. The ``--base`` folder is
a copy of ``lion_hf/kernels/triton`` from another checkout (it imports only itself), loaded as a package of its
own. Per variant: microseconds per forward + backward (median), the ratio, launches and tensor operators per call.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time

os.environ.setdefault("TRITON_INTERPRET", "1")  # CPU tensors on backend="triton"; no kernel runs here

import torch  # noqa: E402

from host_step import LaunchCounter, OperatorCounter  # noqa: E402

VARIANTS = {  # name -> (feature map id, LION-D decays, LION-S gate, two scan orders)
    "lit": (1, False, False, False), "decay": (2, True, False, False), "selective": (2, False, True, False),
    "decay-natural": (2, True, False, True), "selective-natural": (2, False, True, True)}


def load_tree(folder: str, name: str):
    """``folder`` (a ``lion_hf/kernels/triton`` copy) imported as the package ``name``."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def layer_call(fused, variant: str, batch: int, rows: int, heads: int, dim: int, form: str):
    """A closure running ``fused.lion_layer`` forward and backward once on fixed CPU inputs."""
    from lion_hf.modeling.scan_order import natural_scan_orders

    fmap, decay, selective, natural = VARIANTS[variant]
    length = 1 + rows * rows
    orders = natural_scan_orders(rows, rows) if natural else None
    n = 2 if natural else 1
    qkv = torch.randn(batch, length, 3, heads, dim, dtype=torch.bfloat16, requires_grad=True)
    decays = [torch.full((heads,), -0.1, requires_grad=True) for _ in range(n)] if decay else [None] * n
    gate = torch.randn(batch, length, n * heads, dtype=torch.bfloat16, requires_grad=True) if selective else None
    grad = torch.ones(batch, heads, length, dim, dtype=torch.bfloat16)

    def call() -> None:
        out = fused.lion_layer(qkv, decays, fmap, form, 1, dim ** -0.5, 1e-6, 64, None, 0.0, orders=orders,
                               gate=gate, cls_zero=True)
        out.backward(grad)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="a lion_hf/kernels/triton folder of another tree")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--form", default="attention", choices=["attention", "chunk"])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    import lion_hf.kernels.triton.fused as this_fused

    base_fused = importlib.import_module(f"{load_tree(args.base, 'base_triton').__name__}.fused")
    counters = {"base": LaunchCounter("base_triton").install(), "this": LaunchCounter().install()}
    print(f"fused layer forward + backward on the CPU (torch {torch.__version__}, one thread), {args.form} form, "
          f"B=2 L=17 H=2 D=32, stand-in kernels, {args.calls} calls per tree alternated; us per call (median)")
    print("| variant | base us | this tree us | this / base | launches base / this | operators base / this |")
    print("|---|---|---|---|---|---|")
    for variant in args.variants.split(","):
        calls = {"base": layer_call(base_fused, variant, 2, 4, 2, 32, args.form),
                 "this": layer_call(this_fused, variant, 2, 4, 2, 32, args.form)}
        launches, operators = {}, {}
        for tree, call in calls.items():
            for _ in range(5):
                call()
            before = counters[tree].launches
            with OperatorCounter() as ops:
                call()
            launches[tree], operators[tree] = counters[tree].launches - before, sum(ops.calls.values())
        times = {tree: [] for tree in calls}
        for i in range(args.calls):
            for tree in (("base", "this") if i % 2 == 0 else ("this", "base")):
                start = time.perf_counter()
                calls[tree]()
                times[tree].append(time.perf_counter() - start)
        base, this = (statistics.median(times[t]) * 1e6 for t in ("base", "this"))
        print(f"| {variant} | {base:.0f} | {this:.0f} | {this / base:.2f} | {launches['base']} / {launches['this']} | "
              f"{operators['base']} / {operators['this']} |")


if __name__ == "__main__":
    sys.exit(main())
