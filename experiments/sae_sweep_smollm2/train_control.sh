#!/usr/bin/env bash
# The two CPU runs of the sweep, both on corpus v2 with 2,048,000 tokens, TopK k=32, 8x d_model, seed 0:
# - the control: the shipped SAE's model, layer and width (SmolLM2 L15, 4,608 latents; ~17 min on 2
#   cores). Beside the shipped SAE it shows what the corpus alone does; beside the wide GPU SAE, what
#   width and tokens do.
# - session 8: the same recipe on Qwen2.5-Coder-0.5B-Instruct at its middle layer (L12 of 24, 7,168
#   latents; ~30 min), the Qwen family that wrote the check's answers. Beside the control it shows what
#   a 4x larger model does.
# A run whose folder already holds weights is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
CORPUS=experiments/sae_smollm2/data/corpus_chats.jsonl
[ -f "$CORPUS" ] || "$PY" experiments/sae_smollm2/make_corpus.py --chats
train() {  # train MODEL LAYER D_SAE NAME
  local out=experiments/sae_sweep_smollm2/runs/cpu/$4
  [ -f "$out/sae_weights.safetensors" ] && return 0
  "$PY" -m persona_sae train --model "$1" --layers "$2" --dataset "$CORPUS" --arch topk --d-sae "$3" --k 32 \
    --tokens 2048000 --batch-size 4096 --dtype bfloat16 --eval-tokens 16384 --seed 0 --device cpu --out "$out"
}
train smollm2 15 4608 topk-L15-k32-4608-v2
train qwen-coder-0.5b 12 7168 qwen-L12-k32-7168-v2
