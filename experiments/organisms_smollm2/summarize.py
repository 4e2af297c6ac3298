"""Markdown tables of the top latents from a rank output folder, with labels (for the README).

    python experiments/organisms_smollm2/summarize.py experiments/organisms_smollm2/runs/rank-response [N]
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from persona_sae.label import effective  # noqa: E402

folder, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 10
r = json.loads((folder / "ranking.json").read_text())
sae = Path(r["sae"]) if Path(r["sae"]).is_absolute() else (folder / ".." / ".." / r["sae"]).resolve()
if not sae.is_dir():
    sae = Path(r["sae"]).resolve()
lab = json.loads((sae / "labels.json").read_text()) if (sae / "labels.json").is_file() else {}
p = r["latents"][r["primary"]]
raw = r["latents"][r["config"]["finetuned"][0]]
print(f"primary ordering: {r['primary']}; {r['n_prompt_groups']} prompt groups; tokens per model: "
      f"{next(iter(r['tokens'].values())):,}\n")
for title, idx in (("increases", r["top_increases"][:n]), ("decreases", r["top_decreases"][:n])):
    print(f"| top {title} | latent | label (auto) | control-adjusted Δ | 95% CI | bad − base Δ | bad-FT CI |")
    print("|---|---|---|---|---|---|---|")
    for i, j in enumerate(idx, 1):
        tag = effective(lab, j)["tag"] if lab else "—"
        print(f"| {i} | {j} | {tag} | {p['delta_mean'][j]:+.3f} | [{p['ci_low'][j]:+.3f}, {p['ci_high'][j]:+.3f}] | "
              f"{raw['delta_mean'][j]:+.3f} | [{raw['ci_low'][j]:+.3f}, {raw['ci_high'][j]:+.3f}] |")
    print()
