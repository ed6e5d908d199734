"""The models' pre-norm LayerNorm under CUDA autocast: PyTorch (the bf16 stream cast to fp32, normalised, the
result cast back to bf16 for the Linear) against one Triton launch each way (``lion_hf.kernels.layer_norm``).

    PYTHONPATH=. python benchmarks/layer_norm.py [--sweep]

Prints forward and forward + backward milliseconds at the ViT-B (224, 1024, 2048 px) and BERT-large shapes;
``--sweep`` also times the kernels' ``LAUNCH`` entries (changed in this process only).
"""

from __future__ import annotations

import argparse

import torch
from triton.testing import do_bench

from lion_hf.kernels.layer_norm import layer_norm_into_linear
from lion_hf.kernels.triton import tuning

SHAPES = {"vit224 b128": (128 * 197, 768), "vit1024 b8": (8 * 4097, 768), "vit2048 b16": (16 * 16385, 768),
          "bert512 b64": (64 * 512, 1024)}


def _time(norm, x, grad, use_kernels: bool):
    tuning.LAUNCH["layer_norm_kernels"] = (int(use_kernels), 0)

    def forward():  # with the cast the Linear would make (a no-op after the kernels)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return layer_norm_into_linear(norm, x, "auto").to(torch.bfloat16)

    def forward_backward():
        forward().backward(grad)

    with torch.no_grad():
        t_fwd = do_bench(forward, warmup=10, rep=40, return_mode="median")
    t_all = do_bench(forward_backward, warmup=10, rep=40, grad_to_none=[x, norm.weight, norm.bias],
                     return_mode="median")
    return t_fwd, t_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    print(torch.cuda.get_device_name())
    print("| shape | PyTorch fwd | kernels fwd | PyTorch fwd+bwd | kernels fwd+bwd |")
    print("|---|---|---|---|---|")
    default = dict(tuning.LAUNCH)
    for name, (rows, width) in SHAPES.items():
        norm = torch.nn.LayerNorm(width, eps=1e-6).cuda()
        x = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16, requires_grad=True)
        grad = torch.randn(rows, width, device="cuda", dtype=torch.bfloat16)
        torch_fwd, torch_all = _time(norm, x, grad, False)
        mine_fwd, mine_all = _time(norm, x, grad, True)
        print(f"| {name} [{rows}, {width}] | {torch_fwd:.3f} | {mine_fwd:.3f} | {torch_all:.3f} | {mine_all:.3f} |",
              flush=True)
        if args.sweep:
            for entry, values in (("layer_norm_forward", [(1, 4), (2, 4), (8, 4), (4, 8), (8, 8)]),
                                  ("layer_norm_backward", [(2, 4, 4), (8, 4, 4), (4, 8, 4), (4, 4, 2), (4, 4, 8)])):
                for value in values:
                    tuning.LAUNCH[entry] = value
                    t_fwd, t_all = _time(norm, x, grad, True)
                    print(f"|   {entry}={value} | | {t_fwd:.3f} | | {t_all:.3f} |", flush=True)
                tuning.LAUNCH[entry] = default[entry]
    tuning.LAUNCH.update(default)


if __name__ == "__main__":
    main()
