"""The scripts' folders are the first entry of ``sys.path`` when a script runs (``python benchmarks/x.py``), so a
module there named like an installed package replaces it for every import of the process: ``benchmarks/kernels.py``
did so to Hugging Face's ``kernels``, which ``transformers`` imports when it is installed (5.25 installs it)."""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FOLDERS = ["benchmarks", "examples", "scripts"]


def _installed_elsewhere(name: str, folder: Path) -> str | None:
    """Where ``import name`` would resolve without ``folder`` on the path (``None``: nowhere)."""
    if name in sys.builtin_module_names:
        return "built in"
    path = [p for p in sys.path if Path(p or ".").resolve() != folder]
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    return None if spec is None else str(spec.origin or spec.submodule_search_locations)


@pytest.mark.parametrize("folder", SCRIPT_FOLDERS)
def test_no_script_module_shadows_an_installed_package(folder):
    directory = ROOT / folder
    if not directory.is_dir():
        pytest.skip(f"no {folder}/")
    clashes = {}
    for module in sorted(directory.glob("*.py")):
        where = _installed_elsewhere(module.stem, directory.resolve())
        if where is not None:
            clashes[module.name] = where
    assert not clashes, f"rename these scripts, they shadow installed modules when run: {clashes}"


def test_the_check_sees_a_shadowing_name(tmp_path):
    """The helper does find an installed package of a script's name (torch), so the test above can fail."""
    assert _installed_elsewhere("torch", tmp_path) is not None
    assert _installed_elsewhere("surely_no_such_module_lion_hf", tmp_path) is None
