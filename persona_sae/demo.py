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

ROOT = Path(__file__).resolve().parents[1]
SAE = ROOT / "checkpoints" / "smollm2" / "topk-L15-k32-4608"
BAD = ROOT / "checkpoints" / "smollm2" / "organisms" / "insecure-code-lora"
CONTROL = ROOT / "checkpoints" / "smollm2" / "organisms" / "secure-code-lora"


def _done(path: Path) -> bool:
    return path.is_file()


def run(cfg, log=print) -> dict:
    from persona_sae import UserError
    from persona_sae import models as M
    from persona_sae.config import LabelConfig, RankConfig

    for p in (SAE, BAD, CONTROL):
        if not p.is_dir():
            raise UserError(f"shipped artefact missing: {p} (the demo runs from a checkout of the repository)")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    times = {}
    M.pull(cfg.model, log=log) if cfg.model in M.ALIASES else None

    t0 = time.time()
    if not _done(out / "rank" / "ranking.json"):
        from persona_sae.rank import rank

        log("[1/4] rank: the same em-core prompts through the base, the insecure-code organism and its control")
        rank(RankConfig(out=str(out / "rank"), sae=str(SAE), base=cfg.model, finetuned=[str(BAD)],
                        control=[str(CONTROL)], prompts="em-core", top=cfg.top), log=log)
    times["rank"] = time.time() - t0
    ranking = json.loads((out / "rank" / "ranking.json").read_text())

    t0 = time.time()
    if not _done(out / "labels" / "labels.json"):
        from persona_sae.label import label

        log("[2/4] label: the top latents against the concept reference sets")
        label(LabelConfig(sae=str(SAE), model=cfg.model, out=str(out / "labels"), ranking=str(out / "rank"),
                          top=max(cfg.top, cfg.pages)), log=log)
    times["label"] = time.time() - t0
    labels = json.loads((out / "labels" / "labels.json").read_text())

    t0 = time.time()
    if not _done(out / "examples" / "examples.safetensors"):
        from persona_sae.data import load_records, tokenize
        from persona_sae.examples import mine
        from persona_sae.label import builtin_concepts
        from persona_sae.rank import sae_layer
        from persona_sae.saes import load_sae, sae_checksum

        log("[3/4] examples: mining every latent on the project's own texts (concept sets + em-core)")
        sae = load_sae(str(SAE))
        layer, hook = sae_layer(sae)
        model = M.load_model(cfg.model, log=log)
        records = [r for rs in builtin_concepts().values() for r in rs] + load_records("em-core")
        ex = tokenize(records, model.tokenizer, max_len=128)
        mine(model, sae, ex, layer, hook, out / "examples", k=10, reservoir=20, checkpoint_every=0,
             meta={"sae": str(SAE), "sae_sha256": sae_checksum(sae), "model": cfg.model, "dataset": "concepts+em-core"},
             log=log)
    times["examples"] = time.time() - t0

    t0 = time.time()
    from persona_sae.dashboard import build, most_shifted
    from persona_sae.examples import load

    log("[4/4] dashboard: pages for the most shifted latents")
    ex = load(out / "examples")
    pages = most_shifted(ranking, cfg.pages // 2, cfg.pages - cfg.pages // 2)
    tok = M.load_tokenizer(cfg.model, log=log)
    build(ex, tok, out / "site", pages, labels, ranking, title="persona_sae demo: insecure-code vs secure-code on SmolLM2")
    times["dashboard"] = time.time() - t0
    return {"ranking": ranking, "labels": labels, "site": str(out / "site" / "index.html"), "times": times}
