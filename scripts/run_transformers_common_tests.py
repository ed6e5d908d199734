#!/usr/bin/env python
"""Run transformers' own common model tests (ModelTesterMixin, ConfigTester) against the LION models
(LION and LightNet attention, ``attention_type="lightnet"``: text and vision each).

The tests are not in the transformers wheel, only in its PyPI sdist. This script downloads the
sdist matching the installed transformers (cached under ``.cache/transformers-sdist``), copies the
common test modules into a scratch ``tests`` package with stubs for the three helpers they import
from parts of the sdist we do not need, adds ``transformers_suite/test_lion_common.py`` and runs
pytest on it. Usage: ``python scripts/run_transformers_common_tests.py [extra pytest args]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "transformers-sdist"
COMMON_MODULES = ("test_modeling_common.py", "test_configuration_common.py")
STUBS = {
    # Base class of ModelTesterMixin; its export tests need torch.export on real checkpoints.
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    # Generation tests apply to generative models only.
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    # The keyword set ConfigTester checks for round-tripping (mirrors transformers' own list).
    "utils/test_configuration_utils.py": (
        "config_common_kwargs = {\n"
        "    'return_dict': False, 'output_hidden_states': True, 'output_attentions': True, 'dtype': 'float16',\n"
        "    'chunk_size_feed_forward': 5, 'architectures': ['BertModel'], 'id2label': {0: 'label'},\n"
        "    'label2id': {'label': '0'}, 'problem_type': 'regression',\n"
        "}\n"),
}


def fetch_sdist(version: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"transformers-{version}.tar.gz"
    if not archive.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        f"transformers=={version}", "-d", str(CACHE)], check=True)
    return archive


def build_suite(archive: Path, version: str, workdir: Path) -> Path:
    tests = workdir / "tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("")
    with tarfile.open(archive) as tar:
        for name in COMMON_MODULES:
            member = tar.getmember(f"transformers-{version}/tests/{name}")
            (tests / name).write_bytes(tar.extractfile(member).read())
    for relative, text in STUBS.items():
        path = tests / relative
        path.parent.mkdir(exist_ok=True)
        (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    shutil.copy(Path(__file__).parent / "transformers_suite" / "test_lion_common.py", tests / "test_lion_common.py")
    (workdir / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    ignore::pytest.PytestUnknownMarkWarning\n    ignore::FutureWarning\n")
    return tests


def main(argv: list[str]) -> int:
    version = transformers.__version__
    archive = fetch_sdist(version)
    with tempfile.TemporaryDirectory() as scratch:
        tests = build_suite(archive, version, Path(scratch))
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                   str(tests / "test_lion_common.py"), *argv]
        return subprocess.run(command, cwd=scratch).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
