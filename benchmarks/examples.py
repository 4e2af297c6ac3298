"""Cost of mining top/interval examples for every latent, side by side in one run:

  bare    stop-at-layer forward to the SAE's layer + batched SAE encode (the floor)
  mining  persona_sae.examples.mine: the same pass plus top-k, reservoir and histogram updates

    python benchmarks/examples.py [--tokens 65536] [--dtype float32]
    python benchmarks/examples.py --table-only   # rewrite the docs table from the JSON, run nothing

SmolLM2 + the shipped SAE (4,608 latents, k=20, reservoir 50) on wikitext-2 valid of the data manifest
(`persona-sae data fetch corpus-wikitext-2`, `--from DIR` from a local mirror). Prints a table and
writes benchmarks/results/examples.json and its table in docs/performance.md. Targets: mining <= 1.1x
bare; HTML for 1,000 latents <= 30 s.
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
OUT = ROOT / "benchmarks" / "results" / "examples.json"
DOC = ROOT / "docs" / "performance.md"
SAE = ROOT / "persona_sae" / "checkpoints" / "smollm2" / "topk-L15-k32-4608"
CORPUS = ("corpus-wikitext-2", "valid.txt")  # dataset and file of the data manifest


def main() -> None:
    from persona_sae import models as M
    from persona_sae.activations import iter_activations, plan_batches
    from persona_sae.latents import load_sae
    from persona_sae.stages.examples import mine
    from persona_sae.text import read_text
    from persona_sae.tokens import load_examples

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=65536)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    args = ap.parse_args()
    if args.table_only:
        return write_table(json.loads(Path(args.out).read_text()))
    corpus = data_file(*CORPUS)
    torch.set_num_threads(os.cpu_count() or 1)
    machine = describe()  # the load before the runs
    model = M.load_model("smollm2", dtype=args.dtype)
    sae = load_sae(str(SAE))
    ex = load_examples(model, read_text(corpus), 256, args.tokens)
    batches = plan_batches(ex, 2048, 0)
    n = sum(len(e.ids) for e in ex)

    @torch.no_grad()
    def bare():
        for b in iter_activations(model, ex, [15], batches=batches, progress=False):
            sae.encode(b.acts[15])

    def mining():
        with tempfile.TemporaryDirectory() as d:
            mine(model, sae, ex, 15, "resid_post", Path(d) / "m", k=20, reservoir=50, checkpoint_every=0,
                 log=lambda *a: None)

    bare()  # warm-up (bridge boot, allocator)
    rows = {}
    for name, fn in (("bare", bare), ("mining", mining), ("bare (repeat)", bare), ("mining (repeat)", mining)):
        t0 = time.time()
        fn()
        rows[name] = time.time() - t0
    # HTML for 1,000 latents from what was mined (no forward needed)
    from persona_sae.mined import load
    from persona_sae.pages import build

    with tempfile.TemporaryDirectory() as d:
        mine(model, sae, ex, 15, "resid_post", Path(d) / "m", k=20, reservoir=50, checkpoint_every=0, log=lambda *a: None)
        mined = load(Path(d) / "m")
        lat = torch.nonzero(mined.state.fires > 0)[:1000, 0].tolist()
        t0 = time.time()
        build(mined, model.tokenizer, Path(d) / "site", lat)
        html_s = time.time() - t0
    b = (rows["bare"] + rows["bare (repeat)"]) / 2
    m = (rows["mining"] + rows["mining (repeat)"]) / 2
    res = {"benchmark": "examples", "command": "python benchmarks/examples.py" + "".join(f" {x}" for x in sys.argv[1:]),
           "data": "/".join(CORPUS), "tokens": n, "dtype": args.dtype, "bare_s": b, "mining_s": m, "bare_tok_s": n / b,
           "mining_tok_s": n / m, "ratio": m / b, "runs": rows, "html_latents": len(lat), "html_seconds": html_s,
           "machine": machine, "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__}
    print(f"{n:,} tokens, {args.dtype}: bare {n / b:,.0f} tok/s, mining {n / m:,.0f} tok/s, ratio {m / b:.3f}; "
          f"HTML for {len(lat)} latents in {html_s:.1f} s")
    publish(res, args.out, OUT, write_table)


def write_table(res: dict) -> None:
    """The run into docs/performance.md's examples block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    dtype = {"float32": "fp32", "bfloat16": "bf16"}.get(res["dtype"], res["dtype"])
    rows = [["bare: stop-at-layer forward + batched SAE encode (the floor)", f"{res['bare_tok_s']:,.0f}"],
            ["mining: the same pass plus top-k, reservoir and histogram updates", f"{res['mining_tok_s']:,.0f}"]]
    fill(DOC, {"examples": table(["pass", "tok/s"], rows, ["---", "---:"])
               + f"\n\n{res['tokens']:,} tokens of wikitext-2, {dtype}. Mining took **{res['ratio']:.2f}×** the bare pass's "
               f"time (`ratio`; each pass is run twice; target ≤ 1.1). The HTML pages for {res['html_latents']:,} latents "
               f"took {res['html_seconds']:.1f} s (target ≤ 30 s). {machine_line(res)} "
               f"([results](../benchmarks/results/examples.json))."})


if __name__ == "__main__":
    main()
