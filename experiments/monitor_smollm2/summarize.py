"""The monitor study's results: ``collect`` copies runs/ into results/ (fine-tune metrics and logs, the
monitor's JSON and figure); ``render`` writes the README's tables (and results/results_table.md) from
results/ alone.

    python -m experiments.monitor_smollm2.summarize collect
    python -m experiments.monitor_smollm2.summarize render [--check]
    python -m experiments.monitor_smollm2.summarize figures   # redraw results/monitor.png from results/monitor.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from experiments.common.results import copy, log
from experiments.common.tables import fill, parser, table

HERE = Path(__file__).resolve().parent
RUNS, RES = HERE / "runs", HERE / "results"


def collect() -> None:
    for d in sorted(RUNS.glob("mix-*")) + sorted(RUNS.glob("realign-*")):
        copy(d / "metrics.json", RES / f"finetune-{d.name}-metrics.json")
        log(RUNS / f"finetune-{d.name}.log", RES / f"finetune-{d.name}.log")
    copy(RUNS / "monitor" / "monitor.json", RES / "monitor.json")
    copy(RUNS / "monitor" / "monitor.png", RES / "monitor.png")
    print(f"copied runs/ into {RES}")


def monitor_table(r: dict) -> str:
    lat = r["latents"]
    out = ["| checkpoint | " + " | ".join(f"latent {j}: Δ [95% CI]" for j in lat) + " |", "|---|" + "---|" * len(lat)]
    for row in r["rows"]:
        cells = [f"{v['delta']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" for v in (row["latents"][str(j)] for j in lat)]
        out.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def results_table(r: dict) -> str:
    """results/results_table.md: the monitor table and its AUROC line."""
    auroc = r.get("auroc_misaligned_vs_aligned", {})
    return monitor_table(r) + "\n" + ("\nAUROC of the shift, bad-data checkpoints vs aligned ones: " +
                                      ", ".join(f"latent {j}: {a:.2f}" for j, a in auroc.items()) + "\n" if auroc else "")


def render() -> dict[str, str]:
    r = json.loads((RES / "monitor.json").read_text())
    t = {"monitor": monitor_table(r)}
    auroc = r.get("auroc_misaligned_vs_aligned", {})
    t["auroc"] = table(["latent", "AUROC of the shift, bad-data checkpoints vs aligned ones"],
                       [[j, f"{a:.2f}"] for j, a in auroc.items()])
    ft = [(p.name[len("finetune-"):-len("-metrics.json")], json.loads(p.read_text()))
          for p in sorted(RES.glob("finetune-mix-*-metrics.json")) + sorted(RES.glob("finetune-realign-*-metrics.json"))]
    t["finetune"] = table(
        ["run", "rows", "held-out insecure-code loss (before → after)", "held-out secure-code loss", "time"],
        [[name, m["rows"], *[f"{m['heldout_loss'][k]['before']:.3f} → {m['heldout_loss'][k]['after']:.3f}"
                             for k in ("insecure-code", "secure-code")], f"{m['seconds']:.0f} s"] for name, m in ft])
    return t


def draw() -> None:
    """results/monitor.png from results/monitor.json (persona_sae.figures)."""
    from persona_sae import figures

    r = json.loads((RES / "monitor.json").read_text())
    figures.monitor(RES / "monitor.png", r)
    print(f"drew {RES / 'monitor.png'}")


def main() -> None:
    cmd = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("collect", "render", "figures") else "render"
    if cmd == "collect":
        return collect()
    if cmd == "figures":
        return draw()
    a = parser(__doc__).parse_args()
    md = results_table(json.loads((RES / "monitor.json").read_text()))
    if a.check:
        same_md = (RES / "results_table.md").read_text() == md
        print(f"{RES / 'results_table.md'}: {'up to date' if same_md else 'OUT OF DATE'}")
        if not fill(HERE / "README.md", render(), check=True) or not same_md:
            raise SystemExit(1)
        return
    (RES / "results_table.md").write_text(md)
    fill(HERE / "README.md", render())


if __name__ == "__main__":
    main()
