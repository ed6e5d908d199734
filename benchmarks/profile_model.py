"""Where a LION training step spends its GPU time: torch.profiler over a few steps, kernels grouped.

    PYTHONPATH=. python benchmarks/profile_model.py --variant decay --resolution 224 --batch 128

Prints the CUDA time per step of the top kernels (name, calls per step, ms per step) and the share of
the LION kernels, matrix products and everything else; ``--model vit`` profiles HF ViT (SDPA) instead.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from models import _vision_inputs, lion_vision, training_step, vit  # noqa: E402  (run from benchmarks/ or with it on the path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lion", choices=["lion", "vit"])
    parser.add_argument("--variant", default="decay")
    parser.add_argument("--backend", default="triton")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    model = (vit(args.resolution) if args.model == "vit" else lion_vision(args.variant, args.resolution,
                                                                           args.backend)).cuda()
    step = training_step(model, _vision_inputs(args.resolution, args.batch))
    for _ in range(3):
        step()
    torch.cuda.synchronize()
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
    print(f"{args.model} {args.variant if args.model == 'lion' else ''} {args.resolution}px b{args.batch}: "
          f"{total:.2f} ms of GPU time per step")
    for name, ms in groups.items():
        print(f"  {name}: {ms:.2f} ms ({100 * ms / total:.0f} %)")
    print("| kernel | calls/step | ms/step |")
    print("|---|---|---|")
    for e in sorted(rows, key=lambda e: -e.self_device_time_total)[: args.top]:
        print(f"| {e.key[:90]} | {e.count // args.steps} | {e.self_device_time_total / args.steps / 1e3:.3f} |")


if __name__ == "__main__":
    main()
