#!/usr/bin/env bash
# Device call 1 of 2 (README "Running it on a GPU"): install the carried wheels, unpack the corpus,
# check that the training imports work. Run from the repo root on the GPU machine.
set -euo pipefail
G=${G:-$PWD/.gpu}  # the carried folders are copied here first: a call removes the last call's carried paths
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$G/site" "$G"/a/whl/*.whl
# sae-lens imports wandb at module level but only calls it when logging to wandb, which persona-sae never
# does; the real wheel (20 MB) does not fit the 64 MiB transfer beside the model, so an empty module stands in.
mkdir -p "$G/site/wandb" && echo '"""Empty stand-in: persona-sae never logs to wandb."""' > "$G/site/wandb/__init__.py"
gunzip -c "$G/a/corpus_chats.jsonl.gz" > "$G/corpus_chats.jsonl"
export PYTHONPATH=$G/site:$PWD
python3 -V
nvidia-smi -L
python3 -c "import torch, transformers, sae_lens, transformer_lens, datasets, persona_sae.train as t; \
print('torch', torch.__version__, 'transformers', transformers.__version__, 'sae_lens', sae_lens.__version__, torch.cuda.get_device_name())"
