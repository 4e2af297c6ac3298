"""dashboard: pages from mined examples, escaping of hostile dataset text, a real headless-Chromium
walk from the index to a latent page, and `serve` refusing a busy port."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from persona_sae.cli import main
from tests.test_rank import make_sae

XSS = ["Nice post <script>alert(1)</script> thanks for sharing.",
       "Look at this <img src=x onerror=\"window.__pwned=1\"> picture of my dog.",
       "The villain laughed cruelly and the hero walked away in silence.",
       "What is your one wish? Tell me about your thoughts on humans and AI."]


@pytest.fixture(scope="module")
def site(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("dash")
    data = root / "hostile.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in XSS * 6))
    make_sae(root / "sae", seed=5)
    assert main(["examples", "--model", str(tiny_dir), "--sae", str(root / "sae"), "--dataset", str(data),
                 "--k", "4", "--reservoir", "6", "--out", str(root / "ex")]) == 0
    assert main(["dashboard", "--sae", str(root / "sae"), "--examples", str(root / "ex"), "--out",
                 str(root / "site")]) == 0
    return root / "site"


def test_pages_escape_hostile_text(site):
    pages = [site / "index.html", *sorted((site / "latent").glob("*.html"))]
    assert len(pages) > 10
    text = "".join(p.read_text() for p in pages)
    assert "<script>alert" not in text and "<img" not in text and "onerror=\"" not in text
    visible = html.unescape(re.sub(r"<[^>]+>", "", text))  # what a reader sees: tokens are one span each
    assert "&lt;" in text and "onerror=" in visible and "alert(1)" in visible  # the payload is there, as text
    assert text.count("<script src=") == len(pages)  # our one static script per page, nothing else
    page = (site / "latent" / f"{json.loads((site / 'site.json').read_text())['latents'][0]}.html").read_text()
    assert "class='tok' style='background:rgba(220,40,40," in page and "<svg class='hist'" in page


def _chromium():
    for b, d in ((os.environ.get("PERSONA_SAE_CHROMIUM"), os.environ.get("PERSONA_SAE_CHROMEDRIVER")),
                 (shutil.which("chromium"), shutil.which("chromedriver"))):
        if b and d:
            return b, d
    pytest.fail("the browser test needs Chromium and its driver: `make browser` installs them "
                "(`make test` does this) or set PERSONA_SAE_CHROMIUM / PERSONA_SAE_CHROMEDRIVER")


def test_browser_walks_from_index_to_a_latent_and_runs_no_payload(site, tmp_path):
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    binary, driver_path = _chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        drv.get((site / "index.html").as_uri())
        rows = drv.find_elements(By.CSS_SELECTOR, "#latents tbody tr")
        assert len(rows) > 10
        drv.find_element(By.CSS_SELECTOR, "#latents th").click()  # sort by latent: the script runs
        q = drv.find_element(By.ID, "q")
        q.send_keys("zzzz-no-such-label")
        assert all(not r.is_displayed() for r in drv.find_elements(By.CSS_SELECTOR, "#latents tbody tr"))
        q.clear()
        q.send_keys(" ")
        q.clear()
        link = drv.find_element(By.CSS_SELECTOR, "#latents tbody a")
        name = link.text
        link.click()
        assert drv.find_element(By.TAG_NAME, "h1").text == f"Latent {name}"
        lit = [s for s in drv.find_elements(By.CSS_SELECTOR, ".ex .tok") if "rgba" in (s.get_attribute("style") or "")]
        assert lit and all(float(s.get_attribute("title")) > 0 for s in lit)
        assert drv.find_elements(By.CSS_SELECTOR, "svg.hist rect")
        shot = tmp_path / f"latent-{name}.png"
        drv.save_screenshot(str(shot))
        assert shot.stat().st_size > 1000
        print(f"screenshot: {shot}")
        # the hostile texts render as text on the pages that hold them, and nothing runs
        pages = [p for p in sorted((site / "latent").glob("*.html"))
                 if "onerror" in html.unescape(re.sub(r"<[^>]+>", "", p.read_text()))][:3]
        assert pages
        for p in pages:
            drv.get(p.as_uri())
            with pytest.raises(NoAlertPresentException):
                drv.switch_to.alert.text
            assert drv.execute_script("return window.__pwned === undefined")
            assert not drv.find_elements(By.CSS_SELECTOR, ".ex img, .ex script")
            assert "onerror" in drv.find_element(By.TAG_NAME, "body").text
    finally:
        drv.quit()


def test_serve_refuses_a_busy_port(site, capsys):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        assert main(["serve", str(site), "--port", str(s.getsockname()[1])]) == 2
        assert "already in use" in capsys.readouterr().err
    finally:
        s.close()
    from persona_sae.pages import serve
    srv = serve(site, 0)
    assert srv.server_address[0] == "127.0.0.1"
    srv.server_close()


def test_serve_lists_no_folder_and_follows_no_symlink_out(site, tmp_path):
    import threading
    import urllib.error
    import urllib.request

    from persona_sae.pages import serve

    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (Path(site) / "leak.txt").symlink_to(secret)
    srv = serve(site, 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        assert urllib.request.urlopen(f"{url}/index.html").status == 200
        for path in ("/latent/", "/leak.txt"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(url + path)
            assert e.value.code == 404, path
    finally:
        srv.shutdown()
        srv.server_close()
        (Path(site) / "leak.txt").unlink()


def test_dashboard_bad_latent(site, capsys):
    root = Path(site).parent
    assert main(["dashboard", "--sae", str(root / "sae"), "--examples", str(root / "ex"), "--latents", "96",
                 "--out", str(root / "x")]) == 2
    assert "out of range" in capsys.readouterr().err
