#!/usr/bin/env bash
# Steering sweep on SmolLM2 along the toxic-persona-tagged latent that ranks highest in the insecure-code
# ranking (4046), with a random direction of the same norm, judged by the persona-probe proxy.
# 12 em-core questions x 2 answers per coefficient; ~5 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p runs
../../.venv/bin/persona-sae steer --model smollm2 --sae ../../checkpoints/smollm2/topk-L15-k32-4608 --latent 4046 \
  --coef -1,0,1 --limit 12 --samples 2 --temperature 0.7 --judge probe --out runs/sweep 2>&1 \
  | grep -v "it/s\]\|answer/s\]\|condition/s\]\|tok/s\]" > runs/sweep.log
