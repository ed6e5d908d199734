"""The flat remote-code bundle: generated from the package sources, loadable without lion_hf."""

from __future__ import annotations

import ast
import json
import re

import pytest
import torch
from transformers.dynamic_module_utils import get_imports, get_relative_imports

from lion_hf.hub.bundle import (
    AUTO_MAP,
    PACKAGE_ROOT,
    BundleError,
    build_bundle,
    check_bundle,
    flat_module_name,
    rewrite_module_source,
    write_bundle,
)
from lion_hf.hub.publish import stage_checkpoint

from .fake_hub import (
    FakeRepo,
    make_inputs,
    make_text_run,
    make_venv_without_lion_hf,
    make_vision_run,
    reference_logits,
    run_load_script,
    serve_fake_hub,
    subprocess_env,
)

FORMS = ["attention", "chunk", "recurrent"]


_WRAPPER = re.compile(r"^(?P<indent>[ \t]*)try:  # optional dependency[^\n]*\n(?P<body>(?:(?P=indent)    [^\n]*\n)+?)"
                      r"(?P=indent)except ImportError:\n(?P=indent)    raise\n", flags=re.M)


def _non_import_lines(source: str) -> list[str]:
    """Source lines outside import statements, the generated header and the optional-import wrappers."""
    source = _WRAPPER.sub(lambda m: "".join(m["indent"] + line[len(m["indent"]) + 4:] + "\n"
                                            for line in m["body"].splitlines()), source)
    tree = ast.parse(source)
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            skip.update(range(node.lineno, node.end_lineno + 1))
    return [line for i, line in enumerate(source.splitlines(), 1)
            if i not in skip and not line.startswith("# This file was generated") and not line.startswith("# Do not edit")]


def test_bundle_is_flat_and_complete(tmp_path):
    files = build_bundle()
    # the entry modules keep the names auto_map uses; every kernel module the models import is there
    assert {"configuration_lion.py", "modeling_lion.py", "scan_order.py", "lion_kernels.py",
            "lion_kernels_interface.py", "lion_kernels_chunk.py", "lion_kernels_recurrent.py",
            "lion_kernels_attention.py", "lion_kernels_masks.py"} <= set(files)
    for name, text in files.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                assert node.level in (0, 1), f"{name}: parent-relative import survived"
                assert (node.module or "").split(".")[0] != "lion_hf", f"{name}: absolute lion_hf import survived"
                if node.level == 1:
                    assert node.module is None or "." not in node.module, f"{name}: nested relative import"
                    target = node.module or node.names[0].name
                    assert f"{target}.py" in files, f"{name} imports .{target}, which is not in the bundle"
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "lion_hf" for a in node.names), name
    folder = tmp_path / "bundle"
    assert sorted(write_bundle(folder)) == sorted(files)
    assert check_bundle(folder) == []
    # transformers' own reading of the entry module follows every file
    assert set(get_relative_imports(folder / "modeling_lion.py")) >= {"configuration_lion", "lion_kernels", "scan_order"}
    assert {v.split(".")[0] for v in AUTO_MAP.values()} == {"configuration_lion", "modeling_lion"}


def test_bundle_is_generated_from_the_package_sources():
    """Apart from import statements and the header, every bundled file is its source verbatim."""
    files = build_bundle()
    for name, text in files.items():
        header = text.splitlines()[0]
        source_rel = re.search(r"from (\S+\.py)", header).group(1)
        source = (PACKAGE_ROOT.parent / source_rel).read_text()
        assert _non_import_lines(text) == _non_import_lines(source), name


def test_flat_names():
    assert flat_module_name("lion_hf.modeling.modeling_lion") == "modeling_lion"
    assert flat_module_name("lion_hf.kernels") == "lion_kernels"
    assert flat_module_name("lion_hf.kernels.triton.forward") == "lion_kernels_triton_forward"
    with pytest.raises(BundleError, match="top-level package"):
        flat_module_name("lion_hf")


def test_rewriter_handles_every_import_form(tmp_path):
    source = '''"""doc"""
from __future__ import annotations

import torch
from triton import language as tl  # optional at top level
from .chunk import chunk_parts
from . import masks
from ..modeling.scan_order import snake_rows as rows
import lion_hf.kernels.recurrent as rec

try:
    import some_optional_lib
except ImportError:
    some_optional_lib = None


def lazy():
    import triton
    from .attention import (
        attention_parts,
    )
    return triton, attention_parts
'''
    text, deps = rewrite_module_source("lion_hf.kernels.interface", source)
    assert deps == ["lion_hf.kernels.chunk", "lion_hf.kernels.masks", "lion_hf.modeling.scan_order",
                    "lion_hf.kernels.recurrent", "lion_hf.kernels.attention"]
    compile(text, "rewritten", "exec")
    path = tmp_path / "rewritten.py"
    path.write_text(text)
    # transformers no longer demands triton (the imports sit in try blocks now) ...
    assert get_imports(path) == ["__future__", "torch"]
    # ... and its Hub loader fetches every sibling, including modules imported as objects
    assert set(get_relative_imports(path)) == {"lion_kernels_chunk", "lion_kernels_masks", "scan_order",
                                               "lion_kernels_recurrent", "lion_kernels_attention"}
    assert "from . import lion_kernels_masks as masks" in text
    assert "from . import lion_kernels_recurrent as rec" in text
    assert "from .scan_order import snake_rows as rows" in text
    assert "    try:  # optional dependency" in text and "        import triton\n" in text
    assert "from triton import language as tl  # optional at top level" in text  # comment kept


@pytest.mark.parametrize("source, message", [
    ("from lion_hf import LionConfig\n", "top-level package"),
    ("from .chunk import *\n", "star imports"),
    ("import lion_hf.kernels.chunk\n", "binds the name"),
    ("x = 1; from .chunk import chunk_parts\n", "own line"),
    ("from .does_not_exist import y\n", "not a module"),
])
def test_rewriter_refuses_what_it_cannot_flatten(source, message):
    with pytest.raises(BundleError, match=message):
        rewrite_module_source("lion_hf.kernels.interface", source)


@pytest.fixture(scope="module")
def staged_pair(tmp_path_factory):
    """Tiny trained vision (LION-S, natural order) and text (LION-D) checkpoints, staged for the Hub."""
    root = tmp_path_factory.mktemp("bundle_staged")
    vision_run = make_vision_run(root / "vision-run", mask_type="selective", patch_order="s")
    text_run = make_text_run(root / "text-run", mask_type="decay")
    stage_checkpoint(vision_run, root / "vision", repo_id="me/vision", dataset="cifar10")
    stage_checkpoint(text_run, root / "text", repo_id="me/text", dataset="allenai/c4")
    return root


def test_staged_folder_loads_without_lion_hf(staged_pair, tmp_path):
    """A fresh venv that cannot import lion_hf loads every head through remote code; logits equal the package's."""
    python = make_venv_without_lion_hf(tmp_path / "venv")
    inputs = make_inputs(staged_pair / "text", tmp_path / "inputs.pt")
    result, remote = run_load_script(python, tmp_path, vision=str(staged_pair / "vision"),
                                     text=str(staged_pair / "text"), inputs_path=tmp_path / "inputs.pt", forms=FORMS)
    assert result["lion_hf_importable"] is False
    assert result["vision_class"].startswith("transformers_modules.") and result["vision_class"].endswith(
        ".modeling_lion.LionForImageClassification")
    assert result["text_class"].endswith(".modeling_lion.LionForMaskedLM")
    # auto_map resolves every head; the heads of the other modality are refused by the LION class itself
    vision, text = result["vision_heads"], result["text_heads"]
    assert vision["AutoModel"] == "LionModel" and vision["AutoModelForImageClassification"] == "LionForImageClassification"
    for head in ("AutoModelForMaskedLM", "AutoModelForSequenceClassification", "AutoModelForTokenClassification"):
        assert vision[head].startswith("refused: Lion") and "modality='text'" in vision[head], vision[head]
    assert text == {"AutoModel": "LionModel", "AutoModelForImageClassification": text["AutoModelForImageClassification"],
                    "AutoModelForMaskedLM": "LionForMaskedLM",
                    "AutoModelForSequenceClassification": "LionForSequenceClassification",
                    "AutoModelForTokenClassification": "LionForTokenClassification"}
    assert text["AutoModelForImageClassification"].startswith("refused: LionForImageClassification")
    assert result["vision_auto_map"] == sorted(AUTO_MAP)
    local = reference_logits(staged_pair / "vision", staged_pair / "text", inputs, FORMS)
    for key, value in local.items():
        assert torch.equal(remote[key], value), key


def test_staged_folder_uses_the_package_when_installed(staged_pair, tmp_path):
    """With lion_hf importable, the registered classes win and no remote code runs."""
    from transformers import AutoModelForImageClassification

    import lion_hf

    model = AutoModelForImageClassification.from_pretrained(staged_pair / "vision")
    assert type(model) is lion_hf.LionForImageClassification
    config = json.loads((staged_pair / "vision" / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP


def test_optional_triton_subpackage_is_bundled_and_stays_optional(staged_pair, tmp_path):
    """A Triton sub-package reached by a lazy import (simulated next to lion_hf.kernels.triton) is bundled flat,
    and a machine without Triton still loads the model from the Hub: transformers' import check, which
    runs on every downloaded file, does not demand triton."""
    import shutil

    source = tmp_path / "src" / "lion_hf"
    shutil.copytree(PACKAGE_ROOT, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "kernels" / "triton_sim").mkdir()
    (source / "kernels" / "triton_sim" / "__init__.py").write_text(
        '"""Simulated Triton kernels."""\nfrom .forward import triton_parts\n')
    (source / "kernels" / "triton_sim" / "forward.py").write_text(
        "import triton\nimport triton.language as tl\n\n\ndef triton_parts(x):\n    return tl, x\n")
    with (source / "kernels" / "interface.py").open("a") as f:
        f.write("\n\ndef _triton_parts():\n    from .triton_sim import triton_parts\n    return triton_parts\n")

    folder = tmp_path / "with-triton"
    shutil.copytree(staged_pair / "vision", folder, ignore=shutil.ignore_patterns("*.py"))
    names = write_bundle(folder, root=source)
    assert {"lion_kernels_triton_sim.py", "lion_kernels_triton_sim_forward.py"} <= set(names)
    assert check_bundle(folder) == []
    assert "triton" not in get_imports(folder / "lion_kernels_triton_sim_forward.py")
    assert "from .lion_kernels_triton_sim import triton_parts" in (folder / "lion_kernels_interface.py").read_text()
    forward = (folder / "lion_kernels_triton_sim_forward.py").read_text()
    assert _non_import_lines(forward) == _non_import_lines((source / "kernels" / "triton_sim" / "forward.py").read_text())
    assert "try:  # optional dependency" in forward

    python = make_venv_without_lion_hf(tmp_path / "venv")
    inputs = make_inputs(staged_pair / "text", tmp_path / "inputs.pt")
    with serve_fake_hub(max_lifetime=120) as hub:
        repo = FakeRepo("lion-test/with-triton", private=False)
        hub.repos[repo.repo_id] = repo
        hub.new_commit(repo, {p.name: p.read_bytes() for p in folder.iterdir()}, "bundle with triton kernels")
        result, remote = run_load_script(python, tmp_path, vision="lion-test/with-triton", text=None,
                                         inputs_path=tmp_path / "inputs.pt", forms=["attention", "chunk"],
                                         env=subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint), block=("triton",))
        downloaded = {path.rsplit("/", 1)[-1] for method, path in hub.requests if method == "GET" and "/resolve/" in path}
    assert result["triton_importable"] is False and result["lion_hf_importable"] is False
    assert {"lion_kernels_triton_sim.py", "lion_kernels_triton_sim_forward.py"} <= downloaded  # fetched and import-checked
    local = reference_logits(staged_pair / "vision", staged_pair / "text", inputs, ["attention", "chunk"])
    for key in ("vision_attention", "vision_chunk"):
        assert torch.equal(remote[key], local[key]), key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_remote_code_on_gpu_without_lion_hf(staged_pair, tmp_path):
    """The bundled code runs on CUDA where lion_hf is not installed, and agrees with the package there."""
    python = make_venv_without_lion_hf(tmp_path / "venv")
    inputs = make_inputs(staged_pair / "text", tmp_path / "inputs.pt")
    result, remote = run_load_script(python, tmp_path, vision=str(staged_pair / "vision"),
                                     text=str(staged_pair / "text"), inputs_path=tmp_path / "inputs.pt",
                                     forms=["auto", *FORMS], device="cuda")
    assert result["lion_hf_importable"] is False
    local = reference_logits(staged_pair / "vision", staged_pair / "text", inputs, ["auto", *FORMS], device="cuda")
    for key, value in local.items():
        torch.testing.assert_close(remote[key], value, rtol=1e-5, atol=1e-5, msg=key)
