"""The `export` command: latents as Neuronpedia or SAEDashboard JSON, from mined examples."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, exports, log
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.labels import labels_beside, read_labels
from persona_sae.latents import check_fits, check_latents, check_mined, load_sae, logit_effects, sae_checksum, sae_model, sae_where
from persona_sae.mined import load
from persona_sae.runs import replaceable


class ExportResult(NamedTuple):
    out: Path
    latents: list[int]
    files: list[str]


@torch.no_grad()
def run(cfg: C.ExportConfig) -> ExportResult:
    replaceable(cfg.out, exports.MARKER, "an export", cfg.force)  # before any work, and never a user's files
    if not Path(cfg.examples).is_dir():
        raise UserError(f"--examples {cfg.examples}: no such folder (make one with `persona-sae examples`)")
    sae = load_sae(cfg.sae)
    sha = sae_checksum(sae)
    ex = load(cfg.examples, sha)
    where = sae_where(sae, cfg.layer, cfg.hook_name, required=False)
    check_mined(where, ex.manifest)
    if cfg.latents:
        check_latents(cfg.latents, sae.cfg.d_sae)
        latents = list(dict.fromkeys(cfg.latents))
    else:
        latents = torch.nonzero(ex.state.fires > 0)[:, 0].tolist()
    labels = read_labels(Path(cfg.labels), sha) if cfg.labels else labels_beside(cfg.sae, sha, strict=True)
    c = ex.manifest["config"]
    spec = cfg.model or c.get("model") or sae_model("", sae, log)
    model = M.load_model(spec, log=log)
    layer = where.layer if where is not None else int(c.get("layer", 0))
    check_fits(sae, model, where and where.layer, where and where.hook)
    lens = logit_effects(model, sae, latents, k=cfg.logit_tokens, bins=exports.LOGIT_BINS)
    recs = exports.latent_records(ex, model.tokenizer, latents, lens, labels)
    model_id = cfg.model_id or exports.model_id_of(spec)
    out, files = exports.write(cfg.format, cfg.out, recs, model_id=model_id, layer=layer, source_set=cfg.source_set,
                               creator=cfg.creator_id, sae_sha=sha, manifest=ex.manifest, n_docs=len(ex.offsets) - 1,
                               force=cfg.force, meta={"sae": cfg.sae, "sae_sha256": sha, "examples": str(cfg.examples),
                                                      "model": spec, "model_id": model_id, "layer": layer,
                                                      "source_set": cfg.source_set})
    return ExportResult(out, latents, files)
