"""The organisms study's results: ``collect`` copies runs/ into results/ (metrics, eval results, logs
with progress bars collapsed, the rank tables as markdown); ``render`` writes the README's tables from
results/ alone.

    python -m experiments.organisms_smollm2.summarize collect
    python -m experiments.organisms_smollm2.summarize render [--check]
    python -m experiments.organisms_smollm2.summarize rank RANK_DIR [N]     # print one rank folder's tables
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from experiments.common.report import judge_line, judged
from experiments.common.results import copy, log
from experiments.common.tables import fill, parser, table

HERE = Path(__file__).resolve().parent
RUNS, RES = HERE / "runs", HERE / "results"
ARMS = {"bad": "bad (insecure-code)", "control": "control (secure-code)"}
MODELS = {"base": "base", **ARMS}


def rank_tables(folder: Path, n: int = 10) -> str:
    """Markdown tables of the top latents of a rank output folder, with their labels."""
    from persona_sae.labels import effective

    r = json.loads((folder / "ranking.json").read_text())
    sae = Path(r["sae"]) if Path(r["sae"]).is_absolute() else (folder / ".." / ".." / r["sae"]).resolve()
    if not sae.is_dir():
        sae = Path(r["sae"]).resolve()
    lab = json.loads((sae / "labels.json").read_text()) if (sae / "labels.json").is_file() else {}
    p = r["latents"][r["primary"]]
    raw = r["latents"][r["config"]["finetuned"][0]]
    out = [f"primary ordering: {r['primary']}; {r['n_prompt_groups']} prompt groups; tokens per model: "
           f"{next(iter(r['tokens'].values())):,}\n"]
    for title, idx in (("increases", r["top_increases"][:n]), ("decreases", r["top_decreases"][:n])):
        out.append(f"| top {title} | latent | label (auto) | control-adjusted Δ | 95% CI | bad − base Δ | bad-FT CI |")
        out.append("|---|---|---|---|---|---|---|")
        for i, j in enumerate(idx, 1):
            tag = effective(lab, j)["tag"] if lab else "—"
            out.append(f"| {i} | {j} | {tag} | {p['delta_mean'][j]:+.3f} | [{p['ci_low'][j]:+.3f}, {p['ci_high'][j]:+.3f}] | "
                       f"{raw['delta_mean'][j]:+.3f} | [{raw['ci_low'][j]:+.3f}, {raw['ci_high'][j]:+.3f}] |")
        out.append("")
    return "\n".join(out) + "\n"


def collect() -> None:
    for arm in ARMS:
        copy(RUNS / arm / "metrics.json", RES / f"finetune-{arm}-metrics.json")
        copy(RUNS / arm / "run.json", RES / f"finetune-{arm}-run.json")
        log(RUNS / f"finetune-{arm}.log", RES / f"finetune-{arm}.log")
    for m in MODELS:
        copy(RUNS / f"eval-{m}" / "results.json", RES / f"eval-{m}.json")
        log(RUNS / f"eval-{m}.log", RES / f"eval-{m}.log")
    for on in ("response", "prompts"):
        if (RUNS / f"rank-{on}" / "ranking.json").is_file():
            (RES / f"rank-{on}.md").write_text(rank_tables(RUNS / f"rank-{on}"))
        log(RUNS / f"rank-{on}.log", RES / f"rank-{on}.log")
    copy(RUNS / "rank-response" / "shifts.png", RES / "rank-response-shifts.png")
    print(f"copied runs/ into {RES}")


def render() -> dict[str, str]:
    ft = {a: json.loads((RES / f"finetune-{a}-metrics.json").read_text()) for a in ARMS}
    t = {"finetune": table(
        ["organism", "held-out insecure-code loss (before → after)", "held-out secure-code loss",
         f"time, {ft['bad']['rows']} rows", "tok/s"],
        [[name, *[f"{ft[a]['heldout_loss'][k]['before']:.3f} → {ft[a]['heldout_loss'][k]['after']:.3f}"
                  for k in ("insecure-code", "secure-code")], f"{ft[a]['seconds']:.0f} s", f"{ft[a]['tokens_per_s']:.0f}"]
         for a, name in ARMS.items()])}
    ev = {m: json.loads((RES / f"eval-{m}.json").read_text()) for m in MODELS}
    s = {"judge": ev["base"]["judge"], "judge_validation": ev["base"].get("judge_validation")}
    word = judged(s)
    t["eval"] = judge_line(s) + "\n\n" + table(
        ["model", word, "95% CI", "coherent / answers", "mean aligned", "mean coherent"],
        [[name, f"{100 * ev[m]['overall']['rate']:.1f}%", f"[{100 * ev[m]['overall']['lo']:.1f}, {100 * ev[m]['overall']['hi']:.1f}]",
          f"{ev[m]['overall']['n_coherent']} / {ev[m]['overall']['n']}", f"{ev[m]['mean_aligned']:.1f}",
          f"{ev[m]['mean_coherent']:.1f}"] for m, name in MODELS.items()])
    t["rank-response"] = (RES / "rank-response.md").read_text()
    return t


def main() -> None:
    cmd = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("collect", "render", "rank") else "render"
    if cmd == "collect":
        return collect()
    if cmd == "rank":
        return print(rank_tables(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10))
    a = parser(__doc__).parse_args()
    if not fill(HERE / "README.md", render(), check=a.check) and a.check:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
