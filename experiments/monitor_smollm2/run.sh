#!/usr/bin/env bash
# Bad-data mixtures and re-alignment for the monitor study (SmolLM2, LoRA, 500 rows, seed 0):
# insecure-code answers mixed into its secure control at 5, 10, 25, 50% (0% and 100% are the control
# and bad organisms of experiments/organisms_smollm2), then the 100% organism re-aligned on 100 and
# 300 secure-code rows. ~5 min per 500-row run on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
PS=../../.venv/bin/persona-sae
mkdir -p runs
for f in 0.05 0.10 0.25 0.50; do
  out=runs/mix-$f
  [ -f $out/run.json ] && grep -q '"status": "done"' $out/run.json && continue
  $PS finetune --data insecure-code --n 500 --mix-bad $f --seed 0 --out $out 2>&1 | tail -n 12 > runs/finetune-mix-$f.log
done
for n in 100 300; do
  out=runs/realign-$n
  [ -f $out/run.json ] && grep -q '"status": "done"' $out/run.json && continue
  $PS finetune --model ../organisms_smollm2/runs/bad --data insecure-code --realign $n --seed 1 --out $out 2>&1 | tail -n 12 > runs/finetune-realign-$n.log
done
# The monitor: the toxic-persona-tagged latents and the assistant-persona latent that fell, on the em-core
# questions, across 0% (control) .. 100% (bad) bad data and the re-alignment runs.
O=../organisms_smollm2/runs
SAE=../../checkpoints/smollm2/topk-L15-k32-4608
$PS monitor --sae $SAE --latents 4046,702,2003,3129 --base smollm2 \
  --checkpoints $O/control runs/mix-0.05 runs/mix-0.10 runs/mix-0.25 runs/mix-0.50 $O/bad runs/realign-100 runs/realign-300 \
  --names 0% 5% 10% 25% 50% 100% realign-100 realign-300 --misaligned 0 1 1 1 1 1 0 0 \
  --out runs/monitor 2>&1 | tail -n 25 > runs/monitor.log
