"""The `browse` command: one latent in the terminal, from mined examples or on the user's own text.

The work (loading, encoding, gathering the latent's facts with ``pages.facts``, the record its feature
page is built from) happens here; ``report.browse`` shades and prints them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from persona_sae import UserError, log, pages
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.activations import iter_activations
from persona_sae.labels import labels_beside
from persona_sae.latents import (
    check_fits,
    check_latents,
    check_mined,
    load_sae,
    sae_checksum,
    sae_model,
    sae_where,
)
from persona_sae.mined import load
from persona_sae.text import Record
from persona_sae.tokens import tokenize


class BrowseResult(NamedTuple):
    facts: pages.Facts  # what the latent's feature page shows (no examples with --text alone)
    text: pages.Row | None = None  # --text: every token of it

    @property
    def latent(self) -> int:
        return self.facts.latent


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
    ranking = pages.read_ranking(cfg.ranking, sha) if cfg.ranking else None
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
    dec = pages.decoder(tok)
    labels = labels_beside(cfg.sae, sha)
    lens, near = (d[j] for d in pages.extras(model, sae, [j]))
    if ex:
        facts = pages.facts(ex, dec, j, labels, ranking, lens, near, cfg.window, n=cfg.n, per_interval=2)
    else:
        facts = pages.Facts(j, pages.label_facts(labels, j), 0, 1, -float("inf"), [], lens, [dec(i) for i in lens.pos_ids],
                            [dec(i) for i in lens.neg_ids], [], [], pages.shift_facts(ranking, j), near)
    if not cfg.text:
        return BrowseResult(facts)
    layer, hook = where.layer, where.hook
    exs = tokenize([Record(text=cfg.text)], tok, max_len=4096)
    acts = {}
    for b in iter_activations(model, exs, [layer], hook=hook, seed=None, progress=False, max_norm_ratio=None):
        f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()[:, j]
        acts.update({int(p): float(v) for p, v in zip(b.pos, f)})
    ids = exs[0].ids[1:]
    vals = [acts.get(i + 1, 0.0) for i in range(len(ids))]
    at = max(range(len(vals)), key=vals.__getitem__) if vals else 0
    return BrowseResult(facts, pages.Row([dec(int(i)) for i in ids], vals, at, max(vals, default=0.0), 0, 0))
