# Two entry points for a fresh machine: `make demo` (main job) and `make test` (the test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU wheel by default (a local wheel here, no multi-GB CUDA download); override for a GPU build,
# e.g. `make setup TORCH_SPEC=torch`, or install into an env that already has torch.
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE := disabled

.PHONY: setup test test-fast demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

test: setup
	$(PY) -m pytest -q -ra

test-fast: setup
	$(PY) -m pytest -q -ra -m "not integration"

demo: setup
	$(VENV)/bin/persona-sae demo

bench: setup
	$(PY) benchmarks/activations.py

clean:
	rm -rf $(VENV) *.egg-info
