"""The `label` command: tag SAE latents with persona concepts, offline, with the evidence kept.

Every latent is scored on reference texts per concept (``persona_sae/concepts/`` plus the user's
own): AUROC of its per-text peak activation for the concept's texts against everything else
(so a generic "fiction" latent does not win "conflict in fiction"), against the neutral controls,
the ratio of mean activations, and the fraction of concept texts it fires on. The best concept whose
evidence passes the thresholds becomes the tag; the runner-up and all scores are kept. Decoder
cosines with persona directions and logit-lens tokens are recorded beside them. Manual labels
(`label set`) win over automatic ones. With ``--explainer`` an LLM also explains chosen latents from
their mined examples and is scored on detecting them (``explain.py``); that is kept as evidence under
"explanation" and never changes a tag.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, __version__, log, read_json, write_json
from persona_sae import config as C
from persona_sae import models as M
from persona_sae import personas as P
from persona_sae.explain import explain, make_explainer, zero_windows
from persona_sae.labels import (
    RandomSAEs,
    Thresholds,
    decide,
    refine_pvalues,
    effective,
    labels_path,
    load_concepts,
    read_labels,
    save_labels,
    score_concepts,
    set_manual,
    with_null,
    with_qvalues,
)
from persona_sae.latents import (
    check_fits,
    check_latents,
    load_sae,
    logit_lens,
    open_sae,
    persona_cosines,
    sae_checksum,
    sae_model,
    sae_where,
)
from persona_sae.mined import load as load_mined
from persona_sae.statistics import text_scores


class LabelResult(NamedTuple):
    path: Path
    best: dict  # tag -> the latent with the best AUROC for it, with its evidence
    nearest: dict  # persona trait -> the latent whose decoder is closest to its direction
    n_latents: int
    n_labelled: int
    explained: list
    seconds: float
    null: dict | None = None  # labels.json's "null": thresholds per concept, tags removed


def run(cfg: C.LabelConfig, log=log) -> LabelResult:
    """Score every latent (or a ranking's top) on the concept sets and write the labels file."""
    t0 = time.time()

    if not 0 < cfg.fdr <= 1:
        raise UserError(f"--fdr must be in (0, 1], got {cfg.fdr}")
    if cfg.permutations < 1:
        raise UserError(f"--permutations must be at least 1, got {cfg.permutations}")
    if cfg.refine < 0:
        raise UserError(f"--refine must be 0 (off) or more, got {cfg.refine}")
    if cfg.null_saes < 0:
        raise UserError(f"--null-saes must be 0 (off) or more, got {cfg.null_saes}")
    if not 0 < cfg.null_quantile <= 1:
        raise UserError(f"--null-quantile must be in (0, 1], got {cfg.null_quantile}")
    th = Thresholds(cfg.min_auroc, cfg.min_fire, cfg.min_ratio, cfg.fdr)
    sets = load_concepts(cfg.concepts, builtin=not cfg.no_builtin)
    explainer = None
    if cfg.explainer:
        if not cfg.examples:
            raise UserError("--explainer needs --examples DIR: top examples mined by `persona-sae examples` "
                            "for this SAE")
        if cfg.explain_examples < 2:
            raise UserError("--explain-examples must be at least 2")
        explainer = make_explainer(cfg.explainer, cfg.explainer_model)  # a dead URL fails here, before any work
    elif cfg.examples or cfg.explain_latents:
        raise UserError("--examples and --explain-latents are read only with --explainer")
    sae = load_sae(cfg.sae)
    sha = sae_checksum(sae)
    path = labels_path(cfg.sae, cfg.out)
    where = sae_where(sae, cfg.layer, cfg.hook_name)
    layer, hook = where.layer, where.hook
    log(f"SAE reads {where}")
    spec = sae_model(cfg.model, sae, log)
    mined = None
    if explainer is not None:
        mined = load_mined(cfg.examples, sha)
        check_latents(cfg.explain_latents, sae.cfg.d_sae)
    ranked = None  # read before the model loads: a wrong folder fails fast
    if cfg.ranking:
        if not (Path(cfg.ranking) / "ranking.json").is_file():
            raise UserError(f"--ranking {cfg.ranking} is not a rank output folder (no ranking.json)")
        ranked = read_json(Path(cfg.ranking) / "ranking.json", "a ranking.json written by `persona-sae rank`")
    model = M.load_model(spec, dtype=cfg.dtype, log=log)
    check_fits(sae, model, layer, hook)
    latents = list(range(sae.cfg.d_sae))
    if ranked is not None:
        latents = sorted(set(ranked["top_increases"][:cfg.top]) | set(ranked["top_decreases"][:cfg.top]))
    missing = sorted(set(cfg.explain_latents) - set(latents))
    if missing:
        raise UserError(f"--explain-latents {', '.join(map(str, missing))} not among the latents labelled "
                        f"(the --ranking top {cfg.top})")
    directions = None
    if cfg.personas:
        directions = P.load(cfg.personas) if (Path(cfg.personas) / "personas.json").is_file() else \
            P.cached(cfg.personas, layer, traits=("evil",), log=log)
        if directions.layer != layer:
            raise UserError(f"persona directions are from layer {directions.layer}, the SAE reads layer {layer}")
    null = RandomSAEs(cfg.null_saes, sae.cfg.d_sae, sae.cfg.d_in, sum(map(len, sets.values())),
                      seed=cfg.seed + 1) if cfg.null_saes else None  # not the permutations' stream
    ts = text_scores(model, sae, sets, layer, hook, max_len=cfg.max_len, batch_tokens=cfg.batch_tokens,
                     observe=null.observe if null else None)
    idx = torch.tensor(latents)
    scores = score_concepts(ts, idx, cfg.permutations, cfg.seed)
    refined = refine_pvalues(ts, scores, idx, th, cfg.permutations, cfg.refine, cfg.seed) if th.fdr < 1 else 0
    if refined:
        log(f"{refined} latent x concept pairs at the {cfg.permutations:,}-shuffle floor tested again with "
            f"{cfg.refine:,} shuffles")
    n_tests = len(latents) * len(scores)
    bar, null_meta = None, None
    if null is not None:
        log(f"random-SAE null: {cfg.null_saes} SAEs x {sae.cfg.d_sae:,} latents")
        plain, _, _ = decide(with_qvalues(scores), th)
        aurocs = null.aurocs(ts.rate, ts.tags)
        del null  # its [N, texts, d_sae] peaks
        scores, bar = with_null(scores, aurocs, cfg.null_quantile)
    scores = with_qvalues(scores)
    tags, runner, _ = decide(scores, th, bar)
    if bar is not None:
        removed = sum(a != "unlabelled" and b == "unlabelled" for a, b in zip(plain, tags))
        n_plain = sum(a != "unlabelled" for a in plain)
        log(f"random-SAE null removed {removed} of {n_plain} tags (tag AUROC must exceed, per concept: "
            + ", ".join(f"{t} {v:.3f}" for t, v in bar.items()) + ")")
        null_meta = {"saes": cfg.null_saes, "latents": cfg.null_saes * sae.cfg.d_sae, "quantile": cfg.null_quantile,
                     "seed": cfg.seed + 1, "removed": removed, "tags_without": n_plain,
                     "construction": "ReLU SAEs: unit Gaussian decoder rows, W_enc = W_dec.T, b_dec = 0, b_enc "
                                     "giving latent j the real latent j's token firing rate on these texts",
                     "concepts": {t: {"threshold": round(v, 4), "auroc_max": round(float(aurocs[t][-1]), 4)}
                                  for t, v in bar.items()}}
    shuffles = max(cfg.permutations, cfg.refine)  # the candidates' resolution
    floor = max(1 / (shuffles + 1), 1 / (cfg.null_saes * sae.cfg.d_sae + 1) if cfg.null_saes else 0)
    p_of = {t: torch.maximum(s["p"], s["p_null"]) if "p_null" in s else s["p"] for t, s in scores.items()}
    short = sum(int(((p_of[t] <= floor) & (s["q"] > th.fdr) & (s["auroc"] >= th.auroc) & (s["fire"] >= th.fire)
                     & (s["ratio"] >= th.ratio) & (s["auroc"] > bar[t] if bar else True)).sum())
                for t, s in scores.items())
    if short:  # the resolution, not the evidence, stopped them
        log(f"warning: {short} latent x concept pairs pass every threshold at the smallest p-value {shuffles:,} "
            f"shuffles{f' and {cfg.null_saes} null SAEs' if cfg.null_saes else ''} can give ({floor:.2g}) but "
            f"not BH over {n_tests:,} tests at --fdr {th.fdr}: raise --permutations and --refine"
            f"{' or --null-saes' if cfg.null_saes else ''} (or label fewer latents, --ranking)")
    top, bottom = logit_lens(model, sae, latents)
    extras = {"top_token": [model.tokenizer.decode([t]) for t in ts.top_token[idx].tolist()],
              "logit_lens_top": top, "logit_lens_bottom": bottom}
    nearest = {}
    for t, c in persona_cosines(sae, directions).items():
        extras[f"cos_{t}"] = [round(float(x), 4) for x in c[idx]]
        j = int(c[idx].argmax())
        nearest[t] = {"latent": latents[j], "cos": round(float(c[idx][j]), 4), "tag": tags[j]}
    meta = {"sae": cfg.sae, "sae_sha256": sha, "model": spec, "layer": layer, "hook": hook,
            "thresholds": th._asdict(),
            "p_values": {"test": "one-sided AUROC vs the concept labels shuffled among all texts",
                         "permutations": cfg.permutations, "refine": cfg.refine, "refined": refined,
                         "seed": cfg.seed,
                         "fdr": "Benjamini-Hochberg over latents x concepts", "tests": n_tests},
            "null": null_meta,
            "n_texts": {t: len(v) for t, v in sets.items()}, "tokens": ts.n_tokens,
            "version": __version__, "persona_directions": cfg.personas or None}
    lab = save_labels(path, meta, tags, runner, list(scores), scores, extras, latents)
    best = {}
    for t, s in scores.items():
        j = int(s["auroc"].argmax())
        best[t] = {"latent": latents[j], "auroc": float(s["auroc"][j]), "fire": float(s["fire"][j]),
                   "ratio": float(s["ratio"][j]), "p": float(s["p"][j]), "q": float(s["q"][j]),
                   "n_tagged": sum(x == t for x in tags), "null": bar[t] if bar else None}
    lab["best_per_tag"] = best
    # evidence beside the tags, never a tag itself: on SmolLM2 the model's own evil direction separated
    # a real EM model's answers where the concept-tagged latents did not (experiments/sae_sweep_smollm2)
    lab["nearest_per_persona"] = nearest
    explained = []
    if explainer is not None:
        todo = list(dict.fromkeys(cfg.explain_latents)) or \
            (latents if cfg.ranking else [j for j in latents if effective(lab, j)["tag"] != "unlabelled"])
        log(f"explaining {len(todo)} latents with {explainer.name}")
        neg = zero_windows(model, sae, mined, layer, hook, todo, cfg.explain_examples,
                           batch_tokens=cfg.batch_tokens) if todo else {}
        for j, e in explain(explainer, mined, model.tokenizer, todo, neg, n=cfg.explain_examples).items():
            lab["latents"][str(j)]["explanation"] = e
            explained.append({"latent": j, "tag": effective(lab, j)["tag"], **e})
    write_json(path, lab)
    return LabelResult(path, best, nearest, len(latents), sum(t != "unlabelled" for t in tags), explained,
                       time.time() - t0, null_meta)


class SetResult(NamedTuple):
    path: Path
    labels: dict


def set_label(cfg: C.LabelSetConfig) -> SetResult:
    """A manual label for one latent, in the labels file of that very SAE."""
    if not cfg.sae:
        raise UserError("label set needs --sae (the SAE the labels belong to)")
    o = open_sae(cfg.sae)
    path = labels_path(cfg.sae, cfg.out)
    known = set(read_labels(path).get("concepts", []))
    return SetResult(path, set_manual(path, cfg.latent, cfg.tag, cfg.note, o.sha256, o.sae.cfg.d_sae, known))
