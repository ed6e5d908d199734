"""Launch settings of the attention-form kernels at the sizes the models run, one table per case.

    PYTHONPATH=. python benchmarks/sweep_attention.py [--cases vit224 vit512 bert128 bert512] [--dropout 0.1]

For each case (batch, heads, length of a ViT-B/16 or BERT-large step) and mask, times the forward and the
backward kernels (``triton.testing.do_bench``, median) under each candidate ``(BM, BN, warps, stages)``
of :data:`lion_hf.kernels.triton.tuning.LAUNCH` and prints them with the current default marked, so the
table in ``tuning.py`` is chosen from measurements; the backward both ways ``attn_bwd_fused`` allows (``bwd``:
dq in its own launch with the d log_decay statistics in the key-tile kernel, ``bwdQ``: statistics in the dq
kernel, ``bwdF``: dq inside the key-tile kernel). LION-D is timed both ways the attention form can run
it: per-head kernels (``KIND=1``) and the per-token kernels the interface routes it through. ``--dropout P``:
attention dropout inside the kernels (the MLM presets' 0.1), the mask drawn as ``LAUNCH["attn_dropout_keys_per_draw"]``
says.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from lion_hf.kernels.triton import tuning
from lion_hf.kernels.triton.attention import attention_backward, attention_forward
from lion_hf.kernels.triton.common import NORMALIZED, SCALED, grad_inputs

CASES = {"vit224": (128, 12, 197, NORMALIZED), "vit512": (16, 12, 1025, NORMALIZED),
         "bert128": (64, 16, 128, SCALED), "bert512": (64, 16, 512, SCALED)}
FWD = [(128, 64, 4, 3), (64, 64, 4, 3), (128, 32, 4, 3), (64, 32, 4, 2), (128, 64, 8, 3), (64, 64, 4, 2),
       (128, 128, 8, 2)]
BWD = [(64, 64, 4, 3), (64, 64, 4, 2), (64, 32, 4, 2), (32, 64, 4, 3), (64, 64, 8, 3), (128, 64, 8, 2),
       (32, 32, 4, 2), (128, 32, 8, 2)]
#: ``--quick``: the backward settings that were best or within 4 % in the sweeps recorded in BENCHMARKS.md,
#: and the 32-query-row tiles at 8 warps with which the fused backward compiles without spills (sm_90,
#: ``kernel_resources.py``-style report)
BWD_QUICK = [(64, 64, 4, 3), (64, 64, 8, 3), (128, 64, 8, 2), (32, 64, 4, 3), (32, 64, 8, 2), (32, 64, 8, 3),
             (32, 128, 8, 2)]


def inputs(batch, heads, length, mask, dim=64):
    def feat():  # token-major memory, as the models' fused projection gives it
        x = F.silu(torch.randn(batch, length, heads, dim, device="cuda")) + 0.5
        return (x / x.norm(dim=-1, keepdim=True)).to(torch.bfloat16).transpose(1, 2)

    q, k = feat(), feat()
    v = torch.randn(batch, length, heads, dim, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
    if mask == "lit":
        a = None
    elif mask == "decay-head":
        a = F.logsigmoid(torch.randn(heads, device="cuda") + 2)
    elif mask == "decay-token":
        a = F.logsigmoid(torch.randn(heads, device="cuda") + 2)[None, :, None].expand(batch, heads, length)
    else:
        a = F.logsigmoid(torch.randn(batch, heads, length, device="cuda") + 2)
    return q, k, v, a


def main() -> None:
    from triton.testing import do_bench

    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    parser.add_argument("--masks", nargs="*", default=["lit", "decay-head", "decay-token", "selective"])
    parser.add_argument("--parts", nargs="*", default=["fwd", "bwd", "bwdQ", "bwdF"], help="fwd, bwd, bwdQ, bwdF")
    parser.add_argument("--quick", action="store_true", help="only the backward settings in BWD_QUICK")
    parser.add_argument("--dropout", type=float, default=0.0, help="attention dropout inside the kernels")
    args = parser.parse_args()
    bwd_configs = BWD_QUICK if args.quick else BWD
    drop = dict(dropout_p=args.dropout, seed=torch.tensor([1234], device="cuda")) if args.dropout else {}
    for case in args.cases:
        batch, heads, length, mode = CASES[case]
        for mask in args.masks:
            q, k, v, a = inputs(batch, heads, length, mask)
            out, den = attention_forward(q, k, v, a, mode, mode == NORMALIZED, 0.125, 1e-6, **drop)
            g, c = grad_inputs(mode, torch.randn_like(out), None, out, den, 0.125, 1e-6, v, q.dtype)
            rows = []
            saved = {n: tuning.LAUNCH[n] for n in ("attn_bwd_fused", "attn_bwd_row_stats", "attn_bwd_fused_dropout")}
            kind = "lit" if a is None else ("decay" if a.dim() == 1 else "selective")  # the kernels' KIND
            short = length <= tuning.LAUNCH["attn_bwd_short_length"][0]
            bwd_key = f"attn_bwd_short_{kind}" if short else "attn_bwd_small"
            # "bwd": dq in its own launch, d log_decay statistics in the key-tile kernel; "bwdQ": statistics in
            # the dq kernel; "bwdF": dq inside the key-tile kernel (fp32 atomics)
            backward = lambda: attention_backward(q, k, v, a, g, c, a is not None, **drop)  # noqa: E731
            for name, configs, fn, key, arrangement in (
                    ("fwd", FWD, lambda: attention_forward(q, k, v, a, mode, mode == NORMALIZED, 0.125, 1e-6, **drop),
                     "attn_fwd_small" + ("_decay" if a is not None else "_dropout" if args.dropout else ""), None),
                    ("bwd", bwd_configs, backward, bwd_key, ((0, 0), (1, 1))),
                    ("bwdQ", bwd_configs, backward, bwd_key, ((0, 0), (0, 0))),
                    ("bwdF", bwd_configs, backward, "attn_bwd_small_fused", ((1, 1 << 30), (1, 1)))):
                if name not in args.parts or (name == "bwdQ" and a is None):
                    continue
                default = tuning.LAUNCH[key]
                if arrangement is not None:
                    tuning.LAUNCH["attn_bwd_fused"], tuning.LAUNCH["attn_bwd_row_stats"] = arrangement
                    tuning.LAUNCH["attn_bwd_fused_dropout"] = (arrangement[0][1],)  # with dropout as without
                for cfg in configs:
                    tuning.LAUNCH[key] = cfg
                    try:
                        ms = do_bench(fn, warmup=5, rep=30, return_mode="median")
                    except Exception as exc:  # a config that does not compile (shared memory) is reported
                        ms = float("nan")
                        print(f"  {name} {cfg}: {type(exc).__name__}")
                    rows.append((name, cfg, ms, cfg == default))
                tuning.LAUNCH[key] = default
                tuning.LAUNCH.update(saved)
            best = {n: min((r for r in rows if r[0] == n), key=lambda r: r[2] if r[2] == r[2] else 1e9)
                    for n in ("fwd", "bwd", "bwdQ", "bwdF") if any(r[0] == n for r in rows)}
            print(f"{case} {mask}: " + "; ".join(f"{n} {'*' if d else ''}{c}={ms:.3f}" for n, c, ms, d in rows))
            print("  " + ", ".join(f"best {n} {best[n][1]} {best[n][2]:.3f} ms" for n in best), flush=True)


if __name__ == "__main__":
    main()
