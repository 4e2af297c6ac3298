#!/usr/bin/env bash
# Labels for the shipped SmolLM2 SAE and the external check of its toxic-persona tag (README.md):
#     bash experiments/label_smollm2/run.sh
# Settings: profile.env beside this file. Stages, each skipped when its output exists:
#   label (labels.json beside the SAE; log in results/label.log) -> the external check on a real EM
#   model's answers (results/check_toxic.json) -> the chance check: a random-weight SAE of the shipped
#   shape labelled with the default rule and with the fixed thresholds alone, and the shipped SAE again
#   under the default rule (runs/, summarised in results/random_null.json) -> the README's tables.
# DATA_FROM=/path/to/mirror installs the public data from a local copy; PY=echo prints the commands.
set -euo pipefail
source "$(dirname "$0")/../common/env.sh"
E=experiments/label_smollm2
cd "$ROOT"
load_profile "$E/profile.env"
mkdir -p "$E/results"
fetch_data clarifying-em
[ -f "$SAE/labels.json" ] || { time "${PS[@]}" label --sae "$SAE" --model "$MODEL" --personas "$PERSONAS"; } 2>&1 \
  | tee "$E/results/label.log"
# shellcheck disable=SC2086
[ -f "$E/results/check_toxic.json" ] || "$PY" -m experiments.common.check_toxic $CHECK_OPTS --sae "$SAE" \
  --out "$E/results/check_toxic.json"
R=$E/runs
mkdir -p "$R"
[ -d "$R/random-sae" ] || "$PY" -m experiments.label_smollm2.random_sae make --like "$SAE" --seed 0 --out "$R/random-sae"
label_into() {  # OUT SAE, then label options
  local out=$1 sae=$2; shift 2
  [ -f "$out/labels.json" ] || { time "${PS[@]}" label --sae "$sae" --model "$MODEL" --out "$out" "$@"; } \
    > "$out.log" 2>&1
}
label_into "$R/label-random" "$R/random-sae"
label_into "$R/label-random-thresholds" "$R/random-sae" --fdr 1 --null-saes 0
label_into "$R/label-shipped" "$SAE"
[ -f "$E/results/random_null.json" ] || "$PY" -m experiments.label_smollm2.random_sae collect \
  "shipped, committed labels.json=$SAE" "shipped, default rule=$R/label-shipped" \
  "random, default rule=$R/label-random" "random, thresholds alone=$R/label-random-thresholds" \
  --out "$E/results/random_null.json"
"$PY" -m experiments.label_smollm2.summarize
