"""Every figure the package and the studies draw, in one style: labelled axes, readable latent ids and
tags, legends that name exactly the marks drawn. Each function saves a PNG (Agg backend) and returns
the closed Figure, so a test can inspect what was drawn."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import Sequence

UP, DOWN, GREY = "#c0392b", "#2e6fb0", "#7f8c8d"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 110):
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return fig


def _num(x) -> float:
    """A rate as stored in JSON (None or NaN where nothing was counted) as a float, NaN for missing."""
    return math.nan if x is None else float(x)


def shifts(path: Path, delta: Sequence[float], lo: Sequence[float], hi: Sequence[float], up: Sequence[int],
           down: Sequence[int], tags: dict[int, str] | None = None, marked: set[int] = frozenset(),
           marked_label: str = "", xlabel: str = "Δ mean activation", title: str = ""):
    """Both tails as horizontal bars with 95% CI whiskers: the top increases (largest first), then the top
    decreases (largest last). Red is Δ > 0, blue Δ < 0; ``marked`` latents get a hatch and a legend entry
    (``marked_label``) when one is drawn. Row labels are the latent id and, when known, its full tag."""
    plt = _plt()
    from matplotlib.patches import Patch

    tags = tags or {}
    up = list(up)
    js = up + [j for j in down if j not in up][::-1]
    d = [float(delta[j]) for j in js]
    err = [[max(d[i] - float(lo[j]), 0) for i, j in enumerate(js)], [max(float(hi[j]) - d[i], 0) for i, j in enumerate(js)]]
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.26 * len(js)))
    y = list(range(len(js)))[::-1]
    bars = ax.barh(y, d, xerr=err, capsize=2, color=[UP if v > 0 else DOWN for v in d], error_kw={"lw": 0.8})
    for b, j in zip(bars, js):
        if j in marked:
            b.set_hatch("///"), b.set_edgecolor("black")
    ax.set_yticks(y, [f"{j}  {tags[j]}" if tags.get(j) else str(j) for j in js], fontsize=8)
    ax.axvline(0, color="black", lw=0.6)
    if len(up) and len(js) > len(up):
        ax.axhline(len(js) - len(up) - 0.5, color="black", lw=0.5, ls=":")
    ax.set_xlabel(xlabel), ax.set_ylabel("latent" + ("  tag" if any(tags.get(j) for j in js) else ""))
    from matplotlib.lines import Line2D

    handles = ([Patch(color=UP, label="increase (Δ > 0)")] if any(v > 0 for v in d) else []) + \
              ([Patch(color=DOWN, label="decrease (Δ < 0)")] if any(v < 0 for v in d) else []) + \
              [Line2D([], [], color="black", lw=0.8, marker="|", label="95% CI")] + \
              ([Patch(facecolor="white", edgecolor="black", hatch="///", label=marked_label)] if marked & set(js) else [])
    ax.legend(handles=handles, fontsize=7, loc="lower right" if any(v < 0 for v in d) else "best")  # empty corner
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def _linthresh(values) -> float:
    """Where a symlog axis turns linear: a power of ten near the 5th percentile of the non-zero magnitudes."""
    import numpy as np

    a = np.abs(np.asarray(values, dtype=float))
    a = a[np.isfinite(a) & (a > 0)]
    if not len(a):
        return 1e-3
    return float(10 ** math.floor(math.log10(max(np.quantile(a, 0.05), a.max() * 1e-6))))


def scatter(path: Path, base: Sequence[float], ft: Sequence[float], up: Sequence[int], down: Sequence[int],
            xlabel: str, ylabel: str, annotate: int = 5):
    """Every latent's value before against after on symlog axes (mean activations span orders of magnitude
    and include zeros), the top increases and decreases coloured and the first ``annotate`` of each named."""
    import numpy as np

    plt = _plt()
    base, ft = np.asarray(base, dtype=float), np.asarray(ft, dtype=float)
    up, down = list(up), [j for j in down if j not in set(up)]
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.scatter(base, ft, s=3, alpha=0.4, color=GREY, label=f"all {len(base):,} latents")
    if up:
        ax.scatter(base[up], ft[up], s=12, color=UP, label=f"top {len(up)} increases")
    if down:
        ax.scatter(base[down], ft[down], s=12, color=DOWN, label=f"top {len(down)} decreases")
    for j in up[:annotate] + down[:annotate]:
        ax.annotate(str(j), (base[j], ft[j]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    both = np.concatenate([base, ft])
    lo, hi = float(min(both.min(), 0)), float(both.max()) or 1.0
    ax.plot([lo, hi], [lo, hi], color="black", lw=0.5, label="no change (y = x)")  # straight on equal symlog axes
    t = _linthresh(both)
    ax.set_xscale("symlog", linthresh=t), ax.set_yscale("symlog", linthresh=t)
    ax.set_xlabel(f"{xlabel} (symlog)"), ax.set_ylabel(f"{ylabel} (symlog)")
    ax.set_title(f"every latent before vs after (linear below {t:g})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path, dpi=100)


def check_toxic(path: Path, chk: dict):
    """AUROC of each checked latent on real misaligned vs aligned answers: bars for the raw answers, dots
    for the length-matched ones, the chance line and the goal line named in the legend."""
    plt = _plt()
    rows, matched = chk["rows"], chk.get("rows_length_matched", {})
    by_latent = {v["latent"]: v for v in matched.values()}
    ks = list(rows)
    labels = [textwrap.fill(re.sub(r" \(.*?\)", "", k), 38) for k in ks]
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.5 * len(ks)))
    y = list(range(len(ks)))[::-1]
    ax.barh(y, [rows[k]["auroc_mean"] for k in ks], color="C0", label="raw answers")
    if matched:
        ax.scatter([by_latent[rows[k]["latent"]]["auroc_mean"] if rows[k]["latent"] in by_latent else math.nan for k in ks],
                   y, color="C1", zorder=3, label="length-matched answers")
    ax.axvline(0.5, color="black", lw=0.6, label="chance (0.5)")
    ax.axvline(0.8, color="C3", ls="--", lw=0.9, label="goal (0.8)")
    ax.set_yticks(y, labels, fontsize=8), ax.set_xlim(0, 1)
    ax.set_xlabel("AUROC of the latent's mean activation (misaligned vs aligned)")
    n = f" ({chk['n_misaligned']} misaligned vs {chk['n_aligned']} aligned)" if "n_misaligned" in chk else ""
    ax.set_title(f"latents on real EM answers{n}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _save(fig, path)


def monitor(path: Path, res: dict):
    """Each latent's Δ mean activation (95% CI) per checkpoint and, where judged, the misaligned rate on a
    second axis; one legend names every line."""
    plt = _plt()
    rows = res["rows"]
    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9) + 3, 4))
    for j in res["latents"]:
        d = [r["latents"][str(j)] for r in rows]
        err = [[max(v["delta"] - v["ci_low"], 0) for v in d], [max(v["ci_high"] - v["delta"], 0) for v in d]]
        ax.errorbar(x, [v["delta"] for v in d], yerr=err, marker="o", capsize=3, label=f"latent {j} Δ")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("checkpoint"), ax.set_ylabel("Δ mean activation vs base (95% CI)")
    handles, labels = ax.get_legend_handles_labels()
    top = ax  # the legend goes on the topmost axes: the rate line drawn later would cross it otherwise
    if all("misaligned_rate" in r for r in rows):
        ax2 = top = ax.twinx()
        ax2.plot(x, [100 * _num(r["misaligned_rate"]["rate"]) for r in rows], color="gray", ls="--", marker="s",
                 label="misaligned answers, % (right axis)")
        ax2.set_ylabel("misaligned answers, % (judge)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    top.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.1 if top is not ax else 1.01, 1))  # beside the plot, over no data
    ax.set_title("latent shift across checkpoints", fontsize=9)
    return _save(fig, path, dpi=100)


def steer(path: Path, rows: list[dict], judge: str, limit: float = 0.10):
    """Misaligned rate (95% CI) against steering coefficient per direction, with points where every answer
    was incoherent (no rate) marked by an X on the axis; below, the incoherent share that ``--coef auto``
    keeps under ``limit``."""
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    names = list(dict.fromkeys(r["condition"] for r in rows if not r["condition"].startswith("ablate")))
    any_empty = False
    for i, name in enumerate(names):
        c, ls = f"C{i}", "--" if name.startswith("random") else "-"
        rs = sorted((r for r in rows if r["condition"] == name), key=lambda r: r["coef"])
        x = [r["coef"] for r in rs]
        y = [100 * _num(r["rate"]) for r in rs]
        err = [[0 if math.isnan(v) else max(v - 100 * _num(r["lo"]), 0) for v, r in zip(y, rs)],
               [0 if math.isnan(v) else max(100 * _num(r["hi"]) - v, 0) for v, r in zip(y, rs)]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, color=c, ls=ls, label=name)
        empty = [r["coef"] for r, v in zip(rs, y) if math.isnan(v)]
        if empty:
            any_empty = True
            ax.scatter(empty, [0.03] * len(empty), marker="X", s=60, color=c, transform=ax.get_xaxis_transform(), zorder=4)
        bx.plot(x, [100 * _num(r["incoherent"]) for r in rs], marker="o", color=c, ls=ls)
    ax.set_ylabel("misaligned answers, % (95% CI)"), ax.set_ylim(-5, 105)
    ax.set_title(f"steering sweep ({judge})", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    if any_empty:
        handles.append(Line2D([], [], marker="X", color="gray", ls="", markersize=8))
        labels.append("every answer incoherent (no rate)")
    ax.legend(handles, labels, fontsize=7)
    bx.axhline(100 * limit, color="C3", ls=":", lw=0.9, label=f"--coef auto limit ({100 * limit:.0f}%)")
    bx.set_ylim(-5, 105), bx.set_ylabel("incoherent answers, %")
    bx.set_title("incoherent share per direction (colours as above)", fontsize=8)
    bx.set_xlabel("steering coefficient (× scale)"), bx.legend(fontsize=7, loc="upper left")
    return _save(fig, path, dpi=100)
