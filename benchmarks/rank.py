"""Cost of `rank`'s pass over two models (base + a LoRA fine-tune), side by side in one run:

  bare        two stop-at-layer forwards to layer L (the floor: nothing can be cheaper)
  rank        persona_sae.rank.model_stats for both models (forward to L + batched SAE encode + sums)
  naive       TransformerLens run_with_cache (full forward, every hook cached) + SAE encode, per model

    python benchmarks/rank.py [--tokens 16384]
    python benchmarks/rank.py --table-only   # rewrite the docs table from the JSON, run nothing

Text: wikitext-2 valid of the data manifest (`persona-sae data fetch corpus-wikitext-2`, `--from DIR`
from a local mirror). Model loading is left out of all three (it is the same). Prints a table and
writes benchmarks/results/rank.json and its table in docs/performance.md. Target: rank <= 1.2x bare.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from machine import data_file, describe, machine_line, publish  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "rank.json"
DOC = ROOT / "docs" / "performance.md"
SAE = ROOT / "persona_sae" / "checkpoints" / "smollm2" / "topk-L15-k32-4608"
CORPUS = ("corpus-wikitext-2", "valid.txt")  # dataset and file of the data manifest
LABELS = {"bare": "bare: two stop-at-layer forwards (the floor)",
          "rank": "`rank`: forward + batched SAE encode + per-group sums",
          "naive": "naive: TransformerLens `run_with_cache` full forward + encode"}


def random_lora(base_dir: Path, out: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    pm = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    pm.save_pretrained(out)
    cfg = json.loads((out / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "smollm2"
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


def main():
    from persona_sae.activations import collate, plan_batches, selection_mask
    from persona_sae.latents import load_sae, sae_layer
    from persona_sae.models import load_model, pull
    from persona_sae.statistics import model_stats
    from persona_sae.text import load_records
    from persona_sae.tokens import tokenize

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=16384)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        return write_table(json.loads(Path(a.out).read_text()))
    data = str(data_file(*CORPUS))
    machine = describe()  # the load before the runs

    sae = load_sae(str(SAE))
    layer, hook = sae_layer(sae)
    tmp = Path(tempfile.mkdtemp(prefix="bench-rank-"))
    models = [load_model("smollm2"), load_model(str(random_lora(pull("smollm2", log=lambda *_: None), tmp / "lora")))]
    ex = tokenize(load_records(data), models[0].tokenizer, max_len=256, max_tokens=a.tokens)
    n_tok = sum(len(e.ids) for e in ex)
    groups = list(range(len(ex)))
    pad = models[0].pad_id
    batches = plan_batches(ex, a.batch_tokens, seed=None)

    def bare():
        for m in models:
            for idx in batches:
                m.run_to_layer(collate(ex, idx, pad)[0], [layer])

    def ranked():
        for m in models:
            model_stats(m, sae, ex, groups, len(ex), layer, hook, batch_tokens=a.batch_tokens, progress=False)

    def naive():
        with torch.no_grad():
            for m in models:
                for idx in batches:
                    ids, resp, special, valid = collate(ex, idx, pad)
                    _, cache = m.bridge.run_with_cache(ids)
                    sae.encode(cache[f"blocks.{layer}.hook_{hook}"][selection_mask(resp, special, valid, "all")])
                    del cache

    rows = {}
    bare()  # warm-up
    for name, fn in (("bare", bare), ("rank", ranked), ("naive", naive)):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        rows[name] = {"seconds": dt, "tok_per_s": 2 * n_tok / dt}
    for r in rows.values():
        r["cost_vs_bare"] = r["seconds"] / rows["bare"]["seconds"]
    result = {"benchmark": "rank", "command": "python benchmarks/rank.py" + "".join(f" {x}" for x in sys.argv[1:]),
              "model": "smollm2 + random LoRA r=8", "sae": str(SAE.relative_to(ROOT)),
              "layer": layer, "tokens_per_model": n_tok, "batch_tokens": a.batch_tokens, "data": "/".join(CORPUS),
              "machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    print(f"{'method':8s} | {'tok/s (2 models)':>16s} | {'cost vs bare':>12s}")
    for name, r in rows.items():
        print(f"{name:8s} | {r['tok_per_s']:16.0f} | {r['cost_vs_bare']:11.2f}x")
    print(f"rank is {rows['naive']['seconds'] / rows['rank']['seconds']:.2f}x faster than naive")
    publish(result, a.out, OUT, write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's rank block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    rows = [[LABELS.get(n, n), f"{r['tok_per_s']:,.0f}", f"{r['cost_vs_bare']:.2f}×"] for n, r in res["rows"].items()]
    fill(DOC, {"rank": table(["pass over both models", "tok/s", "cost vs bare"], rows, ["---", "---:", "---:"])
               + f"\n\n{res['tokens_per_model']:,} tokens per model, {res['batch_tokens']:,}-token batches; `rank` costs "
               f"**{res['rows']['rank']['cost_vs_bare']:.2f}×** the bare forwards (target ≤ 1.2). {machine_line(res)} "
               f"([results](../benchmarks/results/rank.json))."})


if __name__ == "__main__":
    main()
