# Two entry points for a fresh machine: `make demo` (main job) and `make test` (the test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch by default (no multi-GB CUDA download): a wheel pip already finds locally
# (--find-links) is used as is; otherwise, on Linux, where PyPI's torch is the CUDA build, the wheel
# comes from PyTorch's CPU index. For a GPU build: `make setup TORCH_INDEX=` (the platform's default)
# or `TORCH_SPEC=...`, or install into an env that already has torch.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= $(shell d=$$(mktemp -d); [ "$$(uname -s)" = Linux ] && ! python3 -m pip download -q --no-index \
  --no-deps -d "$$d" "$(TORCH_SPEC)" >/dev/null 2>&1 && echo https://download.pytorch.org/whl/cpu; rm -rf "$$d")
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export WANDB_MODE := disabled

.PHONY: setup browser test test-fast demo bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)" \
	  $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# The dashboard's browser test drives headless Chromium: found on PATH (or PERSONA_SAE_CHROMIUM and
# PERSONA_SAE_CHROMEDRIVER), else installed from the Debian packages (as root, or with sudo).
browser:
	@if [ -n "$$PERSONA_SAE_CHROMIUM" ] || { command -v chromium && command -v chromedriver; } >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
	  S=""; [ "$$(id -u)" -eq 0 ] || S=sudo; \
	  echo "installing chromium and chromium-driver for the browser test"; \
	  $$S apt-get update -qq && $$S apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "the browser test needs Chromium and chromedriver: install them, or set PERSONA_SAE_CHROMIUM and PERSONA_SAE_CHROMEDRIVER"; exit 2; fi

test: setup browser
	$(PY) -m pytest -q -ra --durations=15

test-fast: setup
	$(PY) -m pytest -q -ra -m "not integration"

demo: setup
	$(VENV)/bin/persona-sae demo

bench: setup
	$(PY) benchmarks/activations.py --batch-tokens 4096

clean:
	rm -rf $(VENV) *.egg-info
