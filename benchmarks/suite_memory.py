"""The test suite's peak memory, and the tests that set it: an 8 GB laptop must be able to run `make test`.

    python benchmarks/suite_memory.py [--table-only]

Runs the suite as `make test` does (`python -m pytest -q -ra`, after setup) in a child process with
PERSONA_SAE_TEST_RSS set, so tests/conftest.py records each test's own peak RSS; the suite's peak is
the largest of those and of any process pytest started. (conftest resets the kernel's peak before each
test, which also resets what getrusage and `/usr/bin/time -v` report for pytest, so the per-test
records are the measurement; without PERSONA_SAE_TEST_RSS, `/usr/bin/time -v make test` reports the
same peak directly.) Writes benchmarks/results/suite_memory.json (peak, wall
time, pass/fail counts, the five tests with the highest peaks, machine) and the README's suite-memory
table; ``--table-only`` rewrites the table from the JSON. Target: peak <= 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # benchmarks/machine.py

from persona_sae import write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "suite_memory.json"
README = ROOT / "README.md"
TARGET_MB = 4096


def derive(res: dict) -> dict:
    """The suite's peak from the per-test records (and any child process), with the target verdict."""
    rusage = res.setdefault("rusage_children_mb", res.get("peak_mb", 0))
    peak = max([rusage] + [max(t["peak_mb"], t["children_mb"]) for t in res["top"]])
    return {**res, "peak_mb": round(peak), "met": peak <= TARGET_MB}


def write_table(res: dict) -> None:
    from experiments.common.tables import fill, table

    m = res["machine"]
    rows = [[f"`{t['test']}`", f"{t['peak_mb']:,}"] for t in res["top"][:5]]
    fill(README, {"suite-memory": (
        f"Peak RSS **{res['peak_mb']:,} MB** (target ≤ {TARGET_MB:,} MB: {'met' if res['peak_mb'] <= TARGET_MB else 'not met'}); "
        f"{res['passed']} passed, {res['failed']} failed in {res['seconds'] / 60:.1f} min on {m['cpu']}, {m['cores']} cores "
        f"(`python benchmarks/suite_memory.py`, [results](benchmarks/results/suite_memory.json)). The tests with the highest "
        f"peaks:\n\n" + table(["test", "peak RSS, MB"], rows, ["---", "---:"]))})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table-only", action="store_true", help="rewrite the README table from the JSON, run nothing")
    a = ap.parse_args()
    if a.table_only:
        res = derive(json.loads(OUT.read_text()))
        write_json(OUT, res)
        return write_table(res)
    with tempfile.TemporaryDirectory() as d:
        per_test = Path(d) / "rss.jsonl"
        env = {**os.environ, "PERSONA_SAE_TEST_RSS": str(per_test)}
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider"], cwd=ROOT, env=env,
                           capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        recs = [json.loads(line) for line in per_test.read_text().splitlines()] if per_test.exists() else []
    tail = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    count = lambda word: int(m.group(1)) if (m := re.search(rf"(\d+) {word}", tail)) else 0  # noqa: E731
    own = [(r["peak_mb"] if r.get("peak_mb") is not None else r["self_mb"], r["children_mb"], r["test"]) for r in recs]
    top = sorted(own, reverse=True)[:5] + sorted((o for o in own if o[1] > 0), key=lambda o: -o[1])[:1]
    res = {"rusage_children_mb": round(peak), "target_mb": TARGET_MB, "seconds": round(seconds),
           "exit": p.returncode, "passed": count("passed"), "failed": count("failed"), "summary": tail,
           "top": [{"test": t, "peak_mb": mb, "children_mb": kids} for mb, kids, t in top],
           "tests_recorded": len(recs), "machine": describe()}
    res = derive(res)
    write_json(OUT, res)
    print(f"suite: {tail} ({seconds / 60:.1f} min); peak RSS {res['peak_mb']:,} MB (target {TARGET_MB:,})")
    for t in res["top"]:
        print(f"  {t['peak_mb']:>6,} MB  {t['test']}")
    write_table(res)
    if p.returncode != 0:
        print(p.stdout[-3000:])
        raise SystemExit(p.returncode)


if __name__ == "__main__":
    main()
