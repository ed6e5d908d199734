"""Break LION's Triton fwd+bwd time into its launches and try launch configurations (CUDA only).

    PYTHONPATH=. python benchmarks/profile_kernels.py

Prints medians (ms) of: the attention forward kernel, its two backward kernels, the host-side
gradient preparation, and the chunk form's state pass, output and gradient kernels, for a few block/warp/stage settings (set through
the ``LION_TRITON_ATTN_FWD`` / ``LION_TRITON_ATTN_BWD`` / ``LION_TRITON_CHUNK_{STATE,OUT,GRAD}`` variables the launchers
read). Used to choose the defaults and to explain the benchmark's misses (BENCHMARKS.md).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from lion_hf.kernels.triton import attention as tatt
from lion_hf.kernels.triton import chunk as tch
from lion_hf.kernels.triton.common import NORMALIZED, grad_inputs
from lion_hf.kernels.triton.utils import decay_strides, triton_chunk_size


def bench(fn):
    return do_bench(fn, warmup=10, rep=40, return_mode="median")


def inputs(b, h, length, d, mask):
    q = F.normalize(F.silu(torch.randn(b, h, length, d, device="cuda")) + 0.5, dim=-1).bfloat16()
    k = F.normalize(F.silu(torch.randn(b, h, length, d, device="cuda")) + 0.5, dim=-1).bfloat16()
    v = torch.randn(b, h, length, d, device="cuda", dtype=torch.bfloat16)
    a = None if mask == "lit" else (F.logsigmoid(torch.randn(h, device="cuda") + 2) if mask == "decay"
                                    else F.logsigmoid(torch.randn(b, h, length, device="cuda") + 2))
    return q, k, v, a


def attention_section(length=1024, masks=("lit", "decay", "selective")):
    print(f"\n## attention form, L={length}, B=8 H=12 D=64 bf16 (ms)")
    for mask in masks:
        q, k, v, a = inputs(8, 12, length, 64, mask)
        out, den = tatt.attention_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0)
        go = torch.randn_like(out)
        g, c = grad_inputs(NORMALIZED, go, None, out, den, 1.0, 0.0, v, torch.bfloat16)
        t_prep = bench(lambda: grad_inputs(NORMALIZED, go, None, out, den, 1.0, 0.0, v, torch.bfloat16))
        for fwd_cfg in (None, "64,64,4,3", "128,64,8,3", "64,64,4,2"):
            if fwd_cfg:
                os.environ["LION_TRITON_ATTN_FWD"] = fwd_cfg
            t = bench(lambda: tatt.attention_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0))
            os.environ.pop("LION_TRITON_ATTN_FWD", None)
            print(f"{mask:>9} fwd   cfg={fwd_cfg or 'default':>12} {t:.3f}", flush=True)
        for stats_2d in ("0",):
            os.environ["LION_TRITON_STATS_2D"] = stats_2d
            for bwd_cfg in (None, "64,64,4,2", "64,64,8,3"):
                if bwd_cfg:
                    os.environ["LION_TRITON_ATTN_BWD"] = bwd_cfg
                try:
                    t = bench(lambda: tatt.attention_backward(q, k, v, a, g, c, a is not None))
                except Exception as e:  # out of resources for one setting: report and go on
                    t = float("nan")
                    print("   ", type(e).__name__, str(e)[:100])
                os.environ.pop("LION_TRITON_ATTN_BWD", None)
                print(f"{mask:>9} bwd   cfg={bwd_cfg or 'default':>12} stats_2d={stats_2d} {t:.3f}   "
                      f"(grad prep {t_prep:.3f})", flush=True)
            os.environ.pop("LION_TRITON_STATS_2D", None)


def _with_env(name, value, fn):
    """``fn()`` with ``LION_TRITON_CHUNK_<name>`` set (None: unset); nan if the setting cannot run."""
    key = f"LION_TRITON_CHUNK_{name}"
    old = os.environ.pop(key, None)
    if value is not None:
        os.environ[key] = value
    try:
        return fn()
    except Exception as e:  # out of resources for one setting: report and go on
        print("   ", type(e).__name__, str(e)[:100])
        return float("nan")
    finally:
        os.environ.pop(key, None)
        if old is not None:
            os.environ[key] = old


def chunk_section(length=16384):
    """The chunk form's launches (state pass, output kernel, gradient kernel) and their settings."""
    print(f"\n## chunk form, L={length}, B=8 H=12 D=64 bf16 (ms)")
    for mask in ("lit", "decay", "selective"):
        q, k, v, a = inputs(8, 12, length, 64, mask)
        chunk = triton_chunk_size(None, a is not None, 64)
        out, den = tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk)
        go = torch.randn_like(out)
        g, c = grad_inputs(NORMALIZED, go, None, out, den, 1.0, 0.0, v, torch.bfloat16)
        a_info = decay_strides(a, 8, 12, length)
        moment = mask == "decay"
        states = tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk, keep_states=True,
                                   moment=moment)[2]
        t_s = bench(lambda: tch.chunk_states(k, v, a_info, chunk, vec=True))
        t_sm = bench(lambda: tch.chunk_states(k, v, a_info, chunk, vec=True, moment=True)) if moment else t_s
        t_t = bench(lambda: tch.chunk_states(q, g, a_info, chunk, vec=True, vec_bias=c, transposed=True))
        print(f"{mask:>9} chunk={chunk}: state pass (k,v) {t_s:.3f} (with moments {t_sm:.3f}), (q,g') {t_t:.3f}",
              flush=True)
        for cfg in ((None, "4,2", "8,2") if chunk == 64 else (None, "4,2", "8,2", "8,3")):
            t_f = _with_env("OUT", cfg, lambda: bench(
                lambda: tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk)))
            t_fk = _with_env("OUT", cfg, lambda: bench(
                lambda: tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk, keep_states=True,
                                          moment=moment)))
            print(f"{mask:>9}   OUT={cfg or 'default':<8} fwd {t_f:.3f}  fwd keeping states {t_fk:.3f}", flush=True)
        for cfg in (None, "4,1,0", "4,1,1", "8,1,0", "8,1,1", "4,2,1"):
            t_b = _with_env("GRAD", cfg, lambda: bench(
                lambda: tch.chunk_backward(q, k, v, a, g, c, a is not None, chunk)))
            t_bk = _with_env("GRAD", cfg, lambda: bench(
                lambda: tch.chunk_backward(q, k, v, a, g, c, a is not None, chunk, states=states)))
            print(f"{mask:>9}   GRAD={cfg or 'default':<8} bwd {t_b:.3f}  bwd from kept states {t_bk:.3f}",
                  flush=True)


def state_section(length=16384):
    """The state pass alone, over its settings (``LION_TRITON_CHUNK_STATE``: value slice, warps, stages,
    decay weights precomputed)."""
    print(f"\n## chunk state pass, L={length}, B=8 H=12 D=64 bf16 (ms)")
    for mask in ("lit", "decay", "selective"):
        q, k, v, a = inputs(8, 12, length, 64, mask)
        chunk = triton_chunk_size(None, a is not None, 64)
        a_info = decay_strides(a, 8, 12, length)
        c = torch.randn(8, 12, length, device="cuda")
        for cfg in (None, "64,4,3,1", "32,4,3,0", "32,4,3,1", "64,4,2,1", "64,4,4,1", "64,8,3,1"):
            if mask == "lit" and cfg is not None and cfg.endswith(",1") and not cfg.startswith("32"):
                continue  # the weights only exist with a decay
            t_s = _with_env("STATE", cfg, lambda: bench(lambda: tch.chunk_states(k, v, a_info, chunk, vec=True)))
            t_m = _with_env("STATE", cfg, lambda: bench(
                lambda: tch.chunk_states(k, v, a_info, chunk, vec=True, moment=True))) if mask == "decay" else t_s
            t_t = _with_env("STATE", cfg, lambda: bench(
                lambda: tch.chunk_states(q, v, a_info, chunk, vec=True, vec_bias=c, transposed=True)))
            print(f"{mask:>9} chunk={chunk} STATE={cfg or 'default':<9} (k,v) {t_s:.3f}  with moments {t_m:.3f}  "
                  f"(q,g') {t_t:.3f}", flush=True)


if __name__ == "__main__":
    import sys

    print(torch.cuda.get_device_name())
    sections = sys.argv[1:] or ["attention", "chunk"]
    if "attention" in sections:
        attention_section(1024)
    if "attention-s" in sections:
        attention_section(1024, masks=("selective",))
    if "chunk" in sections:
        chunk_section(16384)
    if "state" in sections:
        state_section(16384)
    if "chunk-4096" in sections:
        chunk_section(4096)
