"""How long `persona-sae demo` takes, cold (a fresh output folder: rank, label, mine, pages) and warm
(the same folder again: every step reused), each as a separate process, as a user runs it.

    python benchmarks/demo.py [--out DIR]

The model must be pulled already (`persona-sae models pull smollm2`): pulling is a download, not
the demo. The machine's load is recorded beside the times (1-minute load average before and after,
CPU count), since a busy machine can slow the demo several-fold. Writes benchmarks/results/demo.json
and prints a table, and writes it into the README (``--table-only``: from the JSON alone).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "demo.json"
README = ROOT / "README.md"


def write_table(res: dict) -> None:
    """The timings into the README's demo-time block."""
    from experiments.common.tables import fill, table

    rows = [[k, f"{res[k]['seconds']:.0f}", f"{res[k]['load_before']:.2f}", f"{res[k]['load_after']:.2f}"]
            for k in ("cold", "warm")]
    fill(README, {"demo-time": table(["run", "seconds", "1-min load before", "after"], rows,
                                     ["---", "---:", "---:", "---:"])
                  + f"\n\n{res['machine']}, {res['cpus']} CPUs, Python {res['python']}, threads {res['threads']} "
                  f"([results](benchmarks/results/demo.json)); cold = rank, label, mining and pages in a new folder, "
                  f"warm = the same folder again."})


def timed(out: Path) -> dict:
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "persona_sae", "demo", "--out", str(out)], capture_output=True, text=True)
    s = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"demo failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return {"seconds": round(s, 1), "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="", help="demo output folder (default: a temporary one, removed after)")
    ap.add_argument("--table-only", action="store_true", help="rewrite the README table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        return write_table(json.loads(OUT.read_text()))
    from persona_sae.models import is_pulled

    if not is_pulled("smollm2"):
        raise SystemExit("pull the model first: persona-sae models pull smollm2")
    tmp = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="persona-sae-demo-")) / "demo"
    if tmp.exists():
        raise SystemExit(f"{tmp} exists: the cold run needs a fresh folder")
    try:
        cold, warm = timed(tmp), timed(tmp)
    finally:
        if not a.out:
            shutil.rmtree(tmp.parent, ignore_errors=True)
    from machine import describe  # benchmarks/machine.py

    m = describe()
    res = {"cold": cold, "warm": warm, "cpus": m["cores"], "machine": m["cpu"], "python": m["python"],
           "threads": os.environ.get("OMP_NUM_THREADS", "default"), **m}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print("| run | seconds | load before | load after |\n|---|---:|---:|---:|")
    for k in ("cold", "warm"):
        print(f"| {k} | {res[k]['seconds']:.0f} | {res[k]['load_before']:.2f} | {res[k]['load_after']:.2f} |")
    print(f"{res['cpus']} CPUs; wrote {OUT.relative_to(ROOT)}")
    write_table(res)


if __name__ == "__main__":
    main()
