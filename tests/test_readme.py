"""Issue 14, item 18: every code block of the README runs as written (each on its own, in a fresh namespace and
an empty working folder), and the names the README documents exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lion_hf import LionConfig

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", flags=re.M | re.S)
BLOCKS = [(m["lang"], m["body"], README[: m.start()].count("\n") + 1) for m in FENCE.finditer(README)]
PYTHON = [(body, line) for lang, body, line in BLOCKS if lang == "python"]


def test_readme_blocks_are_found():
    # the README has a vision, a text and an operator block, and every fence names its language
    assert len(PYTHON) >= 3
    assert all(lang for lang, _, _ in BLOCKS), "a README code block has no language tag"
    assert README.count("```") == 2 * len(BLOCKS), "unbalanced code fences in README.md"


@pytest.mark.parametrize("body,line", PYTHON, ids=[f"README.md:{line}" for _, line in PYTHON])
def test_python_block_runs_as_written(body, line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(body, f"README.md:{line}", "exec"), namespace)  # noqa: S102 (our own README)
    if "pipeline(\"image-classification\"" in body:
        # the saved folder is complete: the pipeline found the image processor and the model
        predictions = namespace["classifier"](namespace["Image"].new("RGB", (64, 48)), top_k=2)
        assert len(predictions) == 2 and {"label", "score"} <= set(predictions[0])
        assert (tmp_path / "my-lion" / "preprocessor_config.json").is_file()


def test_shell_blocks_name_existing_make_targets():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.M))
    commands = [line.split("#")[0].split() for lang, body, _ in BLOCKS if lang == "bash" for line in body.splitlines()]
    makes = [words[1] for words in commands if words and words[0] == "make"]
    assert makes[:2] == ["demo", "test"]
    assert set(makes) <= targets, set(makes) - targets


def test_configuration_table_names_real_fields():
    table = README.split("## Supported configuration values", 1)[1].split("\n## ", 1)[0]
    fields = re.findall(r"^\| `(\w+)`", table, flags=re.M)
    assert len(fields) >= 10
    config = LionConfig()
    missing = [name for name in fields if not hasattr(config, name)]
    assert not missing, f"README documents fields LionConfig does not have: {missing}"


def test_auto_form_thresholds_match_the_operator():
    from lion_hf.kernels import AUTO_ATTENTION_MAX_LENGTH, AUTO_ATTENTION_MAX_LENGTH_TRITON

    found = re.search(r'`form="auto"` takes the attention form up to (\d+) tokens \((\d+) on the Triton backend\)',
                      README)
    assert found, "README no longer states the auto form's thresholds"
    assert (int(found[1]), int(found[2])) == (AUTO_ATTENTION_MAX_LENGTH, AUTO_ATTENTION_MAX_LENGTH_TRITON)
