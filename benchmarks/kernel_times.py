"""Kernel benchmark of the LION Triton forms against PyTorch SDPA (FlashAttention), bf16.

    PYTHONPATH=. python benchmarks/kernel_times.py [--lengths 256 1024 4096 16384] [--batch 8 --heads 12 --dim 64]

Prints one table: for each length, SDPA (non-causal, flash backend) forward and forward+backward
milliseconds, then each LION form and mask (lit / decay / selective) with its ratio to SDPA.
Times are medians of ``triton.testing.do_bench`` (CUDA events, warm-up first, fresh gradients
each backward). ``--crossover`` adds attention-vs-chunk fwd+bwd at ``--crossover-lengths``, per mask
of ``--masks`` (the choice of ``AUTO_ATTENTION_MAX_LENGTH_TRITON``); ``--recurrent`` adds the recurrent
form's forward time and peak extra memory. Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys

import torch
import torch.nn.functional as F


def _inputs(batch, heads, length, dim, mask, device, dtype, requires_grad=True, layout="blhd"):
    """q, k (feature-mapped), v ``[B, H, L, D]`` and the log-decay. ``layout="blhd"``: token-major memory
    (``[B, L, H, D]`` viewed as ``[B, H, L, D]``, what both the LION and the HF models feed their attention,
    so gradients come back in the leaves' own strides); ``"bhld"``: contiguous ``[B, H, L, D]``."""
    def make(t):
        return t.transpose(1, 2).contiguous().transpose(1, 2) if layout == "blhd" else t.contiguous()

    q = (F.silu(torch.randn(batch, heads, length, dim, device=device)) + 0.5)
    k = (F.silu(torch.randn(batch, heads, length, dim, device=device)) + 0.5)
    q = make((q / q.norm(dim=-1, keepdim=True)).to(dtype))
    k = make((k / k.norm(dim=-1, keepdim=True)).to(dtype))
    v = make(torch.randn(batch, heads, length, dim, device=device, dtype=dtype))
    if mask == "lit":
        a = None
    elif mask == "decay":
        a = F.logsigmoid(torch.randn(heads, device=device) + 2.0)
    else:
        a = F.logsigmoid(torch.randn(batch, heads, length, device=device) + 2.0)
    tensors = [q, k, v] + ([a] if a is not None else [])
    for t in tensors:
        t.requires_grad_(requires_grad)
    return q, k, v, a


def _bench(fn, rep_ms=50):
    from triton.testing import do_bench

    return do_bench(fn, warmup=10, rep=rep_ms, return_mode="median")


def _time_pair(run, q, k, v, a):
    """(fwd ms, fwd+bwd ms) of ``run(q,k,v,a)``; gradients are reset by ``grad_to_none``."""
    from triton.testing import do_bench

    leaves = [t for t in (q, k, v, a) if t is not None]

    def fwd():
        with torch.no_grad():
            run(q, k, v, a)

    out = run(q, k, v, a)
    grad = torch.randn_like(out)

    def fwd_bwd():
        o = run(q, k, v, a)
        o.backward(grad)

    t_fwd = do_bench(fwd, warmup=10, rep=50, return_mode="median")
    t_all = do_bench(fwd_bwd, warmup=10, rep=50, grad_to_none=leaves, return_mode="median")
    return t_fwd, t_all


def main(argv=None):
    from lion_hf.kernels import lion_attention

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--forms", nargs="+", default=["attention", "chunk"])
    parser.add_argument("--masks", nargs="+", default=["lit", "decay", "selective"])
    parser.add_argument("--max-attention-length", type=int, default=16384)
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="chunk length of the chunk form (default: the library's choice)")
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--crossover-lengths", type=int, nargs="+", default=[256, 512, 768, 1024, 1536, 2048, 4096])
    parser.add_argument("--recurrent", action="store_true")
    parser.add_argument("--json", type=str, default=None, help="also write the rows to this file")
    parser.add_argument("--layout", choices=["blhd", "bhld"], default="blhd",
                        help="memory of q, k, v: token-major as the models feed them (default), or contiguous [B,H,L,D]")
    parser.add_argument("--launch", nargs="*", default=[], metavar="NAME=V1,V2",
                        help="entries of lion_hf.kernels.triton.tuning.LAUNCH to set for this process")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("benchmarks/kernel_times.py needs a CUDA device")
    from lion_hf.kernels.triton import tuning

    for item in args.launch:
        name, _, values = item.partition("=")
        if name not in tuning.LAUNCH:
            sys.exit(f"--launch: {name!r} is not an entry of LAUNCH ({', '.join(tuning.LAUNCH)})")
        tuning.LAUNCH[name] = tuple(int(x) for x in values.split(","))
        print(f"# LAUNCH[{name!r}] = {tuning.LAUNCH[name]}", flush=True)
    device, dtype = "cuda", torch.bfloat16
    b, h, d = args.batch, args.heads, args.dim
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}, B={b} H={h} D={d} bf16, layout {args.layout}", flush=True)
    rows = []
    from models import warm_up_gpu  # noqa: E402  (benchmarks/ on the path)

    warm_up_gpu()  # the first length otherwise meets a GPU still ramping its clocks

    def sdpa(q, k, v, a):
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q, k, v)

    def chunk_size(form):
        return args.chunk_size if form == "chunk" else None

    if args.chunk_size:
        print(f"# chunk form with chunk_size={args.chunk_size}", flush=True)
    header = f"{'L':>6} {'form':>10} {'mask':>9} {'fwd ms':>8} {'fwd+bwd':>8} {'fwd/SDPA':>8} {'f+b/SDPA':>8}"
    print(header, flush=True)
    for length in args.lengths:
        q, k, v, _ = _inputs(b, h, length, d, "lit", device, dtype, layout=args.layout)
        s_fwd, s_all = _time_pair(sdpa, q, k, v, None)
        rows.append(dict(L=length, form="sdpa", mask="-", fwd=s_fwd, fwd_bwd=s_all))
        print(f"{length:>6} {'sdpa':>10} {'-':>9} {s_fwd:8.3f} {s_all:8.3f}", flush=True)
        for form in args.forms:
            if form == "attention" and length > args.max_attention_length:
                continue
            for mask in args.masks:
                q, k, v, a = _inputs(b, h, length, d, mask, device, dtype, layout=args.layout)

                def run(q, k, v, a, form=form):
                    return lion_attention(q, k, v, a, form=form, backend="triton", chunk_size=chunk_size(form))

                t_fwd, t_all = _time_pair(run, q, k, v, a)
                rows.append(dict(L=length, form=form, mask=mask, fwd=t_fwd, fwd_bwd=t_all,
                                 fwd_ratio=t_fwd / s_fwd, fwd_bwd_ratio=t_all / s_all))
                print(f"{length:>6} {form:>10} {mask:>9} {t_fwd:8.3f} {t_all:8.3f} {t_fwd / s_fwd:8.2f} "
                      f"{t_all / s_all:8.2f}", flush=True)
    if args.crossover:
        print("\n# crossover: fwd / fwd+bwd ms, attention vs chunk form, per mask", flush=True)
        for mask in args.masks:
            for length in args.crossover_lengths:
                q, k, v, a = _inputs(b, h, length, d, mask, device, dtype, layout=args.layout)
                res = {}
                for form in ("attention", "chunk"):
                    res[form] = _time_pair(lambda q, k, v, a, form=form: lion_attention(
                        q, k, v, a, form=form, backend="triton", chunk_size=chunk_size(form)), q, k, v, a)
                rows.append(dict(L=length, mask=mask, crossover=True, attention=res["attention"], chunk=res["chunk"]))
                print(f"{length:>6} {mask:>9} attention {res['attention'][0]:.3f}/{res['attention'][1]:.3f}  "
                      f"chunk {res['chunk'][0]:.3f}/{res['chunk'][1]:.3f}", flush=True)
    if args.recurrent:
        print("\n# recurrent form (inference): fwd ms and peak extra memory", flush=True)
        for length in args.lengths:
            q, k, v, a = _inputs(b, h, length, d, "selective", device, dtype, requires_grad=False, layout=args.layout)
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            with torch.no_grad():
                lion_attention(q, k, v, a, form="recurrent", backend="triton")
            torch.cuda.synchronize()
            extra = torch.cuda.max_memory_allocated() - base
            bhld = b * h * length * d * 4
            with torch.no_grad():
                t = _bench(lambda: lion_attention(q, k, v, a, form="recurrent", backend="triton"))
            rows.append(dict(L=length, form="recurrent", fwd=t, extra_bytes=extra))
            print(f"{length:>6} recurrent fwd {t:8.3f} ms, peak extra {extra / 2**20:8.1f} MiB "
                  f"= {extra / bhld:.2f} x (B*H*L*D fp32)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
