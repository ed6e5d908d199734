"""lion-publish against crafted folders and repositories (issue 14, items 3 and 15): only regular files
inside the folder, only what the checkpoint needs, a printed list, and deletions limited to its own files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lion_hf.cli import publish_main
from lion_hf.hub.publish import BUNDLE_MARKER, MANIFEST_NAME, checkpoint_files, plan_upload, stage_checkpoint

from .fake_hub import make_text_run, make_vision_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening_runs")
    return {"vision": make_vision_run(root / "vision-run"), "text": make_text_run(root / "text-run")}


def _copy(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target, symlinks=True)
    return target


def _stage(folder: Path, tmp_path: Path, **options):
    return stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="cifar10", **options)


# ---------------------------------------------------------------------------------------------------
# Item 3: regular files inside the folder, only the files the checkpoint needs
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.safetensors", "preprocessor_config.json", "config.json", "all_results.json"])
def test_symlink_out_of_the_folder_is_refused(runs, tmp_path, name):
    folder = _copy(runs["vision"], tmp_path)
    outside = tmp_path / f"outside-{name}"
    (folder / name).rename(outside)
    os.symlink(outside, folder / name)
    with pytest.raises(ValueError, match="outside"):
        _stage(folder, tmp_path)
    assert not (tmp_path / "staged" / name).exists()


def test_symlink_to_a_secret_is_never_copied(runs, tmp_path):
    """A link named like a tokenizer vocabulary, pointing at a private file, must not go up."""
    folder = _copy(runs["text"], tmp_path)
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (folder / "tokenizer.json").rename(tmp_path / "real-tokenizer.json")
    os.symlink(secret, folder / "tokenizer.json")
    with pytest.raises(ValueError, match="outside"):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="allenai/c4")
    staged = tmp_path / "staged"
    assert not staged.exists() or not any("PRIVATE" in p.read_text(errors="ignore") for p in staged.iterdir())


def test_symlink_inside_the_folder_is_followed(runs, tmp_path):
    folder = _copy(runs["vision"], tmp_path)
    (folder / "model.safetensors").rename(folder / "weights.safetensors")
    os.symlink("weights.safetensors", folder / "model.safetensors")
    staged = _stage(folder, tmp_path)
    copied = staged.folder / "model.safetensors"
    assert not copied.is_symlink() and copied.read_bytes() == (folder / "weights.safetensors").read_bytes()
    assert "weights.safetensors" not in staged.files


def test_checkpoint_folder_linked_out_of_the_run_is_refused(runs, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    elsewhere = _copy(runs["vision"], tmp_path, "elsewhere")
    os.symlink(elsewhere, run / "checkpoint-5")
    with pytest.raises(ValueError, match="symbolic link out of"):
        _stage(run, tmp_path)


def test_only_the_files_the_checkpoint_needs_are_staged(runs, tmp_path):
    folder = _copy(runs["vision"], tmp_path)
    extras = {"model-extra.safetensors": (folder / "model.safetensors").read_bytes(), "evil.model": b"\x00" * 8,
              "tokenizer.model": b"x", "generation_config.json": b"{}", "optimizer.pt": b"pickle",
              "notes.py": b"import os\n", "vocab.txt": b"[PAD]\n"}
    for name, content in extras.items():
        (folder / name).write_bytes(content)
    staged = _stage(folder, tmp_path)
    assert not set(extras) & set(staged.files)
    assert set(staged.files) == {p.name for p in staged.folder.iterdir()}
    assert staged.sources["model.safetensors"] == folder / "model.safetensors"


def test_sharded_index_cannot_point_out_of_the_folder(runs, tmp_path):
    folder = _copy(runs["vision"], tmp_path)
    (folder / "model.safetensors").rename(tmp_path / "shard.safetensors")
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {"classifier.weight": "../shard.safetensors"}}))
    with pytest.raises(ValueError, match="not .safetensors files of the folder itself"):
        _stage(folder, tmp_path)


def test_sharded_checkpoint_stages_only_the_listed_shards(runs, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(runs["vision"], tmp_path)
    tensors = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    names = sorted(tensors)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, folder / shard, metadata={"format": "pt"})
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}))
    (folder / "model-00003-of-00002.safetensors").write_bytes(b"stray, not in the index")
    staged = _stage(folder, tmp_path)
    assert {"model.safetensors.index.json", *shards} <= set(staged.files)
    assert "model-00003-of-00002.safetensors" not in staged.files


def test_tokenizer_files_follow_the_tokenizer_class(runs, tmp_path):
    folder = _copy(runs["text"], tmp_path)
    (folder / "spiece.model").write_bytes(b"not for a BERT tokenizer")
    staged = stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="allenai/c4")
    assert "spiece.model" not in staged.files and "tokenizer.json" in staged.files
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "T5Tokenizer"  # its vocabulary is spiece.model
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    model_config = json.loads((folder / "config.json").read_text())
    assert "spiece.model" in checkpoint_files(folder, model_config)


def test_dry_run_prints_the_exact_list(runs, tmp_path, capsys):
    assert publish_main([str(runs["vision"]), "me/x", "--dry-run", "--staging-dir", str(tmp_path / "s"),
                         "--dataset", "cifar10"]) == 0
    out = capsys.readouterr().out
    listed = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert listed == sorted(p.name for p in (tmp_path / "s").iterdir())
    assert "HF_HUB_OFFLINE" in out and "dry run: nothing was sent" in out
    manifest = json.loads((tmp_path / "s" / MANIFEST_NAME).read_text())
    assert manifest["files"] == listed


# ---------------------------------------------------------------------------------------------------
# Item 15: an existing repository loses only files an earlier lion-publish wrote
# ---------------------------------------------------------------------------------------------------
class _Repo:
    """The two read calls plan_upload makes, over an in-memory repository (every file stored without LFS)."""

    def __init__(self, files: dict[str, bytes], root: Path):
        self.files, self.root = files, root

    def model_info(self, repo_id, revision=None):
        from types import SimpleNamespace

        return SimpleNamespace(sha="0" * 40)

    def list_repo_tree(self, repo_id, revision=None, recursive=False):
        from huggingface_hub.hf_api import RepoFile

        from .fake_hub import git_blob_oid

        return [RepoFile(path=name, size=len(content), oid=git_blob_oid(content))
                for name, content in sorted(self.files.items())]

    def hf_hub_download(self, repo_id, filename, revision=None):
        path = self.root / filename.replace("/", "__")
        path.write_bytes(self.files[filename])
        return str(path)


def test_plan_deletes_only_files_the_manifest_lists(tmp_path):
    manifest = {"files": ["README.md", "config.json", "lion_old_kernel.py", "model.safetensors", MANIFEST_NAME,
                          "notes.txt", "data/train.csv"]}  # the last two: never something lion-publish writes
    repo = _Repo({"README.md": b"", "config.json": b"{}", "lion_old_kernel.py": b"# ours", "model.safetensors": b"",
                  MANIFEST_NAME: json.dumps(manifest).encode(), "notes.txt": b"", "data/train.csv": b"",
                  "my_helper.py": b"# the owner's"}, tmp_path)
    plan = plan_upload(repo, "me/x", None, ["README.md", "config.json", "model.safetensors", MANIFEST_NAME])
    assert plan.repo_exists and plan.delete == ["lion_old_kernel.py"]
    assert plan.replace == []  # everything overwritten was lion-publish's
    assert plan.foreign == ["data/train.csv", "my_helper.py", "notes.txt"]


def test_plan_without_manifest_recognises_only_bundle_files(tmp_path):
    repo = _Repo({"modeling_old.py": BUNDLE_MARKER.encode() + b"x\n", "utils.py": b"# mine\n",
                  "README.md": b"# mine", "pytorch_model.bin": b"pickle"}, tmp_path)
    plan = plan_upload(repo, "me/x", None, ["README.md", "modeling_lion.py"])
    assert plan.delete == ["modeling_old.py"]
    assert plan.replace == ["README.md"] and plan.foreign == ["pytorch_model.bin", "utils.py"]


def test_plan_for_a_new_repository(tmp_path):
    from huggingface_hub.errors import RepositoryNotFoundError

    class Missing(_Repo):
        def model_info(self, repo_id, revision=None):
            raise RepositoryNotFoundError.__new__(RepositoryNotFoundError)

    plan = plan_upload(Missing({}, tmp_path), "me/new", None, ["b", "a"])
    assert plan.repo_exists is False and plan.delete == [] and plan.upload == ["a", "b"]


# ---------------------------------------------------------------------------------------------------
# Sweep: bad flags and odd folders are one-line errors, before anything is staged
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, message", [
    (["--base-model", "/tmp/tmpab12cd/run"], "not a Hub repository id"),
    (["--dataset-split", " "], "dataset_split is empty"),
    (["--license", ""], "not a Hub licence id"),
    (["--tag", ""], "tags must be non-empty"),
    (["--dataset", "my data/set x"], "not a Hub dataset id"),
])
def test_bad_card_flags_are_refused(runs, tmp_path, capsys, extra, message):
    argv = [str(runs["vision"]), "me/x", "--dry-run", "--staging-dir", str(tmp_path / "s"), "--dataset", "cifar10"]
    assert publish_main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("lion-publish: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("repo_id", ["../..", "me/..", "me/.hidden", "a--b/c", "me/x/y"])
def test_bad_repository_ids_are_refused(runs, capsys, repo_id):
    assert publish_main([str(runs["vision"]), repo_id, "--dry-run", "--dataset", "cifar10"]) == 2
    assert "repo" in capsys.readouterr().err


def test_odd_staging_and_metrics_paths(runs, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    base = [str(runs["vision"]), "me/x", "--dry-run", "--dataset", "cifar10"]
    assert publish_main(base + ["--staging-dir", str(a_file)]) == 2
    assert "is a file" in capsys.readouterr().err and a_file.read_text() == "x"
    assert publish_main(base + ["--metrics-file", str(tmp_path)]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_tokenizer_class_must_be_a_name(runs, tmp_path):
    folder = _copy(runs["text"], tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = ["BertTokenizer"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="tokenizer_class"):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="allenai/c4")


def test_interrupted_last_checkpoint_is_skipped(runs, tmp_path):
    from lion_hf.hub.publish import find_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    _copy(runs["vision"], run, "checkpoint-4")
    half = run / "checkpoint-8"
    half.mkdir()
    (half / "config.json").write_text((runs["vision"] / "config.json").read_text())  # weights never written
    assert find_checkpoint(run) == run / "checkpoint-4"


@pytest.mark.parametrize("revision", ["../main", "-x", "a b", "v1.lock", "refs/.."])
def test_bad_revisions_are_refused(runs, capsys, revision):
    assert publish_main([str(runs["vision"]), "me/x", "--dry-run", "--dataset", "cifar10", f"--revision={revision}"]) == 2
    assert "not a usable branch name" in capsys.readouterr().err


def test_unreachable_hub_is_a_one_line_error(runs, monkeypatch, capsys):
    import sys

    import httpx2

    publish_module = sys.modules["lion_hf.hub.publish"]  # lion_hf.hub.publish is the function

    def refuse(*args, **kwargs):
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr(publish_module, "publish", refuse)
    assert publish_main([str(runs["vision"]), "me/x", "--dataset", "cifar10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lion-publish: error: could not reach the Hub") and err.count("\n") == 1


def test_table_cells_cannot_break_the_card(runs, tmp_path):
    import lion_hf
    from lion_hf.hub import RunMetric, render_run_card

    config = lion_hf.LionConfig.from_pretrained(runs["vision"])
    card = render_run_card(model_name="x\n# injected", config=config, dataset_id="d", dataset_name="a | b\n| c",
                           metrics=[RunMetric("accuracy", 0.5)], hyperparameters={"note": "1 | 2\n3"},
                           num_parameters=1)
    lines = card.text.splitlines()
    assert "# injected" not in lines and not any(line.startswith("| c") for line in lines)
    assert "| note | 1 \\| 2 3 |" in lines
    row = next(line for line in lines if line.startswith("| accuracy"))
    assert row.count(" | ") == 3  # four cells, the pipes inside the data set name escaped


def test_no_code_from_elsewhere_rides_along(runs, tmp_path):
    from lion_hf.hub.bundle import AUTO_MAP

    folder = _copy(runs["vision"], tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "attacker/repo--evil.Model", "AutoConfig": "evil.Config"}
    (folder / "config.json").write_text(json.dumps(config))
    staged = _stage(folder, tmp_path)
    assert json.loads((staged.folder / "config.json").read_text())["auto_map"] == AUTO_MAP
    for name, base in (("preprocessor_config.json", runs["vision"]), ("tokenizer_config.json", runs["text"])):
        folder = _copy(base, tmp_path, f"remote-{name}")
        data = json.loads((folder / name).read_text())
        data["auto_map"] = {"AutoProcessor": "attacker/repo--evil.Processor"}
        (folder / name).write_text(json.dumps(data))
        with pytest.raises(ValueError, match="uploads no code but the LION bundle"):
            stage_checkpoint(folder, tmp_path / f"s-{name}", repo_id="me/x", dataset="cifar10")


@pytest.mark.parametrize("kind, breakage, message", [
    ("text", lambda d: _set_json(d / "tokenizer_config.json", tokenizer_class="T5Tokenizer") or
     (d / "spiece.model").write_bytes(b"not a sentencepiece model"), "tokenizer does not load"),
    ("text", lambda d: (d / "tokenizer.json").write_text("{\"not\": \"a tokenizer\"}"), "tokenizer does not load"),
    ("text", lambda d: _bigger_tokenizer(d), "tokens but the model's vocabulary"),
    ("vision", lambda d: _set_json(d / "preprocessor_config.json", image_processor_type="NoSuchProcessor"),
     "image processor"),
])
def test_processor_files_must_load(runs, tmp_path, kind, breakage, message):
    folder = _copy(runs[kind], tmp_path)
    breakage(folder)
    with pytest.raises(ValueError, match=message):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="cifar10")


def _bigger_tokenizer(folder):
    from transformers import BertTokenizer

    vocab = folder.parent / "big-vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(200)]))
    BertTokenizer(vocab=str(vocab)).save_pretrained(folder)


def _set_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("kind, changes", [
    ("vision", {"architectures": ["LionForMaskedLM"]}),
    ("vision", {"architectures": ["LionForCausalLM"]}),
    ("text", {"architectures": ["LionForImageClassification"]}),
    ("vision", {"architectures": "LionForImageClassification"}),
])
def test_head_must_fit_the_modality(runs, tmp_path, kind, changes):
    folder = _copy(runs[kind], tmp_path)
    _set_json(folder / "config.json", **changes)
    with pytest.raises(ValueError, match="not a LION model class for modality"):
        stage_checkpoint(folder, tmp_path / "staged", repo_id="me/x", dataset="cifar10")


def test_a_file_changed_since_the_last_publish_is_not_deleted(tmp_path):
    from lion_hf.hub.publish import write_manifest

    staged = tmp_path / "staged"
    staged.mkdir()
    for name, content in {"README.md": b"card", "lion_old.py": b"# v1", "lion_edited.py": b"# v1"}.items():
        (staged / name).write_bytes(content)
    write_manifest(staged, ["README.md", "lion_old.py", "lion_edited.py"])
    files = {p.name: p.read_bytes() for p in staged.iterdir()}
    files["lion_edited.py"] = b"# the owner's fix"  # edited on the Hub after that publish
    plan = plan_upload(_Repo(files, tmp_path), "me/x", None, ["README.md", MANIFEST_NAME])
    assert plan.delete == ["lion_old.py"] and plan.changed == ["lion_edited.py"]
    assert "lion_edited.py" in plan.foreign and plan.replace == []
    files["README.md"] = b"card, edited by hand"
    plan = plan_upload(_Repo(files, tmp_path), "me/x", None, ["README.md", MANIFEST_NAME])
    assert plan.replace == ["README.md"] and "README.md" in plan.changed


def test_a_commit_between_plan_and_upload_stops_the_upload(runs, tmp_path, monkeypatch):
    """The upload builds on the commit the plan was made from: a concurrent commit is never overwritten or
    deleted blindly."""
    from huggingface_hub import constants

    import lion_hf.hub

    from .fake_hub import FakeRepo, serve_fake_hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with serve_fake_hub(max_lifetime=60) as hub:
        repo = FakeRepo("me/race", private=False)
        hub.repos[repo.repo_id] = repo
        hub.new_commit(repo, {"modeling_old.py": BUNDLE_MARKER.encode() + b"x\n"}, "first")

        def someone_commits(plan):
            assert plan.delete == ["modeling_old.py"] and plan.head == repo.branches["main"]
            hub.new_commit(repo, {"modeling_old.py": b"# rewritten by its owner\n"}, "concurrent")

        with pytest.raises(ValueError, match="changed while publishing"):
            lion_hf.hub.publish(runs["vision"], "me/race", endpoint=hub.endpoint, token="hf_fake",
                                dataset="cifar10", before_upload=someone_commits)
        files = repo.commits[repo.branches["main"]]
        assert files == {"modeling_old.py": b"# rewritten by its owner\n"}


def test_private_flag_on_an_existing_public_repository_is_refused(runs, monkeypatch):
    from huggingface_hub import constants

    import lion_hf.hub

    from .fake_hub import FakeRepo, serve_fake_hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with serve_fake_hub(max_lifetime=60) as hub:
        repo = FakeRepo("me/public", private=False)
        hub.repos[repo.repo_id] = repo
        hub.new_commit(repo, {"notes.txt": b"public"}, "first")
        before = dict(repo.commits)
        with pytest.raises(ValueError, match="exists and is public; --private does not change"):
            lion_hf.hub.publish(runs["vision"], "me/public", endpoint=hub.endpoint, token="hf_fake",
                                dataset="cifar10", private=True)
        assert repo.commits == before  # nothing was uploaded to the public repository


def test_crafted_repository_file_names_cannot_fake_the_printed_plan(capsys):
    from lion_hf.cli import _print_plan
    from lion_hf.hub.publish import UploadPlan

    plan = UploadPlan(repo_id="me/x", revision=None, upload=["README.md"], repo_exists=True,
                      foreign=["notes.txt\ndelete: nothing", "\x1b[2Kclean.txt"])
    _print_plan(plan)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "'notes.txt\\ndelete: nothing'" in out
    assert out.count("\n") == 4  # header, one upload line, "delete: nothing", the left-alone line
