"""Break LION's Triton chunk-form time into its launches and try launch settings (CUDA only).

    PYTHONPATH=. python benchmarks/profile_kernels.py [chunk] [state] [chunk-4096] [global] [steps] [e2e] [NAME=V,...]

Prints medians (ms) of the chunk form's state pass, output and gradient kernels under several entries
of :data:`lion_hf.kernels.triton.tuning.LAUNCH` (changed in this process only), to choose the defaults
and explain the benchmark's misses (BENCHMARKS.md); ``steps`` times the state pass per sequential step at
several chunk lengths, ``e2e`` profiles the chunk form's end-to-end forward + backward kernel by kernel. The
attention form's settings are swept by ``benchmarks/sweep_attention.py``. ``NAME=V1,V2`` sets that entry of the
table for the whole process (the sections' own sweeps aside), e.g. ``chunk_state_vector_mma=0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from lion_hf.kernels.triton import chunk as tch
from lion_hf.kernels.triton import global_state as tgs
from lion_hf.kernels.triton import tuning
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


def _with_launch(name, value, fn):
    """``fn()`` with ``LAUNCH[name] = value`` (None: the default); nan if the setting cannot run."""
    old = tuning.LAUNCH[name]
    if value is not None:
        tuning.LAUNCH[name] = value
    try:
        return fn()
    except Exception as e:  # out of resources for one setting: report and go on
        print("   ", type(e).__name__, str(e)[:100])
        return float("nan")
    finally:
        tuning.LAUNCH[name] = old


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
        for cfg in ((None, (4, 8, 2), (8, 8, 2)) if chunk == 64 else (None, (4, 4, 2), (8, 8, 2), (8, 8, 3))):
            t_f = _with_launch("chunk_out", cfg, lambda: bench(
                lambda: tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk)))
            t_fk = _with_launch("chunk_out", cfg, lambda: bench(
                lambda: tch.chunk_forward(q, k, v, a, NORMALIZED, True, 1.0, 0.0, chunk, keep_states=True,
                                          moment=moment)))
            print(f"{mask:>9}   chunk_out={cfg or 'default'} fwd {t_f:.3f}  fwd keeping states {t_fk:.3f}", flush=True)
        for cfg in (None, (4, 4, 1), (8, 8, 1), (4, 4, 2)):
            t_b = _with_launch("chunk_grad", cfg, lambda: bench(
                lambda: tch.chunk_backward(q, k, v, a, g, c, a is not None, chunk)))
            t_bk = _with_launch("chunk_grad", cfg, lambda: bench(
                lambda: tch.chunk_backward(q, k, v, a, g, c, a is not None, chunk, states=states)))
            print(f"{mask:>9}   chunk_grad={cfg or 'default'} bwd {t_b:.3f}  bwd from kept states {t_bk:.3f}",
                  flush=True)


def state_section(length=16384):
    """The state pass alone, over its settings (``LAUNCH["chunk_state"]``: value slice, warps, stages,
    decay weights by their own launch from so many chunks on)."""
    print(f"\n## chunk state pass, L={length}, B=8 H=12 D=64 bf16 (ms)")
    for mask in ("lit", "decay", "selective"):
        q, k, v, a = inputs(8, 12, length, 64, mask)
        chunk = triton_chunk_size(None, a is not None, 64)
        a_info = decay_strides(a, 8, 12, length)
        c = torch.randn(8, 12, length, device="cuda")
        for cfg in (None, (64, 4, 3, 1), (32, 4, 3, 0), (32, 4, 3, 1), (64, 4, 2, 1), (64, 4, 4, 1), (64, 8, 3, 1)):
            if mask == "lit" and cfg is not None and cfg[-1] == 1 and cfg[0] != 32:
                continue  # the weights only exist with a decay
            t_s = _with_launch("chunk_state", cfg, lambda: bench(lambda: tch.chunk_states(k, v, a_info, chunk, vec=True)))
            t_m = _with_launch("chunk_state", cfg, lambda: bench(
                lambda: tch.chunk_states(k, v, a_info, chunk, vec=True, moment=True))) if mask == "decay" else t_s
            t_t = _with_launch("chunk_state", cfg, lambda: bench(
                lambda: tch.chunk_states(q, v, a_info, chunk, vec=True, vec_bias=c, transposed=True)))
            print(f"{mask:>9} chunk={chunk} chunk_state={cfg or 'default'} (k,v) {t_s:.3f}  with moments {t_m:.3f}  "
                  f"(q,g') {t_t:.3f}", flush=True)


def state_steps_section(length=16384):
    """The state pass's time per sequential step at chunk lengths 32, 64 and 128 (and 32-wide value slices):
    whether a step costs about the same whatever its tile (a latency-bound walk) or grows with its bytes."""
    print(f"\n## chunk state pass per step, L={length}, B=8 H=12 D=64 bf16 (ms; us per step)")
    for mask in ("lit", "decay", "selective"):
        q, k, v, a = inputs(8, 12, length, 64, mask)
        a_info = decay_strides(a, 8, 12, length)
        for chunk in (32, 64, 128):
            for cfg in (None, (32, 4, 3, 32)):
                t = _with_launch("chunk_state", cfg, lambda: bench(lambda: tch.chunk_states(k, v, a_info, chunk,
                                                                                             vec=True)))
                t_plain = _with_launch("chunk_state", cfg, lambda: bench(lambda: tch.chunk_states(k, v, a_info, chunk,
                                                                                                   vec=False)))
                steps = length // chunk
                print(f"{mask:>9} chunk={chunk:<3} chunk_state={cfg or 'default'}: (k,[v|1]) {t:.3f} "
                      f"({1e3 * t / steps:.2f} us/step), (k,v) {t_plain:.3f}", flush=True)


def end_to_end_section(length=16384, masks=("lit", "decay", "selective"), steps=5):
    """What ``lion_attention(form="chunk")`` forward + backward launches, kernel by kernel (torch.profiler,
    token-major inputs as ``benchmarks/kernel_times.py`` times them): where the end-to-end figure exceeds the sum
    of the chunk kernels above."""
    from torch.profiler import ProfilerActivity, profile

    from lion_hf.kernels import lion_attention

    for mask in masks:
        q, k, v, a = inputs(8, 12, length, 64, mask)
        q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(True) for t in (q, k, v))
        if a is not None:
            a.requires_grad_(True)
        grad = torch.randn(q.shape, device="cuda", dtype=q.dtype)
        leaves = [t for t in (q, k, v, a) if t is not None]

        def step():
            for t in leaves:
                t.grad = None
            lion_attention(q, k, v, a, form="chunk", backend="triton").backward(grad)

        total = do_bench(step, warmup=10, rep=40, return_mode="median")
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        rows = [e for e in prof.key_averages() if getattr(e, "self_device_time_total", 0)]
        busy = sum(e.self_device_time_total for e in rows) / steps / 1e3
        print(f"\n## end to end, chunk form, {mask}, L={length}, B=8 H=12 D=64 bf16, token-major: fwd+bwd "
              f"{total:.3f} ms, kernels {busy:.3f} ms per step", flush=True)
        for e in sorted(rows, key=lambda e: -e.self_device_time_total)[:14]:
            print(f"  {e.key[:90]:<90} {e.count // steps:>3} x  {e.self_device_time_total / steps / 1e3:.3f} ms")


def global_section(lengths=(1024, 4096, 16384)):
    """LION-LIT's global-state form: its passes and the ``global_reduce`` / ``global_apply`` settings
    (positions per program, warps). Inputs in the models' token-major memory (``[B, L, H, D]`` viewed as
    ``[B, H, L, D]``), normalised output."""
    # global_reduce: (min positions per piece, programs per SM, warps); global_apply: (positions, warps)
    reduce_cfgs = (None, (256, 3, 4), (1024, 2, 4), (1024, 4, 4), (1024, 8, 4), (4096, 3, 4), (1024, 3, 8))
    apply_cfgs = (None, (64, 4), (128, 4), (256, 4), (128, 8), (256, 8))
    for length in lengths:
        print(f"\n## global state (LIT), L={length}, B=8 H=12 D=64 bf16, token-major (ms)", flush=True)
        q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in inputs(8, 12, length, 64, "lit")[:3])
        for t in (q, k, v):
            t.requires_grad_(True)
        out, den = tgs.global_forward(q, k, v, NORMALIZED, True, 1.0, 0.0)
        go = torch.randn_like(out)
        g, c = grad_inputs(NORMALIZED, go, None, out, den, 1.0, 0.0, v, torch.bfloat16)
        states = tgs.global_state(k, v)

        def fwd_bwd():
            o, _ = tgs.LionGlobalFunction.apply(q, k, v, NORMALIZED, True, 1.0, 0.0, None)
            o.backward(go)

        for cfg in reduce_cfgs:
            t_s = _with_launch("global_reduce", cfg, lambda: bench(lambda: tgs.global_state(k, v)))
            t_t = _with_launch("global_reduce", cfg, lambda: bench(lambda: tgs._reduce(q, g, c, None, True)))
            t_f = _with_launch("global_reduce", cfg, lambda: bench(
                lambda: tgs.LionGlobalFunction.apply(q, k, v, NORMALIZED, True, 1.0, 0.0, None)))
            t_fb = _with_launch("global_reduce", cfg, lambda: do_bench(fwd_bwd, warmup=10, rep=40, grad_to_none=[q, k, v],
                                                                     return_mode="median"))
            print(f"  global_reduce={cfg or 'default'}: state (k,v) {t_s:.3f}  state (q,g') {t_t:.3f}  "
                  f"fwd {t_f:.3f}  fwd+bwd {t_fb:.3f}", flush=True)
        for cfg in apply_cfgs:
            t_a = _with_launch("global_apply", cfg, lambda: bench(
                lambda: tgs.global_forward(q, k, v, NORMALIZED, True, 1.0, 0.0, state=states)))
            t_b = _with_launch("global_apply", cfg, lambda: bench(
                lambda: tgs.global_backward(q, k, v, g, c, state=states)))
            print(f"  global_apply={cfg or 'default'}: apply fwd {t_a:.3f}  bwd (reduce + apply) {t_b:.3f}", flush=True)
        t_g = bench(lambda: grad_inputs(NORMALIZED, go, None, out, den, 1.0, 0.0, v, torch.bfloat16))
        t_copy = bench(lambda: q.detach().clone())
        print(f"  grad_inputs {t_g:.3f}; one copy of q (bandwidth reference) {t_copy:.3f}", flush=True)


if __name__ == "__main__":
    import sys

    print(torch.cuda.get_device_name())
    settings = [a for a in sys.argv[1:] if "=" in a]
    for item in settings:
        name, _, values = item.partition("=")
        if name not in tuning.LAUNCH:
            sys.exit(f"{name!r} is not an entry of LAUNCH ({', '.join(tuning.LAUNCH)})")
        tuning.LAUNCH[name] = tuple(int(x) for x in values.split(","))
        print(f"LAUNCH[{name!r}] = {tuning.LAUNCH[name]}")
    sections = [a for a in sys.argv[1:] if "=" not in a] or ["chunk"]
    if "chunk" in sections:
        chunk_section(16384)
    if "state" in sections:
        state_section(16384)
    if "chunk-4096" in sections:
        chunk_section(4096)
    if "global" in sections:
        global_section()
    if "steps" in sections:
        state_steps_section()
    if "e2e" in sections:
        end_to_end_section()
