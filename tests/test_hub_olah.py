"""Downloads through olah (a read-only Hub mirror serving a local git repository), where olah is installed.

olah is optional: it is not a project dependency and the fake Hub (tests/fake_hub.py) covers the whole
protocol. Known limits (notes section 6): olah has no upload API, and it answers 401 instead of 404 for
missing files, so tokenizer/image-processor probes for optional files fail; only model downloads
(config, weights, remote code) are checked here, for a vision checkpoint.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lion_hf.hub.publish import stage_checkpoint

from .fake_hub import (
    LOOPBACK,
    make_inputs,
    make_text_run,
    make_venv_without_lion_hf,
    make_vision_run,
    reference_logits,
    run_load_script,
    subprocess_env,
)


def _olah_cli() -> str | None:
    candidates = [os.environ.get("LION_OLAH_CLI"), shutil.which("olah-cli"),
                  str(Path(sys.executable).parent / "olah-cli")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _git_snapshot(folder: Path) -> None:
    """Make ``folder`` (a throwaway copy under the test's tmp dir) a one-commit git repository."""
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(folder.parent), "GIT_AUTHOR_NAME": "test",
           "GIT_AUTHOR_EMAIL": "test@localhost", "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@localhost"}
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "tiny LION checkpoint"]):
        subprocess.run(["git", "-C", str(folder), *argv], check=True, env=env, timeout=60, capture_output=True)


@pytest.mark.skipif(_olah_cli() is None, reason="olah is not installed (optional: `pip install olah`, or set "
                    "LION_OLAH_CLI to an olah-cli of another environment); the fake Hub tests cover publishing")
@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to build olah's local mirror repository")
def test_vision_checkpoint_downloads_through_olah(tmp_path):
    run = make_vision_run(tmp_path / "vision-run", mask_type="decay", patch_order="s")
    mirror = tmp_path / "mirrors" / "models" / "lion-test" / "tiny-vision"
    stage_checkpoint(run, mirror, repo_id="lion-test/tiny-vision", dataset="cifar10")
    _git_snapshot(mirror)
    port = _free_port()
    config = tmp_path / "olah.toml"
    config.write_text(f'[basic]\nhost = "{LOOPBACK}"\nport = {port}\nrepos-path = "{tmp_path / "repos"}"\n'
                      f'mirrors-path = ["{tmp_path / "mirrors"}"]\n[accessibility]\noffline = true\n')
    log = (tmp_path / "olah.log").open("w")
    server = subprocess.Popen([_olah_cli(), "-c", str(config)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail(f"olah did not start: {(tmp_path / 'olah.log').read_text()[-2000:]}")
                time.sleep(0.3)
        python = make_venv_without_lion_hf(tmp_path / "venv")
        text_run = make_text_run(tmp_path / "text-run")  # only for the shared input file
        inputs = make_inputs(text_run, tmp_path / "inputs.pt")
        env = subprocess_env(tmp_path, HF_ENDPOINT=f"http://{LOOPBACK}:{port}")
        result, remote = run_load_script(python, tmp_path, vision="lion-test/tiny-vision", text=None,
                                         inputs_path=tmp_path / "inputs.pt", forms=["attention", "recurrent"], env=env)
        assert result["lion_hf_importable"] is False
        assert result["vision_class"].startswith("transformers_modules.")
        local = reference_logits(run, text_run, inputs, ["attention", "recurrent"])
        for key in ("vision_attention", "vision_recurrent"):
            assert torch.equal(remote[key], local[key]), key
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        log.close()
