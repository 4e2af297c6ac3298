"""Markdown table of a steering sweep (for the README): python experiments/steer_smollm2/summarize.py [runs/sweep]"""

import json
import sys
from pathlib import Path

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "runs" / "sweep"
r = json.loads((folder / "results.json").read_text())
print(f"scale (median layer-{r['layer']} residual norm) = {r['scale']:.1f}; judge: {r['judge']}\n")
print("| direction | coef | misaligned (proxy) | 95% CI | incoherent | mean coherent | first answer |")
print("|---|---|---|---|---|---|---|")
for x in r["rows"]:
    ans = x["examples"][0].replace("\n", " ").replace("|", "/")[:90] if x["examples"] else ""
    print(f"| {x['condition']} | {x['coef']:+g} | {100 * x['rate']:.1f}% | [{100 * x['lo']:.1f}, {100 * x['hi']:.1f}] | "
          f"{100 * x['incoherent']:.0f}% | {x['mean_coherent']:.0f} | {ans} |")
