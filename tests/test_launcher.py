"""The launch cache of the Triton kernels (lion_hf.kernels.triton.launcher) against a stand-in kernel.

CI has no GPU and the interpreter always takes Triton's own path, so the cache's logic is checked here
with an object that records how it was launched; the GPU tests run the real kernels through it.
"""

import pytest
import torch

pytest.importorskip("triton")

from lion_hf.kernels.triton import launcher  # noqa: E402


class FakeCompiled:
    def __init__(self, log):
        self.log = log
        self.function = "handle"
        self.packed_metadata = "meta"

    def run(self, *args):
        self.log.append(("direct", args))


class FakeKernel:
    """What run_kernel needs of a JITFunction: ``arg_names`` and ``kernel[grid](*args, **meta)``."""

    arg_names = ["X", "L", "stride", "scale", "BLOCK", "FLAG"]

    def __init__(self):
        self.log = []
        self.compiles = 0

    def __getitem__(self, grid):
        def launch(*args, **meta):
            self.log.append(("triton", grid, args, meta))
            self.compiles += 1
            return FakeCompiled(self.log)
        return launch


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(launcher, "interpreter_enabled", lambda: False)
    monkeypatch.setattr(launcher, "_current_stream", lambda device: 77)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_first_launch_through_triton_then_the_compiled_kernel_in_signature_order(fast):
    kernel = FakeKernel()
    x = torch.zeros(32)
    for _ in range(3):
        launcher.run_kernel(kernel, (4, 2), x, 100, 16, 0.5, BLOCK=64, FLAG=True, num_warps=4)
    assert kernel.compiles == 1
    assert kernel.log[0] == ("triton", (4, 2), (x, 100, 16, 0.5), {"BLOCK": 64, "FLAG": True, "num_warps": 4})
    kind, args = kernel.log[1]
    assert kind == "direct"
    # grid padded to three dims, the stream, the handle, metadata, no launch metadata or hooks, then every
    # argument in the signature's order (tensors as their addresses) with the constexprs last
    assert args[:9] == (4, 2, 1, 77, "handle", "meta", None, None, None)
    assert args[9] == x.data_ptr() and type(args[9]) is int and args[10:] == (100, 16, 0.5, 64, True)
    assert len(kernel.log) == 3


def test_tensors_reach_the_compiled_kernel_as_addresses_in_their_places(fast):
    kernel = FakeKernel()
    kernel.arg_names = ["X", "L", "Y", "Z", "BLOCK"]
    x, y, z = torch.zeros(8), torch.zeros(4, dtype=torch.float16), torch.zeros(2, dtype=torch.int32)
    for _ in range(2):
        launcher.run_kernel(kernel, (1,), x, 5, y, z, BLOCK=16)
    kind, args = kernel.log[-1]
    assert kind == "direct" and args[9:] == (x.data_ptr(), 5, y.data_ptr(), z.data_ptr(), 16)
    y2 = torch.zeros(4, dtype=torch.float16)  # another tensor of the same kind: its own address, no new entry
    launcher.run_kernel(kernel, (1,), x, 5, y2, z, BLOCK=16)
    assert kernel.compiles == 1 and kernel.log[-1][1][11] == y2.data_ptr()


class OnDevice(torch.Tensor):
    """A CPU tensor that reports the device it is given (a tensor of another device, as the key sees it)."""

    def get_device(self):
        return self.reported_device


def test_a_tensor_on_another_device_is_a_new_entry(fast):
    # the compiled kernel is handed addresses without a check of their memory: Triton's own launch checks a
    # new device's tensor (and raises for a CPU tensor among CUDA ones)
    kernel = FakeKernel()
    on_gpu, on_cpu = (torch.zeros(64).as_subclass(OnDevice) for _ in range(2))
    on_gpu.reported_device, on_cpu.reported_device = 0, -1
    for x in (on_gpu, on_gpu, on_cpu):
        launcher.run_kernel(kernel, (1,), x, 100, 16, 0.5, BLOCK=64, FLAG=True)
    assert [entry[0] for entry in kernel.log] == ["triton", "direct", "triton"]


@pytest.mark.parametrize("change", ["length", "stride_one", "dtype", "alignment", "constexpr", "warps", "int_type",
                                    "tensor_for_int", "second_tensor_dtype"])
def test_anything_triton_specialises_on_is_a_new_entry(fast, change):
    kernel = FakeKernel()
    x = torch.zeros(64)
    base = dict(args=(x, 100, 16, 0.5), meta=dict(BLOCK=64, FLAG=True, num_warps=4))
    launcher.run_kernel(kernel, (1,), *base["args"], **base["meta"])
    args, meta = list(base["args"]), dict(base["meta"])
    if change == "length":
        args[1] = 101
    elif change == "stride_one":
        args[2] = 1
    elif change == "dtype":
        args[0] = x.to(torch.float16)
    elif change == "alignment":
        args[0] = x[1:]  # 4 bytes past a 16-byte boundary
    elif change == "constexpr":
        meta["BLOCK"] = 32
    elif change == "warps":
        meta["num_warps"] = 8
    elif change == "int_type":
        args[3] = 1  # an int where a float was
    elif change == "tensor_for_int":
        args[1] = x  # the arguments' kinds differ: the tensors are found anew
    else:
        args[2] = torch.zeros(8, dtype=torch.int32)  # a second tensor, and its dtype then
        launcher.run_kernel(kernel, (1,), *args, **meta)
        assert kernel.compiles == 2
        args[2] = torch.zeros(8, dtype=torch.int64)
    launcher.run_kernel(kernel, (1,), *args, **meta)
    compiles = 3 if change == "second_tensor_dtype" else 2
    assert kernel.compiles == compiles and kernel.log[-1][0] == "triton"
    launcher.run_kernel(kernel, (1,), *args, **meta)
    assert kernel.compiles == compiles and kernel.log[-1][0] == "direct"


def test_launch_hooks_and_unknown_internals_take_tritons_path(fast, monkeypatch):
    kernel = FakeKernel()
    x = torch.zeros(32)
    monkeypatch.setattr(launcher, "_launch_hooks_set", lambda: True)
    for _ in range(2):
        launcher.run_kernel(kernel, (1,), x, 1, 1, 1.0, BLOCK=1, FLAG=False)
    assert [entry[0] for entry in kernel.log] == ["triton", "triton"]
    monkeypatch.setattr(launcher, "_launch_hooks_set", lambda: False)

    class Opaque(FakeKernel):  # a Triton whose launch returns something else
        def __getitem__(self, grid):
            def launch(*args, **meta):
                self.log.append(("triton",))
            return launch

    opaque = Opaque()
    for _ in range(3):
        launcher.run_kernel(opaque, (1,), x, 1, 1, 1.0, BLOCK=1, FLAG=False)
    assert opaque.log == [("triton",)] * 3
    # a constexpr left to its default is not known to the cache: Triton's path
    partial = FakeKernel()
    for _ in range(2):
        launcher.run_kernel(partial, (1,), x, 1, 1, 1.0, BLOCK=1)
    assert [entry[0] for entry in partial.log] == ["triton", "triton"]


def test_a_registered_triton_launch_hook_is_seen(monkeypatch):
    knobs = pytest.importorskip("triton.knobs")
    chain = knobs.runtime.launch_enter_hook
    if not hasattr(chain, "add"):
        pytest.skip("this Triton keeps a single hook")
    assert not launcher._launch_hooks_set()

    def hook(metadata):
        return None

    chain.add(hook)
    try:
        assert launcher._launch_hooks_set()
    finally:
        chain.remove(hook)
    assert not launcher._launch_hooks_set()


def test_the_interpreter_always_takes_tritons_path(monkeypatch):
    monkeypatch.setattr(launcher, "interpreter_enabled", lambda: True)
    kernel = FakeKernel()
    for _ in range(2):
        launcher.run_kernel(kernel, (1,), torch.zeros(4), 1, 1, 1.0, BLOCK=1, FLAG=False)
    assert [entry[0] for entry in kernel.log] == ["triton", "triton"]
