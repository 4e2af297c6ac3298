"""Whether bf16 pays on this machine: one SmolLM2-sized matrix product (2560 x 576 by 576 x 1536, an
MLP projection of 10 rows of 256 tokens) in float32 and in bfloat16, side by side, with the CPU's
capability and oneDNN's bf16 support. persona_sae turns bf16 autocast off where bf16 is not fast
(`models.bf16_fast`); this shows why.

    python benchmarks/bf16.py [--repeats 5]

Prints a table and writes benchmarks/results/bf16.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from machine import describe  # benchmarks/machine.py

from persona_sae import write_json

OUT = Path(__file__).resolve().parent / "results" / "bf16.json"


def seconds(dtype: torch.dtype, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2560, 576, generator=g).to(dtype)
    w = torch.randn(576, 1536, generator=g).to(dtype)
    a @ w  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        a @ w
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    fp32, bf16 = seconds(torch.float32, a.repeats), seconds(torch.bfloat16, a.repeats)
    m = describe()
    cpu = m["cpu"]
    res = {"fp32_seconds": round(fp32, 5), "bf16_seconds": round(bf16, 5), "bf16_over_fp32": round(bf16 / fp32, 2), **m}
    print(f"{'dtype':<10}{'seconds':>10}\nfloat32   {fp32:>10.4f}\nbfloat16  {bf16:>10.4f}\n"
          f"bf16 / fp32 = {bf16 / fp32:.1f}x on {cpu} ({res['cpu_capability']}, oneDNN bf16: {res['bf16_fast']})")
    write_json(OUT, res)


if __name__ == "__main__":
    main()
