"""Generated tables in a README: the text between ``<!-- table:NAME -->`` and ``<!-- /table -->``.

Every study's summarize script builds its tables from result files and hands them to ``fill``, which
replaces each named block and leaves the rest of the README alone. ``--check`` (``parser``) compares
instead of writing: it exits 1 when a block differs from what the result files give.
"""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path

BLOCK = re.compile(r"(<!-- table:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def blocks(text: str) -> dict[str, str]:
    """Name -> current body of every generated block of a README."""
    return {m["name"]: m["body"] for m in BLOCK.finditer(text)}


def fill(readme: Path, tables: dict[str, str | None], check: bool = False) -> bool:
    """Write ``tables`` into ``readme``'s blocks (or compare, with ``check``). A table given as None
    could not be built from the result files at hand: its block is kept as it is, and said so.
    Returns True when the README is (or would be) unchanged."""
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    have = blocks(text)
    missing = [n for n in tables if n not in have]
    if missing:
        raise SystemExit(f"{readme}: no <!-- table:NAME --> ... <!-- /table --> block for {', '.join(missing)}")
    for name in have:
        if name not in tables:
            print(f"{readme}: block {name} is not written by this script (kept)")
    new = {n: body.rstrip("\n") + "\n" for n, body in tables.items() if body is not None}
    for name in (n for n, b in tables.items() if b is None):
        print(f"{readme}: table {name}: the result files lack its inputs; block kept as it is")
    out = BLOCK.sub(lambda m: m.group(1) + new.get(m["name"], m["body"]) + m.group(4), text)
    same = out == text
    if check:
        for name, body in new.items():
            if body != have[name]:
                print(f"{readme}: table {name} differs from the result files:")
                print("".join(difflib.unified_diff(have[name].splitlines(True), body.splitlines(True),
                                                   "README", "result files", n=0)))
        print(f"{readme}: {'up to date' if same else 'OUT OF DATE'} ({len(new)} tables checked)")
    elif not same:
        readme.write_text(out, encoding="utf-8")
        print(f"wrote {len(new)} tables into {readme}")
    else:
        print(f"{readme}: tables unchanged")
    return same


def table(head: list[str], rows: list[list], align: list[str] | None = None) -> str:
    """A markdown table; ``align`` holds one '---' or '---:' per column."""
    sep = "|" + "|".join(align) + "|" if align else "|" + "---|" * len(head)
    return "\n".join(["| " + " | ".join(head) + " |", sep] + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def parser(doc: str) -> argparse.ArgumentParser:
    """The common options of a summarize script: ``--check`` compares the README instead of writing it."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare the README's tables with the result files; write nothing")
    return ap


# Cell formats shared by the studies' tables; a missing value (None) prints as a dash.

def num(x, nd: int = 3) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def sig(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def ci(x, lo_hi, missing: str = "—") -> str:
    """``x [lo, hi]`` to three decimals (just ``x`` without an interval)."""
    if x is None:
        return missing
    return f"{x:.3f} [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi and lo_hi[0] is not None else f"{x:.3f}"
