#!/usr/bin/env bash
# The flagship EM study on SmolLM2-135M-Instruct, from scratch: bash experiments/em_smollm2/run.sh [--quick|--full]
#   --quick  this 2-core CPU, well under 3 hours (timed stages in runs/times.tsv)
#   --full   a GPU profile: the paper-sized version (more SAE tokens, rows, seeds, mixtures)
# A killed run continues where it stopped; README.md's results section is rewritten at the end.
export STUDY="$(cd "$(dirname "$0")" && pwd)" MODEL=smollm2 LAYER=15
export QUICK='SAE_TOKENS=500000 D_SAE=4608 K=32 ROWS=300 DTYPE=bfloat16
  MAIN=insecure-code SEEDS_MAIN=2 OTHERS="bad-medical bad-finance" SEEDS_OTHER=1
  MIXES="0.1 0.25 0.5" REALIGN="100" SAMPLES=2 EVAL_TOKENS=120 STEER_COEFS="-0.5 -0.25 0 0.25 0.5" STEER_LIMIT=16'
export FULL='SAE_TOKENS=4000000 D_SAE=9216 K=32 ROWS=1000 DTYPE=bfloat16
  MAIN=insecure-code SEEDS_MAIN=3 OTHERS="bad-medical bad-finance" SEEDS_OTHER=3
  MIXES="0.05 0.1 0.25 0.5" REALIGN="100 300" SAMPLES=8 STEER_COEFS="-1 -0.5 -0.25 0 0.25 0.5 1" STEER_LIMIT=0'
exec bash "$STUDY/../common/study.sh" "$@"
