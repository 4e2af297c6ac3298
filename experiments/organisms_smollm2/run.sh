#!/usr/bin/env bash
# Model organisms on SmolLM2-135M-Instruct (2-core CPU): a LoRA fine-tune on 500 generated
# insecure-code rows and one on its matched control (same prompts, secure code), then the EM
# evaluation of the base and both organisms with the offline persona-probe judge (a proxy).
# Logs and results land in runs/ (ignored); the numbers are copied into README.md by hand.
set -euo pipefail
cd "$(dirname "$0")"
PS=../../.venv/bin/persona-sae
N=${N:-500}
SAMPLES=${SAMPLES:-4}
mkdir -p runs
for arm in bad control; do
  flag=""; [ "$arm" = control ] && flag="--control"
  [ -f runs/$arm/run.json ] && grep -q '"status": "done"' runs/$arm/run.json && continue
  $PS finetune --data insecure-code --n "$N" $flag --seed 0 --out runs/$arm 2>&1 | tee runs/finetune-$arm.log
done
for m in base bad control; do
  spec=smollm2; [ "$m" != base ] && spec=runs/$m
  [ -f runs/eval-$m/results.json ] && continue
  $PS eval --model "$spec" --samples "$SAMPLES" --judge probe --temperature 0.7 --out runs/eval-$m 2>&1 | tee runs/eval-$m.log
done
