"""Registers, spills and shared memory of the Triton kernels, compiled for an H100/H200 on any machine (no GPU).

    PYTHONPATH=. python benchmarks/kernel_resources.py --layer selective --length 1025 --batch 16 [--natural]
        [--form chunk]   # every launch of one fused LION layer (forward + backward), as the device compiles it
    PYTHONPATH=. python benchmarks/kernel_resources.py [--arch 90] [--chunk 64 128] [--warps 4 8]
    PYTHONPATH=. python benchmarks/kernel_resources.py --attention   # the attention form at the table's tiles
    PYTHONPATH=. python benchmarks/kernel_resources.py --layer-norm 25216 768   # the LayerNorm kernels

Compiles kernels ahead of time for ``sm_<arch>`` through Triton and reads the resource report of the cubin
with the ``cuobjdump`` that Triton ships. Spilled registers (``STACK`` > 0 / local memory) explain slow
launches without spending device time (METHOD.md of the device tool: "read what costs no device time").

``--layer`` runs the fused layer's host code on CPU tensors with every launch recorded instead of run, and
compiles each distinct launch with the specialisation Triton's launcher gives its arguments (integers divisible
by 16 or equal to 1, 16-byte aligned pointers): what the GPU compiles for that shape. It also counts the tensor
loads inside loops that Triton's pipeliner left synchronous (``sync``) against those it made asynchronous copies
(``async``). The other two modes compile from a signature without that specialisation (no stride is known to
be divisible by 16), which costs registers: they overstate spills (LION-S's attention key-tile kernel at 64 x 64,
4 warps: 152 bytes of stack there, none in ``--layer`` at 512 px). The local Triton version may differ from the
GPU machine's (pass the device's on PYTHONPATH), so treat the figures as leads.
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
                      PREC="tf32", DROP_KEYS=launch("attn_dropout_keys_per_draw")[0], ORDERS=1)
        grads = dict(FMAP=0)
        ptrs = {n: bf16 for n in ("Q", "K", "V", "G", "NUM", "DK_OUT", "DV_OUT", "DQ_OUT")}
        ptrs.update({n: f32 for n in ("A", "A2", "DEN", "PREV", "C", "COL_LO", "COL_UP", "DQ_ACC", "ROW_LO", "ROW_UP")})
        ptrs.update(F="*fp64", F2="*fp64", KM="*u8", IDX="*i32", SEED="*i64")
        bm, bn, warps, stages = launch("attn_fwd_small_decay" if kind else "attn_fwd_small")
        fwd = resources(tat._attn_fwd_kernel, ptrs, dict(common, BM=bm, BN=bn, OUT_MODE=1, HAS_DEN=True),
                        arch, warps, stages)
        print(f"{name:>9} forward {bm}x{bn} w{warps} s{stages}: {fwd}", flush=True)
        for tiles in ("attn_bwd_small", f"attn_bwd_short_{name}"):
            bm, bn, warps, stages = launch(tiles)
            row_stats = kind > 0 and bool(launch("attn_bwd_row_stats")[kind - 1])
            dkv = resources(tat._attn_bwd_dkv_kernel, ptrs, dict(common, BM=bm, BN=bn, HAS_C=True, DQ_ATOMIC=False,
                                                                 ROW_STATS=row_stats, **grads), arch, warps, stages)
            dq = resources(tat._attn_bwd_dq_kernel, ptrs, dict(common, BM=bm, BN=bn, HAS_C=True, PREP=False,
                                                               STATS=kind > 0 and not row_stats, **grads), arch, warps,
                            stages)
            print(f"{name:>9} {tiles} {bm}x{bn} w{warps} s{stages}:\n  dkv: {dkv}\n  dq:  {dq}", flush=True)


def _specialised_source(kernel, args: tuple, meta: dict):
    """The ``ASTSource`` Triton's launcher would compile for ``kernel[grid](*args, **meta)``."""
    from triton._C.libtriton import native_specialize_impl  # Triton >= 3.4: the launcher's own specialisation
    from triton.backends.compiler import BaseBackend

    signature, constexprs, attrs = {}, {}, {}
    for i, name in enumerate(kernel.arg_names):
        if i >= len(args):
            signature[name], constexprs[name] = "constexpr", meta[name]
            continue
        kind, spec = native_specialize_impl(BaseBackend, args[i], False, True, True)
        if kind == "constexpr":  # an integer equal to 1
            signature[name], constexprs[name] = "constexpr", spec
        else:
            signature[name] = kind
            if spec == "D":
                attrs[(i,)] = [["tt.divisibility", 16]]
    return ASTSource(kernel, signature, constexprs, attrs)


def _loads_in_loops(ttgir: str) -> tuple[int, int]:
    """(synchronous tensor loads, asynchronous copies) inside ``scf.for`` bodies of a TTGIR module."""
    depth, loops, sync, asynchronous = 0, [], 0, 0
    for line in ttgir.splitlines():
        inside = bool(loops)
        if inside and re.search(r"= tt\.load .*: tensor<", line):
            sync += 1
        if inside and ("async_copy_global_to_local" in line or "async_tma_copy" in line):
            asynchronous += 1
        if "scf.for" in line:
            loops.append(depth)
        depth += line.count("{") - line.count("}")
        while loops and depth <= loops[-1]:
            loops.pop()
    return sync, asynchronous


def _recorded_launches(run) -> list:
    """The ``(kernel, grid, args, meta)`` of every launch ``run()`` makes through the kernels' ``run_kernel``,
    recorded instead of run (CPU tensors, no interpreter needed)."""
    import sys

    launches = []
    modules = [m for n, m in list(sys.modules.items()) if n.startswith("lion_hf.kernels.triton.")
               and hasattr(m, "run_kernel")]
    saved = {m: m.run_kernel for m in modules}
    for m in modules:
        m.run_kernel = lambda kernel, grid, *args, **meta: launches.append((kernel, grid, args, meta))
    try:
        run()
    finally:
        for m, fn in saved.items():
            m.run_kernel = fn
    return launches


def _compile_report(launches: list, arch: int) -> None:
    """Registers, stack, shared memory and loop loads of each distinct launch, compiled as the device would."""
    cuobjdump = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")
    seen = set()
    for kernel, grid, args, meta in launches:
        src = _specialised_source(kernel, args, meta)
        key = src.hash()
        if key in seen:
            continue
        seen.add(key)
        options = {k: meta[k] for k in ("num_warps", "num_stages") if k in meta}
        compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
        with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
            f.write(compiled.asm["cubin"])
            f.flush()
            report = subprocess.run([cuobjdump, "--dump-resource-usage", f.name], capture_output=True,
                                    text=True).stdout
        usage = re.search(r"REG:(\d+) STACK:(\d+)", report)
        sync, asynchronous = _loads_in_loops(compiled.asm["ttgir"])
        print(f"{kernel.__name__:30s} grid {str(tuple(grid)):16s} regs {usage[1]:>3}  stack {usage[2]:>4}  "
              f"shared {compiled.metadata.shared:>6}  loop loads: sync {sync}, async {asynchronous}", flush=True)


def layer_report(mask: str, natural: bool, length: int, batch: int, heads: int, dim: int, form: str,
                 arch: int, text: bool = False, dropout: float = 0.0) -> None:
    """Every distinct launch of one fused layer's forward and backward (bf16), compiled as the device would;
    ``text``: the MLM models' layer (identity features, the scaled output, no class token)."""
    import torch

    from lion_hf.kernels.triton.common import NORMALIZED, SCALED
    from lion_hf.kernels.triton.fused import FEATURE_MAPS, lion_layer
    from lion_hf.kernels.triton.utils import triton_chunk_size

    def run():
        qkv = torch.randn(batch, length, 3, heads, dim, dtype=torch.bfloat16, requires_grad=True)
        orders = None
        if natural:
            perm = torch.randperm(length)
            orders = ((torch.arange(length), torch.arange(length)), (perm, torch.argsort(perm)))
        n = 2 if natural else 1
        gate, decays = None, [None]
        if mask == "selective":
            gate = torch.randn(batch, length, n * heads, dtype=torch.bfloat16, requires_grad=True)
        elif mask == "decay":
            decays = [torch.full((heads,), -0.1, requires_grad=True) for _ in range(n)]
        fmap = FEATURE_MAPS["identity" if text else "elu_plus_one" if mask == "lit" else "silu_l2"]
        chunk = triton_chunk_size(None, mask != "lit", dim)
        out = lion_layer(qkv, decays, fmap, form, SCALED if text else NORMALIZED, dim ** -0.5, 1e-6, chunk, None,
                         dropout, orders, gate=gate, cls_zero=gate is not None and not text)
        out.float().sum().backward()

    launches = _recorded_launches(run)
    print(f"# {mask}{' natural' if natural else ''}{' text' if text else ''}"
          f"{f' dropout {dropout}' if dropout else ''}, {form} form, B={batch} L={length} H={heads} D={dim} bf16, "
          f"sm_{arch}, triton {triton.__version__}")
    _compile_report(launches, arch)


def layer_norm_report(rows: int, width: int, arch: int) -> None:
    """The LayerNorm kernels' launches for ``[rows, width]`` (fp32 weights): bf16 input and result, then an fp32
    stream plus a bf16 branch with an fp32 result."""
    import torch

    from lion_hf.kernels.triton import layer_norm as triton_layer_norm
    from lion_hf.kernels.triton.layer_norm import LayerNormFunction

    triton_layer_norm._sm_count = lambda device: 132  # an H100/H200's SMs: the backward's program count

    def run():
        x = torch.randn(rows, width, dtype=torch.bfloat16, requires_grad=True)
        weight = torch.ones(width, requires_grad=True)
        bias = torch.zeros(width, requires_grad=True)
        LayerNormFunction.apply(x, weight, bias, 1e-6, torch.bfloat16).float().sum().backward()
        # post-norm: an fp32 stream plus a bf16 branch, the result fp32
        stream = torch.randn(rows, width, requires_grad=True)
        LayerNormFunction.apply(stream, weight, bias, 1e-6, torch.float32, x).sum().backward()

    launches = _recorded_launches(run)
    print(f"# layer norm, [{rows}, {width}] bf16, sm_{arch}, triton {triton.__version__}")
    _compile_report(launches, arch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90)
    parser.add_argument("--chunk", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--warps", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--attention", action="store_true", help="the attention-form kernels instead")
    parser.add_argument("--layer", choices=["lit", "decay", "selective"], default=None,
                        help="every launch of one fused layer of this mask, with the launcher's specialisation")
    parser.add_argument("--natural", action="store_true", help="--layer: two scan orders")
    parser.add_argument("--form", choices=["attention", "chunk"], default="attention", help="--layer: the form")
    parser.add_argument("--length", type=int, default=1025, help="--layer: tokens")
    parser.add_argument("--batch", type=int, default=16, help="--layer: batch")
    parser.add_argument("--heads", type=int, default=12, help="--layer: heads")
    parser.add_argument("--text", action="store_true", help="--layer: the MLM models' layer (identity, scaled)")
    parser.add_argument("--dropout", type=float, default=0.0, help="--layer: attention dropout")
    parser.add_argument("--layer-norm", type=int, nargs=2, default=None, metavar=("ROWS", "WIDTH"),
                        help="the LayerNorm kernels' launches for a [ROWS, WIDTH] input instead")
    args = parser.parse_args()
    d = args.head_dim
    if args.layer_norm:
        layer_norm_report(*args.layer_norm, args.arch)
        return
    if args.layer:
        layer_report(args.layer, args.natural, args.length, args.batch, args.heads, d, args.form, args.arch,
                     args.text, args.dropout)
        return
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
