"""Host time of the Triton launch cache's hit path on the CPU, with a stand-in kernel (no GPU needed).

    PYTHONPATH=. python benchmarks/launch_cache_host.py [--calls 20000]

``run_kernel`` with a stand-in kernel whose compiled ``run`` does nothing, on arguments shaped like the attention
forward's (11 tensors, 30 integers, 3 floats, 15 keyword arguments): what the cache itself costs per launch
(key, lookup, checks), apart from the compiled kernel's own launch (``launch_overhead.py`` measures that on the
GPU). Also ``triton.cdiv`` against integer arithmetic, a host call the grids make a few times per launch.
"""

from __future__ import annotations

import argparse
import time

import torch

from lion_hf.kernels.triton import launcher


class _Compiled:
    function = "handle"
    packed_metadata = "metadata"

    def run(self, *args):
        pass


class _Kernel:
    arg_names = [f"arg{i}" for i in range(44)] + [f"CONST{i}" for i in range(13)]

    def __getitem__(self, grid):
        return lambda *args, **meta: _Compiled()


def _us(fn, calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) * 1e6 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    launcher._current_stream = lambda device: 0
    torch.cuda.current_device = lambda: 0
    x = torch.zeros(4, 8)
    launch_args = (x,) * 10 + tuple(range(30)) + (1.0, 0.5, 0.0, x)
    meta = {f"CONST{i}": i for i in range(13)}
    meta.update(num_warps=4, num_stages=3)
    kernel = _Kernel()
    launcher.run_kernel(kernel, (4, 24), *launch_args, **meta)
    print("| host call | us |")
    print("|---|---|")
    print(f"| launch cache hit (run_kernel, stand-in kernel) | "
          f"{_us(lambda: launcher.run_kernel(kernel, (4, 24), *launch_args, **meta), args.calls):.2f} |")
    print(f"| its key alone | {_us(lambda: launcher._key(launch_args, meta), args.calls):.2f} |")
    try:
        import triton

        print(f"| triton.cdiv(197, 64) | {_us(lambda: triton.cdiv(197, 64), args.calls):.2f} |")
    except ImportError:
        pass
    print(f"| -(-197 // 64) | {_us(lambda: -(-197 // 64), args.calls):.3f} |")


if __name__ == "__main__":
    main()
