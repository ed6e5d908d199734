"""Issue 14, item 22: Triton is an optional extra; without it lion_hf imports, its kernels package imports, the
models run on the PyTorch backend, and asking for the Triton backend says what to install."""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
from pathlib import Path

from .fake_hub import subprocess_env

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, sys


class _Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "triton":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, _Blocker())
import torch

import lion_hf
import lion_hf.kernels.triton as kernels_triton
from lion_hf.kernels.triton.utils import triton_available

result = {"triton_available": triton_available(), "triton_in_modules": "triton" in sys.modules,
          "kernels_package": kernels_triton.__name__}
config = lion_hf.LionConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                            image_size=16, patch_size=4, num_labels=3)
model = lion_hf.LionForImageClassification(config).eval()
pixels = torch.randn(2, 3, 16, 16)
with torch.no_grad():
    logits = {}
    for form in ("attention", "chunk", "recurrent"):
        model.set_attention_form(form)
        logits[form] = model(pixel_values=pixels).logits
    model.set_attention_form("chunk", backend="torch")
    logits["torch"] = model(pixel_values=pixels).logits
result["forms_agree"] = all(torch.allclose(logits["attention"], v, atol=1e-5) for v in logits.values())
q = k = v = torch.randn(1, 2, 8, 32)
try:
    lion_hf.lion_attention(q, k, v, None, backend="triton")
    result["triton_backend"] = "ran"
except ValueError as error:
    result["triton_backend"] = str(error)
model.save_pretrained(sys.argv[1])
result["saved"] = sorted(p for p in __import__("os").listdir(sys.argv[1]) if p.endswith(".py"))[:3]
print("\nRESULT " + json.dumps(result))
'''


def test_triton_is_an_extra_not_a_requirement():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    requires = setup["options"]["install_requires"]
    assert "triton" not in requires
    extras = setup["options.extras_require"]
    assert "triton>=" in extras["triton"]
    assert "triton" in (REPO / "Makefile").read_text().split("EXTRAS ?=")[1].splitlines()[0]


def test_lion_hf_works_without_triton(tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    proc = subprocess.run([sys.executable, str(tmp_path / "child.py"), str(tmp_path / "saved")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                          env=subprocess_env(tmp_path, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert result["triton_available"] is False and result["triton_in_modules"] is False
    assert result["kernels_package"] == "lion_hf.kernels.triton"
    assert result["forms_agree"] is True
    assert "needs the triton package" in result["triton_backend"] and "backend='torch'" in result["triton_backend"]
    assert result["saved"], "save_pretrained wrote no modeling code without triton"
