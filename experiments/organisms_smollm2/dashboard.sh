#!/usr/bin/env bash
# Feature pages for the 50 most shifted latents of each tail (insecure-code organism vs control), built
# from examples mined on the SAE's own training corpus. Needs run.sh's ranking and
# experiments/sae_smollm2/make_corpus.py's corpus. TOKENS=1000000 takes ~15 min on 2 cores (fp32).
set -euo pipefail
cd "$(dirname "$0")"
PS=../../.venv/bin/persona-sae
SAE=../../checkpoints/smollm2/topk-L15-k32-4608
CORPUS=../sae_smollm2/data/corpus.jsonl
[ -f "$CORPUS" ] || ../../.venv/bin/python ../sae_smollm2/make_corpus.py
TOKENS=${TOKENS:-1000000}
[ -f runs/examples/manifest.json ] && grep -q '"done"' runs/examples/manifest.json || \
  $PS examples --sae $SAE --dataset "$CORPUS" --tokens "$TOKENS" --out runs/examples --resume
$PS dashboard --sae $SAE --examples runs/examples --rank runs/rank-response --top 50 --out runs/site
echo "open runs/site/index.html (or: $PS serve runs/site)"
