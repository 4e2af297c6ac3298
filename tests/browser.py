"""Headless Chromium for the dashboard test and for the docs' screenshots (docs/screenshots.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def chromium() -> tuple[str, str]:
    """Chromium and its driver: PERSONA_SAE_CHROMIUM / PERSONA_SAE_CHROMEDRIVER, else from PATH."""
    for b, d in ((os.environ.get("PERSONA_SAE_CHROMIUM"), os.environ.get("PERSONA_SAE_CHROMEDRIVER")),
                 (shutil.which("chromium"), shutil.which("chromedriver"))):
        if b and d:
            return b, d
    raise RuntimeError("the browser test needs Chromium and its driver: `make browser` installs them "
                       "(`make test` does this) or set PERSONA_SAE_CHROMIUM / PERSONA_SAE_CHROMEDRIVER")


def driver(width: int = 1200, height: int = 1000):
    """A headless Chromium that keeps the page's console log (severe entries are errors)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=opts)


def save_small(shot: Path, dest: Path, max_bytes: int = 300_000) -> Path:
    """``shot`` downsized to 3/4 and palette-reduced into ``dest`` (written to a temporary name and
    renamed), so screenshots kept in docs stay small."""
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS).quantize(colors=64)
    tmp = dest.with_name(dest.name + ".tmp")
    img.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, dest)
    if dest.stat().st_size >= max_bytes:
        raise ValueError(f"{dest}: {dest.stat().st_size} bytes, over {max_bytes}")
    return dest
