"""The label study's tables: the shipped SAE's best latent per concept tag (its labels.json), and the
external check of the toxic-persona tag (results/check_toxic.json; the fresh reading from the sweep's
results/fresh_shipped.json).

    python -m experiments.label_smollm2.summarize [--check]
"""

from __future__ import annotations

import json
from pathlib import Path

from experiments.common.paths import ROOT, SHIPPED_SAE
from experiments.common.tables import fill, parser, table

HERE = Path(__file__).resolve().parent
FRESH = ROOT / "experiments/sae_sweep_smollm2/results/fresh_shipped.json"


def check_table(chk: dict) -> str:
    """One row per candidate of a check_toxic result: raw and length-matched AUROCs (peak / mean)."""
    matched = list(chk["rows_length_matched"].items())
    rows = []
    # the same candidates in the same order; only the oracle's latent can differ between the two versions
    for (name, raw), (mname, m) in zip(chk["rows"].items(), matched):
        cand = name.split(": latent")[0]
        lat = "—" if raw["latent"] is None else raw["latent"]
        if m["latent"] != raw["latent"]:
            lat = f"{lat} (matched: {m['latent']})"
        rows.append([lat, cand, f"{raw['auroc_peak']:.3f}", f"{raw['auroc_mean']:.3f}", f"{m['auroc_peak']:.3f}",
                     f"{m['auroc_mean']:.3f}"])
    return table(["latent", "how chosen", "AUROC (peak)", "AUROC (mean over tokens)", "length-matched peak",
                  "length-matched mean"], rows, ["---:", "---", "---:", "---:", "---:", "---:"])


def random_table(runs: dict) -> str:
    """Tags of the shipped SAE and of a random-weight SAE of its shape, under the default rule and the
    fixed thresholds alone (results/random_null.json)."""
    def rule(r):
        if r["fdr"] is None or r["fdr"] >= 1:
            return "thresholds alone"
        null = f", {r['null_saes']} random-SAE null" if r["null_saes"] else ""
        refine = f" ({r['refined']} pairs refined with {r['refine']:,})" if r.get("refined") else ""
        return f"BH q ≤ {r['fdr']} over {r['permutations']:,} shuffles{refine}{null}"

    tags = sorted({t for r in runs.values() for t in r["per_tag"]})
    rows = []
    for name, r in runs.items():
        per = ", ".join(f"{t} {r['per_tag'][t]}" for t in tags if r["per_tag"].get(t))
        removed = "—" if r["null_removed"] is None else f"{r['null_removed']} of {r['tags_without_null']}"
        rows.append([name, rule(r), f"{r['tagged']:,} of {r['latents']:,}", removed, per or "none"])
    return table(["SAE, labels", "rule", "latents tagged", "tags the null removed", "tagged per concept"], rows,
                 ["---", "---", "---:", "---:", "---"])


def render() -> dict[str, str]:
    lab = json.loads((SHIPPED_SAE / "labels.json").read_text())
    tagged = sum(e["tag"] != "unlabelled" for e in lab["latents"].values())
    bar = lab["thresholds"]["auroc"]
    t = {"labels": (
        f"{tagged} of {len(lab['latents']):,} latents tagged; {sum(lab['n_texts'].values()):,} concept-set texts "
        f"({len(lab['n_texts'])} sets, controls included). Best latent per tag (AUROC of per-text peak activation, "
        f"concept vs all other texts; a tag needs AUROC ≥ {bar}):\n\n"
        + table(["tag", "best latent", "AUROC", "latents tagged"],
                [[tag, b["latent"], f"{b['auroc']:.3f}", b["n_tagged"]] for tag, b in lab["best_per_tag"].items()],
                ["---", "---:", "---:", "---:"]))}
    chk = json.loads((HERE / "results" / "check_toxic.json").read_text())
    t["check"] = (f"{chk['n_misaligned']} misaligned vs {chk['n_aligned']} aligned answers "
                  f"({chk['n_aligned_matched']} aligned answers length-matched):\n\n" + check_table(chk))
    null = HERE / "results" / "random_null.json"
    if null.is_file():
        t["random"] = random_table(json.loads(null.read_text()))
    fresh = json.loads(FRESH.read_text())
    t["fresh"] = (f"{fresh['n_misaligned']} misaligned vs {fresh['n_aligned']} aligned answers "
                  f"({fresh['n_aligned_matched']} length-matched):\n\n" + check_table(fresh))
    return t


def main() -> None:
    a = parser(__doc__).parse_args()
    if not fill(HERE / "README.md", render(), check=a.check) and a.check:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
