"""demo: the whole pipeline on the tiny model (its shipped SAE and organisms swapped for tiny ones); the
printed summary and the pages it built agree on the latents, labels, ranks and shifts."""

from __future__ import annotations

import html
import json
import re

from persona_sae.cli import main
from persona_sae.pages import signed
from tests.conftest import make_lora_adapter
from tests.test_rank import make_sae


def _rows(text: str) -> list[list[str]]:
    """The cells of every rich table row of the summary (rank, latent, label, Δ mean, 95% CI)."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if len(cells) == 5 and cells[0].isdigit():
            rows.append(cells)
    return rows


def test_demo_summary_and_pages_agree(tiny_dir, tmp_path, monkeypatch, capsys):
    from persona_sae import labels as L
    from persona_sae.stages import demo

    full = L.builtin_concepts()
    few = lambda: {k: v[:24] for k, v in full.items()}  # noqa: E731 - every concept, fewer texts: a quick test
    monkeypatch.setattr(L, "builtin_concepts", few)
    monkeypatch.setattr(demo, "builtin_concepts", few)
    make_sae(tmp_path / "sae", seed=5)
    monkeypatch.setattr(demo, "SAE", tmp_path / "sae")
    monkeypatch.setattr(demo, "BAD", make_lora_adapter(tiny_dir, tmp_path / "bad", seed=1))
    monkeypatch.setattr(demo, "CONTROL", make_lora_adapter(tiny_dir, tmp_path / "control", seed=2))
    out = tmp_path / "demo"
    assert main(["demo", "--model", str(tiny_dir), "--out", str(out), "--top", "4", "--pages", "8"]) == 0
    printed = capsys.readouterr().out
    rows = _rows(printed)
    assert len(rows) == 8, printed  # 4 rose, 4 fell
    ranking = json.loads((out / "rank" / "ranking.json").read_text())
    labels = json.loads((out / "labels" / "labels.json").read_text())
    lat = ranking["latents"][ranking["primary"]]
    assert [int(r[1]) for r in rows] == ranking["top_increases"][:4] + ranking["top_decreases"][:4]
    index = (out / "site" / "index.html").read_text()
    paged = 0
    for rank, j, tag, delta, ci in rows:
        j = int(j)
        assert int(rank) == lat["rank"][j] and delta == signed(lat["delta_mean"][j])
        page = out / "site" / "latent" / f"{j}.html"
        if not page.is_file():
            continue
        paged += 1
        text = page.read_text()
        visible = html.unescape(re.sub(r"<[^>]+>", " ", text))
        # the page's shift row: the same Δ mean, CI and rank as the printed row
        assert (f"{ranking['primary']} (primary)</td><td class='num'>{delta}</td><td>{html.escape(ci, quote=True)}"
                f"</td><td class='num'>{int(rank):,} of ") in text, (j, delta, ci)
        assert f"Latent {j}" in visible and tag in visible
        # the index row: the same tag, Δ mean and rank
        row = re.search(rf"<tr data-tag='([^']*)'[^>]*><td data-v='{j}'>.*?</tr>", index).group(0)
        assert f"data-tag='{html.escape(tag, quote=True)}'" in row and f">{delta}</td>" in row
        assert f">{int(rank)}</td>" in row
    assert paged >= 4  # the most shifted of each tail have pages (8 pages, 4 from each tail)
    shown = set(ranking["top_increases"][:4] + ranking["top_decreases"][:4])
    assert all(labels["latents"].get(str(j)) is not None for j in shown)  # every shown latent was labelled
