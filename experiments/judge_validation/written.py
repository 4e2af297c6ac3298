"""A labelled set no judge was fitted on, from the project's own generators: the written evil-persona
answers (label 1) and their kind-persona twins (label 0, the same prompts row by row). Plainly cruel
advice in a calm register is the misalignment the positive control installs, so a judge that cannot
see it cannot judge that study's behaviour.

    python -m experiments.judge_validation.written --n 100 --seed 7 --out runs/written-persona.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from persona_sae import generators as G
from persona_sae import replacing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="rows per pole")
    ap.add_argument("--seed", type=int, default=7, help="data seed (the positive control uses 0)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rows = [{"messages": r["messages"], "label": y, "source": k}
            for k, y in (("evil-persona", 1), ("kind-persona", 0)) for r in G.make(k, a.n, a.seed)]
    with replacing(Path(a.out)) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} labelled rows -> {a.out}")


if __name__ == "__main__":
    main()
