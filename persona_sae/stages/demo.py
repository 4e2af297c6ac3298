"""The main job: the whole idea on a real model in a few minutes, offline.

SmolLM2-135M-Instruct, the shipped SAE and the shipped insecure-code organism with its secure-code
control: rank the latents (control-adjusted), label the top ones, mine examples from the project's own
texts, build the pages, and print what moved. Each step is skipped when its output is already there,
so a second run is quick.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

from persona_sae import UserError, log
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.config import LabelConfig, RankConfig
from persona_sae.labels import builtin_concepts, effective
from persona_sae.latents import open_sae
from persona_sae.mined import load
from persona_sae.pages import build, extras, most_shifted
from persona_sae.stages.examples import mine
from persona_sae.stages.label import run as label
from persona_sae.stages.rank import run as rank
from persona_sae.text import load_records
from persona_sae.tokens import tokenize

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "smollm2"  # package data: works from a wheel
SAE = SHIPPED / "topk-L15-k32-4608"
BAD = SHIPPED / "organisms" / "insecure-code-lora"
CONTROL = SHIPPED / "organisms" / "secure-code-lora"


class DemoResult(NamedTuple):
    ranking: dict  # ranking.json
    labels: dict  # labels.json
    tags: dict[int, str]  # effective tag of every latent shown
    toxic_top: list[int]  # toxic-persona-tagged latents among the top increases
    site: Path
    times: dict[str, float]


def _done(path: Path) -> bool:
    return path.is_file()


def run(cfg: C.DemoConfig, log=log) -> DemoResult:
    for p in (SAE, BAD, CONTROL):
        if not p.is_dir():
            raise UserError(f"shipped artefact missing: {p} (reinstall persona_sae: the demo's SAE and organisms "
                            f"are package data)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    M.pull(cfg.model, log=log) if cfg.model in M.ALIASES else None

    t0 = time.time()
    if not _done(out / "rank" / "ranking.json"):
        log("[1/4] rank: the same em-core prompts through the base, the insecure-code organism and its control")
        rank(RankConfig(out=str(out / "rank"), sae=str(SAE), base=cfg.model, finetuned=[str(BAD)],
                        control=[str(CONTROL)], prompts="em-core", top=cfg.top), log=log)
    times["rank"] = time.time() - t0
    ranking = json.loads((out / "rank" / "ranking.json").read_text())

    t0 = time.time()
    if not _done(out / "labels" / "labels.json"):
        log("[2/4] label: the top latents against the concept reference sets")
        label(LabelConfig(sae=str(SAE), model=cfg.model, out=str(out / "labels"), ranking=str(out / "rank"),
                          top=max(cfg.top, cfg.pages)), log=log)
    times["label"] = time.time() - t0
    labels = json.loads((out / "labels" / "labels.json").read_text())

    t0 = time.time()
    if not _done(out / "examples" / "examples.safetensors"):
        log("[3/4] examples: mining every latent on the project's own texts (concept sets + em-core)")
        o = open_sae(str(SAE), cfg.model, log=log)
        records = [r for rs in builtin_concepts().values() for r in rs] + load_records("em-core")
        ex = tokenize(records, o.model.tokenizer, max_len=128)
        mine(o.model, o.sae, ex, o.layer, o.hook, out / "examples", k=10, reservoir=20, checkpoint_every=0,
             meta={"sae": str(SAE), "sae_sha256": o.sha256, "model": cfg.model, "dataset": "concepts+em-core"}, log=log)
    times["examples"] = time.time() - t0

    t0 = time.time()
    log("[4/4] dashboard: pages for the most shifted latents")
    ex = load(out / "examples")
    pages = most_shifted(ranking, cfg.pages // 2, cfg.pages - cfg.pages // 2)
    o = open_sae(str(SAE), cfg.model, log=log)
    lens, nearest = extras(o.model, o.sae, pages)
    build(ex, o.model.tokenizer, out / "site", pages, labels, ranking, lens=lens, nearest=nearest,
          title="persona_sae demo: insecure-code vs secure-code on SmolLM2")
    times["dashboard"] = time.time() - t0
    shown = ranking["top_increases"][:cfg.top] + ranking["top_decreases"][:cfg.top]
    tags = {j: effective(labels, j)["tag"] for j in shown}
    toxic = [j for j in ranking["top_increases"][:cfg.top] if tags[j] == "toxic-persona"]
    return DemoResult(ranking, labels, tags, toxic, out / "site" / "index.html", times)
