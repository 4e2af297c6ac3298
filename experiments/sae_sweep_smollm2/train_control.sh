#!/usr/bin/env bash
# The control: corpus v2 at the shipped SAE's width, layer and token count (L15, 4,608 latents, 2M
# tokens), on this CPU (~17 min on 2 cores). Beside the shipped SAE it shows what the corpus alone does;
# beside the wide GPU SAE, what width and tokens do.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
CORPUS=experiments/sae_smollm2/data/corpus_chats.jsonl
[ -f "$CORPUS" ] || "$PY" experiments/sae_smollm2/make_corpus.py --chats
"$PY" -m persona_sae train --model smollm2 --layers 15 --dataset "$CORPUS" --arch topk --d-sae 4608 --k 32 \
  --tokens 2048000 --batch-size 4096 --dtype bfloat16 --eval-tokens 16384 --seed 0 --device cpu \
  --out experiments/sae_sweep_smollm2/runs/cpu/topk-L15-k32-4608-v2
