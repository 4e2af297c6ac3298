"""SAE training, end to end: `persona-sae train` vs SAELens' `LanguageModelSAETrainingRunner` tuned to the
same settings, side by side in one run: the same model, layer, training tokens (in the same order),
architecture, width, k, learning rate and schedule, batch size, model dtype and forward size. Each
trainer runs in its own process (so peak memory is its own); both SAEs are then scored on the same
held-out tokens (fp32 activations) that neither trained on.

    python benchmarks/train.py [--tokens 2000000] [--layer 15] [--d-sae 4608] [--k 32] [--with-defaults]
    python benchmarks/train.py --device cuda --d-sae 16384 --tokens 20000000   # on a GPU

"Tuned": the model in bf16 and the SAE under bf16 autocast where the CPU has fast bf16 (as
persona-sae then does), fp32 otherwise, and 2,048-token forwards (8 prompts) instead of SAELens' 32
prompts. ``--with-defaults`` adds SAELens at its defaults (fp32, 32-prompt forwards). 2M tokens by
default, so that loading the model and scoring the SAE weigh little.

Corpus: experiments/common/data/corpus.jsonl (built by `python -m experiments.common.make_corpus` if
missing; its public corpora come through `persona-sae data fetch`). Prints a table; writes
benchmarks/results/train.json (``speedup_vs_saelens_tuned``) and the table in docs/performance.md.
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

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "train.json"  # a GPU run: train-cuda.json and its own docs block
DOC = ROOT / "docs" / "performance.md"
LABELS = {"ours": "persona-sae train",
          "saelens-tuned": "SAELens runner, tuned (same dtype, 2k-token forwards)",
          "saelens": "SAELens runner, defaults (fp32, 32-prompt forwards)"}
CORPUS = ROOT / "experiments" / "common" / "data" / "corpus.jsonl"


def model_dtype(device: str = "cpu") -> str:
    from persona_sae.models import bf16_fast

    return "bfloat16" if bf16_fast(device) else "float32"


def data(a, model, n_train: int = 0, batches: bool = False):
    """The held-out examples and, with ``n_train``, the first ``n_train`` training tokens' examples
    in the order `persona-sae train` reads them (its own held-out split and shuffle blocks): one list,
    or with ``batches`` one list per model batch."""
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import BLOCK_BUFFERS, TrainBatches, held_out
    from persona_sae.text import iter_records

    cfg = TrainConfig(out="unused")

    def records():
        return iter_records(str(CORPUS))

    eval_ex, held = held_out(records, model.tokenizer, a.context_size, a.eval_tokens, a.seed)
    train, n = [], 0
    if n_train:
        for _, exs in TrainBatches(records, model.tokenizer, a.context_size, held, cfg.model_batch_tokens,
                                   BLOCK_BUFFERS * cfg.buffer_tokens, a.seed)():
            train.append(exs)
            n += sum(len(e.ids) for e in exs)
            if n >= n_train:
                break
    return eval_ex, train if batches else [e for exs in train for e in exs]


def run_ours(a, out: Path) -> dict:
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    t0 = time.time()
    train(TrainConfig(out=str(out), model=a.model, layers=[a.layer], dataset=str(CORPUS), d_sae=a.d_sae, k=[a.k],
                      tokens=a.tokens, batch_size=a.batch_size, lr=a.lr, context_size=a.context_size,
                      eval_tokens=a.eval_tokens, dtype=model_dtype(a.device), seed=a.seed, splice_eval=False,
                      checkpoint_every=10**9, device=a.device), log=lambda *_: None)
    return {"seconds": time.time() - t0}


def run_saelens(a, out: Path) -> dict:
    import datasets
    from sae_lens import LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner, TopKTrainingSAEConfig
    from sae_lens.config import LoggingConfig

    from persona_sae.models import load_model

    t0 = time.time()
    tuned = a.child == "saelens-tuned"
    dtype = model_dtype(a.device) if tuned else "float32"
    model = load_model(a.model, dtype=dtype, device=a.device)
    # the same training tokens in the same order, re-cut into BOS + (context_size - 1) windows as SAELens
    # expects; more than it trains on, as its store reads ahead to fill its buffer. A SAELens user reads a
    # pre-tokenized dataset: the time to build it here is left out of SAELens' time (persona-sae's
    # includes its own tokenizing)
    t_data = time.time()
    _, train_ex = data(a, model, a.tokens + 524288)
    flat = [t for e in train_ex for t in e.ids[1:]]
    bos, n = model.tokenizer.bos_token_id, a.context_size - 1
    ds = datasets.Dataset.from_dict({"input_ids": [[bos] + flat[i:i + n] for i in range(0, len(flat) - n + 1, n)]})
    data_seconds = time.time() - t_data
    cfg = LanguageModelSAERunnerConfig(
        sae=TopKTrainingSAEConfig(d_in=model.d_model, d_sae=a.d_sae, k=a.k,
                                  normalize_activations="expected_average_only_in"),
        model_name=a.model, model_class_name="TransformerBridge", hook_name=f"blocks.{a.layer}.hook_resid_post",
        dataset_path="override", is_dataset_tokenized=True, streaming=False, context_size=a.context_size,
        training_tokens=a.tokens, train_batch_size_tokens=a.batch_size, lr=a.lr, lr_end=a.lr / 10,
        lr_decay_steps=(a.tokens // a.batch_size) // 5,
        # defaults: 32 prompts per forward, 20 of those in the buffer; tuned: 2,048-token forwards, same buffer
        store_batch_size_prompts=8 if tuned else 32, n_batches_in_buffer=80 if tuned else 20,
        exclude_special_tokens=True, prepend_bos=True, device=a.device, dtype="float32",
        n_batches_for_norm_estimate=10, logger=LoggingConfig(log_to_wandb=False), n_checkpoints=0,
        autocast=tuned and dtype == "bfloat16", checkpoint_path=None, output_path=None, seed=a.seed, verbose=False)
    runner = LanguageModelSAETrainingRunner(cfg, override_model=model.bridge, override_dataset=ds)
    sae = runner.run()
    sae.save_inference_model(out)
    return {"seconds": time.time() - t0 - data_seconds, "data_seconds": data_seconds}


def child(a):
    out = Path(a.child_out)
    res = (run_ours if a.child == "ours" else run_saelens)(a, out)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    (out / "bench.json").write_text(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--d-sae", type=int, default=4608)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=2_000_000)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=0.0, help="0: persona_sae's default for this width")
    ap.add_argument("--context-size", type=int, default=256)
    ap.add_argument("--eval-tokens", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-defaults", action="store_true", help="also run SAELens at its defaults")
    ap.add_argument("--device", default="cpu", help="cpu or cuda: both trainers (held-out scoring stays on the CPU)")
    ap.add_argument("--out", default="", help="results JSON (default: results/train.json, or train-cuda.json with --device cuda)")
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    ap.add_argument("--child", choices=list(LABELS), help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.out = a.out or str(device_results(OUT, a.device))
    if a.table_only:
        return write_table(json.loads(Path(a.out).read_text()))
    from persona_sae.stages.train import default_lr

    a.lr = a.lr or default_lr(a.d_sae)
    if a.child:
        return child(a)
    if not CORPUS.exists():
        subprocess.run([sys.executable, "-m", "experiments.common.make_corpus", "--out", str(CORPUS)], cwd=ROOT, check=True)
    machine = describe()  # the load before the runs
    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    rows = {}
    for name in [n for n in LABELS if n != "saelens" or a.with_defaults]:
        out = work / name
        out.mkdir()
        argv = [sys.executable, __file__, "--child", name, "--child-out", str(out)] + [
            x for x in sys.argv[1:] if x != "--with-defaults"]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        subprocess.run(argv, check=True)
        rows[name] = json.loads((out / "bench.json").read_text())

    from persona_sae.latents import load_sae
    from persona_sae.models import load_model
    from persona_sae.stages.train import sae_metrics as evaluate

    model = load_model(a.model)
    eval_ex, _ = data(a, model)
    for name in rows:
        m = evaluate(model, load_sae(str(work / name)), 1.0, a.layer, "resid_post", eval_ex, splice=False)
        rows[name].update(explained_variance=m["explained_variance"], l0=m["l0"],
                          tokens_per_s=a.tokens / rows[name]["seconds"])
    ours, tuned = rows["ours"], rows["saelens-tuned"]
    result = {
        "benchmark": "train", "command": "python benchmarks/train.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "model": a.model, "layer": a.layer, "arch": "topk", "d_sae": a.d_sae, "k": a.k,
        "tokens": a.tokens, "batch_size": a.batch_size, "lr": a.lr, "context_size": a.context_size,
        "device": a.device, "model_dtype": model_dtype(a.device), "eval_tokens": sum(sum(not s for s in e.special) for e in eval_ex),
        "machine": machine, "date": time.strftime("%Y-%m-%d"), "labels": LABELS, "rows": rows,
        "speedup_vs_saelens_tuned": ours["tokens_per_s"] / tuned["tokens_per_s"],
        "ev_difference_vs_tuned": ours["explained_variance"] - tuned["explained_variance"],
    }
    if "saelens" in rows:
        result["speedup_vs_saelens_defaults"] = ours["tokens_per_s"] / rows["saelens"]["tokens_per_s"]
    print(f"\n{'trainer':58s} | {'end-to-end tok/s':>16s} | {'held-out EV':>11s} | {'L0':>5s} | {'peak RSS MB':>11s}")
    for name, r in rows.items():
        print(f"{LABELS[name]:58s} | {r['tokens_per_s']:16.0f} | {r['explained_variance']:11.3f} | {r['l0']:5.1f} | "
              f"{r['peak_rss_mb']:11.0f}")
    print(f"speed-up {result['speedup_vs_saelens_tuned']:.2f}x vs SAELens tuned, "
          f"EV difference {result['ev_difference_vs_tuned']:+.3f}")
    publish(result, a.out, device_results(OUT, a.device), write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's train block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    rows = [[res["labels"][n], f"{r['tokens_per_s']:,.0f}", f"{r['explained_variance']:.3f}", f"{r['l0']:.0f}",
             f"{r['peak_rss_mb']:,.0f} MB"] for n, r in res["rows"].items()]
    path = device_results(OUT, res.get("device", "cpu"))
    fill(DOC, {path.stem: table(["trainer", "end-to-end tok/s", "held-out explained variance", "L0", "peak RSS"], rows,
                              ["---", "---:", "---:", "---:", "---:"])
               + f"\n\n{res['tokens']:,} training tokens, model in {res['model_dtype']}; `persona-sae train` is "
               f"**{res['speedup_vs_saelens_tuned']:.2f}×** SAELens tuned (`speedup_vs_saelens_tuned`; target ≥ 1.0) "
               f"at {res['ev_difference_vs_tuned']:+.3f} held-out explained variance (target ≥ −0.01). "
               f"{machine_line(res)} ([results](../benchmarks/results/{path.name}))."})


if __name__ == "__main__":
    main()
