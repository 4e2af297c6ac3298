"""Early warning: chosen latents' activation shift across checkpoints (bad-data mixtures, training steps,
re-alignment steps) beside the judge's misaligned rate, and a per-row score of a training set.

The paper's claim to test: the toxic-persona latent rises at a few percent bad data while behaviour
still reads 0%, and falls after a few hundred benign rows. The shift is measured exactly like `rank`
(same tokens through every model, per prompt group, bootstrap over groups) so the two agree.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, log, read_json, replacing, write_json
from persona_sae import config as C
from persona_sae.activations import iter_activations
from persona_sae.latents import check_fits, check_latents, load_sae, open_sae, sae_checksum, sae_model, sae_where
from persona_sae.models import check_compatible, load_model
from persona_sae.statistics import auroc, bootstrap_weights, cached_stats, load_prompts, prepare, shift
from persona_sae.text import read_jsonl
from persona_sae.tokens import tokenize


def check_tracked(latents: list[int], d_sae: int) -> None:
    """The tracked latents: at least one, each in the SAE."""
    if not latents:
        raise UserError("give --latents to track")
    check_latents(latents, d_sae)


def checkpoint_shifts(cfg, log=print) -> dict:
    if not cfg.checkpoints:
        raise UserError("give --checkpoints (fine-tunes in the order to plot)")
    if cfg.names and len(cfg.names) != len(cfg.checkpoints):
        raise UserError(f"--names has {len(cfg.names)} entries for {len(cfg.checkpoints)} checkpoints")
    if cfg.evals and len(cfg.evals) != len(cfg.checkpoints):
        raise UserError(f"--evals has {len(cfg.evals)} entries for {len(cfg.checkpoints)} checkpoints")
    if cfg.misaligned and (len(cfg.misaligned) != len(cfg.checkpoints) or set(cfg.misaligned) - {0, 1}):
        raise UserError("--misaligned needs one 0/1 flag per checkpoint")
    if cfg.responses.startswith("sample:"):
        raise UserError("monitor reads answers from a file (--responses FILE); sample them with `persona-sae eval`")
    sae = load_sae(cfg.sae)
    check_tracked(cfg.latents, sae.cfg.d_sae)
    rates = []
    for e in cfg.evals:  # read before any model loads: a wrong path fails fast
        p = Path(e) / "results.json" if Path(e).is_dir() else Path(e)
        if not p.is_file():
            raise UserError(f"--evals {e}: no results.json from `persona-sae eval`")
        ev = read_json(p, "a results.json written by `persona-sae eval`")
        rates.append({**ev["overall"], "judge": ev.get("judge"), "judge_validation": ev.get("judge_validation")})
    where = sae_where(sae, cfg.layer, cfg.hook_name)
    layer, hook = where.layer, where.hook
    log(f"SAE reads {where}")
    records, responses = load_prompts(cfg, log)
    spec = sae_model(cfg.base, sae, log)
    base = load_model(spec, dtype=cfg.dtype, log=log)
    check_fits(sae, base, layer, hook)
    examples, names, groups, kw = prepare(cfg, records, base, layer, hook)
    sha = sae_checksum(sae) if cfg.cache else ""
    b = cached_stats(cfg.cache, base, sae, sha, examples, groups, len(names), name="base", log=log, **kw)
    shape = base
    w = bootstrap_weights(len(names), cfg.bootstrap, cfg.seed)
    lat = torch.tensor(cfg.latents)
    rows = []
    for i, spec in enumerate(cfg.checkpoints):
        m = load_model(spec, dtype=cfg.dtype, log=log)
        check_compatible(shape, m)
        s = cached_stats(cfg.cache, m, sae, sha, examples, groups, len(names), name=spec, log=log, **kw)
        sh = shift(b.mean[:, lat], s.mean[:, lat], (s.mean - b.mean)[:, lat], (s.freq.mean(0) - b.freq.mean(0))[lat], w)
        rows.append({"checkpoint": spec, "name": cfg.names[i] if cfg.names else Path(spec).name or spec,
                     "latents": {str(j): {"delta": float(sh.delta_mean[k]), "ci_low": float(sh.ci_low[k]),
                                          "ci_high": float(sh.ci_high[k]), "ft_mean": float(sh.ft_mean[k])}
                                 for k, j in enumerate(cfg.latents)},
                     **({"misaligned_rate": rates[i]} if rates else {})})
        if m is not base:
            del m
    res = {"base": spec, "sae": cfg.sae, "layer": layer, "latents": cfg.latents, "prompts": cfg.prompts,
           "on": cfg.on, "responses": responses, "rows": rows}
    if cfg.misaligned:
        pos = torch.tensor([bool(x) for x in cfg.misaligned])
        deltas = torch.tensor([[r["latents"][str(j)]["delta"] for j in cfg.latents] for r in rows])
        res["auroc_misaligned_vs_aligned"] = {str(j): float(a) for j, a in zip(cfg.latents, auroc(deltas, pos))}
    return res


def plot(path: Path, res: dict) -> None:
    """monitor.png: persona_sae.figures.monitor."""
    from persona_sae import figures

    figures.monitor(path, res)


@torch.no_grad()
def score_rows(model, sae, path: str, latents: list[int], layer: int, hook: str, max_len: int = 512) -> list[dict]:
    """Each training row's mean activation of the latents over its assistant tokens: rows that already
    carry the persona before any fine-tuning are the ones to read first."""

    records = read_jsonl(path)
    ex = tokenize(records, model.tokenizer, max_len=max_len)
    if not any(any(e.response) for e in ex):
        raise UserError(f"{path} has no assistant turns to score")
    lat = torch.tensor(latents)
    sums, cnt = torch.zeros(len(ex), len(latents)), torch.zeros(len(ex))
    for b in iter_activations(model, ex, [layer], hook=hook, select="response", seed=None):
        if b.n_tokens:
            f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()[:, lat]
            sums.index_add_(0, b.example, f)
            cnt.index_add_(0, b.example, torch.ones(len(b.example)))
    mean = sums / cnt.clamp(min=1)[:, None]
    out = []
    for i, e in enumerate(ex):
        r = records[e.record]
        text = next((m["content"] for m in reversed(r.messages or []) if m["role"] == "assistant"), r.text or "")
        out.append({"row": e.record + 1, "score": float(mean[i].sum()), **{f"latent_{j}": float(mean[i, k])
                                                                            for k, j in enumerate(latents)},
                    "assistant": text[:300]})
    return sorted(out, key=lambda r: -r["score"])


def write_rows(path: Path, rows: list[dict]) -> None:
    with replacing(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


class MonitorResult(NamedTuple):
    out: Path
    summary: dict  # monitor.json (per checkpoint: shifts of the tracked latents, misaligned rate), rows scored


def run(cfg: C.MonitorConfig, log=log) -> MonitorResult:
    if not cfg.checkpoints and not cfg.dataset:
        raise UserError("give --checkpoints to track, or --dataset to score its rows")
    if cfg.dataset and Path(cfg.dataset).suffix != ".jsonl":
        raise UserError(f"--dataset must be a chat .jsonl (rows with an assistant turn to score), got {cfg.dataset}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {}
    if cfg.checkpoints:
        res = checkpoint_shifts(cfg, log)
        write_json(out / "monitor.json", res)
        plot(out / "monitor.png", res)
    if cfg.dataset:
        if not cfg.latents:
            raise UserError("give --latents to track")
        o = open_sae(cfg.sae, cfg.base, cfg.layer, cfg.hook_name, dtype=cfg.dtype, log=log, latents=cfg.latents)
        rows = score_rows(o.model, o.sae, cfg.dataset, cfg.latents, o.layer, o.hook, cfg.max_len)
        write_rows(out / "rows.csv", rows)
        res["rows_scored"] = len(rows)
        res["top_rows"] = rows[:5]
    return MonitorResult(out, res)
