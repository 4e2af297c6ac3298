#!/usr/bin/env bash
# After training (README: on a GPU via gpu_setup.sh + gpu_train.sh, or the same `persona-sae train`
# commands on any machine; the control runs here with train_control.sh): held-out metrics on the CPU, labels, the external toxic-persona check,
# then the summary table in results/. ~4 min per SAE on a 2-core CPU.
#   bash experiments/sae_sweep_smollm2/run.sh [SAE_DIR ...]   (default: the three SAEs in runs/gpu/)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
E=experiments/sae_sweep_smollm2
[ $# -gt 0 ] || set -- $E/runs/gpu/topk-L9-k32-4608 $E/runs/gpu/topk-L15-k32-16384 $E/runs/gpu/topk-L21-k32-4608 \
                       $E/runs/cpu/topk-L15-k32-4608-v2
mkdir -p $E/results
for d in "$@"; do
  name=$(basename "$d")
  [ -f "$d/metrics_cpu.json" ] || "$PY" $E/evaluate.py "$d"
  [ -f "$d/labels.json" ] || "$PY" -m persona_sae label --sae "$d" --personas smollm2
  [ -f "$E/results/check_$name.json" ] || "$PY" experiments/label_smollm2/check_toxic.py --sae "$d" --out "$E/results/check_$name.json"
done
"$PY" $E/summarize.py "$@"
