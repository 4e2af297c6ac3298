"""The `browse` command: one latent in the terminal, from mined examples or on the user's own text.

The work (loading, encoding, picking examples) happens here and comes back as token strings with
their activations; ``report.browse`` shades and prints them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from persona_sae import UserError, log
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.activations import iter_activations
from persona_sae.labels import effective, labels_beside
from persona_sae.latents import check_fits, check_latents, check_mined, load_sae, logit_lens, sae_checksum, sae_model, sae_where
from persona_sae.mined import N_BINS, load, quantile_bins
from persona_sae.text import Record
from persona_sae.tokens import tokenize


class Context(NamedTuple):
    """A shown context: token strings, the activation on each, and what it is (a value, an interval)."""

    tokens: list[str]
    acts: list[float]
    value: float
    interval: str = ""


class BrowseResult(NamedTuple):
    latent: int
    label: dict | None  # effective tag, source, scores of the tag, runner-up; None without labels.json
    promotes: list[str]
    suppresses: list[str]
    text: Context | None = None  # --text: every token of it
    fires: int = 0
    n_tokens: int = 0
    max_act: float = 0.0
    hist: list[int] = []  # log10-activation histogram
    top: list[Context] = []
    intervals: list[Context] = []


@torch.no_grad()
def run(cfg: C.BrowseConfig) -> BrowseResult:
    if not cfg.sae:
        raise UserError("browse needs --sae")
    sae = load_sae(cfg.sae)
    check_latents([cfg.latent], sae.cfg.d_sae)
    if not cfg.text and not cfg.examples:
        raise UserError("browse needs --examples DIR (from `persona-sae examples`) or --text")
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha) if cfg.examples else None
    where = sae_where(sae, cfg.layer, cfg.hook_name, required=bool(cfg.text))
    if where is not None:
        log(f"SAE reads {where}")
    if ex:  # the examples' own model decodes their tokens
        check_mined(where, ex.manifest)
    spec = ex.manifest["config"]["model"] if ex and ex.manifest["config"].get("model") else sae_model(cfg.model, sae, log)
    model = M.load_model(spec, log=log)
    if where is not None:
        check_fits(sae, model, where.layer, where.hook)
    tok, j = model.tokenizer, cfg.latent
    strs = lambda ids: [tok.decode([i]) for i in ids]  # noqa: E731
    lab = labels_beside(cfg.sae, sha)
    label = None
    if lab:
        entry = lab["latents"].get(str(j), {})
        label = {**effective(lab, j), "scores": entry.get("scores", {}).get(entry.get("tag"), {}),
                 "runner_up": entry.get("runner_up")}
    top, bottom = logit_lens(model, sae, [j])
    res = BrowseResult(j, label, top[0], bottom[0])
    if cfg.text:
        layer, hook = where.layer, where.hook
        exs = tokenize([Record(text=cfg.text)], tok, max_len=4096)
        acts = {}
        for b in iter_activations(model, exs, [layer], hook=hook, seed=None, progress=False, max_norm_ratio=None):
            f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()[:, j]
            acts.update({int(p): float(v) for p, v in zip(b.pos, f)})
        ids = exs[0].ids[1:]
        vals = [acts.get(i + 1, 0.0) for i in range(len(ids))]
        return res._replace(text=Context(strs(ids), vals, max(vals)))

    m = ex.state
    vmax = float(m.top_values[j, 0])
    res = res._replace(fires=int(m.fires[j]), n_tokens=max(ex.manifest.get("tokens", m.tokens), 1), max_act=vmax,
                       hist=m.hist[j].tolist())
    if not torch.isfinite(m.top_values[j, 0]):
        return res

    def context(e: int, p: int, value: float, interval: str = "") -> Context:
        """The context around (e, p) with the value at the activating token only (interval examples)."""
        ids, at = ex.window(e, p)
        return Context(strs(ids), [value if i == at else 0.0 for i in range(len(ids))], value, interval)

    tops = [Context(strs(t.ids), t.acts, t.value) for t in ex.top(j, cfg.n)]
    bins = quantile_bins(m.res_values[j:j + 1], m.top_values[j:j + 1, 0])[0]
    inter = [context(int(m.res_example[j, i]), int(m.res_pos[j, i]), float(m.res_values[j, i]),
                     interval=f"{b / N_BINS:.1f}–{(b + 1) / N_BINS:.1f}")
             for b in range(N_BINS - 1, -1, -1) for i in (bins == b).nonzero()[:2, 0].tolist()]
    return res._replace(top=tops, intervals=inter)
