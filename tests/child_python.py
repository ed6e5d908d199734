"""Child Pythons of the tests (``subprocess``): what their scripts start with, and how they are run."""

import json
import subprocess
import sys
from pathlib import Path

#: The start of a child script that must run without ``lion_hf`` (as on a machine that never installed it): any
#: import of it fails, so a model loads only through the remote code saved beside its weights.
HIDE_LION_HF = '''
import importlib.abc, json, sys
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "lion_hf":
            raise ModuleNotFoundError("lion_hf is hidden in this test")
        return None
sys.meta_path.insert(0, _Blocker())
'''


def run_without_lion_hf(script: str, args: dict, folder: Path, timeout: int = 300) -> dict:
    """Run ``script`` (starting with :data:`HIDE_LION_HF`) in a child Python with ``args`` as JSON in argv[1],
    offline, with the Triton interpreter, in ``folder``; returns the JSON of its last output line."""
    env = {"HF_HOME": str(folder / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "PATH": "/usr/bin:/bin", "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-c", script, json.dumps(args)], capture_output=True, text=True,
                         env=env, cwd=folder, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])
