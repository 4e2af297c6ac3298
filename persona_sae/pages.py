"""Static HTML feature pages: an index of latents and one page per latent, from mined examples.

Self-contained (no network, opens from file://), built from what `examples` stored (token ids and
activation windows), so no model forward is needed and a thousand pages take seconds. Every piece
of dataset text goes through ``html.escape``; the only script sorts and filters the index table
and never evaluates data.
"""

from __future__ import annotations

import functools
import html
import json
import os
import shutil
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from persona_sae import UserError
from persona_sae.labels import effective
from persona_sae.mined import HIST_EDGES, N_BINS, Examples, quantile_bins
from persona_sae.runs import replaceable

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
th{cursor:pointer;background:#f4f4f4}.ex{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:.3em 0;
padding:.3em;border-left:3px solid #ccc}.tok{border-radius:2px}.val{color:#888;font-size:.85em;margin-right:.6em}
.tag{font-weight:600}.muted{color:#888}svg rect{fill:#c0392b}"""

JS = """document.addEventListener('DOMContentLoaded',()=>{const t=document.getElementById('latents');if(!t)return;
const body=t.tBodies[0];document.querySelectorAll('#latents th').forEach((th,i)=>th.addEventListener('click',()=>{
const rows=[...body.rows];const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort((a,b)=>{
const x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;const nx=parseFloat(x),ny=parseFloat(y);
const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));return asc?c:-c});
rows.forEach(r=>body.appendChild(r))}));const q=document.getElementById('q');q.addEventListener('input',()=>{
const s=q.value.toLowerCase();[...body.rows].forEach(r=>{r.style.display=r.textContent.toLowerCase().includes(s)?'':'none'})})});"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<link rel='stylesheet' href='{up}style.css'><script src='{up}site.js'></script></head>"
            f"<body>{body}</body></html>\n")


def _tokens(tok, ids: list[int], acts: list[float], vmax: float) -> str:
    out = []
    for i, a in zip(ids, acts):
        s = _e(tok.decode([i]).replace("\n", "⏎"))
        if a > 0:
            alpha = min(a / vmax, 1.0) if vmax > 0 else 1.0
            out.append(f"<span class='tok' style='background:rgba(220,40,40,{alpha:.2f})' title='{a:.3g}'>{s}</span>")
        else:
            out.append(f"<span class='tok' title='0'>{s}</span>")
    return "".join(out)


def _histogram(counts: list[int]) -> str:
    m = max(counts) or 1
    w = 6
    bars = "".join(f"<rect x='{i * w}' y='{60 - 60 * c / m:.1f}' width='{w - 1}' height='{60 * c / m:.1f}'>"
                   f"<title>{c}</title></rect>" for i, c in enumerate(counts) if c)
    lo, hi = float(HIST_EDGES[0]), float(HIST_EDGES[-1])
    return (f"<svg class='hist' width='{len(counts) * w}' height='60' role='img' aria-label='activation histogram'>"
            f"{bars}</svg><div class='muted'>log10 activation, {lo:g} … {hi:g}</div>")


MARKER = "site.json"  # what every built site holds: only such a folder is ever replaced


def most_shifted(ranking: dict, n_up: int, n_down: int) -> list[int]:
    """The ``n_up`` best-ranked and ``n_down`` worst-ranked latents of a ranking's primary ordering."""
    order = sorted(range(len(ranking["latents"][ranking["primary"]]["rank"])),
                   key=lambda j: ranking["latents"][ranking["primary"]]["rank"][j])
    return list(dict.fromkeys(order[:n_up] + order[::-1][:n_down]))


def build(ex: Examples, tokenizer, out: str | Path, latents: list[int], labels: dict | None = None,
          ranking: dict | None = None, title: str = "", force: bool = False) -> Path:
    """Write index.html and latent/<j>.html for ``latents``; returns the site folder. An existing ``out``
    is replaced only when it is an earlier site (it holds ``MARKER``), or with ``force``."""

    out = replaceable(out, MARKER, "a dashboard", force)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "latent").mkdir(parents=True)
    (tmp / "style.css").write_text(CSS)
    (tmp / "site.js").write_text(JS)
    m, tok = ex.state, tokenizer
    n_tok = max(int(ex.manifest.get("tokens", m.tokens)), 1)
    shift = ranking["latents"][ranking["primary"]] if ranking else None
    rows = []
    for j in latents:
        lab = effective(labels, j) if labels else {"tag": "", "source": ""}
        entry = (labels or {}).get("latents", {}).get(str(j), {})
        fires, vmax = int(m.fires[j]), float(m.top_values[j, 0])
        finite = vmax > -float("inf")
        top_tok = _e(tok.decode([int(ex.ids[int(ex.offsets[int(m.top_example[j, 0])]) + int(m.top_pos[j, 0])])])) \
            if finite else ""
        d = shift["delta_mean"][j] if shift else None
        cells = [(j, f"<a href='latent/{j}.html'>{j}</a>"), (lab["tag"], _e(lab["tag"]) + (" ✎" if lab["source"] == "manual" else "")),
                 (d if d is not None else "", f"{d:+.4f}" if d is not None else ""),
                 (shift["rank"][j] if shift else "", f"{int(shift['rank'][j])}" if shift else ""),
                 (fires / n_tok, f"{100 * fires / n_tok:.3f}%"), (vmax if finite else 0, f"{vmax:.3g}" if finite else "—"),
                 (top_tok, top_tok)]
        rows.append("<tr>" + "".join(f"<td data-v='{_e(v)}'>{h}</td>" for v, h in cells) + "</tr>")
        # the latent's page
        parts = [f"<p><a href='../index.html'>← all latents</a></p><h1>Latent {j}</h1>"]
        if lab["tag"]:
            sc = entry.get("scores", {}).get(entry.get("tag"), {})
            parts.append(f"<p>label: <span class='tag'>{_e(lab['tag'])}</span> ({_e(lab['source'])})"
                         + (f", AUROC {sc['auroc']:.3f}, fires on {100 * sc['fire']:.0f}% of the concept texts" if sc else "")
                         + (f"; runner-up {_e(entry['runner_up'])}" if entry.get("runner_up") else "") + "</p>")
        if entry.get("logit_lens_top"):
            parts.append(f"<p>logit lens — promotes: <code>{_e(entry['logit_lens_top'])}</code>; suppresses: "
                         f"<code>{_e(entry['logit_lens_bottom'])}</code></p>")
        if shift:
            parts.append(f"<p>shift ({_e(ranking['primary'])}): Δ {shift['delta_mean'][j]:+.4f}, 95% CI "
                         f"[{shift['ci_low'][j]:+.4f}, {shift['ci_high'][j]:+.4f}], rank {int(shift['rank'][j])}</p>")
        parts.append(f"<p>fires on {fires:,} of {n_tok:,} tokens ({100 * fires / n_tok:.3f}%); max {vmax:.3g}</p>"
                     if finite else "<p>never fired on the mined corpus</p>")
        parts.append(_histogram(m.hist[j].tolist()))
        if finite:
            parts.append("<h2>Top examples</h2>")
            for t in ex.top(j):
                parts.append(f"<div class='ex'><span class='val'>{t.value:.3g}</span>{_tokens(tok, t.ids, t.acts, vmax)}</div>")
            bins = quantile_bins(m.res_values[j:j + 1], m.top_values[j:j + 1, 0])[0]
            parts.append("<h2>Across activation intervals (uniform sample)</h2>")
            for b in range(N_BINS - 1, -1, -1):
                idx = (bins == b).nonzero()[:3, 0].tolist()
                if not idx:
                    continue
                parts.append(f"<h3>{b / N_BINS:.1f}–{(b + 1) / N_BINS:.1f} of max</h3>")
                for i in idx:
                    ids, at = ex.window(int(m.res_example[j, i]), int(m.res_pos[j, i]))
                    val = float(m.res_values[j, i])
                    acts = [val if k == at else 0.0 for k in range(len(ids))]
                    parts.append(f"<div class='ex'><span class='val'>{val:.3g}</span>{_tokens(tok, ids, acts, vmax)}</div>")
        (tmp / "latent" / f"{j}.html").write_text(_page(f"latent {j}", "".join(parts), depth=1))
    head = ["latent", "label", "Δ", "rank", "density", "max act", "top token"]
    index = (f"<h1>{_e(title or 'SAE latents')}</h1><p class='muted'>{len(latents)} latents; click a header to sort.</p>"
             "<p><input id='q' placeholder='search label or token' size='30'></p><table id='latents'><thead><tr>"
             + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    (tmp / "index.html").write_text(_page(title or "SAE latents", index))
    (tmp / MARKER).write_text(json.dumps({"latents": latents, "examples": ex.manifest.get("config", {})}))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


class _SiteHandler(SimpleHTTPRequestHandler):
    """Files of the site only: no directory listings, nothing reached through a symlink out of it."""

    def list_directory(self, path):
        self.send_error(404, "no directory listings")
        return None

    def translate_path(self, path):
        p = super().translate_path(path)
        root = os.path.realpath(self.directory)
        real = os.path.realpath(p)
        return p if real == root or real.startswith(root + os.sep) else os.path.join(root, ".outside-the-site")  # a 404


def serve(site: str | Path, port: int = 8000):
    """Serve a built site on 127.0.0.1 only (returns the server; call serve_forever)."""
    import errno


    site = Path(site)
    if not (site / "index.html").is_file():
        raise UserError(f"{site} holds no index.html: build it with `persona-sae dashboard`")
    handler = functools.partial(_SiteHandler, directory=str(site.resolve()))
    try:
        return ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} is already in use; pick another with --port") from None
        raise UserError(f"cannot serve on 127.0.0.1:{port}: {e.strerror}") from None
