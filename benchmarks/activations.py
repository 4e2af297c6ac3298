"""Activation extraction throughput at one layer: stop-at-layer vs full forward vs a naive
TransformerLens ``run_with_cache`` (every hook cached), side by side in one run.

    python benchmarks/activations.py [--model smollm2] [--layer 15] [--tokens 16384] [--batch-tokens 4096]
    python benchmarks/activations.py --table-only   # rewrite the docs table from the JSON, run nothing

Text: wikitext-2 valid of the data manifest (`persona-sae data fetch corpus-wikitext-2`, `--from DIR`
from a local mirror). Prints a table and writes benchmarks/results/activations.json and its table in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

from machine import data_file, describe, machine_line, publish  # noqa: E402  (benchmarks/machine.py)
from persona_sae.activations import collate, plan_batches, selection_mask  # noqa: E402
from persona_sae.models import load_model  # noqa: E402
from persona_sae.text import load_records  # noqa: E402
from persona_sae.tokens import tokenize  # noqa: E402

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "results" / "activations.json"
DOC = ROOT.parent / "docs" / "performance.md"
CORPUS = ("corpus-wikitext-2", "valid.txt")  # dataset and file of the data manifest
LABELS = {"stop-at-layer": "stop-at-layer (persona_sae)",
          "TL run_with_cache (all hooks)": "TransformerLens `run_with_cache`, all hooks"}
DTYPES = {"float32": "fp32", "bfloat16": "bf16"}


def examples_for(model, tokens: int, max_len: int, data: str):
    exs = tokenize(load_records(data), model.tokenizer, max_len=max_len)
    exs = [e for e in exs if len(e.ids) == max_len] or exs
    out, n = [], 0
    for e in exs:
        if n >= tokens:
            break
        out.append(e)
        n += len(e.ids)
    return data, out


def time_method(model, examples, layer, batch_tokens, method: str) -> float:
    batches = plan_batches(examples, batch_tokens, seed=0)
    pad = model.pad_id
    hook = model.hook_name(layer)
    n = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for idx in batches:
            ids, resp, special, valid = collate(examples, idx, pad)
            keep = selection_mask(resp, special, valid, "all")
            if method == "stop-at-layer":
                a = model.run_to_layer(ids, [layer])[layer]
            elif method == "full forward":
                a = model.run_to_layer(ids, [layer], stop=False)[layer]
            else:  # naive: cache every hook, full forward, then pick the one we want
                _, cache = model.bridge.run_with_cache(ids)
                a = cache[hook]
                del cache
            a[keep].float()
            n += int(valid.sum())
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        return write_table(json.loads(Path(a.out).read_text()))
    corpus = str(data_file(*CORPUS))
    machine = describe()  # the load before the runs

    rows = []
    for dtype in ("float32", "bfloat16"):
        model = load_model(a.model, dtype=dtype)
        data, exs = examples_for(model, a.tokens, a.max_len, corpus)
        time_method(model, exs[:4], a.layer, a.batch_tokens, "stop-at-layer")  # warm-up
        methods = ["stop-at-layer", "full forward"] + (["TL run_with_cache (all hooks)"] if dtype == "float32" else [])
        for m in methods:
            tps = time_method(model, exs, a.layer, a.batch_tokens, m)
            rows.append({"dtype": dtype, "method": m, "tok_per_s": round(tps, 1)})
            print(f"{dtype:9s} {m:32s} {tps:9.0f} tok/s", file=sys.stderr)
        del model

    ref = next(r["tok_per_s"] for r in rows if r["dtype"] == "float32" and r["method"] == "full forward")
    naive = next(r["tok_per_s"] for r in rows if r["method"].startswith("TL"))
    for r in rows:
        r["vs_full_forward_fp32"] = round(r["tok_per_s"] / ref, 2)
        r["vs_naive_run_with_cache"] = round(r["tok_per_s"] / naive, 2)
    result = {
        "benchmark": "activations", "command": "python benchmarks/activations.py" + "".join(f" {x}" for x in sys.argv[1:]),
        "model": a.model, "layer": a.layer, "data": "/".join(CORPUS),
        "tokens": sum(len(e.ids) for e in exs), "max_len": a.max_len, "batch_tokens": a.batch_tokens,
        "machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows,
    }
    print(f"\n{'dtype':9s} | {'method':32s} | {'tok/s':>7s} | vs full fp32 | vs naive TL")
    for r in rows:
        print(f"{r['dtype']:9s} | {r['method']:32s} | {r['tok_per_s']:7.0f} | {r['vs_full_forward_fp32']:11.2f}x |"
              f" {r['vs_naive_run_with_cache']:10.2f}x")
    publish(result, a.out, OUT, write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's activations block."""
    sys.path.insert(0, str(ROOT.parent))
    from experiments.common.tables import fill, table

    rows = [[DTYPES.get(r["dtype"], r["dtype"]), LABELS.get(r["method"], r["method"]), f"{r['tok_per_s']:,.0f}",
             f"{r['vs_full_forward_fp32']:.2f}×", f"{r['vs_naive_run_with_cache']:.2f}×"] for r in res["rows"]]
    fill(DOC, {"activations": table(["dtype", "method", "tok/s", "vs full forward (fp32)", "vs naive TL `run_with_cache`"],
                                    rows, ["---", "---", "---:", "---:", "---:"])
               + f"\n\nModel `{res['model']}`, layer {res['layer']}, {res['tokens']:,} tokens of wikitext-2 in {res['max_len']}-token "
               f"windows, {res['batch_tokens']:,} tokens per batch. {machine_line(res)} "
               f"([results](../benchmarks/results/activations.json))."})


if __name__ == "__main__":
    main()
