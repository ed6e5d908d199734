# Quick start: `make demo` and `make test` work on a fresh machine (CPU only, no download of weights or data).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of this torch release is what CI installs; override for a GPU machine, e.g. TORCH_SPEC=torch.
TORCH_SPEC ?= torch==2.13.0
# Extras of the editable install. `triton` (optional for users) lets the CPU suite run the Triton kernels in
# the interpreter; drop it (EXTRAS=examples,dev) to test without Triton: the kernel tests are then skipped.
EXTRAS ?= examples,dev,triton
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-slow test-gpu transformers-suite clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: install
	$(PY) -m lion_hf.demo

test: install
	$(PY) -m pytest -q tests

test-slow: install
	$(PY) -m pytest -q -m slow tests

test-gpu: install
	$(PY) -m pytest -q -m gpu tests

transformers-suite: install
	$(PY) scripts/run_transformers_common_tests.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
