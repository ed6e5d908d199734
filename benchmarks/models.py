"""Model-level check and timing on a GPU: LION vision models against HF ViT (SDPA), same run.

For each mask and patch order, a LION classifier is built at 224 px and run with the Triton and the
PyTorch backends on the same weights: logits and gradients must agree (bf16 autocast, ~1e-2). Then one
training step (forward, backward, AdamW) is timed for LION and for ``transformers``' ViT with SDPA of
the same size, and the ratio is printed.

    PYTHONPATH=. python benchmarks/models.py [--size small] [--batch 64] [--steps 10]
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import ViTConfig, ViTForImageClassification

from lion_hf import LionConfig, LionForImageClassification

SIZES = {"tiny": (192, 3), "small": (384, 6), "base": (768, 12)}
VARIANTS = [("lit", "normal"), ("decay", "normal"), ("decay", "s"), ("selective", "normal"), ("selective", "s")]


def train_step_ms(model, pixels, labels, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(steps + 3):
        if i == 3:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps * 1e3


def compare_backends(model, pixels, labels) -> tuple[float, float]:
    results = {}
    for backend in ("torch", "triton"):
        model.set_attention_form("auto", backend=backend)
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(pixel_values=pixels, labels=labels)
        out.loss.backward()
        grads = torch.cat([p.grad.float().flatten() for p in model.parameters() if p.grad is not None])
        results[backend] = (out.logits.float(), grads)
    (l_t, g_t), (l_k, g_k) = results["torch"], results["triton"]
    rel = lambda a, b: ((a - b).norm() / b.norm()).item()  # noqa: E731
    model.zero_grad(set_to_none=True)
    return rel(l_k, l_t), rel(g_k, g_t)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="small", choices=sorted(SIZES))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    hidden, heads = SIZES[args.size]
    torch.manual_seed(0)
    pixels = torch.randn(args.batch, 3, 224, 224, device="cuda")
    labels = torch.randint(0, 1000, (args.batch,), device="cuda")
    vit = ViTForImageClassification(ViTConfig(hidden_size=hidden, num_attention_heads=heads,
                                              intermediate_size=4 * hidden, num_labels=1000,
                                              attn_implementation="sdpa")).cuda()
    baseline = train_step_ms(vit, pixels, labels, args.steps)
    del vit
    print(f"device: {torch.cuda.get_device_name()}, size {args.size}, batch {args.batch}, 224 px, bf16 autocast")
    print(f"| model | backend | train step ms | / HF ViT SDPA | logits rel. diff triton vs torch | grads rel. diff |")
    print(f"|---|---|---|---|---|---|")
    print(f"| HF ViT (SDPA) | - | {baseline:.1f} | 1.00 | - | - |")
    for mask, order in VARIANTS:
        config = LionConfig(modality="vision", mask_type=mask, patch_order=order, hidden_size=hidden,
                            num_attention_heads=heads, intermediate_size=4 * hidden, num_labels=1000)
        model = LionForImageClassification(config).cuda()
        logit_diff, grad_diff = compare_backends(model, pixels, labels)
        for backend in ("triton", "torch"):
            model.set_attention_form("auto", backend=backend)
            ms = train_step_ms(model, pixels, labels, args.steps)
            name = f"LION-{mask}{'-natural' if order == 's' else ''}"
            print(f"| {name} | {backend} | {ms:.1f} | {ms / baseline:.2f} | {logit_diff:.1e} | {grad_diff:.1e} |")
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
