"""The `dashboard` and `serve` commands: static feature pages from mined examples, served on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, log, pages, read_json
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.labels import labels_beside
from persona_sae.latents import check_latents, check_mined, load_sae, sae_checksum, sae_model, sae_where
from persona_sae.mined import load
from persona_sae.runs import replaceable


class DashboardResult(NamedTuple):
    site: Path
    latents: list[int]
    seconds: float


def run(cfg: C.DashboardConfig) -> DashboardResult:
    replaceable(cfg.out, pages.MARKER, "a dashboard", cfg.force)  # before any work, and never a user's files
    sae = load_sae(cfg.sae)
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha)
    check_mined(sae_where(sae, cfg.layer, cfg.hook_name, required=False), ex.manifest)
    ranking = None
    if cfg.rank:
        p = Path(cfg.rank) / "ranking.json"
        if not p.is_file():
            raise UserError(f"--ranking {cfg.rank} holds no ranking.json")
        ranking = read_json(p, "a ranking.json written by `persona-sae rank`")
        if ranking.get("sae_sha256") != sha:
            raise UserError(f"--ranking {cfg.rank} was made with a different SAE (checksum mismatch)")
    if cfg.latents:
        check_latents(cfg.latents, sae.cfg.d_sae)
        latents = list(dict.fromkeys(cfg.latents))
    elif ranking and cfg.top > 0:
        latents = pages.most_shifted(ranking, cfg.top, cfg.top)
    else:
        latents = torch.nonzero(ex.state.fires > 0)[:, 0].tolist()
    labels = labels_beside(cfg.sae, sha, strict=True)
    tok = M.load_tokenizer(cfg.model or ex.manifest["config"].get("model") or sae_model("", sae, log), log=log)
    t0 = time.time()
    site = pages.build(ex, tok, cfg.out, latents, labels, ranking, title=f"{cfg.sae}", force=cfg.force)
    return DashboardResult(Path(site), latents, time.time() - t0)


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
