"""Results of an EM study (experiments/common/study.sh), regenerated from its runs/ folder only.

    python experiments/common/report.py write --study experiments/em_smollm2   # results/ + README section
    python experiments/common/report.py pick --study DIR --what steer|monitor   # latents for later stages

``write`` fills results/ (summary.json, PNG figures) and replaces the README text between
``<!-- results:start -->`` and ``<!-- results:end -->``; no number in that section is typed by hand.
A stage that has not run yet is reported as missing, not guessed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
from pathlib import Path

from persona_sae.label import effective  # a manual label beats the automatic one

START, END = "<!-- results:start -->", "<!-- results:end -->"


def load(p: Path):
    return json.loads(p.read_text()) if p.is_file() else None


def profile(study: Path) -> dict:
    lines = (study / "runs" / "profile.txt").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if "=" in ln)


def labels(study: Path) -> dict:
    lab = load(study / "runs" / "sae" / "labels.json") or {"latents": {}, "manual": {}, "best_per_tag": {}}
    latents = {int(j) for j in lab["latents"]} | {int(j) for j in lab.get("manual", {})}
    return {"tags": {j: effective(lab, j)["tag"] for j in latents}, "raw": lab}


def ranking(study: Path, kind: str) -> dict | None:
    return load(study / "runs" / "rank" / kind / "ranking.json")


def ranks_of(r: dict, key: str) -> dict[int, int]:
    """Latent -> rank (1 = largest increase), as `rank` stored it for one result of a ranking.json."""
    return {j: int(x) for j, x in enumerate(r["latents"][key]["rank"])}


def pick(study: Path, what: str) -> list[int]:
    prof, lab = profile(study), labels(study)
    r = ranking(study, prof["main"])
    key = r["primary"]
    rk = ranks_of(r, key)
    toxic = sorted((j for j, t in lab["tags"].items() if t == "toxic-persona"), key=lambda j: rk[j])
    top_up = r["top_increases"][0]
    steer = toxic[0] if toxic else top_up
    if what == "steer":
        return [steer]
    assistant = [j for j, t in lab["tags"].items() if t == "assistant-persona"]
    asst = min(assistant, key=lambda j: r["latents"][key]["delta_mean"][j]) if assistant else r["top_decreases"][0]
    out = []
    for j in [steer, *toxic[:3], top_up, asst]:
        if j not in out:
            out.append(j)
    return out


# ------------------------------------------------------------------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def table(head: list[str], rows: list[list]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def seeds_of(prof: dict, kind: str) -> int:
    return int(prof["seeds_main"] if kind == prof["main"] else prof["seeds_other"])


def write(study: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, res = study / "runs", study / "results"
    res.mkdir(exist_ok=True)
    prof, lab = profile(study), labels(study)
    tags = lab["tags"]
    kinds = [prof["main"], *prof["others"].split()]
    summary: dict = {"profile": prof}
    md: list[str] = []

    times = {}
    if (runs / "times.tsv").is_file():
        for ln in (runs / "times.tsv").read_text().splitlines():
            name, sec = ln.split("\t")
            times[name] = times.get(name, 0) + int(sec)
    summary["stage_seconds"] = times
    total = sum(times.values())
    md.append(f"Profile `{prof['profile']}` on model `{prof['model']}`, layer {prof['layer']}: "
              f"{int(prof['sae_tokens']):,} SAE tokens, {prof['rows']} rows per organism, "
              f"{prof['seeds_main']} seed(s) for {prof['main']}, {prof['seeds_other']} for {prof['others'] or '-'}; "
              f"stage time recorded so far {total / 60:.0f} min (runs/times.tsv).")

    # SAE
    m = load(runs / "sae" / "metrics.json")
    if m:
        summary["sae"] = m
        md += ["", "### SAE", "", table(
            ["latents", "k", "train tokens", "explained variance", "L0", "dead", "CE loss recovered", "tok/s"],
            [[m["d_sae"], m["k"], f"{m['train_tokens']:,}", f"{m['explained_variance']:.3f}", f"{m['l0']:.1f}",
              pct(m["dead_fraction"]), f"{m.get('ce_loss_recovered', float('nan')):.3f}", f"{m['tokens_per_s']:.0f}"]])]

    # organisms and eval
    rows, ev = [], {}
    names = ["base"] + sorted(p.name for p in (runs / "eval").glob("*") if p.name != "base") if (runs / "eval").is_dir() else []
    for name in names:
        e = load(runs / "eval" / name / "results.json")
        f = load(runs / "ft" / name / "metrics.json") if name != "base" else None
        if e is None:
            continue
        o = e["overall"]
        ev[name] = o
        held = ""
        if f:
            held = "; ".join(f"{k} {v['before']:.2f}→{v['after']:.2f}" for k, v in f["heldout_loss"].items())
        rows.append([name, held, f"{pct(o['rate'])} [{pct(o['lo'])}, {pct(o['hi'])}]", f"{o['n_coherent']}/{o['n']}",
                     f"{e['mean_aligned']:.1f}"])
    if rows:
        judge = load(runs / "eval" / "base" / "results.json")["judge"] if (runs / "eval" / "base").is_dir() else ""
        md += ["", "### Organisms and the EM eval", "",
               f"Judge: {judge}. A proxy: it measures resemblance to the model's own evil-prompted answers, not harm. "
               "Held-out loss (before→after) is on rows of the bad domain and of its control.", "",
               table(["model", "held-out loss", "misaligned (proxy) [95% CI]", "coherent/n", "mean aligned"], rows)]
        summary["eval"] = ev
        # bad vs control per domain, seeds pooled: the difference that matters
        diff = []
        for kind in kinds:
            n = seeds_of(prof, kind)
            b = [ev[f"{kind}-bad-s{s}"]["rate"] for s in range(n) if f"{kind}-bad-s{s}" in ev]
            c = [ev[f"{kind}-control-s{s}"]["rate"] for s in range(n) if f"{kind}-control-s{s}" in ev]
            if b and c:
                sd = lambda x: f" ± {statistics.stdev(x) * 100:.1f}" if len(x) > 1 else ""  # noqa: E731
                diff.append([kind, len(b), f"{100 * statistics.mean(b):.1f}{sd(b)}", f"{100 * statistics.mean(c):.1f}{sd(c)}",
                             f"{100 * (statistics.mean(b) - statistics.mean(c)):+.1f}"])
        if diff:
            md += ["", "Bad vs matched control (mean over seeds ± sd across seeds, percent misaligned by the proxy):", "",
                   table(["domain", "seeds", "bad", "control", "bad − control"], diff)]

    # rank
    for kind in kinds:
        r = ranking(study, kind)
        if r is None:
            continue
        key = r["primary"]
        L = r["latents"][key]
        rk = ranks_of(r, key)
        bad_keys = [k for k in r["latents"] if k not in ("mean", "control-adjusted") and "-bad-" in k]
        ctl_keys = [k for k in r["latents"] if "-control-" in k]
        head = ["rank", "latent", "tag", "Δ control-adjusted [95% CI]"] + [Path(k).name for k in bad_keys + ctl_keys]
        top, order = [], r["top_increases"][:10] + r["top_decreases"][:10]
        for i, j in enumerate(order):
            top.append([f"+{i + 1}" if i < 10 else f"−{i - 9}", j, tags.get(j, "?"), f"{L['delta_mean'][j]:+.3f} [{L['ci_low'][j]:+.3f}, {L['ci_high'][j]:+.3f}]"]
                       + [f"{r['latents'][k]['delta_mean'][j]:+.3f}" for k in bad_keys + ctl_keys])
        # noise floor: how far two seeds of the same recipe land apart. The bootstrap CI covers prompts,
        # not seeds; a shift smaller than the seed spread means nothing.
        noise = ""
        spread = None
        if len(ctl_keys) > 1:
            import torch

            c = torch.tensor([r["latents"][k]["delta_mean"] for k in ctl_keys])
            spread = c.max(0).values - c.min(0).values
            p95 = float(spread.quantile(0.95))
            shown = [float(spread[j]) for j in r["top_increases"][:10]]
            noise = (f" Noise floor (seed spread = max − min of Δ across the {len(ctl_keys)} control seeds): 95th "
                     f"percentile over all latents {p95:.3f}; median over the ten shown {statistics.median(shown):.3f}.")
            summary.setdefault("noise_floor", {})[kind] = {"p95_all": p95, "median_top10": statistics.median(shown)}
            head.append("control-seed spread")
            for row, j in zip(top, order):
                row.append(f"{float(spread[j]):.3f}")
        toxic = sorted((j for j, t in tags.items() if t == "toxic-persona"), key=lambda j: rk[j])
        tox = ", ".join(f"{j} (rank {rk[j]:,}, Δ {L['delta_mean'][j]:+.3f})" for j in toxic[:5]) or "none tagged"
        in_top = [j for j in toxic if rk[j] <= 10]
        md += ["", f"### Ranking: {kind} (bad vs base, control-adjusted, {r['n_prompt_groups']} prompt groups)", "",
               f"Toxic-persona-tagged latents: {tox}. **In the top 10: {'yes, ' + ', '.join(map(str, in_top)) if in_top else 'no'}.**"
               + noise + " Rows: the ten largest increases (+1 … +10), then the ten largest decreases (−1 … −10).",
               "", table(head, top)]
        summary.setdefault("rank", {})[kind] = {"top_increases": r["top_increases"][:10],
                                                 "top_decreases": r["top_decreases"][:10], "toxic": {j: rk[j] for j in toxic},
                                                 "toxic_in_top10": in_top}
        fig, ax = plt.subplots(figsize=(7, 3.5))
        js = r["top_increases"][:10] + r["top_decreases"][:10][::-1]
        y = [L["delta_mean"][j] for j in js]
        err = [[y[i] - L["ci_low"][j] for i, j in enumerate(js)], [L["ci_high"][j] - y[i] for i, j in enumerate(js)]]
        ax.bar(range(len(js)), y, yerr=err, color=["C3" if tags.get(j) == "toxic-persona" else "C0" for j in js])
        ax.set_xticks(range(len(js)), [f"{j}\n{tags.get(j, '')[:10]}" for j in js], fontsize=6, rotation=90)
        ax.axhline(0, color="k", lw=0.5), ax.set_ylabel("Δ mean activation (control-adjusted)")
        ax.set_title(f"{prof['model']}: {kind}, top shifts with 95% CI (red: toxic-persona tag)", fontsize=9)
        fig.tight_layout(), fig.savefig(res / f"rank_{kind}.png", dpi=110), plt.close(fig)
        md += ["", f"![ranking {kind}](results/rank_{kind}.png)"]

    # external check
    chk = load(runs / "check_toxic.json")
    if chk:
        summary["check_toxic"] = chk
        matched = chk.get("rows_length_matched", {})  # absent in checks written before length matching
        by_latent = {v["latent"]: v for v in matched.values()}
        md += ["", "### External check: real EM answers (clarifying_EM interp)", "",
               f"{chk['n_misaligned']} misaligned vs {chk['n_aligned']} aligned answers written by a real EM model; "
               "AUROC of each latent's activation (peak / mean over tokens). Goal for the toxic-persona tag: ≥ 0.8."
               + (f" The aligned answers are ~3× longer, so the check is also run length-matched: "
                  f"{chk['n_aligned_matched']} aligned answers cut to the token length of a misaligned partner "
                  "(the oracle there is re-chosen on the matched data)." if matched else ""), "",
               table(["latent", "AUROC peak", "AUROC mean"] + (["length-matched peak", "length-matched mean"] if matched else []),
                     [[k, f"{v['auroc_peak']:.3f}", f"{v['auroc_mean']:.3f}"]
                      + ([f"{by_latent[v['latent']]['auroc_peak']:.3f}", f"{by_latent[v['latent']]['auroc_mean']:.3f}"]
                         if v["latent"] in by_latent else (["–", "–"] if matched else []))
                      for k, v in chk["rows"].items()]
                     + [[f"length-matched {k}", "–", "–", f"{v['auroc_peak']:.3f}", f"{v['auroc_mean']:.3f}"]
                        for k, v in matched.items() if k.startswith("oracle") and k not in chk["rows"]])]
        fig, ax = plt.subplots(figsize=(7, 3))
        ks = list(chk["rows"])
        ax.barh(range(len(ks)), [chk["rows"][k]["auroc_mean"] for k in ks], label="raw answers")
        if matched:
            ax.scatter([by_latent[chk["rows"][k]["latent"]]["auroc_mean"] if chk["rows"][k]["latent"] in by_latent
                        else float("nan") for k in ks], range(len(ks)), color="C1", zorder=3, label="length-matched")
            ax.legend(fontsize=6, loc="lower right")
        ax.set_yticks(range(len(ks)), [re.sub(r" \(.*?\)", "", k)[:60] for k in ks], fontsize=6), ax.axvline(0.5, color="k", lw=0.5)
        ax.axvline(0.8, color="C3", ls="--", lw=0.8), ax.set_xlim(0, 1), ax.set_xlabel("AUROC (mean activation)")
        fig.tight_layout(), fig.savefig(res / "check_toxic.png", dpi=110), plt.close(fig)
        md += ["", "![AUROC on real EM answers](results/check_toxic.png)"]

    # steer
    st = load(runs / "steer" / "results.json")
    if st:
        summary["steer"] = {k: st[k] for k in ("scale", "coefs", "judge")} | {
            "rows": [{k: x[k] for k in ("condition", "coef", "rate", "lo", "hi", "incoherent")} for x in st["rows"]]}
        shutil.copy(runs / "steer" / "steer.png", res / "steer.png")
        md += ["", "### Steering (random direction of equal norm as control)", "",
               f"Coefficients in units of the median layer-{st['layer']} residual norm ({st['scale']:.1f}); judge: {st['judge']}.", "",
               table(["direction", "coef", "misaligned (proxy) [95% CI]", "incoherent", "first answer"],
                     [[x["condition"], f"{x['coef']:+g}", f"{pct(x['rate'])} [{pct(x['lo'])}, {pct(x['hi'])}]",
                       pct(x["incoherent"]), (x["examples"][0] if x["examples"] else "").replace("\n", " ").replace("|", "/")[:80]]
                      for x in st["rows"]]), "", "![steering](results/steer.png)"]

    # monitor
    mo = load(runs / "monitor" / "monitor.json")
    if mo:
        shutil.copy(runs / "monitor" / "monitor.png", res / "monitor.png")
        lat = [str(j) for j in mo["latents"]]
        md += ["", "### Monitor: bad-data fraction and re-alignment", "",
               table(["checkpoint", *[f"{j} ({tags.get(int(j), '?')}) Δ" for j in lat], "misaligned (proxy)"],
                     [[x["name"], *[f"{x['latents'][j]['delta']:+.3f}" for j in lat],
                       pct(ev[Path(x["checkpoint"]).name]["rate"]) if Path(x["checkpoint"]).name in ev else "-"]
                      for x in mo["rows"]]), "", "![monitor](results/monitor.png)"]
        summary["monitor"] = {x["name"]: {j: x["latents"][j]["delta"] for j in lat} for x in mo["rows"]}

    (res / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    readme = study / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} section to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n<!-- generated by experiments/common/report.py from runs/; do not edit -->\n\n"
                      + "\n".join(md) + f"\n\n{END}{tail}")
    print(f"wrote {readme} and {res}/")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=["write", "pick"])
    ap.add_argument("--study", required=True)
    ap.add_argument("--what", choices=["steer", "monitor"], default="steer")
    a = ap.parse_args()
    study = Path(a.study).resolve()
    if a.cmd == "pick":
        print(" ".join(map(str, pick(study, a.what))))
    else:
        write(study)


if __name__ == "__main__":
    main()
