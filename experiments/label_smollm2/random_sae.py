"""A random-weight SAE of the shipped SAE's shape, for the check that `label` tags nothing on it.

SAELens' own initialisation of the same architecture (TopK, the shipped d_in, d_sae and k), seeded, with
the shipped SAE's metadata (model, hook), so `label` reads the same model and layer, and the shipped
SAE's b_dec (the residual's mean, subtracted before encoding): with b_dec = 0 every random latent would
mostly read the residual's large mean direction, an easier null. Nothing else is trained: any tag it
gets is chance.

    python -m experiments.label_smollm2.random_sae make --like SAE --seed 0 --out FOLDER
    python -m experiments.label_smollm2.random_sae collect NAME=LABELS_FOLDER ... --out results/random_null.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import torch


def make(like: str, seed: int, out: str) -> Path:
    from sae_lens import TopKSAE, TopKSAEConfig

    cfg = json.loads((Path(like) / "cfg.json").read_text(encoding="utf-8"))
    if cfg.get("architecture") != "topk":
        raise SystemExit(f"{like}: expected a topk SAE, got {cfg.get('architecture')!r}")
    torch.manual_seed(seed)
    sae = TopKSAE(TopKSAEConfig(d_in=cfg["d_in"], d_sae=cfg["d_sae"], k=cfg["k"],
                                apply_b_dec_to_input=cfg.get("apply_b_dec_to_input", True)))
    from safetensors.torch import load_file

    with torch.no_grad():
        sae.b_dec.copy_(load_file(str(Path(like) / "sae_weights.safetensors"))["b_dec"])
    tmp = Path(f"{out}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    sae.save_model(str(tmp))
    meta = json.loads((tmp / "cfg.json").read_text())
    meta["metadata"] = {**cfg.get("metadata", {}), "persona_sae_random": {"like": str(like), "seed": seed}}
    (tmp / "cfg.json").write_text(json.dumps(meta))
    os.replace(tmp, out)
    return Path(out)


def collect(runs: list[str], out: str) -> dict:
    """What each label run tagged, and under which rule, from its labels.json (the committed summary)."""
    res = {}
    for item in runs:
        name, folder = item.split("=", 1)
        lab = json.loads((Path(folder) / "labels.json").read_text(encoding="utf-8"))
        tags = [e["tag"] for e in lab["latents"].values()]
        null = lab.get("null") or {}
        res[name] = {"sae": lab["sae"], "sae_sha256": lab["sae_sha256"], "latents": len(tags),
                     "tagged": sum(t != "unlabelled" for t in tags),
                     "per_tag": {t: b["n_tagged"] for t, b in lab["best_per_tag"].items()},
                     "best_auroc": {t: round(b["auroc"], 4) for t, b in lab["best_per_tag"].items()},
                     "fdr": lab["thresholds"].get("fdr"),
                     "permutations": (lab.get("p_values") or {}).get("permutations", 0),
                     "refine": (lab.get("p_values") or {}).get("refine", 0),
                     "refined": (lab.get("p_values") or {}).get("refined", 0),
                     "null_saes": null.get("saes", 0), "null_removed": null.get("removed"),
                     "tags_without_null": null.get("tags_without"), "texts": sum(lab["n_texts"].values())}
    tmp = Path(f"{out}.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    os.replace(tmp, out)
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the random SAE")
    m.add_argument("--like", required=True, help="the SAE whose shape and metadata to copy")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", required=True)
    c = sub.add_parser("collect", help="summarise label runs into one JSON")
    c.add_argument("runs", nargs="+", help="NAME=FOLDER holding a labels.json")
    c.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    if a.cmd == "make":
        print(make(a.like, a.seed, a.out))
    else:
        collect(a.runs, a.out)


if __name__ == "__main__":
    main()
