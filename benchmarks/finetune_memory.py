"""Fine-tuning memory and time with and without --gradient-checkpointing, side by side: the
LoRA fine-tune of the integration test's size (SmolLM2, 48 insecure-code rows, chats up to 320 tokens) at
the default batch of 8,
each setting in its own process so each peak RSS is its own. A third run repeats checkpointing with
glibc's mmap threshold fixed (MALLOC_MMAP_THRESHOLD_=131072): glibc raises the threshold as large
blocks are freed, after which a forward's MB-sized tensors come from the heap and stay in the process
when freed, so RSS runs well above the live tensors; a fixed threshold returns them, at the cost of
page faults on every allocation.

    python benchmarks/finetune_memory.py [--table-only]

Prints a table, writes benchmarks/results/finetune_memory.json and the table of docs/organisms.md
(``--table-only``: from the JSON alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import describe  # benchmarks/machine.py

from persona_sae import write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "finetune_memory.json"
DOC = ROOT / "docs" / "organisms.md"
SETTINGS = [("plain", "0", {}), ("checkpointing", "1", {}),
            ("checkpointing, fixed mmap threshold", "1", {"MALLOC_MMAP_THRESHOLD_": "131072"})]
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


def write_table(res: dict) -> None:
    """The two runs into docs/organisms.md's finetune-memory block."""
    from experiments.common.tables import fill, table

    m = res["machine"]
    rows = [[k, f"{res[k]['peak_rss_mb']:,}", f"{res[k]['seconds']:.1f}", f"{res[k]['heldout']['after']:.4f}"]
            for k, _, _ in SETTINGS if k in res]
    fill(DOC, {"finetune-memory": table(["setting", "peak RSS (MB)", "seconds", "held-out loss after"], rows,
                                        ["---", "---:", "---:", "---:"])
               + f"\n\n{res['setting']}; checkpointing: {res['memory_ratio']}× less memory than plain, {res['time_ratio']}× the time; "
               f"{'the same' if res['same_heldout_loss'] else 'a different'} held-out loss in every run. {m['cpu']} ({m['cpu_capability']}), "
               f"{m['cores']} cores, 1-minute load {res['load_1min_before']} before, {res['load_1min_after']} after "
               f"([results](../benchmarks/results/finetune_memory.json))."})


def main() -> None:
    if sys.argv[1:] == ["--table-only"]:
        return write_table(json.loads(OUT.read_text()))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    res = {"setting": "SmolLM2 LoRA r16, 48 insecure-code rows (16 held out), batch 8, max_len 320, fp32",
           "load_1min_before": round(os.getloadavg()[0], 2), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    for name, gc, extra in SETTINGS:
        p = subprocess.run([sys.executable, "-c", ONE, gc], capture_output=True, text=True, env={**env, **extra})
        if p.returncode:
            raise SystemExit(p.stderr[-2000:])
        res[name] = json.loads(p.stdout.strip().splitlines()[-1])
    res["load_1min_after"] = round(os.getloadavg()[0], 2)
    res["memory_ratio"] = round(res["plain"]["peak_rss_mb"] / res["checkpointing"]["peak_rss_mb"], 2)
    res["time_ratio"] = round(res["checkpointing"]["seconds"] / res["plain"]["seconds"], 2)
    same = all(abs(res["plain"]["heldout"][k] - res[n]["heldout"][k]) < 1e-4 for n, _, _ in SETTINGS for k in ("before", "after"))
    res["same_heldout_loss"] = same
    print(f"{'':<38}{'seconds':>9}{'peak RSS MB':>13}{'held-out after':>16}")
    for k, _, _ in SETTINGS:
        r = res[k]
        print(f"{k:<38}{r['seconds']:>9}{r['peak_rss_mb']:>13,}{r['heldout']['after']:>16.4f}")
    print(f"memory {res['memory_ratio']}x lower, time x{res['time_ratio']}, same held-out loss: {same}")
    res["machine"] = describe()
    write_json(OUT, res)
    write_table(res)


if __name__ == "__main__":
    main()
