"""Peak memory of train's data path alone, streamed: records -> tokens -> model batches in the order
they fill the mixing buffer (held-out scan included; no model forward, no activations), with the
SmolLM2 tokenizer and train's default shapes (--context-size 256, --model-batch-tokens 2048,
--buffer-tokens 65536, --eval-tokens 8192). Each size runs in its own process, so each peak RSS
(``resource.getrusage``) is that size's alone (reported whole and above the RSS after imports and
the tokenizer); the whole-list path of before streaming
(``load_records`` + ``tokenize``) runs beside it at the smaller sizes for contrast.

The text is the plain-text files of four corpora of the data manifest (Gutenberg novels, WikiText-2,
Shakespeare, review sentences; `persona-sae data fetch corpus-gutenberg` etc. installs them, `--from
DIR` from a local mirror), one paragraph per JSONL row (CR-only line endings read as
line ends), repeated as often as the size
needs, written to a temporary folder outside the repository and deleted afterwards.

    python benchmarks/data_memory.py [--sizes 200000 2000000 20000000] [--whole-up-to 2000000]

Prints a table, writes benchmarks/results/data_memory.json and the table of docs/performance.md (``memory_ratio_20m_vs_2m``: streamed peak
RSS at 20M tokens over that at 2M; bounded memory means about 1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # benchmarks/machine.py

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "data_memory.json"
DOC = ROOT / "docs" / "performance.md"
CORPORA = ("corpus-gutenberg", "corpus-wikitext-2", "corpus-tinyshakespeare", "corpus-sentiment-labelled-sentences")
SKIP = {"LICENSE.txt", "readme.txt", "README"}


def corpus_files() -> list[tuple[str, Path]]:
    """(manifest name/file, installed path) of every plain-text file of CORPORA (fails with the fetch
    command when one is not installed)."""
    from persona_sae import sources

    return [(f"{n}/{rel}", sources.file(n, rel)) for n in CORPORA for rel in sorted(sources.get(n).files)
            if rel.endswith(".txt") and Path(rel).name not in SKIP]
SHAPES = dict(context_size=256, model_batch_tokens=2048, buffer_tokens=65536, eval_tokens=8192, seed=0)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def write_corpus(path: Path, tokens: int, tok) -> dict:
    """Paragraphs of the corpora's text files as {"text": ...} rows, repeated until ``tokens`` tokens."""
    paras = []
    for _, f in corpus_files():  # two books have old-Mac CR-only line endings (SOURCES.md): as lines, not one paragraph
        text = f.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\r", "\n")
        paras += [q.strip() for q in re.split(r"\n[ \t]*\n", text) if q.strip()]
    counts = [len(ids) + 1 for ids in tok(paras, add_special_tokens=False)["input_ids"]]  # + BOS
    n = rows = passes = 0
    with open(path, "w", encoding="utf-8") as f:
        while n < tokens:
            passes += 1
            for p, c in zip(paras, counts):
                f.write(json.dumps({"text": p}) + "\n")
                n, rows = n + c, rows + 1
                if n >= tokens:
                    break
    return {"rows": rows, "tokens_about": n, "passes": passes, "bytes": path.stat().st_size}


def child(path: str, mode: str) -> None:
    """One measurement in this process: prints a JSON line."""
    from persona_sae.models import load_tokenizer

    tok = load_tokenizer("smollm2")
    base = rss_mb()
    t0 = time.time()
    n_tok = n_batches = 0
    if mode == "streamed":
        from persona_sae.stages.train import BLOCK_BUFFERS, TrainBatches, held_out
        from persona_sae.text import iter_records

        records = lambda: iter_records(path)  # noqa: E731
        eval_ex, held = held_out(records, tok, SHAPES["context_size"], SHAPES["eval_tokens"], SHAPES["seed"])
        data = TrainBatches(records, tok, SHAPES["context_size"], held, SHAPES["model_batch_tokens"],
                            BLOCK_BUFFERS * SHAPES["buffer_tokens"], SHAPES["seed"])
        for pos, exs in data():
            if pos[0] > 0:  # one epoch: every training token once
                break
            n_tok += sum(len(e.ids) for e in exs)
            n_batches += 1
        n_tok += sum(len(e.ids) for e in eval_ex)
    else:  # before streaming: every record in a list, every example tokenized up front
        from persona_sae.text import load_records
        from persona_sae.tokens import tokenize

        examples = tokenize(load_records(path), tok, max_len=SHAPES["context_size"])
        n_tok, n_batches = sum(len(e.ids) for e in examples), None
    print(json.dumps({"mode": mode, "tokens": n_tok, "model_batches": n_batches, "peak_rss_mb": round(rss_mb(), 1),
                      "rss_after_tokenizer_mb": round(base, 1), "seconds": round(time.time() - t0, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 2_000_000, 20_000_000])
    ap.add_argument("--whole-up-to", type=int, default=2_000_000, help="also run the whole-list path up to this size")
    ap.add_argument("--child", nargs=2, metavar=("JSONL", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--write", nargs=2, metavar=("JSONL", "TOKENS"), help=argparse.SUPPRESS)
    ap.add_argument("--table-only", action="store_true", help="rewrite the docs table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        return write_table(json.loads(OUT.read_text()))
    if a.child:
        return child(*a.child)
    if a.write:
        from persona_sae.models import load_tokenizer

        return print(json.dumps(write_corpus(Path(a.write[0]), int(a.write[1]), load_tokenizer("smollm2"))))
    # this process stays small: a child forked from a big parent inherits its peak RSS in getrusage
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows, corpora = [], {}
    with tempfile.TemporaryDirectory(prefix="persona-sae-data-memory-") as tmp:
        for size in a.sizes:
            path = Path(tmp) / f"text-{size}.jsonl"
            r = subprocess.run([sys.executable, __file__, "--write", str(path), str(size)], env=env, check=True,
                               capture_output=True, text=True)
            corpora[str(size)] = json.loads(r.stdout.strip().splitlines()[-1])
            for mode in ("streamed", "whole") if size <= a.whole_up_to else ("streamed",):
                r = subprocess.run([sys.executable, __file__, "--child", str(path), mode], env=env, check=True,
                                   capture_output=True, text=True)
                rows.append({"size": size, **json.loads(r.stdout.strip().splitlines()[-1])})
                print(rows[-1], flush=True)
            path.unlink()
    for r in rows:
        r["data_path_mb"] = round(r["peak_rss_mb"] - r["rss_after_tokenizer_mb"], 1)
    got = {(r["size"], r["mode"]): r for r in rows}
    big, small = got.get((20_000_000, "streamed")), got.get((2_000_000, "streamed"))
    ratio = big["peak_rss_mb"] / small["peak_rss_mb"] if big and small else None
    print(f"\n{'tokens':>11} {'path':<9} {'peak RSS MB':>12} {'above tokenizer MB':>19} {'seconds':>8}")
    for r in rows:
        print(f"{r['size']:>11,} {r['mode']:<9} {r['peak_rss_mb']:>12,.0f} {r['data_path_mb']:>19,.0f} {r['seconds']:>8.1f}")
    if ratio:
        print(f"streamed peak RSS, 20M over 2M tokens: {ratio:.2f}x "
              f"(above the tokenizer: {big['data_path_mb']:.0f} vs {small['data_path_mb']:.0f} MB)")
    from persona_sae import write_json

    res = {"runs": rows, "memory_ratio_20m_vs_2m": round(ratio, 3) if ratio else None,
                     "data_path_mb_ratio_20m_vs_2m": round(big["data_path_mb"] / small["data_path_mb"], 3) if ratio else None,
                     "shapes": SHAPES, "tokenizer": "smollm2",
                     "corpus": {"files": [n for n, _ in corpus_files()], "per_size": corpora},
                     "command": "python benchmarks/data_memory.py", "machine": describe(),
                     "date": time.strftime("%Y-%m-%d")}
    write_json(OUT, res)
    write_table(res)


def write_table(res: dict) -> None:
    """The runs into docs/performance.md's data-memory block."""
    sys.path.insert(0, str(ROOT))
    from experiments.common.tables import fill, table

    m = res["machine"]
    rows = [[f"{r['size'] / 1e6:g}M", "streamed" if r["mode"] == "streamed" else "whole list (before streaming)",
             f"{r['peak_rss_mb']:,.0f}", f"{r['data_path_mb']:,.0f}", f"{r['seconds']:.1f}"] for r in res["runs"]]
    ratio = res["memory_ratio_20m_vs_2m"]
    fill(DOC, {"data-memory": table(["tokens", "path", "peak RSS (MB)", "above imports + tokenizer (MB)", "seconds"], rows,
                                    ["---:", "---", "---:", "---:", "---:"])
               + (f"\n\nStreamed peak RSS at 20M tokens is {ratio:.2f}× that at 2M (`memory_ratio_20m_vs_2m`; target ≤ 1.2). "
                  if ratio else "\n\n")
               + f"{m['cpu']}, {m['cores']} cores, 1-minute load {m['load_1min']} "
               f"([results](../benchmarks/results/data_memory.json))."})


if __name__ == "__main__":
    main()
