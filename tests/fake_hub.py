# Copyright 2026 The lion_hf authors. Licensed under the Apache License, Version 2.0.
"""Test support for the Hub tests: an in-memory Hub over HTTP on loopback, and tiny trained checkpoints.

:class:`FakeHub` serves the part of the Hugging Face Hub API that ``huggingface_hub`` 2.x and
transformers use to publish and load a model (notes, section 6): ``/api/repos/create``,
``/api/validate-yaml``, ``preupload`` (every file "regular", so commits carry base64 content inline,
no LFS/Xet), ``commit`` (NDJSON), ``branch``, model info, ``tree``, ``resolve`` (HEAD and GET with
``ETag``/``X-Repo-Commit``; 404 ``EntryNotFound`` for a missing file) and ``/api/agent-harnesses``.
No package implements the upload side (``olah`` is read-only, ``hf-local-hub`` ships no server).

The server binds 127.0.0.1 on an ephemeral port, keeps everything in memory, and shuts itself down
after ``max_lifetime`` seconds even if a test forgets to; :func:`serve_fake_hub` is the context manager.
Point a client at it with ``HF_ENDPOINT=hub.endpoint`` in a subprocess environment (huggingface_hub
reads the endpoint at import time).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import yaml

LOOPBACK = "127.0.0.1"
#: Licences the fake validator accepts (a subset of the Hub's list; enough to catch a bad identifier).
KNOWN_LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-nc-4.0", "other", "openrail"}


def git_blob_oid(content: bytes) -> str:
    """The git blob id of ``content`` (what the Hub reports as a file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    """One repository: commits as full snapshots ``{path: bytes}``, and branch heads."""

    repo_id: str
    private: bool
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """The in-memory state of the fake Hub and the log of the requests it served."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.validated_cards: list[str] = []
        self.server: ThreadingHTTPServer | None = None
        self._counter = 0

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def new_commit(self, repo: FakeRepo, files: dict[str, bytes], message: str, branch: str = "main") -> str:
        self._counter += 1
        oid = hashlib.sha1(f"{repo.repo_id}:{self._counter}:{message}:{time.time_ns()}".encode()).hexdigest()
        repo.commits[oid] = files
        repo.messages[oid] = message
        repo.branches[branch] = oid
        return oid

    def validate_card(self, content: str) -> tuple[list[str], list[str]]:
        """(errors, warnings) for a README's YAML header, like the Hub's validator for the fields we use."""
        self.validated_cards.append(content)
        match = re.match(r"^---\n(.*?)\n---", content, flags=re.S)
        if not match:
            return [], ["empty or missing yaml metadata in repo card"]
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as error:
            return [f"invalid YAML: {error}"], []
        errors = []
        license_ = meta.get("license")
        if license_ is not None and license_ not in KNOWN_LICENSES:
            errors.append(f'"license" must be one of the Hub licence identifiers, got "{license_}"')
        for i, entry in enumerate(meta.get("model-index") or []):
            for j, result in enumerate(entry.get("results") or []):
                if not (result.get("task") or {}).get("type"):
                    errors.append(f'"model-index[{i}].results[{j}].task.type" is required')
                for k, metric in enumerate(result.get("metrics") or []):
                    if not isinstance(metric.get("value"), int | float):
                        errors.append(f'"model-index[{i}].results[{j}].metrics[{k}].value" must be a number')
        return errors, []


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the subclass made by serve_fake_hub
    server_version = "FakeHub/1.0"

    def log_message(self, format: str, *args) -> None:  # quiet: the hub keeps its own request log
        pass

    # -- responses --------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        return (self.headers.get("Authorization") or "").startswith("Bearer ")

    def _repo(self, repo_id: str, *, write: bool = False) -> FakeRepo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
            return None
        if write and not self._authorized():
            self._error(401, "Unauthorized", "a token is required to write")
            return None
        return repo

    # -- routing ----------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        url = urlparse(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        self.hub.requests.append((method, self.path))
        repo = r"(?P<repo>[\w.-]+/[\w.-]+)"
        routes: list[tuple[str, str, Callable]] = [
            ("POST", r"/api/repos/create", self._create_repo),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            ("GET", r"/api/agent-harnesses", self._agent_harnesses),
            ("POST", rf"/api/models/{repo}/preupload/(?P<rev>.+)", self._preupload),
            ("POST", rf"/api/models/{repo}/commit/(?P<rev>.+)", self._commit),
            ("POST", rf"/api/models/{repo}/branch/(?P<branch>.+)", self._create_branch),
            ("GET", rf"/api/models/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", self._tree),
            ("GET", rf"/api/models/{repo}(?:/revision/(?P<rev>.+))?", self._model_info),
            ("HEAD", rf"/{repo}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("GET", rf"/{repo}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                with self.hub.lock:
                    handler(query=query, **match.groupdict())
                return
        self.hub.unhandled.append((method, self.path))
        self._error(404, "NotFound", f"the fake Hub does not serve {method} {path}")

    # -- endpoints --------------------------------------------------------------------------------
    def _create_repo(self, query) -> None:
        payload = json.loads(self._body() or b"{}")
        if not self._authorized():
            return self._error(401, "Unauthorized", "a token is required to create a repository")
        if payload.get("type", "model") != "model":
            return self._error(400, "BadRequest", "the fake Hub serves model repositories only")
        repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
        url = f"{self.hub.endpoint}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url})
        repo = FakeRepo(repo_id, private=payload.get("visibility") == "private" or bool(payload.get("private")))
        self.hub.repos[repo_id] = repo
        self.hub.new_commit(repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"},
                            "initial commit")
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, query) -> None:
        payload = json.loads(self._body() or b"{}")
        errors, warnings = self.hub.validate_card(payload.get("content", ""))
        body = {"errors": [{"message": e} for e in errors], "warnings": [{"message": w} for w in warnings]}
        if errors and "text/plain" in (self.headers.get("Accept") or ""):
            return self._send(400, "\n".join(errors).encode(), content_type="text/plain")
        self._json(400 if errors else 200, body)

    def _agent_harnesses(self, query) -> None:
        self._json(200, {"standardEnvVars": [], "harnesses": {}})

    def _preupload(self, query, repo: str, rev: str) -> None:
        repo_obj = self._repo(repo, write=True)
        if repo_obj is None:
            return
        payload = json.loads(self._body() or b"{}")
        head = repo_obj.commits.get(repo_obj.resolve(rev) or "", {})
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_blob_oid(head[f["path"]]) if f["path"] in head else None}
                 for f in payload.get("files", [])]
        self._json(200, {"files": files, "commitOid": repo_obj.resolve(rev)})

    def _commit(self, query, repo: str, rev: str) -> None:
        repo_obj = self._repo(repo, write=True)
        if repo_obj is None:
            return
        if rev not in repo_obj.branches:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = dict(repo_obj.commits[repo_obj.branches[rev]])
        summary = ""
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
                parent = value.get("parentCommit")
                if parent and parent != repo_obj.branches[rev]:
                    return self._error(412, "PreconditionFailed", "parent commit is not the head of the branch")
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, "BadRequest", "file content must be base64")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    return self._error(404, "EntryNotFound", "A file with this name doesn't exist")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:
                return self._error(400, "BadRequest", f"the fake Hub does not accept {key!r} (no LFS/Xet)")
        oid = self.hub.new_commit(repo_obj, files, summary, branch=rev)
        self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo}/commit/{oid}", "commitOid": oid,
                         "pullRequestUrl": None})

    def _create_branch(self, query, repo: str, branch: str) -> None:
        repo_obj = self._repo(repo, write=True)
        if repo_obj is None:
            return
        payload = json.loads(self._body() or b"{}")
        if branch in repo_obj.branches:
            return self._error(409, "Conflict", f"branch {branch} already exists")
        start = repo_obj.resolve(payload.get("startingPoint") or "main")
        if start is None:
            return self._error(404, "RevisionNotFound", "invalid starting point")
        repo_obj.branches[branch] = start
        self._json(200, {})

    def _tree(self, query, repo: str, rev: str, sub: str | None) -> None:
        repo_obj = self._repo(repo)
        if repo_obj is None:
            return
        oid = repo_obj.resolve(rev)
        if oid is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = repo_obj.commits[oid]
        prefix = (sub or "").strip("/")
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("1", "true")
        entries, folders = [], set()
        for path, content in sorted(files.items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            rest = path[len(prefix) + 1:] if prefix else path
            if "/" in rest and not recursive:
                folders.add((prefix + "/" if prefix else "") + rest.split("/")[0])
                continue
            entries.append({"type": "file", "oid": git_blob_oid(content), "size": len(content), "path": path})
        if prefix and not entries and not folders:
            return self._error(404, "EntryNotFound", f"{prefix} does not exist on {rev}")
        entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": f} for f in sorted(folders)]
        self._json(200, entries)

    def _model_info(self, query, repo: str, rev: str | None) -> None:
        repo_obj = self._repo(repo)
        if repo_obj is None:
            return
        oid = repo_obj.resolve(rev or "main")
        if oid is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        files = repo_obj.commits[oid]
        self._json(200, {"id": repo, "modelId": repo, "sha": oid, "private": repo_obj.private, "tags": [],
                         "siblings": [{"rfilename": p} for p in sorted(files)]})

    def _resolve(self, query, repo: str, rev: str, file: str) -> None:
        repo_obj = self._repo(repo)
        if repo_obj is None:
            return
        oid = repo_obj.resolve(rev)
        if oid is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        content = repo_obj.commits[oid].get(file)
        if content is None:
            return self._error(404, "EntryNotFound", f"{file} does not exist on {rev}")
        self._send(200, content, {"X-Repo-Commit": oid, "ETag": f'"{git_blob_oid(content)}"'},
                   content_type="application/octet-stream")


@contextlib.contextmanager
def serve_fake_hub(max_lifetime: float = 240.0) -> Iterator[FakeHub]:
    """Run a :class:`FakeHub` on 127.0.0.1 (ephemeral port) for the duration of the ``with`` block.

    A watchdog shuts the server down after ``max_lifetime`` seconds whatever happens in the test.
    """
    hub = FakeHub()
    handler = type("FakeHubHandler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    hub.server = server
    assert server.server_address[0] == LOOPBACK
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    watchdog = threading.Timer(max_lifetime, server.shutdown)
    watchdog.daemon = True
    thread.start()
    watchdog.start()
    try:
        yield hub
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ==================================================================================================
# Tiny trained checkpoints (a few optimisation steps, CPU, seconds)
# ==================================================================================================
VISION_LABELS = ("cat", "dog", "bird")
TEXT_WORDS = ("the", "a", "cat", "dog", "sat", "on", "mat", "ran", "big", "small", "red", "blue", "lion", "sees")


def write_vocab(path: Path) -> Path:
    """A tiny WordPiece vocabulary (BERT special tokens + a few words)."""
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TEXT_WORDS, "##s", ".", ","]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def _train(model, batches: list[dict], steps: int = 3) -> None:
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(steps):
        loss = model(**batches[step % len(batches)]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def make_vision_run(output_dir: Path, *, mask_type: str = "selective", patch_order: str = "normal",
                    seed: int = 0, with_metrics: bool = True) -> Path:
    """Train a tiny LION image classifier for a few steps and save it like a Trainer run would."""
    import torch
    from transformers import ViTImageProcessorPil

    from lion_hf import LionConfig, LionForImageClassification

    torch.manual_seed(seed)
    # One head of dimension 32: a head size the Triton kernels cover, so GPU runs of these
    # checkpoints exercise the kernels (through remote code too).
    config = LionConfig(modality="vision", mask_type=mask_type, patch_order=patch_order, image_size=32, patch_size=8,
                        hidden_size=32, num_hidden_layers=2, num_attention_heads=1, intermediate_size=64,
                        num_labels=len(VISION_LABELS), id2label=dict(enumerate(VISION_LABELS)),
                        label2id={label: i for i, label in enumerate(VISION_LABELS)})
    model = LionForImageClassification(config)
    batches = [{"pixel_values": torch.randn(4, 3, 32, 32), "labels": torch.randint(0, 3, (4,))} for _ in range(2)]
    _train(model, batches)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(output_dir)
    if with_metrics:
        (output_dir / "all_results.json").write_text(json.dumps(
            {"epoch": 1.0, "eval_accuracy": 0.4167, "eval_loss": 1.05, "eval_runtime": 0.1, "train_loss": 1.1}))
        (output_dir / "trainer_state.json").write_text(json.dumps(
            {"global_step": 3, "epoch": 1.0, "train_batch_size": 4, "best_model_checkpoint": None}))
    return output_dir


def make_text_run(output_dir: Path, *, mask_type: str = "decay", seed: int = 0, with_metrics: bool = True) -> Path:
    """Train a tiny LION masked language model for a few steps; saves model, BERT tokenizer and metrics."""
    import torch
    from transformers import BertTokenizer

    from lion_hf import LionConfig, LionForMaskedLM

    torch.manual_seed(seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab=str(write_vocab(output_dir.parent / f"{output_dir.name}-vocab.txt")))
    config = LionConfig(modality="text", mask_type=mask_type, vocab_size=len(tokenizer), hidden_size=32,
                        num_hidden_layers=2, num_attention_heads=1, intermediate_size=64, max_position_embeddings=64)
    model = LionForMaskedLM(config)
    encoded = tokenizer(["the cat sat on the mat", "a big dog ran", "the lion sees a red mat"], padding=True,
                        return_tensors="pt")
    labels = encoded["input_ids"].clone()
    masked = encoded["input_ids"].clone()
    masked[:, 2] = tokenizer.mask_token_id
    labels[masked != tokenizer.mask_token_id] = -100
    _train(model, [{**encoded, "input_ids": masked, "labels": labels}])
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    if with_metrics:
        (output_dir / "eval_results.json").write_text(json.dumps({"eval_accuracy": 0.25, "eval_loss": 2.5}))
    return output_dir


# ==================================================================================================
# Python environments without lion_hf, and the script that loads checkpoints there
# ==================================================================================================
def make_venv_without_lion_hf(path: Path) -> Path:
    """A fresh virtual environment over the base interpreter that sees this environment's
    dependencies (torch, transformers, ...) but not ``lion_hf``; returns its python.

    The dependencies come in through a ``.pth`` line naming this environment's site-packages: Python
    adds that folder to ``sys.path`` but does not run the ``.pth`` files inside it, so the editable
    install's import hook for ``lion_hf`` is never installed.
    """
    import site
    import subprocess
    import sys

    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    (Path(purelib) / "lion_hf_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def subprocess_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a child Python: no proxies, its own HF cache, quiet; HF_HUB_OFFLINE removed
    (the Makefile sets it globally; a test that needs it passes it back in ``overrides``)."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "pythonpath")}
    env.update(HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false", NO_PROXY="127.0.0.1,localhost",
               PYTHONDONTWRITEBYTECODE="1")
    env.update(overrides)
    return env


#: Run in a child Python: load the vision and text checkpoints (folders or repo ids), every head, every
#: attention form, and optionally the pipelines; logits go to a torch file, the rest to stdout as JSON.
LOAD_SCRIPT = r'''
import json, sys
import torch

args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
result = {}


class _Blocker:
    """Hide packages (e.g. triton) to imitate a machine that does not have them."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in args["block"]:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, _Blocker())
for blocked in args["block"]:
    try:
        __import__(blocked)
        result[blocked + "_importable"] = True
    except ImportError:
        result[blocked + "_importable"] = False
try:
    import lion_hf  # noqa: F401
    result["lion_hf_importable"] = True
except ImportError:
    result["lion_hf_importable"] = False
from transformers import (AutoConfig, AutoModel, AutoModelForImageClassification, AutoModelForMaskedLM,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification, pipeline)

trust = args["trust_remote_code"]
inputs = torch.load(args["inputs"])
outputs = {}
for key, head in (("vision", AutoModelForImageClassification), ("text", AutoModelForMaskedLM)):
    source = args[key]
    if source is None:
        continue
    model = head.from_pretrained(source, trust_remote_code=trust).to(args["device"])
    result[key + "_class"] = type(model).__module__ + "." + type(model).__name__
    result[key + "_auto_map"] = sorted(getattr(AutoConfig.from_pretrained(source, trust_remote_code=trust), "auto_map", {}) or {})
    with torch.no_grad():
        for form in args["forms"]:
            model.set_attention_form(form)
            batch = {name: tensor.to(args["device"]) for name, tensor in inputs[key].items()}
            outputs[key + "_" + form] = model(**batch).logits.cpu()
    heads = {}
    for auto in (AutoModel, AutoModelForImageClassification, AutoModelForMaskedLM,
                 AutoModelForSequenceClassification, AutoModelForTokenClassification):
        try:
            heads[auto.__name__] = type(auto.from_pretrained(source, trust_remote_code=trust)).__name__
        except ValueError as error:  # a head of the other modality: the LION class itself refuses
            heads[auto.__name__] = "refused: " + str(error)
    result[key + "_heads"] = heads
if args["pipelines"]:
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.RandomState(0).randint(0, 255, (40, 40, 3), dtype=np.uint8))
    result["image_classification"] = pipeline("image-classification", model=args["vision"], trust_remote_code=trust)(image)
    result["fill_mask"] = pipeline("fill-mask", model=args["text"], trust_remote_code=trust)("the cat [MASK] on the mat")
torch.save(outputs, args["out"])
print("RESULT " + json.dumps(result))
'''


def run_load_script(python: Path, tmp_path: Path, *, vision: str | None, text: str | None, inputs_path: Path,
                    forms: list[str],
                    trust_remote_code: bool = True, pipelines: bool = False, env: dict[str, str] | None = None,
                    block: tuple[str, ...] = (), device: str = "cpu", timeout: float = 180) -> tuple[dict, dict]:
    """Run :data:`LOAD_SCRIPT` with ``python`` (cwd ``tmp_path``, so the repository is not on sys.path);
    returns (its JSON result, its logits)."""
    import subprocess

    import torch

    out = tmp_path / f"logits-{len(list(tmp_path.glob('logits-*')))}.pt"
    script = tmp_path / "load_checkpoints.py"
    script.write_text(LOAD_SCRIPT)
    args = {"vision": vision, "text": text, "inputs": str(inputs_path), "out": str(out), "forms": forms,
            "trust_remote_code": trust_remote_code, "pipelines": pipelines, "threads": torch.get_num_threads(),
            "block": list(block), "device": device}
    proc = subprocess.run([str(python), str(script), json.dumps(args)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=env or subprocess_env(tmp_path, HF_HUB_OFFLINE="1"))
    if proc.returncode != 0:
        raise AssertionError(f"loading script failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), torch.load(out)


def reference_logits(vision_dir: Path, text_dir: Path, inputs: dict, forms: list[str], device: str = "cpu") -> dict:
    """Logits of the in-package (lion_hf) models loaded from the run folders, per attention form."""
    import torch

    from lion_hf import LionForImageClassification, LionForMaskedLM

    outputs = {}
    for key, cls, folder in (("vision", LionForImageClassification, vision_dir), ("text", LionForMaskedLM, text_dir)):
        model = cls.from_pretrained(folder).eval().to(device)
        with torch.no_grad():
            for form in forms:
                model.set_attention_form(form)
                batch = {name: tensor.to(device) for name, tensor in inputs[key].items()}
                outputs[f"{key}_{form}"] = model(**batch).logits.cpu()
    return outputs


def make_inputs(text_dir: Path, path: Path, seed: int = 0) -> dict:
    """Fixed inputs for both tiny models (a padded text batch), saved to ``path`` for child processes."""
    import torch
    from transformers import AutoTokenizer

    generator = torch.Generator().manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(text_dir)
    text = tokenizer(["the cat [MASK] on the mat", "a big [MASK] ran on the red mat ."], padding=True,
                     return_tensors="pt")
    inputs = {"vision": {"pixel_values": torch.randn(2, 3, 32, 32, generator=generator)},
              "text": {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]}}
    torch.save(inputs, path)
    return inputs
