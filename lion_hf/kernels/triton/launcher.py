"""Launching the Triton kernels with less host time per launch.

``kernel[grid](*args, **meta)`` makes Triton bind and specialise every argument (about 45 for the
attention kernels), build its cache key and read its settings on each launch: ~30 us of host time on the
H200 machine's CPU, against ~7 us for calling the compiled kernel directly (``benchmarks/launch_overhead.py``).
A model step launches the fused layer's kernels 6-8 times per layer, and at 512 px or BERT's 128 tokens
the step waits on the host (BENCHMARKS.md). :func:`run_kernel` takes Triton's path once per distinct
launch and then calls the compiled kernel itself.

The key of a launch holds what Triton specialises on, conservatively: every non-tensor argument by value
(so a new length or stride is a new entry, compiled or found by Triton as usual), every tensor's dtype,
16-byte alignment and device, and the keyword arguments (constexprs, ``num_warps``, ``num_stages``).
Anything unexpected (the interpreter, a Triton whose launch internals differ, a launch hook such as a
profiler's) takes Triton's own path.

A cache hit hands the compiled kernel the tensors' addresses as integers, which its launcher takes as they
are: given a tensor it calls ``data_ptr()`` and the driver's ``cuPointerGetAttribute`` for every pointer
argument (about twenty per launch of the attention kernels, their unused inputs included) to check that the
memory is the GPU's. The first launch of a key, through Triton, made that check; a tensor on another device
(a CPU tensor among CUDA ones, say) is another key.
"""

from __future__ import annotations

from operator import attrgetter, itemgetter, methodcaller

import torch

from .utils import interpreter_enabled

try:  # optional dependency
    import triton
    from triton.runtime import driver
except ImportError:  # pragma: no cover
    triton = None
    driver = None

#: entries per kernel before its cache is emptied (a model uses a handful; varying lengths add one each)
_MAX_ENTRIES = 512
_CACHE_ATTRIBUTE = "_lion_hf_launches"  # per kernel: launch key -> (compiled kernel, constexpr values)
_UNSEEN = object()


def _hook_active(hook) -> bool:
    # Triton >= 3.5 keeps a (usually empty) chain of hooks where older versions keep None
    return hook is not None and (not hasattr(hook, "calls") or bool(hook.calls))


_RUNTIME_KNOBS = getattr(getattr(triton, "knobs", None), "runtime", None)


def _launch_hooks_set() -> bool:
    runtime = _RUNTIME_KNOBS
    return runtime is not None and (_hook_active(getattr(runtime, "launch_enter_hook", None))
                                    or _hook_active(getattr(runtime, "launch_exit_hook", None)))


def _current_stream(device: int):
    return driver.active.get_current_stream(device)


#: argument types of a launch -> (getter of its tensors, getter of its other arguments, the arguments with the
#: tensors' addresses in their places from ``args + addresses``), found once per signature
_SPLITS: dict[tuple, tuple] = {}
_DTYPE = attrgetter("dtype")
_DATA_PTR = methodcaller("data_ptr")
_DEVICE = methodcaller("get_device")


def _getter(indices: list[int]):
    if len(indices) == 1:
        only = indices[0]
        return lambda args: (args[only],)
    return itemgetter(*indices) if indices else (lambda args: ())


def _split(types: tuple) -> tuple:
    tensor_at = [i for i, t in enumerate(types) if issubclass(t, torch.Tensor)]
    n = len(types)
    with_addresses = [n + tensor_at.index(i) if i in tensor_at else i for i in range(n)]
    return _getter(tensor_at), _getter([i for i in range(n) if i not in tensor_at]), _getter(with_addresses)


def _key(args: tuple, meta: dict) -> tuple:
    """``(key, the tensors' addresses, the signature's split)`` of a launch: every argument's type, the tensors'
    dtypes, 16-byte alignment and devices, the other arguments by value and the keyword arguments; built from
    C-level getters (a Python loop over ~45 arguments took ~8 us per launch)."""
    types = tuple(map(type, args))
    split = _SPLITS.get(types)
    if split is None:
        if len(_SPLITS) >= _MAX_ENTRIES:
            _SPLITS.clear()
        split = _SPLITS[types] = _split(types)
    tensors = split[0](args)
    addresses = tuple(map(_DATA_PTR, tensors))
    key = (tuple(map(_DEVICE, tensors)), types, tuple(map(_DTYPE, tensors)),
           tuple([ptr % 16 == 0 for ptr in addresses]), split[1](args), tuple(meta.items()))
    return key, addresses, split


def run_kernel(kernel, grid: tuple, *args, **meta) -> None:
    """``kernel[grid](*args, **meta)``, through the compiled kernel when this launch was seen before."""
    cache = kernel.__dict__.get(_CACHE_ATTRIBUTE, _UNSEEN)
    if cache is _UNSEEN:
        # the interpreter is chosen when the kernels are defined: a kernel it runs always takes Triton's path
        cache = kernel.__dict__[_CACHE_ATTRIBUTE] = None if interpreter_enabled() else {}
    if cache is None or _launch_hooks_set():
        kernel[grid](*args, **meta)
        return
    key, addresses, split = _key(args, meta)
    entry = cache.get(key)
    if entry is None:
        compiled = kernel[grid](*args, **meta)
        names = getattr(kernel, "arg_names", None)
        if compiled is None or not all(hasattr(compiled, n) for n in ("run", "function", "packed_metadata")) \
                or names is None or any(n not in meta for n in names[len(args):]):
            kernel.__dict__[_CACHE_ATTRIBUTE] = None  # not the launch internals known here: Triton's path from now on
            return
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        # the compiled kernel takes every argument of the signature in order, constexprs included
        cache[key] = (compiled, tuple(meta[n] for n in names[len(args):]))
        return
    compiled, constexprs = entry
    if len(grid) == 3:
        grid0, grid1, grid2 = grid
    else:
        grid0, grid1, grid2 = (tuple(grid) + (1, 1))[:3]
    devices = key[0]
    device = devices[0] if devices and devices[0] >= 0 else torch.cuda.current_device()
    compiled.run(grid0, grid1, grid2, _current_stream(device), compiled.function,
                 compiled.packed_metadata, None, None, None, *split[2](args + addresses), *constexprs)


__all__ = ["run_kernel"]
