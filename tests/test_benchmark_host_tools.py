"""The CPU host benchmarks (``benchmarks/host_step.py``, ``benchmarks/layer_host_ab.py``) run and count.

They replace the kernel modules' launches by stand-ins, so they run in child Pythons (the replacement would
otherwise reach every later test). A tree compared with itself must give the same launches and operators.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lion_hf.kernels.triton.utils import triton_available

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not triton_available(), reason="the stand-in launches go through Triton's kernels")


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}", "TRITON_INTERPRET": "1",
           "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def _rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and not re.fullmatch(r"-+", cells[0]) and cells[0] not in ("model", "variant"):
            rows[cells[0]] = cells[1:]
    return rows


def test_host_step_counts_launches_of_the_lion_models_only():
    rows = _rows(_run("host_step.py", "--steps", "1", "--rounds", "1", "--variants", "decay,selective"))
    assert set(rows) == {"vit-sdpa", "lion-decay", "lion-selective"}
    assert rows["vit-sdpa"][-2] == "0"  # HF ViT launches no Triton kernel
    for name in ("vit-sdpa", "lion-decay", "lion-selective"):
        calls, launches, operators = int(rows[name][-1]), int(rows[name][-2]), int(rows[name][-3])
        if name != "vit-sdpa":
            assert launches > 0 and launches % 12 == 0, (name, launches)  # the same launches in each of 12 layers
        assert operators > 0 and calls > operators, (name, calls, operators)  # Python calls outnumber operators


def test_layer_host_ab_of_a_tree_against_itself_counts_alike():
    out = _run("layer_host_ab.py", "--base", str(ROOT / "lion_hf" / "kernels" / "triton"), "--calls", "4",
               "--variants", "decay,selective-natural")
    rows = _rows(out)
    assert set(rows) == {"decay", "selective-natural"}
    for cells in rows.values():
        launches, operators = cells[-2].split(" / "), cells[-1].split(" / ")
        assert launches[0] == launches[1] and int(launches[0]) > 0
        assert operators[0] == operators[1]
