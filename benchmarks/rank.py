"""Cost of `rank`'s pass over two models (base + a LoRA fine-tune), side by side in one run:

  bare        two stop-at-layer forwards to layer L (the floor: nothing can be cheaper)
  rank        persona_sae.rank.model_stats for both models (forward to L + batched SAE encode + sums)
  naive       TransformerLens run_with_cache (full forward, every hook cached) + SAE encode, per model

    python benchmarks/rank.py [--tokens 16384] [--curve 1 2 4 --curve-tokens 8192]
    python benchmarks/rank.py --table-only   # rewrite the docs table from the JSON, run nothing

Text: wikitext-2 valid of the data manifest (`persona-sae data fetch corpus-wikitext-2`, `--from DIR`
from a local mirror). Model loading is left out of all three (it is the same). Prints a table and
writes benchmarks/results/rank.json and its table in docs/performance.md. Target: rank <= 1.2x bare.

The curve: `persona-sae rank` end to end (model loads included) against the base with 1, 2, 4 random
LoRA fine-tunes, then the largest ranking again with every model's statistics from `--cache`.
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


def random_lora(base_dir: Path, out: Path, seed: int = 0) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    pm = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(seed)
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
    ap.add_argument("--curve", type=int, nargs="*", default=[1, 2, 4], help="fine-tune counts of the end-to-end curve")
    ap.add_argument("--curve-tokens", type=int, default=8192, help="tokens per model in the curve")
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
    models.clear()  # one model in memory at a time from here
    curve = rank_curve(a, tmp, data) if a.curve else None
    result = {"benchmark": "rank", "command": "python benchmarks/rank.py" + "".join(f" {x}" for x in sys.argv[1:]),
              "model": "smollm2 + random LoRA r=8", "sae": str(SAE.relative_to(ROOT)),
              "layer": layer, "tokens_per_model": n_tok, "batch_tokens": a.batch_tokens, "data": "/".join(CORPUS),
              "machine": machine, "date": time.strftime("%Y-%m-%d"), "rows": rows, "curve": curve}
    print(f"{'method':8s} | {'tok/s (2 models)':>16s} | {'cost vs bare':>12s}")
    for name, r in rows.items():
        print(f"{name:8s} | {r['tok_per_s']:16.0f} | {r['cost_vs_bare']:11.2f}x")
    print(f"rank is {rows['naive']['seconds'] / rows['rank']['seconds']:.2f}x faster than naive")
    for r in curve or []:
        print(f"rank, {r['finetunes']} fine-tune(s){' from the cache' if r['cached'] else ''}: {r['seconds']:.1f} s")
    publish(result, a.out, OUT, write_table)


def rank_curve(a, tmp: Path, data: str) -> list[dict]:
    """`rank` end to end against the base with each count of random fine-tunes (its own cache each), then
    the largest again from its cache: rank time vs the number of fine-tunes, and what the cache saves."""
    from persona_sae.config import RankConfig
    from persona_sae.models import pull
    from persona_sae.stages.rank import run as rank
    from persona_sae.text import load_records

    loras = [str(random_lora(pull("smollm2", log=lambda *_: None), tmp / f"curve-lora{i}", seed=i + 1))
             for i in range(max(a.curve))]
    texts, chars = [], 0
    for r in load_records(data):  # about curve-tokens tokens (~4 characters a token)
        if r.text and r.text.strip():
            texts.append({"text": r.text})
            chars += len(r.text)
        if chars >= 4 * a.curve_tokens:
            break
    prompts = tmp / "curve.jsonl"
    prompts.write_text("".join(json.dumps(t) + "\n" for t in texts))
    out = []
    for n, cached in [(n, False) for n in a.curve] + [(max(a.curve), True)]:
        cfg = RankConfig(out=str(tmp / f"curve-{n}{'-again' if cached else ''}"), sae=str(SAE), base="smollm2",
                         finetuned=loras[:n], prompts=str(prompts), max_len=256, batch_tokens=a.batch_tokens,
                         bootstrap=100, cache=str(tmp / f"cache-{n}"))
        t0 = time.perf_counter()
        r = rank(cfg, log=lambda *_: None)
        out.append({"finetunes": n, "cached": cached, "seconds": time.perf_counter() - t0,
                    "tokens_per_model": r.summary["tokens"]["base"]})
    return out


def write_table(res: dict) -> None:
    """The run into docs/performance.md's rank block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    rows = [[LABELS.get(n, n), f"{r['tok_per_s']:,.0f}", f"{r['cost_vs_bare']:.2f}×"] for n, r in res["rows"].items()]
    fill(DOC, {"rank": table(["pass over both models", "tok/s", "cost vs bare"], rows, ["---", "---:", "---:"])
               + f"\n\n{res['tokens_per_model']:,} tokens per model, {res['batch_tokens']:,}-token batches; `rank` costs "
               f"**{res['rows']['rank']['cost_vs_bare']:.2f}×** the bare forwards (target ≤ 1.2). {machine_line(res)} "
               f"([results](../benchmarks/results/rank.json))."}
         | ({} if not res.get("curve") else {"rank-curve": table(
             ["`rank` against the base with", "seconds, end to end", "seconds per model"],
             [[f"{c['finetunes']} fine-tune{'s' if c['finetunes'] > 1 else ''}" + (", every model's statistics from "
               "`--cache`" if c["cached"] else ""), f"{c['seconds']:.1f}", f"{c['seconds'] / (c['finetunes'] + 1):.1f}"]
              for c in res["curve"]], ["---", "---:", "---:"])
             + f"\n\n{res['curve'][0]['tokens_per_model']:,} tokens per model; model loads included. {machine_line(res)} "
               f"([results](../benchmarks/results/rank.json))."}))


if __name__ == "__main__":
    main()
