"""Shared test fixtures: fresh random seeds (reported on failure) and offline Hugging Face settings."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if not torch.cuda.is_available():
    # Triton reads TRITON_INTERPRET when a kernel is decorated, i.e. when lion_hf.kernels.triton is first
    # imported; any test module may import it (the hub bundle walks the package), so set it here, before
    # collection. On CUDA machines the kernels compile for the GPU as usual.
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def seed(request) -> int:
    """A fresh seed per test (or ``LION_TEST_SEED`` to replay one); printed in the failure report."""
    value = int(os.environ.get("LION_TEST_SEED", int.from_bytes(os.urandom(4), "little")))
    torch.manual_seed(value)
    request.node.user_properties.append(("seed", value))
    return value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, value in item.user_properties:
            if name == "seed":
                report.sections.append(("seed", f"replay with LION_TEST_SEED={value}"))
