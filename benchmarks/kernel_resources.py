"""Registers, spills and shared memory of the chunk kernels, compiled for an H100 on any machine (no GPU).

    PYTHONPATH=. python benchmarks/kernel_resources.py [--arch 90] [--chunk 64 128] [--warps 4 8]
    PYTHONPATH=. python benchmarks/kernel_resources.py --attention   # the attention form at the table's tiles

Compiles each launch of ``lion_hf.kernels.triton.chunk`` ahead of time for ``sm_<arch>`` through Triton
(bf16 inputs, head dim 64) and reads the resource report of the cubin with the ``cuobjdump`` that Triton
ships. Spilled registers (``STACK`` > 0 / local memory) explain slow launches without spending device
time (METHOD.md of the device tool: "read what costs no device time"). The local Triton version may
differ from the GPU machine's, so treat the figures as leads.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from lion_hf.kernels.triton import attention as tat
from lion_hf.kernels.triton import chunk as tch
from lion_hf.kernels.triton.tuning import launch


def _signature(kernel, pointers: dict[str, str], constexprs: dict) -> dict[str, str]:
    """Every argument of ``kernel``: constexpr, pointer (``pointers`` gives its type) or scalar."""
    sig = {}
    for name in kernel.arg_names:
        if name in constexprs:
            sig[name] = "constexpr"
        elif name in pointers:
            sig[name] = pointers[name]
        elif name in ("scale", "eps", "p_drop"):
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    return sig


def resources(kernel, pointers, constexprs, arch: int, warps: int, stages: int) -> str:
    """One line: registers per thread, stack (spilled) and local bytes, shared memory of one compile."""
    src = ASTSource(kernel, _signature(kernel, pointers, constexprs), constexprs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                              options={"num_warps": warps, "num_stages": stages})
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        report = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    usage = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", report)
    if usage is None:
        return report.strip()
    reg, stack, _static_shared, local = (int(x) for x in usage.groups())  # Triton's shared memory is dynamic
    return f"regs {reg:>3}  stack {stack:>5}  local {local:>5}  shared {compiled.metadata.shared:>6}"


def attention_report(arch: int, d: int) -> None:
    """The attention-form kernels of each mask at the tiles of the launch table (bf16, no padding, one order)."""
    bf16, f32 = "*bf16", "*fp32"
    names = ("lit", "decay", "selective")
    for kind, name in enumerate(names):
        common = dict(DK=d, DV=d, KIND=kind, HAS_KM=False, HAS_IDX=False, ACCUM=False, DROPOUT=False, F16=False,
                      PREC="tf32")
        ptrs = {n: bf16 for n in ("Q", "K", "V", "G", "NUM", "DK_OUT", "DV_OUT", "DQ_OUT")}
        ptrs.update({n: f32 for n in ("A", "DEN", "PREV", "C", "COL_LO", "COL_UP", "DQ_ACC", "ROW_LO", "ROW_UP")})
        ptrs.update(F="*fp64", KM="*u8", IDX="*i32", SEED="*i64")
        bm, bn, warps, stages = launch("attn_fwd_small_decay" if kind else "attn_fwd_small")
        fwd = resources(tat._attn_fwd_kernel, ptrs, dict(common, BM=bm, BN=bn, OUT_MODE=1, HAS_DEN=True),
                        arch, warps, stages)
        print(f"{name:>9} forward {bm}x{bn} w{warps} s{stages}: {fwd}", flush=True)
        for tiles in ("attn_bwd_small", f"attn_bwd_short_{name}"):
            bm, bn, warps, stages = launch(tiles)
            row_stats = kind > 0 and bool(launch("attn_bwd_row_stats")[kind - 1])
            dkv = resources(tat._attn_bwd_dkv_kernel, ptrs, dict(common, BM=bm, BN=bn, HAS_C=True, DQ_ATOMIC=False,
                                                                 ROW_STATS=row_stats), arch, warps, stages)
            dq = resources(tat._attn_bwd_dq_kernel, ptrs, dict(common, BM=bm, BN=bn, HAS_C=True,
                                                               STATS=kind > 0 and not row_stats), arch, warps, stages)
            print(f"{name:>9} {tiles} {bm}x{bn} w{warps} s{stages}:\n  dkv: {dkv}\n  dq:  {dq}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument("--chunk", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--warps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--attention", action="store_true", help="the attention-form kernels instead")
    args = parser.parse_args()
    d = args.head_dim
    if args.attention:
        attention_report(args.arch, d)
        return
    bf16, f32 = "*bf16", "*fp32"
    for chunk in args.chunk:
        for warps in args.warps:
            for kind, name in ((0, "lit"), (1, "decay"), (2, "selective")):
                has_decay = kind > 0
                grad_ptrs = {n: bf16 for n in ("Q", "K", "V", "G", "SH", "ST", "SHM", "DQ", "DK_", "DV_")}
                grad_ptrs.update({n: f32 for n in ("C", "A", "SHV", "STV", "SHMV", "ROW_LO", "ROW_UP", "COL_LO",
                                                   "COL_UP", "MOM")})
                grad = resources(tch._grad_kernel, grad_ptrs, dict(
                    DK=d, DV=d, BT=chunk, HAS_DECAY=has_decay, HAS_C=True, STATS=kind == 2, MOMENT=kind == 1,
                    STATE_F32=False, PREC="tf32"), args.arch, warps, 1)
                out_ptrs = {n: bf16 for n in ("Q", "K", "V", "S", "OUT")}
                out_ptrs.update({n: f32 for n in ("A", "SV", "DEN")})
                out = resources(tch._output_kernel, out_ptrs, dict(
                    DK=d, DV=d, BT=chunk, BV=d, HAS_DECAY=has_decay, HAS_DEN=True, OUT_MODE=1, STATE_F32=False,
                    PREC="tf32"), args.arch, warps, 2)
                st_ptrs = {n: bf16 for n in ("X", "Z", "S", "SM")}
                st_ptrs.update({n: f32 for n in ("VB", "A", "W", "DEC", "SV", "SMV")})
                state = resources(tch._state_kernel, st_ptrs, dict(
                    DX=d, DZ=d, BT=chunk, BV=d, HAS_DECAY=has_decay, HAS_VEC=True, VEC_ONES=True, TRANSPOSED=False,
                    MOMENT=kind == 1, PRE_W=False, PREC="tf32"), args.arch, warps, 3)
                print(f"chunk {chunk:>3} warps {warps} {name:>9}\n  gradient: {grad}\n  output: {out}\n  state pass: {state}", flush=True)


if __name__ == "__main__":
    main()
