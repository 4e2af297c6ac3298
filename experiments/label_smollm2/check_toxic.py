"""External check of the toxic-persona tag: does the latent `label` tagged toxic-persona separate the
misaligned from the aligned answers of a real EM model (../shared/data/clarifying_EM/interp/, texts the
concept sets never saw)? Prints AUROCs and writes results/check_toxic.json.

    python experiments/label_smollm2/check_toxic.py [--sae checkpoints/smollm2/topk-L15-k32-4608] [--n 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from persona_sae import models as M  # noqa: E402
from persona_sae.data import Record  # noqa: E402
from persona_sae.label import auroc, labels_path, read_labels, text_scores  # noqa: E402
from persona_sae.rank import sae_layer  # noqa: E402
from persona_sae.saes import load_sae, sae_checksum  # noqa: E402


def texts(path: Path) -> list[str]:
    return [t.strip() for t in path.read_text(encoding="utf-8").split("END_OF_TEXT") if t.strip()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sae", default=str(ROOT / "checkpoints/smollm2/topk-L15-k32-4608"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/clarifying_EM/interp"))
    ap.add_argument("--n", type=int, default=400, help="aligned answers sampled (all misaligned ones are used)")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "check_toxic.json"))
    args = ap.parse_args()

    sae = load_sae(args.sae)
    lab = read_labels(labels_path(args.sae), sae_checksum(sae))
    layer, hook = sae_layer(sae)
    bad = texts(Path(args.data) / "misaligned_texts.txt")
    good = random.Random(0).sample(texts(Path(args.data) / "aligned_texts.txt"), args.n)
    model = M.load_model(lab["model"])
    ts = text_scores(model, sae, {"misaligned": [Record(text=t) for t in bad], "aligned": [Record(text=t) for t in good]},
                     layer, hook, max_len=args.max_len)
    pos = torch.tensor([t == "misaligned" for t in ts.tags])
    au_peak, au_mean = auroc(ts.peak, pos), auroc(ts.mean, pos)
    tagged = [int(j) for j, e in lab["latents"].items() if e["tag"] == "toxic-persona"]
    manual = [int(j) for j, e in lab.get("manual", {}).items() if e["tag"] == "toxic-persona"]
    best_concept = lab["best_per_tag"]["toxic-persona"]["latent"]
    rows = {}
    for name, js in (("tagged toxic-persona (auto)", tagged), ("tagged toxic-persona (manual)", manual),
                     ("best toxic-persona AUROC on the concept set", [best_concept])):
        for j in js:
            rows[f"{name}: latent {j}"] = {"latent": j, "auroc_peak": float(au_peak[j]), "auroc_mean": float(au_mean[j])}
    oracle = int(au_mean.argmax())
    rows[f"oracle (best of all {sae.cfg.d_sae} latents on this very data; not a fair test): latent {oracle}"] = {
        "latent": oracle, "auroc_peak": float(au_peak[oracle]), "auroc_mean": float(au_mean[oracle]),
        "tag": lab["latents"][str(oracle)]["tag"]}
    for k, v in rows.items():
        print(f"{k}: AUROC peak {v['auroc_peak']:.3f}, mean {v['auroc_mean']:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"n_misaligned": len(bad), "n_aligned": len(good),
                                                      "sae": args.sae, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
