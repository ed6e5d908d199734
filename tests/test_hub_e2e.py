"""End to end over HTTP on loopback: publish tiny trained checkpoints to a fake Hub with the real
huggingface_hub client, load them back with and without lion_hf, and run the pipelines on them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import torch
from huggingface_hub import ModelCard

from lion_hf.hub.bundle import AUTO_MAP
from lion_hf.hub.publish import BUNDLE_MARKER

from .fake_hub import (
    LOOPBACK,
    VISION_LABELS,
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

FORMS = ["attention", "chunk"]
TOKEN = "hf_fake_token_for_the_loopback_hub"

PUBLISH_SCRIPT = r'''
import json, sys
from lion_hf.cli import publish_main as main

args = json.loads(sys.argv[1])
codes = {}
for name, argv in args.items():
    print("=== " + name, flush=True)
    codes[name] = main(argv)
    sys.stdout.flush()
print("RESULT " + json.dumps(codes))
'''


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A fake Hub with the tiny vision (private) and text checkpoints published through lion-publish."""
    root = tmp_path_factory.mktemp("e2e")
    vision_run = make_vision_run(root / "vision-run", mask_type="selective", patch_order="s")
    text_run = make_text_run(root / "text-run", mask_type="decay")
    with serve_fake_hub(max_lifetime=200) as hub:
        assert hub.endpoint.startswith(f"http://{LOOPBACK}:")
        # an existing text repository: code an earlier lion-publish wrote (its bundle header) goes, the
        # owner's own files (a helper module, pickle weights, notes) stay; README.md is replaced, and said so
        stale = FakeRepo("lion-test/tiny-text", private=False)
        hub.repos[stale.repo_id] = stale
        hub.new_commit(stale, {"pytorch_model.bin": b"pickle", "modeling_old.py": BUNDLE_MARKER.encode() + b"old\n",
                               "helper.py": b"# the owner's own code\n", "notes.txt": b"keep",
                               "README.md": b"# my notes\n", "extra/helper.py": b"# not ours"}, "old upload")
        env = subprocess_env(root, HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
        commands = {
            "vision": [str(vision_run), "lion-test/tiny-vision", "--private", "--dataset", "cifar10",
                       "--commit-message", "Tiny LION-S natural"],
            "text_dry": [str(text_run), "lion-test/tiny-text", "--dataset", "allenai/c4", "--dataset-config", "en",
                         "--dry-run", "--staging-dir", str(root / "dry")],
            "text": [str(text_run), "lion-test/tiny-text", "--dataset", "allenai/c4", "--dataset-config", "en"],
            "text_branch": [str(text_run), "lion-test/tiny-text", "--revision", "v2", "--dataset", "allenai/c4",
                            "--commit-message", "to a branch"],
            "bad_license": [str(vision_run), "lion-test/refused", "--license", "not-a-license",
                            "--dataset", "cifar10"],
        }
        proc = subprocess.run([sys.executable, "-c", PUBLISH_SCRIPT, json.dumps(commands)], cwd=root, env=env,
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-5000:]
        codes = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])
        sections = {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in proc.stdout.split("=== ")[1:]}
        yield {"hub": hub, "root": root, "env": env, "codes": codes, "stderr": proc.stderr, "stdout": sections,
               "vision_run": vision_run, "text_run": text_run}


def test_publish_over_http(published):
    hub, codes = published["hub"], published["codes"]
    assert codes == {"vision": 0, "text_dry": 0, "text": 0, "text_branch": 0, "bad_license": 2}
    vision = hub.repos["lion-test/tiny-vision"]
    assert vision.private is True
    files = vision.commits[vision.branches["main"]]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", "modeling_lion.py",
            "configuration_lion.py", "lion_kernels.py", "lion_kernels_chunk.py"} <= set(files)
    assert files["model.safetensors"] == (published["vision_run"] / "model.safetensors").read_bytes()
    assert json.loads(files["config.json"])["auto_map"] == AUTO_MAP
    assert vision.messages[vision.branches["main"]] == "Tiny LION-S natural"
    card = ModelCard(files["README.md"].decode())
    assert card.data.to_dict()["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.4167  # as measured
    # the card was validated by the Hub's validator before the upload
    assert any("lion-test/tiny-vision" in content for content in hub.validated_cards)


def test_publish_deletes_only_its_own_earlier_files_and_commits_to_a_branch(published):
    text = published["hub"].repos["lion-test/tiny-text"]
    main = text.commits[text.branches["main"]]
    assert "modeling_old.py" not in main  # written by an earlier lion-publish (bundle header): replaced by fresh code
    assert main["helper.py"] == b"# the owner's own code\n" and main["pytorch_model.bin"] == b"pickle"
    assert main["notes.txt"] == b"keep" and main["extra/helper.py"] == b"# not ours"  # not ours: left alone
    assert json.loads(main["lion_publish.json"])["files"] == sorted(n for n in main if n not in (
        "helper.py", "pytorch_model.bin", "notes.txt", "extra/helper.py"))
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "eval_results.json"} <= set(main)
    assert "v2" in text.branches and text.messages[text.branches["v2"]] == "to a branch"


def test_publish_prints_what_it_uploads_deletes_and_replaces(published):
    """The dry run (which sends nothing) and the upload print the same plan, one file a line."""
    dry, real = published["stdout"]["text_dry"], published["stdout"]["text"]
    staged = sorted(p.name for p in (published["root"] / "dry").iterdir())
    for output in (dry, real):
        assert "an existing repository" in output and f"{len(staged)} files" in output
        listed = [line.strip().split()[0] for line in output.split("delete")[0].splitlines()[1:]]
        assert listed == staged
        assert "README.md  (replaces a file lion-publish did not write)" in output
        deleted = output.split("delete (written by an earlier lion-publish")[1].splitlines()[1:2]
        assert [line.strip() for line in deleted] == ["modeling_old.py"]
        assert "left as they are (not written by lion-publish): extra/helper.py, helper.py, notes.txt, " \
               "pytorch_model.bin" in output
    assert "dry run: nothing was sent" in dry
    again = published["stdout"]["text_branch"]  # the manifest now says which files are lion-publish's
    assert "replaces" not in again and "delete: nothing" in again


def test_invalid_card_is_refused_by_the_hub_and_nothing_is_created(published):
    assert "lion-test/refused" not in published["hub"].repos
    assert "the Hub rejected the card metadata" in published["stderr"] and "license" in published["stderr"]


def test_private_repository_needs_the_token(published):
    url = f"{published['hub'].endpoint}/lion-test/tiny-vision/resolve/main/config.json"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    assert error.value.code == 404 and error.value.headers["X-Error-Code"] == "RepoNotFound"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["model_type"] == "lion"
        assert len(response.headers["X-Repo-Commit"]) == 40 and response.headers["ETag"]


def test_load_back_without_lion_hf_and_run_pipelines(published, tmp_path):
    """A fresh venv without lion_hf downloads the repos, loads them through remote code with logits
    identical to the in-package models, and runs image-classification and fill-mask."""
    hub = published["hub"]
    python = make_venv_without_lion_hf(tmp_path / "venv")
    inputs = make_inputs(published["text_run"], tmp_path / "inputs.pt")
    env = subprocess_env(tmp_path, HF_ENDPOINT=hub.endpoint, HF_TOKEN=TOKEN)
    result, remote = run_load_script(python, tmp_path, vision="lion-test/tiny-vision", text="lion-test/tiny-text",
                                     inputs_path=tmp_path / "inputs.pt", forms=FORMS, pipelines=True, env=env)
    assert result["lion_hf_importable"] is False
    vision_repo = hub.repos["lion-test/tiny-vision"]
    # the class comes from the code downloaded at the published commit
    assert result["vision_class"].startswith("transformers_modules.")
    assert f".{vision_repo.branches['main']}.modeling_lion.LionForImageClassification" in result["vision_class"]
    assert result["text_heads"]["AutoModelForSequenceClassification"] == "LionForSequenceClassification"
    local = reference_logits(published["vision_run"], published["text_run"], inputs, FORMS)
    for key, value in local.items():
        assert torch.equal(remote[key], value), key

    labels = result["image_classification"]
    assert sorted(item["label"] for item in labels) == sorted(VISION_LABELS)
    assert abs(sum(item["score"] for item in labels) - 1.0) < 1e-4
    fill = result["fill_mask"]
    assert len(fill) == 5 and all(0.0 <= item["score"] <= 1.0 for item in fill)
    assert [item["score"] for item in fill] == sorted((item["score"] for item in fill), reverse=True)
    assert not hub.unhandled, hub.unhandled


def test_load_back_with_lion_hf_needs_no_remote_code(published, tmp_path):
    """With lion_hf installed the registered classes load the published repos; no remote code runs."""
    inputs = make_inputs(published["text_run"], tmp_path / "inputs.pt")
    env = subprocess_env(tmp_path, HF_ENDPOINT=published["hub"].endpoint, HF_TOKEN=TOKEN)
    result, remote = run_load_script(sys.executable, tmp_path, vision="lion-test/tiny-vision",
                                     text="lion-test/tiny-text", inputs_path=tmp_path / "inputs.pt", forms=FORMS,
                                     trust_remote_code=False, env=env)
    assert result["lion_hf_importable"] is True
    assert result["vision_class"] == "lion_hf.modeling.modeling_lion.LionForImageClassification"
    assert result["text_class"] == "lion_hf.modeling.modeling_lion.LionForMaskedLM"
    local = reference_logits(published["vision_run"], published["text_run"], inputs, FORMS)
    for key, value in local.items():
        assert torch.equal(remote[key], value), key
