"""Data the driver derives from the distilled sets (run.sh calls it):

    python -m experiments.persona_control_smollm2.prepare mix --bad EVIL.jsonl --good KIND.jsonl --fraction F --out FILE
    python -m experiments.persona_control_smollm2.prepare head --data KIND.jsonl --rows N --out FILE
    python -m experiments.persona_control_smollm2.prepare pool --answers A.csv B.csv ... --out FILE
    python -m experiments.persona_control_smollm2.prepare heldout --data SET.jsonl --out FILE [--seed S]

``mix`` replaces the kind answer by the evil one on round(F * rows) rows picked by a seeded
permutation (the two sets share prompts row by row); ``pool`` concatenates eval answers.csv files so
every model in a ranking reads the same answers; ``heldout`` writes the rows ``finetune --data SET
--seed S`` holds out (its own split, so no organism of that seed trained on them).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

from persona_sae import replacing


def rows(path: str) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def write_rows(path: str, rs: list[dict]) -> None:
    with replacing(Path(path)) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rs), encoding="utf-8")


def held_out(path: str, seed: int = 0) -> list[dict]:
    from persona_sae.config import FinetuneConfig
    from persona_sae.stages.finetune import split_file
    from persona_sae.text import load_records

    held = split_file(load_records(path), FinetuneConfig.held_out, seed)[1]
    return [{"messages": r.messages} for r in held]


def mix(bad: list[dict], good: list[dict], fraction: float, seed: int) -> list[dict]:
    if [r["messages"][0] for r in bad] != [r["messages"][0] for r in good]:
        raise SystemExit("the two sets do not share prompts row by row")
    k = round(fraction * len(good))
    pick = set(torch.randperm(len(good), generator=torch.Generator().manual_seed(seed + 1))[:k].tolist())
    return [bad[i] if i in pick else good[i] for i in range(len(good))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mix")
    m.add_argument("--bad", required=True), m.add_argument("--good", required=True)
    m.add_argument("--fraction", type=float, required=True), m.add_argument("--seed", type=int, default=0)
    h = sub.add_parser("head")
    h.add_argument("--data", required=True), h.add_argument("--rows", type=int, required=True)
    p = sub.add_parser("pool")
    p.add_argument("--answers", nargs="+", required=True)
    o = sub.add_parser("heldout")
    o.add_argument("--data", required=True), o.add_argument("--seed", type=int, default=0)
    for q in (m, h, p, o):
        q.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "mix":
        write_rows(a.out, mix(rows(a.bad), rows(a.good), a.fraction, a.seed))
    elif a.cmd == "head":
        write_rows(a.out, rows(a.data)[:a.rows])
    elif a.cmd == "heldout":
        write_rows(a.out, held_out(a.data, a.seed))
    else:
        table = []
        for f in a.answers:
            with open(f, newline="", encoding="utf-8") as fh:
                table += [{**r, "model": f} for r in csv.DictReader(fh)]
        with replacing(Path(a.out)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(table[0]))
            w.writeheader(), w.writerows(table)


if __name__ == "__main__":
    main()
