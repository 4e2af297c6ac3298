"""Held-out metrics for SAEs brought back from the GPU (transport.py), computed here on the CPU.

    python experiments/sae_sweep_smollm2/evaluate.py SAE_DIR [SAE_DIR ...]

Why: the GPU call's time limit stopped the L9/L21 run during its final evaluation, after both SAEs were
saved but before metrics.json was written. This rebuilds the exact held-out split that `persona-sae train`
used (same corpus, tokenizer, --seed and --eval-tokens, read from run.json) and runs the same
`train.evaluate` (explained variance, L0, CE recovered, KL) in float32. Run on an SAE that has GPU metrics
too, it shows what the float16 trip and CPU-vs-GPU arithmetic change. Writes metrics_cpu.json beside each.
"""

from __future__ import annotations

import json
import sys
from functools import cache, partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from persona_sae import write_json  # noqa: E402
from persona_sae import models as M  # noqa: E402
from persona_sae.data import load_records  # noqa: E402
from persona_sae.rank import sae_layer  # noqa: E402
from persona_sae.saes import load_sae  # noqa: E402
from persona_sae.train import evaluate, held_out  # noqa: E402

CORPUS = ROOT / "experiments/sae_smollm2/data/corpus_chats.jsonl"


def main(dirs: list[str]) -> None:
    records = load_records(str(CORPUS))
    load = cache(partial(M.load_model, dtype="float32"))  # SmolLM2, and Qwen for session 8's SAE
    for d in map(Path, dirs):
        run = json.loads((d / "run.json").read_text())["config"]
        model = load(run["model"])
        eval_ex, _ = held_out(records, model.tokenizer, run["context_size"], run["eval_tokens"], run["seed"])
        sae = load_sae(str(d))
        layer, hook = sae_layer(sae)
        m = evaluate(model, sae, 1.0, layer, hook, eval_ex, max_norm_ratio=run["max_norm_ratio"] or None)
        trip = ", after the float16 transfer" if (d / "transport.json").is_file() else ""
        m.update(layer=layer, d_sae=sae.cfg.d_sae, computed_on=f"cpu, float32 model{trip}")
        write_json(d / "metrics_cpu.json", m)
        print(f"{d}: EV {m['explained_variance']:.4f}  L0 {m['l0']:.1f}  CE recovered {m['ce_loss_recovered']:.4f}  "
              f"KL {m['kl_div']:.4f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
