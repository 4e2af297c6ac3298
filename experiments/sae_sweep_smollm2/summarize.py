"""One table for the sweep: each SAE's held-out metrics, its toxic-persona labels, the external check and
(where run) the fresh check and both read as assistant turns (VARIANTS), beside the shipped SAE. Writes results/summary.json and the README's generated section.

    python experiments/sae_sweep_smollm2/summarize.py SAE_DIR [SAE_DIR ...]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHIPPED = (ROOT / "checkpoints/smollm2/topk-L15-k32-4608", ROOT / "experiments/label_smollm2/results/check_toxic.json")


def provenance(sae: Path) -> str:
    """Model, corpus version, training tokens and where it trained, from the run's own files."""
    cfg = json.loads((sae / "run.json").read_text())["config"]
    corpus = "v2 (with chats)" if "corpus_chats" in cfg["dataset"] else "v1 (no chats)"
    where = "GPU (H200)" if (sae / "transport.json").is_file() else "CPU"
    return f"{cfg['model']}, {corpus}, {cfg['tokens'] / 1e6:.1f}M tokens, {where}"
BEGIN, END = "<!-- summary:begin (summarize.py) -->", "<!-- summary:end -->"


def candidates(sae: Path, check: Path) -> list[dict]:
    """One entry per candidate row of a check_toxic.py result (raw and length-matched AUROCs)."""
    chk = json.loads(check.read_text())
    out = []
    # the same candidates in the same order; only the oracle's latent can differ between the two versions
    for (name, raw), matched in zip(chk["rows"].items(), chk["rows_length_matched"].values()):
        out.append({"sae": sae.name, "candidate": name.split(": latent")[0], "latent": raw["latent"],
                    "raw_peak": round(raw["auroc_peak"], 3), "raw_mean": round(raw["auroc_mean"], 3),
                    "matched_peak": round(matched["auroc_peak"], 3), "matched_mean": round(matched["auroc_mean"], 3)})
    return out


def table(checks: list[dict]) -> list[str]:
    lines = ["| SAE | candidate | latent | raw peak | raw mean | length-matched peak | length-matched mean |",
             "|---|---|---:|---:|---:|---:|---:|"]
    return lines + [f"| {c['sae']} | {c['candidate']} | {'' if c['latent'] is None else c['latent']} | "
                    f"{c['raw_peak']:.2f} | {c['raw_mean']:.2f} | {c['matched_peak']:.2f} | {c['matched_mean']:.2f} |"
                    for c in checks]


def row(sae: Path, check: Path) -> tuple[dict, list[dict]]:
    """The SAE's metrics and labels, and one entry per candidate of the external check."""
    cpu = sae / "metrics_cpu.json"
    m = json.loads((cpu if cpu.is_file() else sae / "metrics.json").read_text())
    lab = json.loads((sae / "labels.json").read_text())
    best = lab["best_per_tag"]["toxic-persona"]
    info = {"sae": sae.name, "corpus": provenance(sae), "layer": lab["layer"], "d_sae": m.get("d_sae"),
            "explained_variance": round(m["explained_variance"], 3), "ce_loss_recovered": round(m["ce_loss_recovered"], 3),
            "tagged": sum(e["tag"] != "unlabelled" for e in lab["latents"].values()),
            "best_toxic_concept_latent": best["latent"], "best_toxic_concept_auroc": round(best["auroc"], 3),
            "n_tagged_toxic": best["n_tagged"]}
    return info, candidates(sae, check)


VARIANTS = (  # file prefix in results/, key in summary.json, caption
    ("fresh", "fresh_checks", "The same rows on fresh answers (`check_toxic.py --fresh`: Betley et al.'s judged misaligned "
                              "answers against aligned answers the check above never sampled):"),
    ("chat", "chat_checks", "The main check with each answer read as an assistant turn of the chat template "
                            "(`check_toxic.py --chat`, session 7):"),
    ("chatfresh", "chat_fresh_checks", "The fresh check read the same way (`check_toxic.py --chat --fresh`):"))


def main(dirs: list[str]) -> None:
    parts = [row(*SHIPPED)] + [row(Path(d), HERE / "results" / f"check_{Path(d).name}.json") for d in dirs]
    infos, checks = [p[0] for p in parts], [c for p in parts for c in p[1]]
    variants = {}
    for prefix, key, caption in VARIANTS:
        files = [(SHIPPED[0], HERE / "results" / f"{prefix}_shipped.json")] + \
            [(Path(d), HERE / "results" / f"{prefix}_{Path(d).name}.json") for d in dirs]
        variants[key] = (caption, [c for sae, f in files if f.is_file() for c in candidates(sae, f)])
    (HERE / "results" / "summary.json").write_text(json.dumps(
        {"saes": infos, "checks": checks} | {k: v for k, (_, v) in variants.items()}, indent=2) + "\n")
    lines = ["| SAE | model, corpus, tokens, trained on | layer | latents | EV | CE rec. | latents tagged | "
             "toxic-persona: best concept latent (concept AUROC), latents tagged |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['sae']} | {r['corpus']} | {r['layer']} | {r['d_sae']:,} | {r['explained_variance']:.3f} | "
              f"{r['ce_loss_recovered']:.3f} | {r['tagged']} | {r['best_toxic_concept_latent']} "
              f"({r['best_toxic_concept_auroc']:.2f}), {r['n_tagged_toxic']} |" for r in infos]
    lines += ["", "External check, AUROC misaligned vs aligned (peak / mean activation per answer); the bar is 0.8:", "",
              *table(checks)]
    for caption, rows in variants.values():
        if rows:
            lines += ["", caption, "", *table(rows)]
    text = "\n".join(lines)
    print(text)
    readme = HERE / "README.md"
    if readme.is_file():
        old = readme.read_text()
        if BEGIN in old and END in old:
            readme.write_text(re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: f"{BEGIN}\n{text}\n{END}", old,
                                     flags=re.S))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
