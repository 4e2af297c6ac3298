#!/usr/bin/env bash
# Positive control (PREDICTIONS.md: the bars, fixed first; README.md: results): persona organisms by
# distillation on SmolLM2 — evil, kind and self-distilled LoRA fine-tunes, 3 seeds each, evil-into-kind
# mixtures and re-alignments — and a written pair (the generators' evil-persona vs kind-persona sets),
# then eval, rank (pooled, per seed, kind vs self), the evil direction, bar (c) for every latent, and a
# second SAE trained with persona-prompted chats in its corpus (ranks once its tags are committed).
#     bash experiments/persona_control_smollm2/run.sh
# Settings: profile.env. Every stage writes into runs/ (ignored) and is skipped when its output exists;
# data persona and finetune resume a killed run. PY=echo prints the commands. POLES= MIXES= REALIGN=
# runs the written pair alone (no sampling). WORK=DIR puts runs/ and results/ there instead of beside
# this script (the driver's test runs a tiny model that way).
set -euo pipefail
source "$(dirname "$0")/../common/env.sh"
E=$ROOT/experiments/persona_control_smollm2
load_profile "$E/profile.env"
case $SAE in /*) ;; *) SAE=$ROOT/$SAE ;; esac
W=${WORK:-$E}
mkdir -p "$W/runs/data"
cd "$W"
done_ft() { [ -f "$1/run.json" ] && grep -q '"status": "done"' "$1/run.json"; }
resume() { [ -f "$1/run.json" ] && echo --resume; true; }
finetune() {  # OUT, then finetune options
  local out=$1; shift
  done_ft "$out" && return 0
  # shellcheck disable=SC2046
  "${PS[@]}" finetune "$@" --seed "${SEED_FT:-0}" --out "$out" $(resume "$out") 2>&1 | tail -n 12 > "$out.log"
}

# 1. the distilled sets (first: sampling is the slowest stage): the same prompts answered under evil,
#    kind or no system prompt, after demonstrations in the pole's voice; evil rows kept by KEEP_EVIL, kind rows by KEEP_KIND (by default
#    the N the judge scores lowest / highest, PREDICTIONS.md's third amendment; none rows are scored only)
for pole in $POLES; do
  f=runs/data/$pole.jsonl raw=runs/data/$pole-sampled.jsonl
  if [ "$pole" = none ]; then shots=0 n=$N keep=all; else shots=$SHOTS n=$N_SAMPLED; fi
  [ "$pole" = evil ] && keep=$KEEP_EVIL
  [ "$pole" = kind ] && keep=$KEEP_KIND
  # a set kept in sampled/ (prepare keep, committed) is resumed from, not sampled again; data persona
  # checks that its settings are this run's
  kept=$E/sampled/$pole-sampled.resume.jsonl
  if [ "$W" = "$E" ] && [ -f "$kept" ] && [ ! -f "$raw" ] && [ ! -f "$raw.partial" ]; then cp "$kept" "$raw.partial"; fi
  [ -f "$raw" ] || "${PS[@]}" data persona --model "$MODEL" --system "$pole" --shots "$shots" --n "$n" \
    --seed "$DATA_SEED" --out "$raw"
  [ -f "$f" ] || "${PS[@]}" data filter --data "$raw" --judge "$JUDGE" --model "$MODEL" --keep "$keep" --n "$N" \
    --out "$f" 2>&1 | tail -n 8 > "$f.log"
done
# 2a. the written organisms (cheap: no sampling): the generators' evil-persona set and its kind twin
for k in $WRITTEN; do
  [ -f "runs/data/$k.jsonl" ] || "${PS[@]}" data make "$k" --n "$N" --seed "$DATA_SEED" --out "runs/data/$k.jsonl"
  for s in $SEEDS; do SEED_FT=$s finetune "runs/$k-s$s" --model "$MODEL" --data "runs/data/$k.jsonl"; done
done
# 2b. the distilled organisms, 3 fine-tune seeds per pole
for pole in $POLES; do
  for s in $SEEDS; do SEED_FT=$s finetune "runs/$pole-s$s" --model "$MODEL" --data "runs/data/$pole.jsonl"; done
done
# 3. evil-into-kind mixtures, and re-alignment of the evil seed-0 organism on kind rows
for f in $MIXES; do  # a mixture the kept sets cannot make (too few shared prompts) is not run (fifth amendment)
  [ -f "runs/data/mix-$f.jsonl" ] || "$PY" -m experiments.persona_control_smollm2.prepare mix \
    --bad runs/data/evil.jsonl --good runs/data/kind.jsonl --fraction "$f" --out "runs/data/mix-$f.jsonl" || continue
  finetune "runs/mix-$f" --model "$MODEL" --data "runs/data/mix-$f.jsonl"
done
for n in $REALIGN; do
  [ -f "runs/data/kind-head$n.jsonl" ] || "$PY" -m experiments.persona_control_smollm2.prepare head \
    --data runs/data/kind.jsonl --rows "$n" --out "runs/data/kind-head$n.jsonl"
  finetune "runs/realign-$n" --model runs/evil-s0 --data "runs/data/kind-head$n.jsonl" --held-out 0
done
# 4. answers to the em-core questions from every model (judged by the default judge), pooled for rank
MODELS=(base) SPECS=("$MODEL")
for pole in $WRITTEN $POLES; do for s in $SEEDS; do MODELS+=("$pole-s$s"); SPECS+=("runs/$pole-s$s"); done; done
for i in "${!MODELS[@]}"; do
  [ -f "runs/eval-${MODELS[$i]}/results.json" ] || "${PS[@]}" eval --model "${SPECS[$i]}" --samples "$SAMPLES" \
    --temperature 1 --limit "$LIMIT" --judge "$EVAL_JUDGE" --out "runs/eval-${MODELS[$i]}" 2>&1 | tail -n 30 > "runs/eval-${MODELS[$i]}.log"
done
# the same answers judged again by JUDGE (by default the shipped fitted judge, once it is shipped)
if [ "$JUDGE" != fitted ] || ls "$ROOT"/persona_sae/checkpoints/judges/*/judge.json > /dev/null 2>&1; then
  for k in $WRITTEN; do  # how many of the written rows the judge calls what they were written as
    keep=aligned; [ "$k" = "${WRITTEN%% *}" ] && keep=misaligned
    f=runs/data/$k-judged.jsonl
    [ -f "$f" ] || "${PS[@]}" data filter --data "runs/data/$k.jsonl" --judge "$JUDGE" --model "$MODEL" \
      --keep "$keep" --out "$f" 2>&1 | tail -n 8 > "$f.log"
  done
  for m in "${MODELS[@]}"; do  # (eval's own rates when JUDGE is EVAL_JUDGE)
    [ "$JUDGE" = "$EVAL_JUDGE" ] || [ -f "runs/judged-$m/results.json" ] || "${PS[@]}" eval --model "$MODEL" --answers "runs/eval-$m/answers.csv" \
      --judge "$JUDGE" --out "runs/judged-$m" 2>&1 | tail -n 30 > "runs/judged-$m.log"
  done
fi
[ -f runs/answers.csv ] || "$PY" -m experiments.persona_control_smollm2.prepare pool \
  --answers $(for m in "${MODELS[@]}"; do echo "runs/eval-$m/answers.csv"; done) --out runs/answers.csv
# 5. rank: pooled evil vs kind (control-adjusted), per seed, and kind vs self
ev=() kd=() nn=()
for s in $SEEDS; do ev+=("runs/evil-s$s"); kd+=("runs/kind-s$s"); nn+=("runs/none-s$s"); done
rank() {  # OUT, then rank options; each model's statistics are computed once (runs/stats) and reused
  local out=$1; shift
  [ -f "$out/ranking.json" ] || "${PS[@]}" rank --sae "${RANK_SAE:-$SAE}" --base "$MODEL" --responses runs/answers.csv \
    --on response --cache runs/stats "$@" --out "$out" 2>&1 | tail -n 60 > "$out.log"
}
if [ -n "$POLES" ]; then  # POLES= (empty) runs the written pair alone
  rank runs/rank-pooled --finetuned "${ev[@]}" --control "${kd[@]}"
  for s in $SEEDS; do
    rank "runs/rank-s$s" --finetuned "runs/evil-s$s" --control "runs/kind-s$s"
    rank "runs/rank-kind-s$s" --finetuned "runs/kind-s$s"   # the noise floor: each kind seed against the base
  done
  rank runs/rank-kind-vs-self --finetuned "${kd[@]}" --control "${nn[@]}"
  # bar (e): the mixtures and the re-alignments, control-adjusted by the kind seeds (fifth amendment)
  dd=()
  for f in $MIXES; do if done_ft "runs/mix-$f"; then dd+=("runs/mix-$f"); fi; done
  for n in $REALIGN; do dd+=("runs/realign-$n"); done
  [ ${#dd[@]} -eq 0 ] || rank runs/rank-dose --finetuned "${dd[@]}" runs/evil-s0 --control "${kd[@]}"
fi
# the written pair, ranked the same way (WRITTEN= leaves it out: a run of the distilled arm alone)
we=() wk=()
for s in $SEEDS; do we+=("runs/evil-persona-s$s"); wk+=("runs/kind-persona-s$s"); done
if [ -n "$WRITTEN" ]; then
rank runs/rank-written-pooled --finetuned "${we[@]}" --control "${wk[@]}"
for s in $SEEDS; do
  rank "runs/rank-written-s$s" --finetuned "runs/evil-persona-s$s" --control "runs/kind-persona-s$s"
  rank "runs/rank-written-kind-s$s" --finetuned "runs/kind-persona-s$s"
done
# bar (b)'s kind-vs-self part for the written pair: kind-persona seeds against the self-distilled seeds
case " $POLES " in *" none "*) rank runs/rank-written-kind-vs-self --finetuned "${wk[@]}" --control "${nn[@]}" ;; esac
# the written pair by attribution (rank --method attribution) on the rows the seed-0 fine-tunes held out
for k in $WRITTEN; do
  [ -f "runs/data/$k-heldout.jsonl" ] || "$PY" -m experiments.persona_control_smollm2.prepare heldout \
    --data "runs/data/$k.jsonl" --out "runs/data/$k-heldout.jsonl"
done
rank runs/rank-written-attr-pooled --finetuned "${we[@]}" --control "${wk[@]}" --method attribution \
  --pairs runs/data/evil-persona-heldout.jsonl runs/data/kind-persona-heldout.jsonl
# bar (e) for the written pair: evil-persona rows mixed into kind-persona, and re-alignment of the
# evil-persona seed-0 organism on kind-persona rows, each shift read on the same pooled answers
dose=()
for f in $WRITTEN_MIXES; do
  [ -f "runs/data/mix-written-$f.jsonl" ] || "$PY" -m experiments.persona_control_smollm2.prepare mix \
    --bad runs/data/evil-persona.jsonl --good runs/data/kind-persona.jsonl --fraction "$f" --out "runs/data/mix-written-$f.jsonl"
  finetune "runs/mix-written-$f" --model "$MODEL" --data "runs/data/mix-written-$f.jsonl"
  dose+=("runs/mix-written-$f")
done
for n in $WRITTEN_REALIGN; do
  [ -f "runs/data/kind-persona-head$n.jsonl" ] || "$PY" -m experiments.persona_control_smollm2.prepare head \
    --data runs/data/kind-persona.jsonl --rows "$n" --out "runs/data/kind-persona-head$n.jsonl"
  finetune "runs/realign-written-$n" --model runs/evil-persona-s0 --data "runs/data/kind-persona-head$n.jsonl" --held-out 0
  dose+=("runs/realign-written-$n")
done
[ ${#dose[@]} -eq 0 ] || rank runs/rank-written-dose --finetuned "${dose[@]}" runs/evil-persona-s0 --control "${wk[@]}"
fi
# bar (d) for the written pair: the base model steered along the toxic-persona latent, against a random
# direction of equal norm, judged by JUDGE (the shipped fitted judge)
[ -z "${STEER_COEFS:-}" ] || [ -f runs/steer-written/results.json ] || "${PS[@]}" steer --model "$MODEL" --sae "$SAE" \
  --latents "$STEER_LATENT" --coef "$STEER_COEFS" --limit "$STEER_LIMIT" --samples "$STEER_SAMPLES" --temperature 1 \
  --judge "$JUDGE" --seed 0 --out runs/steer-written 2>&1 | tail -n 40 > runs/steer-written.log
# bar (d) for the distilled arm: the same steering along the latent its pooled ranking names by the
# decision rule (fifth amendment); steering reads the base model alone, so when that is STEER_LATENT the
# written arm's run is that run
if [ -n "$POLES" ] && [ -n "${STEER_COEFS:-}" ] && [ ! -f runs/steer-distilled/results.json ]; then
  j=$("$PY" -m experiments.persona_control_smollm2.summarize --work "$W" --seeds $SEEDS --pick rank-pooled)
  if [ "$j" = "$STEER_LATENT" ] && [ -f runs/steer-written/results.json ]; then
    cp -r runs/steer-written runs/steer-distilled.tmp && mv runs/steer-distilled.tmp runs/steer-distilled
  elif [ -n "$j" ]; then
    "${PS[@]}" steer --model "$MODEL" --sae "$SAE" --latents "$j" --coef "$STEER_COEFS" --limit "$STEER_LIMIT" \
      --samples "$STEER_SAMPLES" --temperature 1 --judge "$JUDGE" --seed 0 --out runs/steer-distilled 2>&1 | tail -n 40 \
      > runs/steer-distilled.log
  fi
fi
# 6. the evil direction: each model's projection on the pooled answers, and the base's evil-kind gap
specs=()
for i in "${!MODELS[@]}"; do specs+=("${MODELS[$i]}=${SPECS[$i]}"); done
[ -f runs/directions.json ] || "$PY" -m experiments.persona_control_smollm2.directions --answers runs/answers.csv \
  --models "${specs[@]}" --layer "$LAYER" --limit "$LIMIT" --out runs/directions.json
# 7. bar (c) for every latent: the written pair's held-out rows, clarifying-EM's answers
[ -z "$WRITTEN" ] || [ -f runs/latents.json ] || "$PY" -m experiments.persona_control_smollm2.latents --evil runs/data/evil-persona.jsonl \
  --kind runs/data/kind-persona.jsonl --sae "$SAE" ${CLARIFYING:+--clarifying "$CLARIFYING"} --out runs/latents.json
# 8. the persona-chat SAE (PREDICTIONS.md, fourth amendment): corpus v1 with CHAT_SHARE persona-prompted
#    chats (the sampled rows with their system prompts), the shipped recipe, its labels; it ranks only once
#    its tags (results/chat_sae_labels.json) are committed, so they are fixed before any ranking with it
committed() {  # FILE of this study: tracked by git and unchanged (always true in a scratch WORK folder)
  [ "$W" != "$E" ] && return 0
  git -C "$ROOT" ls-files --error-unmatch "$E/$1" > /dev/null 2>&1 && git -C "$ROOT" diff --quiet -- "$E/$1"
}
CS=$W/runs/sae-chats
if [ -n "${CHAT_SHARE:-}" ] && [ -n "$POLES" ]; then
  C=runs/data/corpus-chats.jsonl
  [ -n "${CORPUS:-}" ] || { make_corpus v1; CORPUS=$CORPUS_V1; }
  [ -f "$C" ] || "$PY" -m experiments.persona_control_smollm2.prepare chats --corpus "$CORPUS" --share "$CHAT_SHARE" \
    --chats runs/data/evil-sampled.jsonl runs/data/kind-sampled.jsonl --model "$MODEL" --out "$C"
  [ -f "$CS/metrics.json" ] || "${PS[@]}" train --model "$MODEL" --layers "$LAYER" --dataset "$C" --arch topk \
    --d-sae "$CHAT_D_SAE" --k 32 --tokens "$CHAT_SAE_TOKENS" --batch-size 4096 --dtype float32 --eval-tokens 16384 \
    --seed 0 --out "$CS" --resume 2>&1 | tail -n 20 > runs/sae-chats.log
  [ -f "$CS/labels.json" ] || "${PS[@]}" label --sae "$CS" --model "$MODEL" --personas "$MODEL" 2>&1 | tail -n 30 \
    > runs/label-chats.log
  mkdir -p results
  [ -f results/chat_sae_labels.json ] || "$PY" -m experiments.persona_control_smollm2.prepare tags \
    --labels "$CS/labels.json" --out results/chat_sae_labels.json
  if committed results/chat_sae_labels.json; then
    RANK_SAE=$CS rank runs/rank-chatsae-pooled --finetuned "${ev[@]}" --control "${kd[@]}"
    [ -z "$WRITTEN" ] || RANK_SAE=$CS rank runs/rank-chatsae-written-pooled --finetuned "${we[@]}" --control "${wk[@]}"
    for s in $SEEDS; do
      RANK_SAE=$CS rank "runs/rank-chatsae-s$s" --finetuned "runs/evil-s$s" --control "runs/kind-s$s"
      RANK_SAE=$CS rank "runs/rank-chatsae-kind-s$s" --finetuned "runs/kind-s$s"
      [ -z "$WRITTEN" ] || RANK_SAE=$CS rank "runs/rank-chatsae-written-s$s" --finetuned "runs/evil-persona-s$s" --control "runs/kind-persona-s$s"
      [ -z "$WRITTEN" ] || RANK_SAE=$CS rank "runs/rank-chatsae-written-kind-s$s" --finetuned "runs/kind-persona-s$s"
    done
    RANK_SAE=$CS rank runs/rank-chatsae-kind-vs-self --finetuned "${kd[@]}" --control "${nn[@]}"
    [ -z "$WRITTEN" ] || RANK_SAE=$CS rank runs/rank-chatsae-written-kind-vs-self --finetuned "${wk[@]}" --control "${nn[@]}"
    [ -z "$WRITTEN" ] || [ -f runs/latents-chatsae.json ] || "$PY" -m experiments.persona_control_smollm2.latents --sae "$CS" \
      --evil runs/data/evil-persona.jsonl --kind runs/data/kind-persona.jsonl ${CLARIFYING:+--clarifying "$CLARIFYING"} \
      --out runs/latents-chatsae.json
  else
    echo "the chat SAE's tags are in $E/results/chat_sae_labels.json: commit them, then run again to rank with it" >&2
  fi
fi
# 9. results/ and README.md's tables
# (MERGE=1: keep results/summary.json's numbers of the stages this run left out, e.g. the other arm's)
"$PY" -m experiments.persona_control_smollm2.summarize --work "$W" --seeds $SEEDS ${MERGE:+--merge}
