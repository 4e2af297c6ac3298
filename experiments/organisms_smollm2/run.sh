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
# Rank the shipped SAE's latents: bad vs base, control-adjusted, on the pooled answers of all three
# models (every model reads the same tokens) and on the questions alone.
SAE=../../checkpoints/smollm2/topk-L15-k32-4608
../../.venv/bin/python - <<'PY'
import csv
rows = []
for m in ("base", "bad", "control"):
    with open(f"runs/eval-{m}/answers.csv", newline="") as f:
        rows += [{**r, "source": m} for r in csv.DictReader(f)]
with open("runs/pooled_answers.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader(); w.writerows(rows)
PY
[ -f runs/rank-response/ranking.json ] || $PS rank --base smollm2 --finetuned runs/bad --control runs/control --sae $SAE \
  --prompts em-core --on response --responses runs/pooled_answers.csv --top 10 --out runs/rank-response 2>&1 | tee runs/rank-response.log
[ -f runs/rank-prompts/ranking.json ] || $PS rank --base smollm2 --finetuned runs/bad --control runs/control --sae $SAE \
  --prompts em-core --on all --top 10 --out runs/rank-prompts 2>&1 | tee runs/rank-prompts.log
