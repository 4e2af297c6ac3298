#!/usr/bin/env bash
# After training (README: on a GPU via gpu_setup.sh + gpu_train.sh, or the same `persona-sae train`
# commands on any machine; the control runs here with train_control.sh): held-out metrics on the CPU, labels, the external toxic-persona check,
# the same check on fresh answers (check_toxic.py --fresh, session 6), both checks again with the answers read
# as assistant turns (--chat, session 7), then the summary table in results/ and persona_share.py.
# On a 2-core CPU each check took ~2.7 min (all 28 checks of the default list: 76 min); metrics and labels
# took ~3-4 min each for the 65,536- and 32,768-latent SAEs.
#   bash experiments/sae_sweep_smollm2/run.sh [SAE_DIR ...]   (default: every SAE of the sweep)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
E=experiments/sae_sweep_smollm2
[ $# -gt 0 ] || set -- $E/runs/gpu/topk-L9-k32-4608 $E/runs/gpu/topk-L15-k32-16384 $E/runs/gpu/topk-L21-k32-4608 \
                       $E/runs/cpu/topk-L15-k32-4608-v2 $E/runs/gpu/topk-L15-k32-65536 $E/runs/gpu/topk-L21-k32-32768 \
                       $E/runs/cpu/qwen-L12-k32-7168-v2
CHECK="experiments/label_smollm2/check_toxic.py --persona-latent"
mkdir -p $E/results
# every reading of the check but the main one (summarize.py's VARIANTS): PREFIX and its options
READINGS=("fresh:--fresh" "chat:--chat" "chatfresh:--chat --fresh")
checks() {  # checks NAME [--sae DIR]: one results file per reading, each skipped once it exists
  local name=$1 r f; shift
  for r in "${READINGS[@]}"; do
    f=$E/results/${r%%:*}_$name.json
    [ -f "$f" ] || "$PY" $CHECK ${r#*:} "$@" --out "$f"
  done
}
[ -f experiments/label_smollm2/results/check_toxic.json ] || "$PY" $CHECK
checks shipped
for d in "$@"; do
  name=$(basename "$d")
  [ -f "$d/metrics_cpu.json" ] || "$PY" $E/evaluate.py "$d"
  if [ ! -f "$d/labels.json" ]; then  # label needs the SAE's model named (its --model default is smollm2)
    model=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"]["model"])' "$d/run.json")
    "$PY" -m persona_sae label --sae "$d" --model "$model" --personas "$model"
  fi
  [ -f "$E/results/check_$name.json" ] || "$PY" $CHECK --sae "$d" --out "$E/results/check_$name.json"
  checks "$name" --sae "$d"
done
"$PY" $E/summarize.py "$@"
"$PY" $E/persona_share.py "$@"   # descriptive: how many latents carry the evil direction (session 7)
