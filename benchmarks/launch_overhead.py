"""Host time of the fused LION layer and of its Triton launches, on inputs so small that the GPU waits.

    PYTHONPATH=. python benchmarks/launch_overhead.py [--calls 200] [--profile]

For each mask (and the ♮ scan orders) prints the host microseconds of one fused layer's forward, and of
forward + backward, at B=1, L=64, H=12, D=64 bf16 (the GPU work is a few microseconds, so the figure is
what the host spends per layer at any size); then the host time of single launches. ``--profile`` adds a
cProfile of one layer's forward + backward (``--profile-mask``, ``--natural``; top functions by own time). A
whole ViT-B step makes 12 such layers, BERT-large 24: multiply to see what the layer costs a step's host.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import torch

from lion_hf.kernels.fused import lion_fused_attention
from lion_hf.kernels.triton.fused import feature_forward
from lion_hf.modeling.scan_order import natural_scan_orders

HEADS, DIM, LENGTH = 12, 64, 64


def _host_us(fn, calls: int) -> float:
    """Median host microseconds per call of ``fn`` over a few batches of ``calls`` calls (each batch small
    enough for the launch queue)."""
    fn()
    torch.cuda.synchronize()
    batches = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        batches.append((time.perf_counter() - t0) * 1e6 / calls)
        torch.cuda.synchronize()
    return sorted(batches)[len(batches) // 2]


def _layer(mask: str, natural: bool):
    """A closure running one fused layer (forward, or forward + backward) of ``mask`` on tiny inputs."""
    qkv = torch.randn(1, LENGTH, 3, HEADS, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    side = 8
    orders = natural_scan_orders(side, side, "cuda") if natural else None
    length = side * side + 1 if natural else LENGTH
    if natural:
        qkv = torch.randn(1, length, 3, HEADS, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    n_orders = 2 if natural else 1
    decay = torch.full((n_orders, HEADS), -0.1, device="cuda", requires_grad=True)
    gate = torch.randn(1, length, n_orders * HEADS, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn(1, length, HEADS * DIM, device="cuda", dtype=torch.bfloat16)

    def forward():
        log_decays = [None] if mask == "lit" else list(decay.unbind(0)) if mask == "decay" else None
        return lion_fused_attention(
            qkv, log_decays, feature_map="elu_plus_one" if mask == "lit" else "silu_l2", normalize=True,
            scale=DIM ** -0.5, eps=1e-6, form="attention", backend="triton", orders=orders,
            gate_logits=gate if mask == "selective" else None, cls_zero=mask == "selective")

    def both():
        forward().backward(grad)

    return forward, both


def _direct_feature_launch(x: torch.Tensor, addresses: bool = False):
    """The feature-map launch without Triton's binder: its compiled kernel's ``run`` with the same arguments
    (what a launch cache could do; for measurement only); ``addresses``: the tensors passed as their addresses
    (ints), as the launch cache passes them (no ``data_ptr`` call or driver check per pointer in the launcher)."""
    from triton.runtime import driver

    from lion_hf.kernels.triton import fused as tf
    from lion_hf.kernels.triton.utils import strides3

    feature_forward(x, x, 1)
    device = driver.active.get_current_device()
    kernel = next(iter(tf._feature_fwd_kernel.device_caches[device][0].values()))
    kernel._init_handles()
    y = torch.empty_like(x)
    rows = 64
    # as feature_forward passes them without a decay: dummy decay operands, then the constexprs in order
    args = (x, x, y, y, LENGTH, HEADS, *strides3(x), *strides3(y), x, x, x, x, x, 0, 0, DIM, rows, 1, False, 16,
            False, False)
    grid = ((LENGTH + rows - 1) // rows, HEADS, 2)
    if addresses:
        args = tuple(a.data_ptr() if isinstance(a, torch.Tensor) else a for a in args)

    def launch():
        stream = driver.active.get_current_stream(device)
        kernel.run(*grid, stream, kernel.function, kernel.packed_metadata, None, None, None, *args)

    return launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-mask", default="lit", choices=["lit", "decay", "selective"],
                        help="the layer --profile profiles")
    parser.add_argument("--natural", action="store_true", help="--profile the ♮ scan orders")
    args = parser.parse_args()
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; host us per call (median of 5 x {args.calls})")
    print("| layer | forward | forward + backward |")
    print("|---|---|---|")
    for mask, natural in (("lit", False), ("decay", False), ("selective", False), ("decay", True),
                          ("selective", True)):
        forward, both = _layer(mask, natural)
        with torch.no_grad():
            fwd = _host_us(forward, args.calls)
        print(f"| {mask}{' natural' if natural else ''} | {fwd:.0f} | {_host_us(both, args.calls // 2):.0f} |",
              flush=True)
    x = torch.randn(1, HEADS, LENGTH, DIM, device="cuda", dtype=torch.bfloat16)
    print(f"| feature map launch alone | {_host_us(lambda: feature_forward(x, x, 1), args.calls):.0f} | - |")
    print(f"| the same, compiled kernel called directly | {_host_us(_direct_feature_launch(x), args.calls):.0f} | - |")
    print(f"| ... with the tensors as addresses | {_host_us(_direct_feature_launch(x, True), args.calls):.0f} | - |")
    print(f"| torch.empty alone | {_host_us(lambda: torch.empty(8, device='cuda'), args.calls):.1f} | - |")
    if args.profile:
        _, both = _layer(args.profile_mask, args.natural)
        both()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.calls // 2):
            both()
        profiler.disable()
        torch.cuda.synchronize()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
