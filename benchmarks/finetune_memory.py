"""Fine-tuning memory and time with and without --gradient-checkpointing, side by side: the
integration test's LoRA fine-tune (SmolLM2, 48 insecure-code rows, batch 8, chats up to 320 tokens),
each setting in its own process so each peak RSS is its own.

    python benchmarks/finetune_memory.py

Prints a table and writes benchmarks/results/finetune_memory.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from persona_sae import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "finetune_memory.json"
ONE = """
import json, resource, sys, tempfile, time
from persona_sae.config import FinetuneConfig
from persona_sae.stages.finetune import run
t = time.time()
r = run(FinetuneConfig(out=tempfile.mkdtemp() + "/ft", data="insecure-code", n=48, held_out=16, lr=5e-4, max_len=320,
                       checkpoint_every=0, gradient_checkpointing=sys.argv[1] == "1"), log=lambda *a: None)
print(json.dumps({"seconds": round(time.time() - t, 1), "heldout": r.heldout["insecure-code"],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = {"setting": "SmolLM2 LoRA r16, 48 insecure-code rows (16 held out), batch 8, max_len 320, fp32",
           "load_1min_before": round(os.getloadavg()[0], 2), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    for gc in ("0", "1"):
        p = subprocess.run([sys.executable, "-c", ONE, gc], capture_output=True, text=True, env=env)
        if p.returncode:
            raise SystemExit(p.stderr[-2000:])
        res["checkpointing" if gc == "1" else "plain"] = json.loads(p.stdout.strip().splitlines()[-1])
    res["load_1min_after"] = round(os.getloadavg()[0], 2)
    res["memory_ratio"] = round(res["plain"]["peak_rss_mb"] / res["checkpointing"]["peak_rss_mb"], 2)
    res["time_ratio"] = round(res["checkpointing"]["seconds"] / res["plain"]["seconds"], 2)
    same = all(abs(res["plain"]["heldout"][k] - res["checkpointing"]["heldout"][k]) < 1e-4 for k in ("before", "after"))
    res["same_heldout_loss"] = same
    print(f"{'':<16}{'seconds':>9}{'peak RSS MB':>13}{'held-out after':>16}")
    for k in ("plain", "checkpointing"):
        r = res[k]
        print(f"{k:<16}{r['seconds']:>9}{r['peak_rss_mb']:>13,}{r['heldout']['after']:>16.4f}")
    print(f"memory {res['memory_ratio']}x lower, time x{res['time_ratio']}, same held-out loss: {same}")
    write_json(OUT, res)


if __name__ == "__main__":
    main()
