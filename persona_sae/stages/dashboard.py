"""The `dashboard` and `serve` commands: static feature pages from mined examples, served on 127.0.0.1."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import log, pages
from persona_sae import config as C
from persona_sae import models as M
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
from persona_sae.runs import replaceable


def browse_hint(sae: str, examples: str) -> str:
    """The browse command line a page prints for its latent (``{latent}`` filled in by the page)."""
    return f"persona-sae browse {{latent}} --sae {shlex.quote(str(sae))} --examples {shlex.quote(str(examples))}"


class DashboardResult(NamedTuple):
    site: Path
    latents: list[int]
    seconds: float
    hint: str = ""  # a browse command line, {latent} to fill in


def run(cfg: C.DashboardConfig) -> DashboardResult:
    replaceable(cfg.out, pages.MARKER, "a dashboard", cfg.force)  # before any work, and never a user's files
    sae = load_sae(cfg.sae)
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha)
    where = sae_where(sae, cfg.layer, cfg.hook_name, required=False)
    check_mined(where, ex.manifest)
    ranking = pages.read_ranking(cfg.rank, sha) if cfg.rank else None
    if cfg.latents:
        check_latents(cfg.latents, sae.cfg.d_sae)
        latents = list(dict.fromkeys(cfg.latents))
    elif ranking and cfg.top > 0:
        latents = pages.most_shifted(ranking, cfg.top, cfg.top)
    else:
        latents = torch.nonzero(ex.state.fires > 0)[:, 0].tolist()
    labels = labels_beside(cfg.sae, sha, strict=True)
    model = M.load_model(cfg.model or ex.manifest["config"].get("model") or sae_model("", sae, log), log=log)
    check_fits(sae, model, where and where.layer, where and where.hook)
    hint = browse_hint(cfg.sae, cfg.examples) + (f" --ranking {shlex.quote(cfg.rank)}" if cfg.rank else "")
    t0 = time.time()
    lens, nearest = pages.extras(model, sae, latents)
    site = pages.build(ex, model.tokenizer, cfg.out, latents, labels, ranking, title=f"{cfg.sae}", force=cfg.force,
                       lens=lens, nearest=nearest, width=cfg.window, hint=hint)
    return DashboardResult(Path(site), latents, time.time() - t0, hint)


class ServeResult(NamedTuple):
    site: Path
    port: int


def serve(cfg: C.ServeConfig, ready=lambda r: None) -> ServeResult:
    """Serve until interrupted; ``ready`` is called with the address once the socket is bound."""
    srv = pages.serve(cfg.site, cfg.port)
    res = ServeResult(Path(cfg.site), cfg.port)
    ready(res)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
    return res
