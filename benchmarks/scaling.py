"""Train time vs SAE width at a fixed token count: the TopK SAE step of `persona-sae train`
(``persona_sae.sparse_topk``) and sae-lens' ``TopKTrainingSAE``, each stepped by sae-lens' ``SAETrainer``
on the same real activations, at 4,608 / 16,384 / 65,536 latents, side by side in one run, plus the
model forward that feeds them (the same for every width).

    python benchmarks/scaling.py [--d-sae 4608 16384 65536] [--k 32] [--steps 3] [--tokens 2000000]

The model forward is timed once over train's own first model batches (2,048-token forwards, fp32 or
bf16 as train picks); each SAE is timed over ``--steps`` steps of 4,096 rows after one warm-up step.
The train time at ``--tokens`` is then the forward time plus the steps' time: computed from the
measured parts (the end-to-end run at one width is benchmarks/train.py). Prints a table; writes
benchmarks/results/scaling.json and the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from machine import describe, machine_line, publish  # benchmarks/machine.py
from train import CORPUS, DOC, ROOT, data, model_dtype  # benchmarks/train.py: the same corpus, stream and dtype choice

OUT = ROOT / "benchmarks" / "results" / "scaling.json"


def forward(a, model):
    """Real layer activations from train's own first model batches, and the forward's rate (tok/s)."""
    import torch

    from persona_sae.activations import iter_activations

    _, plan = data(a, model, a.forward_tokens, batches=True)
    exs, batches = [], []
    for b in plan:
        batches.append(list(range(len(exs), len(exs) + len(b))))
        exs += b
    n = sum(len(e.ids) for e in exs)
    t0 = time.perf_counter()
    acts = [b.acts[a.layer] for b in iter_activations(model, exs, [a.layer], batches=batches, progress=False)]
    seconds = time.perf_counter() - t0
    return torch.cat(acts), n / seconds


def step_seconds(cls, cfg_cls, d_sae: int, a, acts) -> float:
    """Seconds per SAETrainer step of ``--batch-size`` rows (the mean over ``--steps`` after a warm-up)."""
    import torch
    from sae_lens import SAETrainer
    from sae_lens.config import SAETrainerConfig

    from persona_sae.stages.train import default_lr

    torch.manual_seed(a.seed)
    sae = cls(cfg_cls(d_in=acts.shape[1], d_sae=d_sae, k=a.k, device="cpu"))
    lr = default_lr(d_sae)
    tcfg = SAETrainerConfig(total_training_samples=(a.steps + 1) * a.batch_size, train_batch_size_samples=a.batch_size,
                            lr=lr, lr_end=lr / 10, lr_warm_up_steps=0, lr_decay_steps=0, dead_feature_window=1000,
                            feature_sampling_window=10**9, device="cpu", autocast=False, n_batches_for_norm_estimate=1)
    trainer = SAETrainer(cfg=tcfg, sae=sae, data_provider=iter(()))
    gen = torch.Generator().manual_seed(a.seed)
    batches = [acts[torch.randint(len(acts), (a.batch_size,), generator=gen)] for _ in range(a.steps + 1)]
    trainer.step(batches[0])  # warm-up: allocations, thread pools
    t0 = time.perf_counter()
    for b in batches[1:]:
        trainer.step(b)
    seconds = (time.perf_counter() - t0) / a.steps
    del trainer, sae
    gc.collect()
    return seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--d-sae", type=int, nargs="+", default=[4608, 16384, 65536])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="the token count the train times are computed for")
    ap.add_argument("--forward-tokens", type=int, default=40_000, help="tokens the forward is timed on")
    ap.add_argument("--context-size", type=int, default=256)
    ap.add_argument("--eval-tokens", type=int, default=16384, help="held out as train holds them out (not scored)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        import json

        return write_table(json.loads(Path(a.out).read_text()))
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

    from persona_sae.models import load_model
    from persona_sae.sparse_topk import SparseTopKTrainingSAE

    if not CORPUS.exists():
        sys.exit(f"{CORPUS} is missing: build it with `python -m experiments.common.make_corpus` (see benchmarks/train.py)")
    machine = describe()
    model = load_model(a.model, dtype=model_dtype(), log=lambda *_: None)
    acts, fwd_rate = forward(a, model)
    del model
    gc.collect()
    print(f"forward to layer {a.layer}: {fwd_rate:,.0f} tok/s ({len(acts):,} activations)", file=sys.stderr)
    n_steps = a.tokens // a.batch_size
    rows = {}
    for d in a.d_sae:
        ours = step_seconds(SparseTopKTrainingSAE, TopKTrainingSAEConfig, d, a, acts)
        theirs = step_seconds(TopKTrainingSAE, TopKTrainingSAEConfig, d, a, acts)
        fwd = a.tokens / fwd_rate
        rows[str(d)] = {"ours_step_seconds": ours, "saelens_step_seconds": theirs, "step_speedup": theirs / ours,
                        "ours_train_seconds": fwd + n_steps * ours, "saelens_train_seconds": fwd + n_steps * theirs}
        r = rows[str(d)]
        print(f"d_sae {d:>6}: step {ours:.2f} s vs sae-lens {theirs:.2f} s ({theirs / ours:.2f}x); "
              f"{a.tokens:,} tokens: {r['ours_train_seconds']:,.0f} s vs {r['saelens_train_seconds']:,.0f} s",
              file=sys.stderr, flush=True)
    result = {
        "benchmark": "scaling", "command": "python benchmarks/scaling.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "model": a.model, "layer": a.layer, "arch": "topk", "k": a.k, "batch_size": a.batch_size, "steps": a.steps,
        "tokens": a.tokens, "model_dtype": model_dtype(), "forward_tokens_per_s": fwd_rate,
        "forward_seconds": a.tokens / fwd_rate, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine": machine, "date": time.strftime("%Y-%m-%d"), "widths": rows,
    }
    publish(result, a.out, OUT, write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's scaling block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    rows = [[f"{int(d):,}", f"{r['ours_step_seconds']:.2f}", f"{r['saelens_step_seconds']:.2f}",
             f"{r['step_speedup']:.2f}×", f"{r['ours_train_seconds'] / 60:,.0f}", f"{r['saelens_train_seconds'] / 60:,.0f}"]
            for d, r in res["widths"].items()]
    fill(DOC, {"scaling": table(
        ["latents", "SAE step (s), persona-sae", "SAE step (s), sae-lens", "step speed-up",
         f"train {res['tokens'] / 1e6:g}M tokens (min), persona-sae", "same, sae-lens"],
        rows, ["---:", "---:", "---:", "---:", "---:", "---:"])
        + f"\n\nTopK k = {res['k']}, {res['batch_size']:,} rows per step (mean of {res['steps']} steps after a warm-up), "
        f"model in {res['model_dtype']}; the forward to layer {res['layer']} ran at "
        f"{res['forward_tokens_per_s']:,.0f} tok/s, {res['forward_seconds'] / 60:,.0f} min of each train time "
        f"(train time = that forward, the same for both, plus the steps: computed from the measured parts; `benchmarks/train.py` measures one width end to end). {machine_line(res)} "
        f"([results](../benchmarks/results/scaling.json))."})


if __name__ == "__main__":
    main()
