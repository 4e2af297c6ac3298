"""dashboard: pages from mined examples, escaping of hostile dataset text, a real headless-Chromium
walk from the index to a latent page, and `serve` refusing a busy port."""

from __future__ import annotations

import html
import json
import os
import re
import socket
from pathlib import Path

import pytest

from persona_sae.cli import main
from tests.test_rank import make_sae

XSS = ["Nice post <script>alert(1)</script> thanks for sharing.",
       "Look at this <img src=x onerror=\"window.__pwned=1\"> picture of my dog.",
       "Click <a href=\"javascript:window.__pwned=2\">here</a> to claim the prize.",
       "The villain laughed cruelly and the hero walked away in silence.",
       "What is your one wish? Tell me about your thoughts on humans and AI."]
# one passage three times in one document, and (XSS * 6) every document six times: top-k per token
# fills a latent's slots with the same window, which the pages must show once
REPEATED = "The villain laughed cruelly. The villain laughed cruelly. The villain laughed cruelly and left."
EXPLANATION = "mocking <script>window.__pwned=3</script> & \"quoted\" replies"


def _ranking(fires, sha):
    """A ranking.json of two results whose deltas follow the firing counts (primary: ft-a)."""
    import torch

    out = {}
    for name, scale in (("ft-a", 1.0), ("ft-b", -0.5)):
        d = fires.float() / fires.max() * scale + torch.arange(len(fires)) * 1e-4
        rank = torch.empty(len(d), dtype=torch.long)
        rank[torch.argsort(d, descending=True)] = torch.arange(1, len(d) + 1)
        out[name] = {"delta_mean": d.tolist(), "ci_low": (d - 0.01).tolist(), "ci_high": (d + 0.02).tolist(),
                     "rank": rank.tolist()}
    return {"primary": "ft-a", "sae_sha256": sha, "latents": out}


@pytest.fixture(scope="module")
def site(tiny_dir, tmp_path_factory):
    from persona_sae.latents import load_sae, sae_checksum
    from persona_sae.mined import load

    root = tmp_path_factory.mktemp("dash")
    data = root / "hostile.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in XSS * 6 + [REPEATED] * 3))
    make_sae(root / "sae", seed=5)
    assert main(["examples", "--model", str(tiny_dir), "--sae", str(root / "sae"), "--dataset", str(data),
                 "--top-k", "30", "--reservoir", "6", "--out", str(root / "ex")]) == 0
    sha = sae_checksum(load_sae(str(root / "sae")))
    fires = load(root / "ex").state.fires
    ranking = _ranking(fires, sha)
    (root / "rank").mkdir()
    (root / "rank" / "ranking.json").write_text(json.dumps(ranking))
    j = ranking["latents"]["ft-a"]["rank"].index(1)  # the most shifted latent
    other = (j + 1) % len(fires)
    labels = {"sae_sha256": sha, "concepts": ["toxic-persona", "sarcasm"],
              "latents": {str(j): {"tag": "toxic-persona", "runner_up": "sarcasm", "source": "auto",
                                   "scores": {"toxic-persona": {"auroc": 0.9123, "p": 0.00042, "q": 0.0213, "fire": 0.5}},
                                   "explanation": {"text": EXPLANATION, "explainer": "tiny-explainer",
                                                   "detection": {"balanced_accuracy": 0.7512}},
                                   "cos_evil": 0.1234, "cos_kind": -0.0567},
                          str(other): {"tag": "unlabelled", "runner_up": "sarcasm", "source": "auto"}},
              "manual": {str(other): {"tag": "custom:sneer", "note": "by hand <img src=x onerror=alert(4)>",
                                      "source": "manual"}}}
    (root / "sae" / "labels.json").write_text(json.dumps(labels))
    cwd = os.getcwd()
    os.chdir(root)  # relative paths, as a user types them: the pages' titles and browse hints show them
    try:
        assert main(["dashboard", "--sae", "sae", "--examples", "ex", "--ranking", "rank", "--out", "site"]) == 0
    finally:
        os.chdir(cwd)
    return root / "site"


def _page(site, j) -> str:
    return (Path(site) / "latent" / f"{j}.html").read_text()


def _most_shifted(site) -> int:
    return json.loads((Path(site).parent / "rank" / "ranking.json").read_text())["latents"]["ft-a"]["rank"].index(1)


def test_pages_escape_hostile_text(site):
    pages = [site / "index.html", *sorted((site / "latent").glob("*.html"))]
    assert len(pages) > 10
    text = "".join(p.read_text() for p in pages)
    assert "<script>alert" not in text and "<img" not in text and "onerror=\"" not in text
    assert "<script>window" not in text and "href=\"javascript" not in text and "<a href=\\\"" not in text
    visible = html.unescape(re.sub(r"<[^>]+>", "", text))  # what a reader sees: tokens are one span each
    assert "&lt;" in text and "onerror=" in visible and "alert(1)" in visible  # the payload is there, as text
    assert "javascript:" in visible and EXPLANATION in visible
    assert text.count("<script src=") == len(pages)  # our one static script per page, nothing else
    assert len(re.findall(r"<script", text)) == len(pages)
    hrefs = re.findall(r"href='([^']*)'", text)
    assert hrefs and all(h.startswith(("../", "latent/")) or re.fullmatch(r"\d+\.html|style\.css|data:,", h)
                         for h in hrefs), {h for h in hrefs if "javascript" in h or "//" in h}


def test_most_shifted_page_shows_every_element(site, tiny_dir):
    import torch

    from persona_sae.latents import load_sae, logit_effects
    from persona_sae.models import load_model

    j = _most_shifted(site)
    page = _page(site, j)
    visible = html.unescape(re.sub(r"<[^>]+>", " ", page))
    # header: latent, tag, runner-up, AUROC, p, q and the explanation with its source
    assert f"Latent {j}" in visible and "toxic-persona" in visible and "sarcasm" in visible
    for s in ("AUROC 0.912", "p 0.00042", "q 0.0213", "fires on 50% of the concept texts", EXPLANATION,
              "tiny-explainer", "detection balanced accuracy 0.751"):
        assert s in visible, s
    # density and the activation histogram: axes, ticks with labels, a count on every bar
    ranking = json.loads((Path(site).parent / "rank" / "ranking.json").read_text())
    from persona_sae.mined import load
    m = load(Path(site).parent / "ex").state
    assert f"fires on {int(m.fires[j]):,} of" in visible
    acts = re.search(r"<svg class='chart acts'.*?</svg>", page).group(0)
    assert len(re.findall(r"<g class='tick x'>", acts)) >= 2 and len(re.findall(r"<g class='tick y'>", acts)) >= 2
    assert "activation (log scale)" in acts and ">tokens<" in acts
    bar_counts = [int(t.split()[0].replace(",", "")) for t in re.findall(r"<rect class='bar'[^>]*><title>([^<]*)</title>", acts)]
    assert sum(bar_counts) == int(m.hist[j].sum()) == int(m.fires[j])
    # logit lens: tokens with values, and the histogram over the vocabulary
    sae = load_sae(str(Path(site).parent / "sae"))
    model = load_model(str(tiny_dir), log=lambda *a: None)
    with torch.no_grad():
        le = logit_effects(model, sae, [j], k=10)[0]
    lens = re.search(r"<h2>Logit lens</h2>.*?</svg>", page).group(0)
    for i, v in zip(le.pos_ids + le.neg_ids, le.pos_values + le.neg_values):
        assert f"<code>{html.escape(model.tokenizer.decode([i]), quote=True)}</code></td><td class='num'>{v:+.4g}<" in lens
    assert "<svg class='chart logits'" in lens and len(re.findall(r"<g class='tick x'>", lens)) >= 2
    # the shift in every result of the ranking, with its CI
    for name, s in ranking["latents"].items():
        cells = (f"</td><td class='num'>{s['delta_mean'][j]:+.4g}</td><td>[{s['ci_low'][j]:+.4g}, {s['ci_high'][j]:+.4g}]"
                 f"</td><td class='num'>{s['rank'][j]:,} of 96</td>")
        assert f"{name}{' (primary)' * (name == 'ft-a')}{cells}" in page, name
    # nearest latents by decoder cosine, linked to their pages
    W = sae.W_dec.detach().float()
    W = W / W.norm(dim=1, keepdim=True)
    cos = W @ W[j]
    cos[j] = -2
    k = int(cos.argmax())
    assert f"<a href='{k}.html'>{k}</a></td><td class='num'>{float(cos[k]):+.3f}" in page
    assert (Path(site) / "latent" / f"{k}.html").is_file()
    # persona-direction cosines from labels.json
    assert "evil" in visible and "+0.1234" in visible and "-0.0567" in visible
    # examples across activation intervals, and the browse hint
    assert "Across activation intervals" in visible and f"persona-sae browse {j} --sae" in visible


def test_manual_label_shows_both_labels_and_the_note(site):
    j = (_most_shifted(site) + 1) % 96
    visible = html.unescape(re.sub(r"<[^>]+>", " ", _page(site, j)))
    assert "custom:sneer" in visible and "(manual)" in visible and "unlabelled" in visible
    assert "by hand <img src=x onerror=alert(4)>" in visible


def _top_rows(page: str) -> list[tuple[int, int, int, str]]:
    rows = re.findall(r"<div class='ex top' data-doc='(\d+)' data-start='(\d+)' data-end='(\d+)'>(.*?)</div>", page)
    return [(int(d), int(a), int(b), html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<span class='val'>[^<]*</span>", "", t))))
            for d, a, b, t in rows]


def test_top_examples_are_one_per_context(site):
    """The corpus repeats every text (and one passage within a document), so per-token top-k holds the
    same window several times; the pages show each once and cut at word boundaries."""
    from persona_sae.mined import BEFORE, SNAP, load, word_break
    from persona_sae.models import load_tokenizer

    ex = load(Path(site).parent / "ex")
    m = ex.state
    dup = 0  # latents whose raw top-k repeats a window or a text: what there is to collapse
    checked = 0
    for j in json.loads((Path(site) / "site.json").read_text())["latents"]:
        raw = [ex.window(int(e), int(p)) for v, e, p in zip(m.top_values[j], m.top_example[j], m.top_pos[j])
               if v > -float("inf")]
        spans = [(int(e), int(p)) for v, e, p in zip(m.top_values[j], m.top_example[j], m.top_pos[j]) if v > -float("inf")]
        dup += len({tuple(ids) for ids, _ in raw}) < len(raw) or any(
            e1 == e2 and abs(p1 - p2) <= BEFORE for i, (e1, p1) in enumerate(spans) for e2, p2 in spans[i + 1:])
        rows = _top_rows(_page(site, j))
        if not rows:
            continue
        checked += 1
        for i, (d1, a1, b1, t1) in enumerate(rows):
            for d2, a2, b2, t2 in rows[i + 1:]:
                assert not (d1 == d2 and a1 < b2 and a2 < b1), (j, rows)  # no two rows from one window
                assert t1 != t2, (j, t1)  # nor the same text twice
    assert checked > 10 and dup > checked // 2
    # windows end at word boundaries (a document's ends always are one)
    tok = load_tokenizer(str(json.loads((Path(site).parent / "ex" / "manifest.json").read_text())["config"]["model"]),
                         log=lambda *a: None)
    dec = lambda i: tok.decode([int(i)])  # noqa: E731
    for j in range(0, 96, 7):
        for t in ex.contexts(j, width=9, decode=dec):
            s, e = int(ex.offsets[t.example]), int(ex.offsets[t.example + 1])
            a, b = s + t.start, s + t.start + len(t.ids)
            assert t.ids[t.at] == int(ex.ids[a + t.at]) and len(t.ids) <= 9 + 2 * SNAP
            assert a == s + 1 or word_break(dec(ex.ids[a - 1]), dec(ex.ids[a]))
            assert b == e or word_break(dec(ex.ids[b - 1]), dec(ex.ids[b]))


def test_window_flag_sets_the_context_width(site, tmp_path):
    root = Path(site).parent
    j = _most_shifted(site)
    assert main(["dashboard", "--sae", str(root / "sae"), "--examples", str(root / "ex"), "--latents", str(j),
                 "--window", "7", "--out", str(tmp_path / "narrow")]) == 0
    narrow, wide = _top_rows(_page(tmp_path / "narrow", j)), _top_rows(_page(site, j))
    assert narrow and max(b - a for _, a, b, _ in narrow) <= 7 < max(b - a for _, a, b, _ in wide)


def test_browse_shows_the_page_facts_and_takes_the_printed_hints(site, capsys, monkeypatch):
    import shlex

    root = Path(site).parent
    j = _most_shifted(site)
    page = _page(site, j)
    hint = html.unescape(re.search(r"<code>(persona-sae browse [^<]*)</code>", page).group(1))
    assert hint == f"persona-sae browse {j} --sae sae --examples ex --ranking rank"
    with monkeypatch.context() as mp:
        mp.chdir(root)  # the site was built from there
        assert main(shlex.split(hint)[1:]) == 0
    out = capsys.readouterr().out
    for s in (EXPLANATION, "toxic-persona", "AUROC 0.912", "p 0.00042", "ft-a", "ft-b", "nearest latents",
              "evil +0.1234", "one per context"):
        assert s in out, s
    lens = re.search(r"<td class='num'>([+-][^<]*)</td>", re.search(r"<h2>Logit lens</h2>.*", page).group(0)).group(1)
    assert f"{float(lens):+.3g}" in out  # the first promoted token's value, as the page shows it
    # the form earlier `rank` runs printed (--latent N) and the one `dashboard` prints (N filled in)
    dash = main(["dashboard", "--sae", str(root / "sae"), "--examples", str(root / "ex"), "--latents", str(j),
                 "--out", str(root / "one"), "--force"])
    printed = capsys.readouterr().out
    assert dash == 0
    cmd = printed[printed.index("persona-sae browse"):].split("\n")[0].replace(" N ", f" {j} ")
    assert main(shlex.split(cmd)[1:]) == 0 and f"latent {j}" in capsys.readouterr().out
    assert main(["browse", "--sae", str(root / "sae"), "--examples", str(root / "ex"), "--latent", str(j)]) == 0
    assert f"latent {j}" in capsys.readouterr().out


@pytest.mark.parametrize("extra,message", [(["--window", "0"], "--window must be at least 1"),
                                           (["--ranking", "bad-rank"], "not one written by `persona-sae rank`"),
                                           (["--ranking", "ex"], "holds no ranking.json")])
def test_dashboard_bad_window_or_ranking(site, capsys, extra, message):
    root = Path(site).parent
    (root / "bad-rank").mkdir(exist_ok=True)
    (root / "bad-rank" / "ranking.json").write_text(json.dumps({"primary": "x", "latents": {}}))
    args = [a if not a.endswith("rank") and a != "ex" else str(root / a) for a in extra]
    assert main(["dashboard", "--sae", str(root / "sae"), "--examples", str(root / "ex"), *args,
                 "--out", str(root / "w0")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and not (root / "w0").exists()


def test_default_window_is_the_mined_window():
    from persona_sae.config import BrowseConfig, DashboardConfig
    from persona_sae.mined import AFTER, BEFORE, W, split_width

    assert DashboardConfig(out="o", sae="s", examples="e").window == BrowseConfig(latent=0).window == W
    assert split_width(W) == (BEFORE, AFTER) and sum(split_width(9)) == 8


def _screenshot(drv, name: str, tmp_path) -> Path:
    """A PNG of the window; with PERSONA_SAE_SCREENSHOTS=DIR (e.g. docs) also DIR/NAME, kept small."""
    from tests.browser import save_small

    shot = tmp_path / name
    drv.save_screenshot(str(shot))
    assert shot.stat().st_size > 1000
    where = os.environ.get("PERSONA_SAE_SCREENSHOTS")
    if where:
        save_small(shot, Path(where) / name)
    return shot


def test_browser_walks_from_index_to_a_latent_and_runs_no_payload(site, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tests.browser import driver

    try:
        drv = driver()
    except RuntimeError as e:
        pytest.fail(str(e))

    def errors():
        return [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]

    shown = lambda: [r for r in drv.find_elements(By.CSS_SELECTOR, "#latents tbody tr") if r.is_displayed()]  # noqa: E731
    try:
        drv.get((site / "index.html").as_uri())
        rows = drv.find_elements(By.CSS_SELECTOR, "#latents tbody tr")
        assert len(rows) > 10
        delta = drv.find_elements(By.CSS_SELECTOR, "#latents th")[3]
        assert delta.text == "Δ"
        delta.click()
        delta.click()  # descending: the most shifted latent first
        j = _most_shifted(site)
        assert shown()[0].find_element(By.TAG_NAME, "a").text == str(j)
        _screenshot(drv, "dashboard-index.png", tmp_path)
        q = drv.find_element(By.ID, "q")
        q.send_keys("zzzz-no-such-label")
        assert not shown()
        q.clear()
        q.send_keys("prize")  # text of top examples, not of any column
        hits = shown()
        assert hits and len(hits) < len(rows) and all("prize" not in r.text for r in hits)
        q.clear()
        q.send_keys(" ")
        q.clear()
        Select(drv.find_element(By.ID, "tag")).select_by_value("toxic-persona")
        assert [r.find_element(By.TAG_NAME, "a").text for r in shown()] == [str(j)]
        shown()[0].find_element(By.TAG_NAME, "a").click()
        assert drv.find_element(By.TAG_NAME, "h1").text == f"Latent {j}"
        lit = [s for s in drv.find_elements(By.CSS_SELECTOR, ".ex .tok") if "rgba" in (s.get_attribute("style") or "")]
        assert lit and all(float(s.get_attribute("title")) > 0 for s in lit)
        assert drv.find_elements(By.CSS_SELECTOR, ".ex.top .tok.max")
        for chart in ("acts", "logits"):
            svg = drv.find_element(By.CSS_SELECTOR, f"svg.chart.{chart}")
            assert svg.size["height"] > 100
            ticks = [t.text for t in svg.find_elements(By.CSS_SELECTOR, "g.tick.x text")]
            assert len(ticks) >= 2 and all(ticks), ticks
            assert svg.find_elements(By.CSS_SELECTOR, "rect.bar")
        rows = [(r.get_attribute("data-doc"), int(r.get_attribute("data-start")), int(r.get_attribute("data-end")))
                for r in drv.find_elements(By.CSS_SELECTOR, ".ex.top")]
        assert len(rows) >= 2
        assert not [(x, y) for i, x in enumerate(rows) for y in rows[i + 1:] if x[0] == y[0] and x[1] < y[2] and y[1] < x[2]]
        assert EXPLANATION in drv.find_element(By.TAG_NAME, "body").text
        drv.set_window_size(1200, min(drv.execute_script("return document.body.scrollHeight") + 140, 2600))
        _screenshot(drv, "dashboard-latent.png", tmp_path)  # the whole page
        assert errors() == []
        # the hostile texts render as text on the pages that hold them, and nothing runs
        pages = [p for p in sorted((site / "latent").glob("*.html"))
                 if re.search("onerror|javascript:", html.unescape(re.sub(r"<[^>]+>", "", p.read_text())))][:4]
        assert pages
        for p in pages:
            drv.get(p.as_uri())
            with pytest.raises(NoAlertPresentException):
                drv.switch_to.alert.text
            assert drv.execute_script("return window.__pwned === undefined")
            assert not drv.find_elements(By.CSS_SELECTOR, ".ex img, .ex script, .ex a, a[href^='javascript']")
            for a in drv.find_elements(By.TAG_NAME, "a"):
                a_href = a.get_attribute("href") or ""
                assert a_href.startswith("file://"), a_href
            assert re.search("onerror|javascript:", drv.find_element(By.TAG_NAME, "body").text)
            assert errors() == []
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
