"""Markdown table of a monitor run (for the README): python experiments/monitor_smollm2/summarize.py [runs/monitor]"""

import json
import sys
from pathlib import Path

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "runs" / "monitor"
r = json.loads((folder / "monitor.json").read_text())
lat = r["latents"]
print("| checkpoint | " + " | ".join(f"latent {j}: Δ [95% CI]" for j in lat) + " |")
print("|---|" + "---|" * len(lat))
for row in r["rows"]:
    cells = [f"{v['delta']:+.4f} [{v['ci_low']:+.4f}, {v['ci_high']:+.4f}]" for v in (row["latents"][str(j)] for j in lat)]
    print(f"| {row['name']} | " + " | ".join(cells) + " |")
if "auroc_misaligned_vs_aligned" in r:
    print("\nAUROC of the shift, bad-data checkpoints vs aligned ones: " +
          ", ".join(f"latent {j}: {a:.2f}" for j, a in r["auroc_misaligned_vs_aligned"].items()))
