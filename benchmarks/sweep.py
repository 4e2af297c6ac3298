"""A sweep of SAEs, end to end: one `persona-sae train` run that trains every SAE from one activation
stream vs one SAELens runner per SAE (tuned as in benchmarks/train.py), in one run on the same model,
layer, training tokens and held-out tokens.

    python benchmarks/sweep.py [--tokens 500000] [--d-sae 4608 9216] [--k 16 32]

Each run is its own process. Every SAE is scored on the same held-out tokens, and each is compared
with its SAELens twin (same width, k, learning rate and schedule). Prints a table; writes
benchmarks/results/sweep.json (``sweep_speedup``: the four SAELens runs' total time over persona-sae's)
and the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from machine import describe, device_results, machine_line, publish  # benchmarks/machine.py
from train import CORPUS, DOC, ROOT, data, model_dtype  # benchmarks/train.py: the same corpus, split and SAELens run

OUT = ROOT / "benchmarks" / "results" / "sweep.json"  # a GPU run: sweep-cuda.json and its own docs block
TRAIN = Path(__file__).with_name("train.py")


def run_ours(a, out: Path) -> None:
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    t0 = time.time()
    train(TrainConfig(out=str(out), model=a.model, layers=[a.layer], dataset=str(CORPUS), d_sae=a.d_sae, k=a.k,
                      tokens=a.tokens, batch_size=a.batch_size, context_size=a.context_size,
                      eval_tokens=a.eval_tokens, dtype=model_dtype(a.device), seed=a.seed, splice_eval=False,
                      checkpoint_every=10**9, device=a.device), log=lambda *_: None)
    res = {"seconds": time.time() - t0, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    (out / "bench.json").write_text(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--d-sae", type=int, nargs="+", default=[4608, 9216])
    ap.add_argument("--k", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--tokens", type=int, default=500_000)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--context-size", type=int, default=256)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: every trainer (held-out scoring stays on the CPU)")
    ap.add_argument("--out", default="", help="results JSON (default: results/sweep.json, or sweep-cuda.json with --device cuda)")
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.out = a.out or str(device_results(OUT, a.device))
    if a.table_only:
        return write_table(json.loads(Path(a.out).read_text()))
    if a.child:
        return run_ours(a, Path(a.child_out))
    if not CORPUS.exists():
        subprocess.run([sys.executable, "-m", "experiments.common.make_corpus", "--out", str(CORPUS)], cwd=ROOT, check=True)
    machine = describe()  # the load before the runs
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    common = ["--model", a.model, "--layer", str(a.layer), "--tokens", str(a.tokens), "--batch-size", str(a.batch_size),
              "--context-size", str(a.context_size), "--eval-tokens", str(a.eval_tokens), "--seed", str(a.seed), "--device", a.device]
    print("running persona-sae (all SAEs, one stream) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, __file__, "--child", "--child-out", str(work / "ours"), "--d-sae",
                    *map(str, a.d_sae), "--k", *map(str, a.k)] + common, check=True)
    ours = json.loads((work / "ours" / "bench.json").read_text())
    saelens = {}
    for k in a.k:
        for d in a.d_sae:
            name = f"L{a.layer}_k{k}_d{d}"
            print(f"running SAELens {name} ...", file=sys.stderr, flush=True)
            (work / name).mkdir()
            subprocess.run([sys.executable, str(TRAIN), "--child", "saelens-tuned", "--child-out", str(work / name),
                            "--d-sae", str(d), "--k", str(k)] + common, check=True)
            saelens[name] = json.loads((work / name / "bench.json").read_text())

    from persona_sae.latents import load_sae
    from persona_sae.models import load_model
    from persona_sae.stages.train import heldout_acts, sae_metrics

    model = load_model(a.model)
    eval_ex, _ = data(a, model)
    acts = heldout_acts(model, eval_ex, a.layer, "resid_post")
    ev = {}
    saes = {}
    for name, res in saelens.items():
        scored = {}
        for who, folder in (("ours", work / "ours" / name), ("saelens", work / name)):
            m = sae_metrics(model, load_sae(str(folder)), 1.0, a.layer, "resid_post", eval_ex, splice=False, acts=acts)
            scored[who] = {"explained_variance": m["explained_variance"], "l0": m["l0"]}
        saes[name] = {**scored, "saelens_seconds": res["seconds"], "saelens_peak_rss_mb": res["peak_rss_mb"],
                      "ev_difference": scored["ours"]["explained_variance"] - scored["saelens"]["explained_variance"]}
        ev[name] = saes[name]["ev_difference"]
    total = sum(r["seconds"] for r in saelens.values())
    result = {
        "benchmark": "sweep", "command": "python benchmarks/sweep.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "model": a.model, "layer": a.layer, "arch": "topk", "d_sae": a.d_sae, "k": a.k, "tokens": a.tokens,
        "batch_size": a.batch_size, "context_size": a.context_size, "device": a.device, "model_dtype": model_dtype(a.device),
        "eval_tokens": sum(sum(not s for s in e.special) for e in eval_ex), "machine": machine,
        "date": time.strftime("%Y-%m-%d"), "ours_seconds": ours["seconds"], "ours_peak_rss_mb": ours["peak_rss_mb"],
        "saelens_seconds": total, "saes": saes, "sweep_speedup": total / ours["seconds"],
        "worst_ev_difference": min(ev.values()),
    }
    print(f"\n{'SAE':22s} | {'EV persona-sae':>14s} | {'EV SAELens':>10s} | {'SAELens s':>9s}")
    for name, r in saes.items():
        print(f"{name:22s} | {r['ours']['explained_variance']:14.3f} | {r['saelens']['explained_variance']:10.3f} | "
              f"{r['saelens_seconds']:9.0f}")
    print(f"persona-sae, all {len(saes)} from one stream: {ours['seconds']:.0f} s; SAELens, one run each: {total:.0f} s; "
          f"sweep speed-up {result['sweep_speedup']:.2f}x")
    publish(result, a.out, device_results(OUT, a.device), write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's sweep block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    rows = [[name, f"{r['ours']['explained_variance']:.3f}", f"{r['saelens']['explained_variance']:.3f}",
             f"{r['ev_difference']:+.3f}", f"{r['saelens_seconds']:,.0f}"] for name, r in res["saes"].items()]
    path = device_results(OUT, res.get("device", "cpu"))
    fill(DOC, {path.stem: table(["SAE", "held-out EV, persona-sae", "held-out EV, SAELens", "difference",
                               "SAELens run (s)"], rows, ["---", "---:", "---:", "---:", "---:"])
               + f"\n\n{res['tokens']:,} training tokens per SAE, model in {res['model_dtype']}. persona-sae trained all "
               f"{len(rows)} from one stream in {res['ours_seconds']:,.0f} s, SAELens' {len(rows)} runs took "
               f"{res['saelens_seconds']:,.0f} s: **{res['sweep_speedup']:.2f}×** (`sweep_speedup`; target ≥ 2.5), "
               f"worst explained-variance difference {res['worst_ev_difference']:+.3f} (persona-sae minus SAELens; target ≥ −0.01). "
               f"{machine_line(res)} ([results](../benchmarks/results/{path.name}))."})


if __name__ == "__main__":
    main()
