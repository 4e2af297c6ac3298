"""The steering sweep's results: ``collect`` copies runs/sweep into results/; ``render`` writes the README's
table (and results/results_table.md) from results/results.json alone.

    python -m experiments.steer_smollm2.summarize collect
    python -m experiments.steer_smollm2.summarize render [--check]
    python -m experiments.steer_smollm2.summarize figures   # redraw results/steer.png from results/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from experiments.common.results import copy
from experiments.common.tables import fill, parser

HERE = Path(__file__).resolve().parent
RUNS, RES = HERE / "runs", HERE / "results"


def collect() -> None:
    for f in ("results.json", "steer.png"):
        copy(RUNS / "sweep" / f, RES / f)
    copy(RUNS / "sweep.log", RES / "sweep.log")
    print(f"copied runs/sweep into {RES}")


def sweep_table(r: dict) -> str:
    out = [f"scale (median layer-{r['layer']} residual norm) = {r['scale']:.1f}; judge: {r['judge']}\n",
           "| direction | coef | misaligned (proxy) | 95% CI | incoherent | mean coherent | first answer |",
           "|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        ans = x["examples"][0].replace("\n", " ").replace("|", "/")[:90] if x["examples"] else ""
        out.append(f"| {x['condition']} | {x['coef']:+g} | {100 * x['rate']:.1f}% | [{100 * x['lo']:.1f}, {100 * x['hi']:.1f}] | "
                   f"{100 * x['incoherent']:.0f}% | {x['mean_coherent']:.0f} | {ans} |")
    return "\n".join(out) + "\n"


def draw() -> None:
    """results/steer.png from results/results.json (persona_sae.figures)."""
    from persona_sae import figures

    r = json.loads((RES / "results.json").read_text())
    figures.steer(RES / "steer.png", r["rows"], r["judge"])
    print(f"drew {RES / 'steer.png'}")


def main() -> None:
    cmd = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("collect", "render", "figures") else "render"
    if cmd == "collect":
        return collect()
    if cmd == "figures":
        return draw()
    a = parser(__doc__).parse_args()
    md = sweep_table(json.loads((RES / "results.json").read_text()))
    if a.check:
        same_md = (RES / "results_table.md").read_text() == md
        print(f"{RES / 'results_table.md'}: {'up to date' if same_md else 'OUT OF DATE'}")
        if not fill(HERE / "README.md", {"sweep": md}, check=True) or not same_md:
            raise SystemExit(1)
        return
    (RES / "results_table.md").write_text(md)
    fill(HERE / "README.md", {"sweep": md})


if __name__ == "__main__":
    main()
