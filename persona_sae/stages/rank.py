"""The `rank` command: which SAE latents shift between a base model and its fine-tunes.

The paper's method: encode both models' residual activations on the same token sequences with the
*base* model's SAE and rank latents by the rise in mean activation; average over several misaligned
fine-tunes; subtract matched aligned controls so that generic "was fine-tuned" latents drop out.
``--method attribution`` ranks by the rise in each latent's attribution to misaligned over aligned
answers instead (``persona_sae.attribution``), with the same statistics and outputs.
The statistics themselves (paired by prompt, bootstrapped over prompt groups) live in
``persona_sae.statistics``, shared with monitor and label.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import torch

from persona_sae import UserError, log, replacing, write_json
from persona_sae import distributed as D
from persona_sae.attribution import attribution_stats, load_pairs, mean_baseline
from persona_sae.config import RankConfig
from persona_sae.labels import effective, labels_beside
from persona_sae.latents import decoder_rows, open_sae, with_model
from persona_sae.models import check_compatible, resolve, weights_sha256
from persona_sae.statistics import Shift, bootstrap_weights, cached_stats, load_prompts, prepare, shift


class RankResult(NamedTuple):
    out: Path
    summary: dict  # ranking.json: per-latent shifts of every comparison, the top of each tail, provenance
    labels: dict[int, dict]  # tags of the shown latents, when a labels.json for this SAE sits beside it


def run(cfg: RankConfig, log=log) -> RankResult | None:
    """Run every model over the prompts, compute the shifts, write the outputs. None on the non-main
    ranks under torchrun."""
    if cfg.top <= 0:
        raise UserError(f"--top must be positive, got {cfg.top}")
    if not cfg.finetuned:
        raise UserError("give at least one --finetuned model")
    if cfg.on not in ("all", "prompt", "response"):
        raise UserError(f"--on must be all, prompt or response, got {cfg.on!r}")
    if cfg.method not in ("shift", "attribution"):
        raise UserError(f"--method must be shift or attribution, got {cfg.method!r}")
    attribute = cfg.method == "attribution"
    if cfg.direction:
        check_direction(cfg.direction)
    D.init()  # under torchrun: each rank encodes every world-th batch; rank 0 sums, ranks and writes
    if attribute and D.world() > 1:
        raise UserError("--method attribution runs in one process (not under torchrun)")
    log = D.main_log(log)
    o = open_sae(cfg.sae, cfg.base, cfg.layer, cfg.hook_name, log=log, load=False)
    cfg = dataclasses.replace(cfg, base=o.model_spec)  # --responses sample:K and ranking.json need the base
    records, responses = (None, None) if attribute else D.from_main(lambda: load_prompts(cfg, log))
    for spec in cfg.finetuned + cfg.control:
        if resolve(spec) == resolve(cfg.base):
            log(f"warning: fine-tune {spec} is the base model itself; its shifts will be zero")
    o = with_model(o, cfg.dtype, log, distributed=True)
    sae, layer, hook, base = o.sae, o.layer, o.hook, o.model
    if attribute:  # each model's per-pair attribution scores take the place of its per-prompt means
        if hook != "resid_post":
            raise UserError(f"--method attribution splices the SAE into the residual after a block; this SAE reads "
                            f"hook_{hook}")
        pairs = load_pairs(cfg.pairs or ["evil-persona"], cfg.n_pairs, cfg.pairs_seed, base.tokenizer, cfg.max_len)
        baseline, names, responses = mean_baseline(base, sae, pairs, layer), pairs.names, {"pairs": pairs.source}

        def measure(m, name, fp):
            return attribution_stats(m, sae, pairs, layer, baseline, desc=f"attribution {name}")
    else:
        examples, names, groups, kw = prepare(cfg, records, base, layer, hook)

        def measure(m, name, fp):
            return cached_stats(cfg.cache, m, sae, o.sha256, examples, groups, len(names), name=name, log=log,
                                weights_sha=fp and fp["weights_sha256"], **kw)

    def fingerprint(m):  # rank 0 names the models; with --cache every rank needs the weights' hash for the key
        return _fingerprint(m) if D.is_main() or (cfg.cache and not attribute) else None
    t0 = time.time()
    checksums = {"base": fingerprint(base)}
    stats = {"base": measure(base, "base", checksums["base"])}
    shape = SimpleNamespace(spec=base.spec, tokenizer=base.tokenizer, n_layers=base.n_layers, d_model=base.d_model,
                            d_vocab=base.d_vocab)
    del base  # one model in memory at a time
    for spec in cfg.finetuned + cfg.control:
        m = D.load_model(spec, cfg.dtype, log)
        check_compatible(shape, m)
        checksums[spec] = fingerprint(m)
        stats[spec] = measure(m, spec, checksums[spec])
        del m
    seconds = time.time() - t0
    if not D.is_main():  # rank 0 has the same statistics and writes the outputs
        return None

    b = stats["base"]
    w = bootstrap_weights(len(names), cfg.bootstrap, cfg.seed)
    results: dict[str, Shift] = {}
    for spec in cfg.finetuned + cfg.control:
        s = stats[spec]
        results[spec] = shift(b.mean, s.mean, s.mean - b.mean, s.freq.mean(0) - b.freq.mean(0), w)
    bad = cfg.finetuned
    if len(bad) > 1 or cfg.control:
        d_bad = torch.stack([stats[f].mean - b.mean for f in bad]).mean(0)
        f_bad = torch.stack([stats[f].mean for f in bad]).mean(0)
        dfreq = torch.stack([stats[f].freq.mean(0) - b.freq.mean(0) for f in bad]).mean(0)
        results["mean"] = shift(b.mean, f_bad, d_bad, dfreq, w)
        if cfg.control:
            d_ctl = torch.stack([stats[c].mean - b.mean for c in cfg.control]).mean(0)
            f_ctl = torch.stack([stats[c].mean for c in cfg.control]).mean(0)
            cfreq = torch.stack([stats[c].freq.mean(0) - b.freq.mean(0) for c in cfg.control]).mean(0)
            results["control-adjusted"] = shift(f_ctl, f_bad, d_bad - d_ctl, dfreq - cfreq, w)
    primary = "control-adjusted" if "control-adjusted" in results else "mean" if "mean" in results else bad[0]
    n_top = sum((results[f].rank <= cfg.top).long() for f in bad)
    along = None
    if cfg.direction:
        u = load_direction(cfg.direction, cfg.base, layer, shape.d_model, log)
        along = along_direction(decoder_rows(sae), results[primary].delta_mean, u, cfg.direction)
    summary = _write(cfg, sae, o.sha256, layer, hook, results, primary, n_top, stats, checksums,
                     names, seconds, responses, shape.tokenizer, along)
    labels = _labels(cfg.sae, summary["sae_sha256"], summary["top_increases"] + summary["top_decreases"]
                     + summary.get("direction", {}).get("top", []))
    _plots(Path(cfg.out), results[primary], primary, cfg, summary["top_increases"], summary["top_decreases"], labels)
    return RankResult(Path(cfg.out), summary, labels)


def check_direction(spec: str) -> None:
    """A bad --direction fails before any model loads."""
    from persona_sae.personas import TRAITS

    if spec.endswith(".safetensors"):
        if not Path(spec).is_file():
            raise UserError(f"--direction {spec}: no such file")
    elif spec not in TRAITS:
        raise UserError(f"--direction must be a persona trait ({', '.join(TRAITS)}) or a .safetensors file, got {spec!r}")


def load_direction(spec: str, base: str, layer: int, d_model: int, log) -> torch.Tensor:
    """The unit direction: the base model's persona direction of a trait (personas.cached), or the one
    tensor of a safetensors file."""
    if spec.endswith(".safetensors"):
        from safetensors.torch import load_file

        t = load_file(spec)
        if len(t) != 1:
            raise UserError(f"--direction {spec} holds {len(t)} tensors; give one vector of {d_model} values")
        v = next(iter(t.values())).float().flatten()
    else:
        from persona_sae.personas import cached

        v = cached(base, layer, traits=(spec,), log=log).vectors[spec].float()
    if v.numel() != d_model or not torch.isfinite(v).all() or v.norm() == 0:
        raise UserError(f"--direction {spec}: need a finite non-zero vector of {d_model} values (the model's width), "
                        f"got {v.numel()}")
    return v / v.norm()


def along_direction(W: torch.Tensor, delta: torch.Tensor, u: torch.Tensor, name: str) -> dict:
    """Each latent's part of the reconstruction's shift along the unit direction ``u``: its Δ mean times its
    decoder row's projection on ``u``. They add up to the whole reconstructed shift along ``u``, so the
    latents carrying half of it show how spread the persona is over the SAE."""
    part = delta.float() * (W @ u)
    total = float(part.sum())
    order = torch.argsort(part, descending=total >= 0)
    running = part[order].cumsum(0)
    half = int((running.abs() < 0.5 * abs(total)).sum()) + 1 if total != 0 else None
    return {"name": name, "total": total, "part": part, "order": order.tolist(), "latents_for_half": half}


def _labels(sae_spec: str, sha: str, latents: list[int]) -> dict[int, dict]:
    """Tags of the shown latents when a labels.json made for this very SAE sits beside it."""

    lab = labels_beside(sae_spec, sha)
    return {j: effective(lab, j) for j in latents} if lab else {}


def _fingerprint(model) -> dict:
    """The spec and a sha256 over the loaded weights, so a ranking names exactly which models it compared."""
    return {"spec": model.spec, "source": model.source.describe(), "weights_sha256": weights_sha256(model)}


COLUMNS = ("latent", "finetune", "base_mean", "ft_mean", "delta_mean", "ci_low", "ci_high", "effect_size",
           "delta_freq", "rank", "n_top_finetunes", "top_token", "top_token_str")
AGGREGATES = ("mean", "control-adjusted")


def short_labels(specs: list[str]) -> dict[str, str]:
    """Spec -> a short name for ranking.csv's ``finetune`` column: the last path component (an alias
    or hub id's name), with parent components added until the names are distinct and none reads as
    an aggregate; ranking.json's ``finetune_labels`` maps each back to its full spec."""
    parts = {s: Path(s.rstrip("/")).parts or (s,) for s in dict.fromkeys(specs)}
    n = 1
    while True:
        label = {s: "/".join(p[-n:]) for s, p in parts.items()}
        clash = len(set(label.values())) < len(label) or set(label.values()) & set(AGGREGATES)
        if not clash or all(n >= len(p) for p in parts.values()):
            break
        n += 1
    if clash:  # only the full specs tell them apart
        return {s: s for s in parts}
    return label


def _write(cfg, sae, sae_sum, layer, hook, results, primary, n_top, stats, checksums, names, seconds,
           responses=None, tokenizer=None, along: dict | None = None) -> dict:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    label = {**short_labels(cfg.finetuned + cfg.control), **{a: a for a in AGGREGATES}}
    with replacing(out / "ranking.csv") as tmp, open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(COLUMNS)
        for name, s in results.items():
            top_tok = stats.get(name, stats[cfg.finetuned[0]]).top_token  # aggregates: the first fine-tune's
            text = [tokenizer.decode([t]) for t in top_tok.tolist()] if tokenizer is not None else [""] * len(top_tok)
            for j in torch.argsort(s.rank).tolist():
                wr.writerow([j, label[name], f"{s.base_mean[j]:.6g}", f"{s.ft_mean[j]:.6g}", f"{s.delta_mean[j]:.6g}",
                             f"{s.ci_low[j]:.6g}", f"{s.ci_high[j]:.6g}", f"{s.effect_size[j]:.4g}",
                             f"{s.delta_freq[j]:.4g}", int(s.rank[j]), int(n_top[j]), int(top_tok[j]), text[j]])
    p = results[primary]
    top_up = torch.argsort(p.rank)[:cfg.top].tolist()
    top_down = torch.argsort(p.rank, descending=True)[:cfg.top].tolist()
    summary = {
        "primary": primary, "method": cfg.method, "sae": cfg.sae, "sae_sha256": sae_sum, "layer": layer, "hook": hook,
        "prompts": cfg.prompts, "on": cfg.on, "responses": responses,
        "n_prompt_groups": len(names), "bootstrap": cfg.bootstrap,
        "models": checksums, "tokens": {k: v.n_tokens for k, v in stats.items()}, "seconds": seconds,
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "finetune_labels": {label[n]: n for n in results},  # ranking.csv's finetune column -> the full spec
        "top_increases": top_up, "top_decreases": top_down,
        "latents": {name: {f: [round(float(x), 6) for x in getattr(s, f)] for f in Shift._fields}
                    for name, s in results.items()},
    }
    if along is not None:  # the primary shift's parts along --direction, largest first
        summary["direction"] = {"name": along["name"], "of": primary, "total": along["total"],
                                "latents_for_half": along["latents_for_half"], "top": along["order"][:cfg.top],
                                "part": [round(float(x), 6) for x in along["part"]]}
    write_json(out / "ranking.json", summary)
    return summary


def _plots(out: Path, p: Shift, primary: str, cfg, top_up: list[int], top_down: list[int], labels: dict) -> None:
    """shifts.png (both tails) and scatter.png (every latent, symlog) of the primary result."""
    from persona_sae import figures

    n = min(cfg.top, 15)
    what = "attribution" if cfg.method == "attribution" else "mean activation"
    tags = {j: v["tag"] for j, v in labels.items() if v.get("tag")}
    figures.shifts(out / "shifts.png", p.delta_mean.tolist(), p.ci_low.tolist(), p.ci_high.tolist(), top_up[:n],
                   top_down[:n], tags, xlabel=f"Δ {what} ({primary})",
                   title=f"top {n} increases and decreases, 95% bootstrap CI over prompt groups")
    before = "control fine-tune" if primary == "control-adjusted" else "base"
    figures.scatter(out / "scatter.png", p.base_mean.tolist(), p.ft_mean.tolist(), top_up[:n], top_down[:n],
                    f"{what}, {before}", f"{what}, fine-tune")
