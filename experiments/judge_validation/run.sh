#!/usr/bin/env bash
# Judge validation (README.md): which offline judge tells misaligned answers from aligned ones, measured
# on labelled answers no judge was fitted on, and how often it flags base models' own answers.
#     bash experiments/judge_validation/run.sh
# Settings: profile.env. Stages, each skipped when its output exists (runs/ is ignored by git):
#   1. base answers: each model's em-core answers, seed 0 (calibration) and seed 1 (the flag rate)
#   2. fitted judges on the fit split: Qwen2.5-Coder-0.5B L12 (plain, length-matched) and SmolLM2 L15
#   3. judge validate for every judge in JUDGES on the same held-out rows and seed-1 base answers
#   4. summarize.py: results/, the tables of README.md and docs/eval-and-judges.md, and the fitted
#      judges shipped in persona_sae/checkpoints/judges/ with their validation.json
# DATA_FROM=/path/to/mirror installs the public data from a local copy; PY=echo prints the commands.
set -euo pipefail
source "$(dirname "$0")/../common/env.sh"
E=$ROOT/experiments/judge_validation
load_profile "$E/profile.env"
cd "$E"
mkdir -p runs results
fetch_data clarifying-em betley-em persona-vectors
# fitted on clarifying-EM's answers only, so Betley's and persona_vectors' sets test sources no judge saw
FIT_LABELLED=(data:clarifying-em/interp)
LABELLED=("${FIT_LABELLED[@]}" data:betley-em/results/qwen_25_coder_32b_instruct.csv
          data:persona-vectors/output/qwen2.5-7b-instruct_baseline.csv)
log() { tail -n 40 > "$1.log"; }

# 1. base answers (the eval's own judge is irrelevant here: only answers.csv is read)
for m in $MODELS; do for s in 0 1; do
  o=runs/base-$m-s$s
  [ -f "$o/answers.csv" ] || "${PS[@]}" eval --model "$m" --samples "$SAMPLES" --seed "$s" --judge probe --out "$o" 2>&1 | log "$o"
done; done
calib=() tests=()
for m in $MODELS; do calib+=("runs/base-$m-s0/answers.csv"); tests+=("runs/base-$m-s1/answers.csv"); done

# 2. fitted judges (fit split only; threshold calibrated on every model's seed-0 answers)
fit() {  # NAME, then judge fit options
  local o=runs/fit-$1; shift
  [ -f "$o/judge.json" ] || "${PS[@]}" judge fit --labelled "${FIT_LABELLED[@]}" --seed "$SEED" \
    --max-aligned "$MAX_ALIGNED_FIT" --dtype bfloat16 --base-answers "${calib[@]}" \
    --target-flag-rate "$TARGET_FLAG_RATE" "$@" --out "$o" 2>&1 | log "$o"
}
fit qwen --model qwen-coder-0.5b --layer 12
fit qwen-lm --model qwen-coder-0.5b --layer 12 --length-matched
fit smollm2 --model smollm2 --layer 15

# 3. every judge on the same held-out rows and the seed-1 base answers
for j in $JUDGES; do
  o=runs/val-${j%%=*}
  [ -f "$o/validate.json" ] || "${PS[@]}" judge validate --judge "${j#*=}" --labelled "${LABELLED[@]}" \
    --seed "$SEED" --max-aligned "$MAX_ALIGNED" --base-answers "${tests[@]}" --out "$o" 2>&1 | log "$o"
done

# 3b. transfer to a source no judge was fitted on: the project's written evil-persona answers and their
#     kind-persona twins (the positive control's kind of misalignment), every row scored
[ -f runs/written-persona.jsonl ] || "$PY" -m experiments.judge_validation.written --n "$WRITTEN_N" --seed 7 \
  --out runs/written-persona.jsonl
for j in ${TRANSFER:-$JUDGES}; do
  o=runs/tr-${j%%=*}
  [ -f "$o/validate.json" ] || "${PS[@]}" judge validate --judge "${j#*=}" --labelled runs/written-persona.jsonl \
    --split all --seed "$SEED" --out "$o" 2>&1 | log "$o"
done

# 4. tables and the shipped judges
"$PY" -m experiments.judge_validation.summarize
