"""Static HTML feature pages: an index of latents and one page per latent, from mined examples.

Self-contained (no network, opens from file://; charts are inline SVG), built from what `examples`
stored (token ids and activation windows) plus the SAE's decoder (logit lens, nearest latents), so no
model forward is needed and a thousand pages take seconds. ``facts`` gathers what a latent's page shows
and `browse` prints the same record. Every piece of dataset text goes through ``html.escape``; the only
script sorts and filters the index table and never evaluates data.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import shutil
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, NamedTuple

from persona_sae import UserError, read_json
from persona_sae.exports import density_histogram
from persona_sae.labels import effective
from persona_sae.latents import LogitEffects
from persona_sae.mined import HIST_EDGES, N_BINS, W, Examples, quantile_bins
from persona_sae.runs import replaceable

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#222}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
#latents th{cursor:pointer}th{background:#f4f4f4}.ex{font-family:ui-monospace,monospace;white-space:pre-wrap;margin:.3em 0;
padding:.3em;border-left:3px solid #ccc}.tok{border-radius:2px}.tok.max{outline:2px solid #222;font-weight:700}
.val{color:#888;font-size:.85em;margin-right:.6em}.tag{font-weight:600}.muted{color:#888}.num{text-align:right}
svg.chart .bar{fill:#c0392b}svg.chart.logits .bar{fill:#2c6fbb}svg.chart line{stroke:#444}
svg.chart text{font-size:11px;fill:#333}.facts td:first-child{color:#666}.cols{display:flex;gap:2em;flex-wrap:wrap}
code{background:#f4f4f4;padding:0 .2em}"""

JS = """document.addEventListener('DOMContentLoaded',()=>{const t=document.getElementById('latents');if(!t)return;
const body=t.tBodies[0];document.querySelectorAll('#latents th').forEach((th,i)=>th.addEventListener('click',()=>{
const rows=[...body.rows];const asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';rows.sort((a,b)=>{
const x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;const nx=parseFloat(x),ny=parseFloat(y);
const c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));return asc?c:-c});
rows.forEach(r=>body.appendChild(r))}));const q=document.getElementById('q'),tag=document.getElementById('tag');
const filter=()=>{const s=q.value.toLowerCase(),g=tag.value;[...body.rows].forEach(r=>{
const hit=(r.textContent+' '+r.dataset.text).toLowerCase().includes(s)&&(!g||r.dataset.tag===g);
r.style.display=hit?'':'none'})};q.addEventListener('input',filter);tag.addEventListener('change',filter)});"""


def signed(x: float) -> str:
    """A shift as every view prints it (index, latent page, the demo's summary, browse): 4 significant
    digits, so that a small shift keeps its digits and the views agree to the character."""
    return f"{x:+.4g}"


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title><link rel='icon' href='data:,'>"
            f"<link rel='stylesheet' href='{up}style.css'><script src='{up}site.js'></script></head>"
            f"<body>{body}</body></html>\n")


# --------------------------------------------------------------------------------------------------
# What a latent's page (and `browse`) shows, gathered once


class Row(NamedTuple):
    """One shown context: token strings, the latent's activation on each (NaN: not stored), the index
    of the activating token, its value, and where it sits (example, document position of the first token)."""

    tokens: list[str]
    acts: list[float]
    at: int
    value: float
    example: int
    start: int
    interval: str = ""


class Facts(NamedTuple):
    """Everything known about one latent, for its page and for `browse`: the formatting differs, the facts not."""

    latent: int
    label: dict | None  # see label_facts; None without labels.json
    fires: int
    n_tokens: int
    max_act: float  # -inf: never fired on the mined corpus
    hist: list[int]  # the mined log10-activation histogram (mined.HIST_EDGES)
    lens: LogitEffects | None
    promotes: list[str]
    suppresses: list[str]
    top: list[Row]
    intervals: list[Row]
    shifts: list[dict]  # per result of the ranking (fine-tunes and aggregates), the primary first
    nearest: list[tuple[int, float]]  # other latents by decoder cosine, best first


def label_facts(labels: dict | None, j: int) -> dict | None:
    """A latent's label as shown: the effective tag and its source, the automatic tag under a manual
    one, the runner-up (for an unlabelled latent: the best concept), the scores (AUROC, p, q, fire) of
    the tag or best concept, the `label --explain` entry when it has a text, and the persona-direction
    cosines `label` stored (``cos_NAME``)."""
    if not labels:
        return None
    entry = labels.get("latents", {}).get(str(j), {})
    auto = entry.get("tag", "unlabelled")
    concept = auto if auto != "unlabelled" else entry.get("runner_up") or ""
    e = entry.get("explanation")
    return {**effective(labels, j), "auto": auto, "runner_up": entry.get("runner_up") or "", "concept": concept,
            "scores": entry.get("scores", {}).get(concept) or {},
            "explanation": e if isinstance(e, dict) and e.get("text") else None,
            "cos": {k[4:]: float(v) for k, v in entry.items() if k.startswith("cos_") and isinstance(v, (int, float))}}


def shift_facts(ranking: dict | None, j: int) -> list[dict]:
    """The latent's shift in every result of a ranking.json (each fine-tune, and the aggregates), primary first."""
    if not ranking:
        return []
    out = []
    for name, s in ranking["latents"].items():
        out.append({"name": name, "primary": name == ranking["primary"], "delta": s["delta_mean"][j],
                    "lo": s["ci_low"][j], "hi": s["ci_high"][j], "rank": int(s["rank"][j]), "of": len(s["rank"])})
    return sorted(out, key=lambda r: not r["primary"])


def facts(ex: Examples, decode: Callable[[int], str], j: int, labels: dict | None = None, ranking: dict | None = None,
          lens: LogitEffects | None = None, nearest: list[tuple[int, float]] = (), width: int = W, n: int | None = None,
          per_interval: int = 3) -> Facts:
    """Latent ``j``'s facts from mined examples (``decode``: token id -> string): top examples one per
    context (:meth:`Examples.contexts`, at most ``n``), ``per_interval`` reservoir examples per tenth of
    the max, and whatever labels, ranking, logit effects and neighbours are given."""
    m = ex.state
    vmax = float(m.top_values[j, 0])
    strs = lambda ids: [decode(int(i)) for i in ids]  # noqa: E731
    top, inter = [], []
    if vmax > -float("inf"):
        top = [Row(strs(t.ids), t.acts, t.at, t.value, t.example, t.start)
               for t in ex.contexts(j, n, width, decode)]
        bins = quantile_bins(m.res_values[j:j + 1], m.top_values[j:j + 1, 0])[0]
        for b in range(N_BINS - 1, -1, -1):
            for i in (bins == b).nonzero()[:per_interval, 0].tolist():
                e, v = int(m.res_example[j, i]), float(m.res_values[j, i])
                ids, at, start = ex.context(e, int(m.res_pos[j, i]), width, decode)
                acts = [v if k == at else float("nan") for k in range(len(ids))]  # only its own value is stored
                inter.append(Row(strs(ids), acts, at, v, e, start, f"{b / N_BINS:.1f}–{(b + 1) / N_BINS:.1f}"))
    return Facts(j, label_facts(labels, j), int(m.fires[j]), max(int(ex.manifest.get("tokens", m.tokens)), 1), vmax,
                 m.hist[j].tolist(), lens, strs(lens.pos_ids) if lens else [], strs(lens.neg_ids) if lens else [],
                 top, inter, shift_facts(ranking, j), list(nearest))


# --------------------------------------------------------------------------------------------------
# HTML


def _tokens(row: Row, vmax: float) -> str:
    out = []
    for k, (s, a) in enumerate(zip(row.tokens, row.acts)):
        s = _e(s.replace("\n", "⏎"))
        cls = "tok max" if k == row.at else "tok"
        if a != a:  # NaN: outside the stored window
            out.append(f"<span class='{cls}' title='not stored'>{s}</span>")
        elif a > 0:
            alpha = min(a / vmax, 1.0) if vmax > 0 else 1.0
            out.append(f"<span class='{cls}' style='background:rgba(220,40,40,{alpha:.2f})' title='{a:.4g}'>{s}</span>")
        else:
            out.append(f"<span class='{cls}' title='0'>{s}</span>")
    return "".join(out)


def _ex_row(row: Row, vmax: float, cls: str = "ex") -> str:
    return (f"<div class='{cls}' data-doc='{row.example}' data-start='{row.start}' data-end='{row.start + len(row.tokens)}'>"
            f"<span class='val'>{row.value:.4g}</span>{_tokens(row, vmax)}</div>")


def bar_chart(lefts: list[float], width: float, heights: list[int], titles: list[str], xlabel: str, ylabel: str,
              tick_label: Callable[[float], str] = lambda x: f"{x:g}", cls: str = "", w: int = 520, h: int = 170) -> str:
    """An inline SVG histogram with both axes, tick marks and labels (ticks from matplotlib's
    MaxNLocator) and each bar's count in its tooltip."""
    from matplotlib.ticker import MaxNLocator

    if not heights:
        return "<p class='muted'>(nothing to plot)</p>"
    ml, mr, mt, mb = 52, 14, 10, 40
    x0, x1 = min(lefts), max(lefts) + width
    yt = [t for t in MaxNLocator(nbins=4, integer=True).tick_values(0, max(max(heights), 1)) if t >= 0]
    ytop = max(yt[-1], max(heights), 1)
    yt = [t for t in yt if t <= ytop]
    xt = [t for t in MaxNLocator(nbins=6).tick_values(x0, x1) if x0 - 1e-9 <= t <= x1 + 1e-9]
    X = lambda x: ml + (x - x0) / (x1 - x0) * (w - ml - mr)  # noqa: E731
    Y = lambda y: mt + (1 - y / ytop) * (h - mt - mb)  # noqa: E731
    bars = "".join(f"<rect class='bar' x='{X(a):.1f}' y='{Y(c):.1f}' width='{max(X(a + width) - X(a) - 0.5, 0.5):.1f}' "
                   f"height='{Y(0) - Y(c):.1f}'><title>{_e(t)}</title></rect>"
                   for a, c, t in zip(lefts, heights, titles) if c)
    ticks = "".join(f"<g class='tick x'><line x1='{X(t):.1f}' x2='{X(t):.1f}' y1='{Y(0):.1f}' y2='{Y(0) + 5:.1f}'/>"
                    f"<text x='{X(t):.1f}' y='{Y(0) + 17:.1f}' text-anchor='middle'>{_e(tick_label(t))}</text></g>" for t in xt)
    ticks += "".join(f"<g class='tick y'><line x1='{ml - 5}' x2='{ml}' y1='{Y(t):.1f}' y2='{Y(t):.1f}'/>"
                     f"<text x='{ml - 8}' y='{Y(t) + 4:.1f}' text-anchor='end'>{int(t):,}</text></g>" for t in yt)
    axes = (f"<line x1='{ml}' x2='{w - mr}' y1='{Y(0):.1f}' y2='{Y(0):.1f}'/><line x1='{ml}' x2='{ml}' y1='{mt}' y2='{Y(0):.1f}'/>"
            f"<text class='xlabel' x='{(ml + w - mr) / 2:.0f}' y='{h - 4}' text-anchor='middle'>{_e(xlabel)}</text>"
            f"<text class='ylabel' transform='translate(12,{(mt + Y(0)) / 2:.0f}) rotate(-90)' text-anchor='middle'>{_e(ylabel)}</text>")
    return (f"<svg class='chart {cls}' width='{w}' height='{h}' role='img' aria-label='{_e(xlabel)} histogram'>"
            f"{bars}{axes}{ticks}</svg>")


def activation_chart(counts: list[int]) -> str:
    """The mined log10-activation histogram (empty bins at either end left out, as in the export)."""
    heights, values = density_histogram(counts)
    step = float(HIST_EDGES[1] - HIST_EDGES[0])
    lo, hi = float(HIST_EDGES[0]), float(HIST_EDGES[-1])
    logs = [math.log10(v) for v in values]
    titles = [f"{c:,} tokens " + (f"below {10 ** lo:g}" if x <= lo else f"above {10 ** hi:g}" if x >= hi else
                                  f"in {10 ** (x - step / 2):.3g}–{10 ** (x + step / 2):.3g}") for c, x in zip(heights, logs)]
    return bar_chart([x - step / 2 for x in logs], step, heights, titles, "activation (log scale)", "tokens",
                     lambda x: f"{10 ** x:.3g}", cls="acts")


def logit_chart(le: LogitEffects) -> str:
    c = le.hist_centres
    step = (c[1] - c[0]) if len(c) > 1 else 1.0
    titles = [f"{n:,} tokens in {x - step / 2:+.3g}…{x + step / 2:+.3g}" for n, x in zip(le.hist_heights, c)]
    return bar_chart([x - step / 2 for x in c], step, le.hist_heights, titles, "direct logit change", "vocabulary tokens",
                     lambda x: f"{x:.3g}", cls="logits")


def _label_html(lab: dict | None) -> str:
    if lab is None:
        return "<p class='muted'>no labels.json for this SAE (run <code>persona-sae label</code>)</p>"
    sc = lab["scores"]
    rows = [("label", f"<span class='tag'>{_e(lab['tag'])}</span> ({_e(lab['source'])})")]
    if lab["source"] == "manual":
        rows.append(("automatic label", _e(lab["auto"])))
        if lab.get("note"):
            rows.append(("note", _e(lab["note"])))
    if lab["auto"] != "unlabelled" and lab["runner_up"]:
        rows.append(("runner-up", _e(lab["runner_up"])))
    if sc:
        what = "" if lab["concept"] == lab["auto"] else f"best concept {_e(lab['concept'])}: "
        bits = [f"AUROC {sc['auroc']:.3f}"] if sc.get("auroc") is not None else []
        bits += [f"p {sc['p']:.3g}"] if sc.get("p") is not None else []
        bits += [f"q {sc['q']:.3g}"] if sc.get("q") is not None else []
        bits += [f"fires on {100 * sc['fire']:.0f}% of the concept texts"] if sc.get("fire") is not None else []
        rows.append(("evidence", what + ", ".join(bits)))
    e = lab["explanation"]
    if e:
        d = e.get("detection") or {}
        src = "label --explain" + (f", {_e(e['explainer'])}" if e.get("explainer") else "") + (
            f", detection balanced accuracy {d['balanced_accuracy']:.3f}" if d.get("balanced_accuracy") is not None else "")
        rows.append(("explanation", f"{_e(e['text'])} <span class='muted'>({src})</span>"))
    return "<table class='facts'>" + "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"


def latent_html(f: Facts, paged: set[int], hint: str = "") -> str:
    """One latent's page body (``paged``: the latents that have a page, for the neighbour links)."""
    j, vmax = f.latent, f.max_act
    parts = [f"<p><a href='../index.html'>← all latents</a></p><h1>Latent {j}</h1>", _label_html(f.label)]
    if hint:
        parts.append(f"<p class='muted'>in the terminal: <code>{_e(hint)}</code></p>")
    parts.append("<h2>Density</h2>")
    parts.append(f"<p>fires on {f.fires:,} of {f.n_tokens:,} mined tokens ({100 * f.fires / f.n_tokens:.3f}%); "
                 f"max activation {vmax:.4g}</p>" if vmax > -float("inf") else "<p>never fired on the mined corpus</p>")
    parts.append(activation_chart(f.hist))
    if f.top:
        parts.append(f"<h2>Top examples</h2><p class='muted'>one row per context ({len(f.top)} distinct); "
                     "the boxed token is the one the value belongs to; hover a token for its activation</p>")
        parts += [_ex_row(r, vmax, "ex top") for r in f.top]
    if f.intervals:
        parts.append("<h2>Across activation intervals</h2><p class='muted'>a uniform sample of firing tokens, "
                     "by fraction of the max (only the boxed token's value is stored)</p>")
        last = None
        for r in f.intervals:
            if r.interval != last:
                parts.append(f"<h3>{_e(r.interval)} of max</h3>")
                last = r.interval
            parts.append(_ex_row(r, vmax, "ex interval"))
    if f.lens:
        side = lambda title, toks, vals: (  # noqa: E731
            f"<div><h3>{title}</h3><table class='lens'><tr><th>token</th><th>logit change</th></tr>"
            + "".join(f"<tr><td><code>{_e(s)}</code></td><td class='num'>{v:+.4g}</td></tr>" for s, v in zip(toks, vals))
            + "</table></div>")
        parts.append("<h2>Logit lens</h2><p class='muted'>the decoder direction through the unembedding: "
                     "the tokens it promotes and suppresses most, and the change over the whole vocabulary</p>"
                     f"<div class='cols'>{side('promotes', f.promotes, f.lens.pos_values)}"
                     f"{side('suppresses', f.suppresses, f.lens.neg_values)}</div>" + logit_chart(f.lens))
    if f.shifts:
        parts.append("<h2>Shift</h2><table class='shifts'><tr><th>result</th><th>Δ mean</th><th>95% CI</th><th>rank</th></tr>"
                     + "".join(f"<tr><td>{_e(s['name'])}{' (primary)' if s['primary'] else ''}</td>"
                               f"<td class='num'>{signed(s['delta'])}</td><td>[{signed(s['lo'])}, {signed(s['hi'])}]</td>"
                               f"<td class='num'>{s['rank']:,} of {s['of']:,}</td></tr>" for s in f.shifts) + "</table>")
    if f.nearest:
        link = lambda k: f"<a href='{k}.html'>{k}</a>" if k in paged else f"{k}"  # noqa: E731
        parts.append("<h2>Nearest latents</h2><p class='muted'>by cosine of decoder directions</p><table class='nearest'>"
                     "<tr><th>latent</th><th>cosine</th></tr>"
                     + "".join(f"<tr><td>{link(k)}</td><td class='num'>{c:+.3f}</td></tr>" for k, c in f.nearest) + "</table>")
    if f.label and f.label["cos"]:
        parts.append("<h2>Persona directions</h2><table class='personas'><tr><th>direction</th><th>cosine with the decoder</th></tr>"
                     + "".join(f"<tr><td>{_e(k)}</td><td class='num'>{v:+.4f}</td></tr>" for k, v in f.label["cos"].items())
                     + "</table>")
    return "".join(parts)


LOGIT_TOKENS, NEAREST = 10, 8  # logit-lens tokens per side, and neighbours, shown per latent


def extras(model, sae, latents: list[int]) -> tuple[dict, dict]:
    """What a page shows besides the mined examples, for each latent: its logit lens (with the
    histogram over the vocabulary) and its nearest latents by decoder cosine."""
    import torch

    from persona_sae.exports import LOGIT_BINS
    from persona_sae.latents import logit_effects, nearest_latents

    with torch.no_grad():
        lens = dict(zip(latents, logit_effects(model, sae, latents, k=LOGIT_TOKENS, bins=LOGIT_BINS)))
        return lens, dict(zip(latents, nearest_latents(sae, latents, NEAREST)))


def read_ranking(folder: str, sha: str) -> dict:
    """A rank folder's ranking.json, refused unless it was made with this SAE."""
    p = Path(folder) / "ranking.json"
    if not p.is_file():
        raise UserError(f"--ranking {folder} holds no ranking.json")
    ranking = read_json(p, "a ranking.json written by `persona-sae rank`")
    if not isinstance(ranking, dict) or not isinstance(ranking.get("latents"), dict) or ranking.get("primary") not in ranking["latents"]:
        raise UserError(f"--ranking {folder}: ranking.json is not one written by `persona-sae rank`")
    if ranking.get("sae_sha256") != sha:
        raise UserError(f"--ranking {folder} was made with a different SAE (checksum mismatch)")
    return ranking


MARKER = "site.json"  # what every built site holds: only such a folder is ever replaced


def most_shifted(ranking: dict, n_up: int, n_down: int) -> list[int]:
    """The ``n_up`` best-ranked and ``n_down`` worst-ranked latents of a ranking's primary ordering."""
    order = sorted(range(len(ranking["latents"][ranking["primary"]]["rank"])),
                   key=lambda j: ranking["latents"][ranking["primary"]]["rank"][j])
    return list(dict.fromkeys(order[:n_up] + order[::-1][:n_down]))


def decoder(tokenizer) -> Callable[[int], str]:
    """token id -> its decoded string, cached (pages decode the same ids many times)."""
    return functools.lru_cache(maxsize=None)(lambda i: tokenizer.decode([i]))


def build(ex: Examples, tokenizer, out: str | Path, latents: list[int], labels: dict | None = None,
          ranking: dict | None = None, title: str = "", force: bool = False, *, lens: dict | None = None,
          nearest: dict | None = None, width: int = W, hint: str = "") -> Path:
    """Write index.html and latent/<j>.html for ``latents``; returns the site folder. ``lens``: latent ->
    LogitEffects, ``nearest``: latent -> [(latent, cosine)], ``width``: context tokens per example,
    ``hint``: a browse command line with ``{latent}`` in it. An existing ``out`` is replaced only when it
    is an earlier site (it holds ``MARKER``), or with ``force``."""

    out = replaceable(out, MARKER, "a dashboard", force)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "latent").mkdir(parents=True)
    (tmp / "style.css").write_text(CSS)
    (tmp / "site.js").write_text(JS)
    dec, paged = decoder(tokenizer), set(latents)
    rows, tags = [], set()
    for j in latents:
        f = facts(ex, dec, j, labels, ranking, (lens or {}).get(j), (nearest or {}).get(j, ()), width)
        lab = f.label or {"tag": "", "source": "", "explanation": None}
        tags.add(lab["tag"])
        finite = f.max_act > -float("inf")
        top_tok = f.top[0].tokens[f.top[0].at] if f.top else ""
        s = f.shifts[0] if f.shifts else None
        expl = (lab["explanation"] or {}).get("text", "")
        cells = [(j, f"<a href='latent/{j}.html'>{j}</a>"),
                 (lab["tag"], _e(lab["tag"]) + (" ✎" if lab["source"] == "manual" else "")),
                 (expl, _e(expl)),
                 (s["delta"] if s else "", signed(s['delta']) if s else ""), (s["rank"] if s else "", f"{s['rank']}" if s else ""),
                 (f.fires / f.n_tokens, f"{100 * f.fires / f.n_tokens:.3f}%"),
                 (f.max_act if finite else 0, f"{f.max_act:.3g}" if finite else "—"), (top_tok, _e(top_tok))]
        text = " ".join("".join(r.tokens) for r in f.top)
        rows.append(f"<tr data-tag='{_e(lab['tag'])}' data-text='{_e(text)}'>"
                    + "".join(f"<td data-v='{_e(v)}'>{h}</td>" for v, h in cells) + "</tr>")
        body = latent_html(f, paged, hint.replace("{latent}", str(j)))
        (tmp / "latent" / f"{j}.html").write_text(_page(f"latent {j}", body, depth=1))
    head = ["latent", "label", "explanation", "Δ", "rank", "density", "max act", "top token"]
    options = "".join(f"<option value='{_e(t)}'>{_e(t)}</option>" for t in sorted(tags) if t)
    index = (f"<h1>{_e(title or 'SAE latents')}</h1><p class='muted'>{len(latents)} latents; click a header to sort"
             + (f"; Δ and rank: {_e(ranking['primary'])}" if ranking else "") + ".</p>"
             "<p><input id='q' placeholder='search labels, tokens and example text' size='40'> "
             f"<select id='tag'><option value=''>every label</option>{options}</select></p>"
             "<table id='latents'><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    (tmp / "index.html").write_text(_page(title or "SAE latents", index))
    (tmp / MARKER).write_text(json.dumps({"latents": latents, "examples": ex.manifest.get("config", {}), "width": width}))
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
