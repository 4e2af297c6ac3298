"""Results of an EM study (experiments/common/study.sh): results/ from its runs/ folder, and the README's
tables from results/.

    python -m experiments.common.report write --study experiments/em_smollm2     # collect, then render
    python -m experiments.common.report collect --study DIR   # runs/ -> results/summary.json and figures
    python -m experiments.common.report render --study DIR [--check]   # results/summary.json -> README tables
    python -m experiments.common.report figures --study DIR   # results/summary.json -> results/*.png
    python -m experiments.common.report pick --study DIR --what steer|monitor   # latents for later stages

``render`` reads results/summary.json only, so the README's tables can be regenerated (or checked with
``--check``) from the committed results without runs/. Each table sits between ``<!-- table:NAME -->``
and ``<!-- /table -->`` (experiments/common/tables.py); no number in them is typed by hand. A stage that
has not run yet is reported as missing, not guessed.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from experiments.common.tables import blocks, fill, pct, table
from persona_sae.judging import held_out_line


def load(p: Path):
    return json.loads(p.read_text()) if p.is_file() else None


def judge_name(s: dict) -> str:
    """The judge that gave the study's rates (eval's; a summary without it names steer's, the same judge)."""
    return s.get("judge") or (s.get("steer") or {}).get("judge", "")


def is_proxy(s: dict) -> bool:
    """Whether the study's rates come from the uncalibrated persona-probe proxy (the judge of studies run
    before the fitted judge was validated), so its tables say so in every column that shows a rate."""
    return "persona-probe" in judge_name(s)


def judged(s: dict) -> str:
    """The column word for a rate: "misaligned (proxy)" for the proxy, else "misaligned"."""
    return "misaligned (proxy)" if is_proxy(s) else "misaligned"


def judge_line(s: dict) -> str:
    """Which judge gave the rates, and how far to trust it: the proxy's caveat, or the held-out AUROC the
    judge was validated with (`persona-sae judge validate`)."""
    v = s.get("judge_validation")
    if is_proxy(s):
        return (f"Judge: {judge_name(s)}. A proxy: it measures resemblance to the model's own evil-prompted "
                "answers, not harm.")
    if v:
        return f"Judge: {judge_name(s)}; {held_out_line(v)}."
    return f"Judge: {judge_name(s)} (never validated: `persona-sae judge validate`)."


def profile(study: Path) -> dict:
    lines = (study / "runs" / "profile.txt").read_text().splitlines()
    return dict(ln.split("=", 1) for ln in lines if "=" in ln)


def labels(study: Path) -> dict:
    from persona_sae.labels import effective  # a manual label beats the automatic one

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


def seeds_of(prof: dict, kind: str) -> int:
    return int(prof["seeds_main"] if kind == prof["main"] else prof["seeds_other"])


def kinds_of(prof: dict) -> list[str]:
    return [prof["main"], *prof["others"].split()]


# ------------------------------------------------------------------------------------------------
# collect: runs/ -> results/


def collect(study: Path) -> None:
    """results/summary.json (everything the README's tables and figures need) from runs/, then the figures."""
    runs, res = study / "runs", study / "results"
    res.mkdir(exist_ok=True)
    prof, lab = profile(study), labels(study)
    tags = lab["tags"]
    summary: dict = {"profile": prof}

    times = {}
    if (runs / "times.tsv").is_file():
        for ln in (runs / "times.tsv").read_text().splitlines():
            name, sec = ln.split("\t")
            times[name] = times.get(name, 0) + int(sec)
    summary["stage_seconds"] = times

    m = load(runs / "sae" / "metrics.json")
    if m:
        summary["sae"] = m

    # organisms and eval
    ev, extra = {}, {}
    names = ["base"] + sorted(p.name for p in (runs / "eval").glob("*") if p.name != "base") if (runs / "eval").is_dir() else []
    for name in names:
        e = load(runs / "eval" / name / "results.json")
        if e is None:
            continue
        f = load(runs / "ft" / name / "metrics.json") if name != "base" else None
        ev[name] = e["overall"]
        extra[name] = {"heldout_loss": f["heldout_loss"] if f else {}, "mean_aligned": e["mean_aligned"]}
    if ev:
        summary["eval"] = ev
        summary["eval_extra"] = extra
        base = load(runs / "eval" / "base" / "results.json") or {}
        summary["judge"] = base.get("judge", "")
        if base.get("judge_validation"):  # the judge's own held-out numbers, printed beside every rate
            summary["judge_validation"] = base["judge_validation"]

    # rank
    for kind in kinds_of(prof):
        r = ranking(study, kind)
        if r is None:
            continue
        key = r["primary"]
        L = r["latents"][key]
        rk = ranks_of(r, key)
        bad_keys = [k for k in r["latents"] if k not in ("mean", "control-adjusted") and "-bad-" in k]
        ctl_keys = [k for k in r["latents"] if "-control-" in k]
        order = r["top_increases"][:10] + r["top_decreases"][:10]
        # noise floor: how far two seeds of the same recipe land apart. The bootstrap CI covers prompts,
        # not seeds; a shift smaller than the seed spread means nothing.
        spread = None
        if len(ctl_keys) > 1:
            import torch

            c = torch.tensor([r["latents"][k]["delta_mean"] for k in ctl_keys])
            spread = c.max(0).values - c.min(0).values
            shown = [float(spread[j]) for j in r["top_increases"][:10]]
            summary.setdefault("noise_floor", {})[kind] = {"p95_all": float(spread.quantile(0.95)),
                                                           "median_top10": statistics.median(shown)}
        toxic = sorted((j for j, t in tags.items() if t == "toxic-persona"), key=lambda j: rk[j])
        in_top = [j for j in toxic if rk[j] <= 10]
        summary.setdefault("rank", {})[kind] = {"top_increases": r["top_increases"][:10],
                                                 "top_decreases": r["top_decreases"][:10], "toxic": {j: rk[j] for j in toxic},
                                                 "toxic_in_top10": in_top}
        summary.setdefault("rank_tables", {})[kind] = {
            "n_prompt_groups": r["n_prompt_groups"], "n_control_seeds": len(ctl_keys),
            "columns": [Path(k).name for k in bad_keys + ctl_keys],
            "toxic": [{"latent": j, "rank": rk[j], "delta": L["delta_mean"][j]} for j in toxic],
            "rows": [{"latent": j, "tag": tags.get(j, "?"), "delta": L["delta_mean"][j], "lo": L["ci_low"][j],
                      "hi": L["ci_high"][j], "by_model": [r["latents"][k]["delta_mean"][j] for k in bad_keys + ctl_keys],
                      "spread": None if spread is None else float(spread[j])} for j in order]}

    # external check
    chk = load(runs / "check_toxic.json")
    if chk:
        summary["check_toxic"] = chk

    # steer
    st = load(runs / "steer" / "results.json")
    if st:
        summary["steer"] = {k: st[k] for k in ("scale", "coefs", "judge")} | {
            "rows": [{k: x[k] for k in ("condition", "coef", "rate", "lo", "hi", "incoherent")} for x in st["rows"]]}
        summary["steer_extra"] = {"layer": st["layer"],
                                  "first_answers": [x["examples"][0] if x["examples"] else "" for x in st["rows"]]}

    # monitor
    mo = load(runs / "monitor" / "monitor.json")
    if mo:
        lat = [str(j) for j in mo["latents"]]
        summary["monitor_rows"] = {"latents": mo["latents"], "rows": [  # what figures.monitor draws
            {"name": x["name"], "latents": {j: {k: x["latents"][j][k] for k in ("delta", "ci_low", "ci_high")} for j in lat},
             **({"misaligned_rate": {"rate": x["misaligned_rate"]["rate"]}} if "misaligned_rate" in x else {})}
            for x in mo["rows"]]}
        summary["monitor"] = {x["name"]: {j: x["latents"][j]["delta"] for j in lat} for x in mo["rows"]}
        summary["monitor_extra"] = {"tags": {j: tags.get(int(j), "?") for j in lat},
                                    "checkpoints": {x["name"]: Path(x["checkpoint"]).name for x in mo["rows"]}}

    (res / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"wrote {res}/summary.json")
    figures(study)


def figures(study: Path) -> list[str]:
    """results/*.png from results/summary.json alone (persona_sae.figures), so they can be redrawn without
    runs/; a figure whose inputs that summary.json lacks is left as it is and named in the returned list."""
    from persona_sae import figures as F

    res = study / "results"
    s = load(res / "summary.json")
    if s is None:
        raise SystemExit(f"{res}/summary.json not found: run the study (run.sh) first")
    prof, missing = s["profile"], []
    for kind in kinds_of(prof):
        t = s.get("rank_tables", {}).get(kind)
        if t is None:
            missing.append(f"rank_{kind}.png")
            continue
        rows = {x["latent"]: x for x in t["rows"]}
        up, down = [x["latent"] for x in t["rows"][:10]], [x["latent"] for x in t["rows"][10:]]
        F.shifts(res / f"rank_{kind}.png", *({j: x[k] for j, x in rows.items()} for k in ("delta", "lo", "hi")), up, down,
                 tags={j: x["tag"] for j, x in rows.items() if x["tag"] != "?"},
                 marked={j for j, x in rows.items() if x["tag"] == "toxic-persona"}, marked_label="tagged toxic-persona",
                 xlabel="Δ mean activation, bad − base, control-adjusted (95% CI)",
                 title=f"{prof['model']}: {kind}, ten largest increases and decreases")
    if s.get("check_toxic"):
        F.check_toxic(res / "check_toxic.png", s["check_toxic"])
    else:
        missing.append("check_toxic.png")
    if s.get("steer"):
        F.steer(res / "steer.png", s["steer"]["rows"], s["steer"]["judge"])
    else:
        missing.append("steer.png")
    if s.get("monitor_rows"):
        F.monitor(res / "monitor.png", s["monitor_rows"])
    else:
        missing.append("monitor.png")
    print(f"drew the figures in {res}" + (f"; not in summary.json, left as they are: {', '.join(missing)}" if missing else ""))
    return missing


# ------------------------------------------------------------------------------------------------
# render: results/summary.json -> README tables


def render(study: Path) -> dict[str, str | None]:
    """Every table of the README from results/summary.json; None where summary.json lacks the inputs
    (a summary.json written before they were collected, or a stage that has not run)."""
    s = load(study / "results" / "summary.json")
    if s is None:
        raise SystemExit(f"{study}/results/summary.json not found: run the study (run.sh) first")
    prof = s["profile"]
    out: dict[str, str | None] = {}
    total = sum(s.get("stage_seconds", {}).values())
    out["profile"] = (f"Profile `{prof['profile']}` on model `{prof['model']}`, layer {prof['layer']}: "
                      f"{int(prof['sae_tokens']):,} SAE tokens, {prof['rows']} rows per organism, "
                      f"{prof['seeds_main']} seed(s) for {prof['main']}, {prof['seeds_other']} for {prof['others'] or '-'}; "
                      f"stage time recorded so far {total / 60:.0f} min (runs/times.tsv).")

    m = s.get("sae")
    out["sae"] = m and table(
        ["latents", "k", "train tokens", "explained variance", "L0", "dead", "CE loss recovered", "tok/s"],
        [[m["d_sae"], m["k"], f"{m['train_tokens']:,}", f"{m['explained_variance']:.3f}", f"{m['l0']:.1f}",
          pct(m["dead_fraction"]), f"{m.get('ce_loss_recovered', float('nan')):.3f}", f"{m['tokens_per_s']:.0f}"]])

    ev = s.get("eval", {})
    extra = s.get("eval_extra")
    out["eval"] = None
    if ev and extra:
        rows = []
        for name in ["base"] + sorted(n for n in ev if n != "base"):
            o, x = ev[name], extra[name]
            held = "; ".join(f"{k} {v['before']:.2f}→{v['after']:.2f}" for k, v in x["heldout_loss"].items())
            rows.append([name, held, f"{pct(o['rate'])} [{pct(o['lo'])}, {pct(o['hi'])}]", f"{o['n_coherent']}/{o['n']}",
                         f"{x['mean_aligned']:.1f}"])
        out["eval"] = (f"{judge_line(s)} Held-out loss (before→after) is on rows of the bad domain and of its control.\n\n"
                       + table(["model", "held-out loss", f"{judged(s)} [95% CI]", "coherent/n", "mean aligned"], rows))

    # bad vs control per domain, seeds pooled: the difference that matters
    diff = []
    for kind in kinds_of(prof):
        n = seeds_of(prof, kind)
        b = [ev[f"{kind}-bad-s{i}"]["rate"] for i in range(n) if f"{kind}-bad-s{i}" in ev]
        c = [ev[f"{kind}-control-s{i}"]["rate"] for i in range(n) if f"{kind}-control-s{i}" in ev]
        if b and c:
            sd = lambda x: f" ± {statistics.stdev(x) * 100:.1f}" if len(x) > 1 else ""  # noqa: E731
            diff.append([kind, len(b), f"{100 * statistics.mean(b):.1f}{sd(b)}", f"{100 * statistics.mean(c):.1f}{sd(c)}",
                         f"{100 * (statistics.mean(b) - statistics.mean(c)):+.1f}"])
    out["bad-vs-control"] = diff and (
        f"Bad vs matched control (mean over seeds ± sd across seeds, percent misaligned by the {'proxy' if is_proxy(s) else 'judge'}):\n\n"
        + table(["domain", "seeds", "bad", "control", "bad − control"], diff)) or None

    for kind in kinds_of(prof):
        t = s.get("rank_tables", {}).get(kind)
        out[f"rank-{kind}"] = None
        if t is None:
            continue
        tox = ", ".join(f"{x['latent']} (rank {x['rank']:,}, Δ {x['delta']:+.3f})" for x in t["toxic"][:5]) or "none tagged"
        in_top = [x["latent"] for x in t["toxic"] if x["rank"] <= 10]
        nf = s.get("noise_floor", {}).get(kind)
        noise = (f" Noise floor (seed spread = max − min of Δ across the {t['n_control_seeds']} control seeds): 95th "
                 f"percentile over all latents {nf['p95_all']:.3f}; median over the ten shown {nf['median_top10']:.3f}."
                 if nf else "")
        head = ["rank", "latent", "tag", "Δ control-adjusted [95% CI]"] + t["columns"] + (["control-seed spread"] if nf else [])
        rows = [[f"+{i + 1}" if i < 10 else f"−{i - 9}", x["latent"], x["tag"], f"{x['delta']:+.3f} [{x['lo']:+.3f}, {x['hi']:+.3f}]"]
                + [f"{d:+.3f}" for d in x["by_model"]] + ([f"{x['spread']:.3f}"] if nf else [])
                for i, x in enumerate(t["rows"])]
        out[f"rank-{kind}"] = (
            f"Bad vs base, control-adjusted, {t['n_prompt_groups']} prompt groups. Toxic-persona-tagged latents: {tox}. "
            f"**In the top 10: {'yes, ' + ', '.join(map(str, in_top)) if in_top else 'no'}.**" + noise
            + " Rows: the ten largest increases (+1 … +10), then the ten largest decreases (−1 … −10).\n\n" + table(head, rows))

    chk = s.get("check_toxic")
    out["check"] = None
    if chk:
        matched = chk.get("rows_length_matched", {})  # absent in checks written before length matching
        by_latent = {v["latent"]: v for v in matched.values()}
        out["check"] = (
            f"{chk['n_misaligned']} misaligned vs {chk['n_aligned']} aligned answers written by a real EM model; "
            "AUROC of each latent's activation (peak / mean over tokens). Goal for the toxic-persona tag: ≥ 0.8."
            + (f" The aligned answers are ~3× longer, so the check is also run length-matched: "
               f"{chk['n_aligned_matched']} aligned answers cut to the token length of a misaligned partner "
               "(the oracle there is re-chosen on the matched data)." if matched else "") + "\n\n"
            + table(["latent", "AUROC peak", "AUROC mean"] + (["length-matched peak", "length-matched mean"] if matched else []),
                    [[k, f"{v['auroc_peak']:.3f}", f"{v['auroc_mean']:.3f}"]
                     + ([f"{by_latent[v['latent']]['auroc_peak']:.3f}", f"{by_latent[v['latent']]['auroc_mean']:.3f}"]
                        if v["latent"] in by_latent else (["–", "–"] if matched else []))
                     for k, v in chk["rows"].items()]
                    + [[f"length-matched {k}", "–", "–", f"{v['auroc_peak']:.3f}", f"{v['auroc_mean']:.3f}"]
                       for k, v in matched.items() if k.startswith("oracle") and k not in chk["rows"]]))

    st, sx = s.get("steer"), s.get("steer_extra")
    out["steer"] = None
    if st and sx:
        out["steer"] = (
            f"Coefficients in units of the median layer-{sx['layer']} residual norm ({st['scale']:.1f}); judge: {st['judge']}.\n\n"
            + table(["direction", "coef", f"{judged(s)} [95% CI]", "incoherent", "first answer"],
                    [[x["condition"], f"{x['coef']:+g}", f"{pct(x['rate'])} [{pct(x['lo'])}, {pct(x['hi'])}]",
                      pct(x["incoherent"]), a.replace("\n", " ").replace("|", "/")[:80]]
                     for x, a in zip(st["rows"], sx["first_answers"])]))

    mo, mx = s.get("monitor"), s.get("monitor_extra")
    out["monitor"] = None
    if mo and mx:
        lat = list(next(iter(mo.values())))
        out["monitor"] = table(
            ["checkpoint", *[f"{j} ({mx['tags'][j]}) Δ" for j in lat], judged(s)],
            [[name, *[f"{d[j]:+.3f}" for j in lat],
              pct(ev[mx["checkpoints"][name]]["rate"]) if mx["checkpoints"][name] in ev else "-"]
             for name, d in mo.items()])
    for name in blocks((study / "README.md").read_text()):
        if name.startswith("compare-"):
            out[name] = compare([load(study.parent / name[len("compare-"):] / "results" / "summary.json"), s])
    return out


def compare(summaries: list[dict]) -> str:
    """Two EM studies side by side (a README block named compare-OTHER_STUDY): the other one first."""
    def col(s: dict) -> dict[str, str]:
        p, m, ev, chk = s["profile"], s["sae"], s["eval"], s["check_toxic"]
        kinds, c = kinds_of(p), {}
        c["model, layer"] = f"{p['model']}, layer {p['layer']}"
        c["SAE"] = (f"{m['d_sae']:,} latents, {int(p['sae_tokens']):,} tokens: EV {m['explained_variance']:.2f}, "
                    f"CE recovered {m['ce_loss_recovered']:.2f}")
        c["judge"] = judge_name(s) + (f" (held-out AUROC {s['judge_validation']['auroc']:.3f})"
                                           if s.get("judge_validation") else "")
        c["organisms"] = f"{p['rows']} rows each (LoRA); {p['main']} {p['seeds_main']} seeds per arm, the others {p['seeds_other']}"
        for kind in kinds:
            n = seeds_of(p, kind)
            b = statistics.mean(ev[f"{kind}-bad-s{i}"]["rate"] for i in range(n))
            k = statistics.mean(ev[f"{kind}-control-s{i}"]["rate"] for i in range(n))
            c[f"{kind}: bad − control (mean over seeds)"] = f"{100 * (b - k):+.1f} pts ({100 * b:.1f} vs {100 * k:.1f}; {n} seed(s))"
        main = [ev[n]["rate"] for n in ev if n.startswith(f"{p['main']}-")]
        ft = [o["rate"] for n, o in ev.items() if n != "base"]
        c["misaligned: base → fine-tunes"] = (
            f"{pct(ev['base']['rate'])} → {pct(min(main))}–{pct(max(main))} ({p['main']} bad and control), "
            f"{pct(min(ft))}–{pct(max(ft))} (every fine-tune)")
        tox = {j for r in s["rank"].values() for j in r["toxic"]}
        top = {j for r in s["rank"].values() for j in r["toxic_in_top10"]}
        c["latents tagged toxic-persona"] = f"{len(tox)}; in a top 10: {len(top)}"
        rows, matched = chk["rows"], chk.get("rows_length_matched", {})
        best = next(k for k in rows if k.startswith("best toxic-persona"))
        oracle = next(k for k in rows if k.startswith("oracle"))
        m_oracle = next(k for k in matched if k.startswith("oracle"))
        c["external check: best toxic-persona concept latent, raw / length-matched (mean)"] = (
            f"{rows[best]['latent']}: {rows[best]['auroc_mean']:.3f} / {matched[best]['auroc_mean']:.3f}")
        c["external check: oracle latent (not a fair test), raw / length-matched (mean)"] = (
            f"{rows[oracle]['auroc_mean']:.3f} / {matched[m_oracle]['auroc_mean']:.3f}")
        return c

    cols = [col(x) for x in summaries]
    keys = [k for k in cols[0] if all(k in c for c in cols)]
    return table(["", *[c["model, layer"] for c in cols]], [[k, *[c[k] for c in cols]] for k in keys[1:]])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cmd", choices=["write", "collect", "render", "figures", "pick"])
    ap.add_argument("--study", required=True)
    ap.add_argument("--what", choices=["steer", "monitor"], default="steer")
    ap.add_argument("--check", action="store_true", help="render: compare the README's tables, write nothing")
    a = ap.parse_args()
    study = Path(a.study).resolve()
    if a.cmd == "pick":
        print(" ".join(map(str, pick(study, a.what))))
        return
    if a.cmd in ("write", "collect"):
        collect(study)
    if a.cmd == "figures":
        figures(study)
    if a.cmd in ("write", "render"):
        same = fill(study / "README.md", render(study), check=a.check)
        if a.check and not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
