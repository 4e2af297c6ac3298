"""The docs' screenshots of a real dashboard: the index and the most-shifted latent's page of the
site `persona-sae demo` builds (the shipped SAE, the demo's mining and ranking).

    persona-sae demo --out runs/demo
    PYTHONPATH=. python docs/screenshots.py --site runs/demo/site

Writes docs/demo-index.png and docs/demo-latent.png (downsized, under 300 KB each) and fails when the
page logs a console error.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests.browser import driver, save_small

DOCS = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", type=Path, required=True, help="a dashboard folder (holding site.json)")
    ap.add_argument("--out", type=Path, default=DOCS, help="where the PNGs go (default: docs/)")
    a = ap.parse_args()
    site = a.site.resolve()
    if not (site / "site.json").is_file():
        raise SystemExit(f"{site}: not a dashboard (no site.json)")
    ranking = json.loads((site.parent / "rank" / "ranking.json").read_text())
    top = ranking["top_increases"][0]
    drv = driver(1200, 1400)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, page in (("demo-index.png", site / "index.html"), ("demo-latent.png", site / "latent" / f"{top}.html")):
                drv.get(page.as_uri())
                bad = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
                if bad:
                    raise SystemExit(f"{page}: console errors: {bad}")
                shot = Path(tmp) / name
                drv.save_screenshot(str(shot))
                print(save_small(shot, a.out / name))
    finally:
        drv.quit()


if __name__ == "__main__":
    main()
