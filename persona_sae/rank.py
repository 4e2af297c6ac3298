"""Latents -> statistics: which SAE latents shift between a base model and its fine-tunes.

The paper's method: encode both models' residual activations on the same token sequences with the
*base* model's SAE and rank latents by the rise in mean activation; average over several misaligned
fine-tunes; subtract matched aligned controls so that generic "was fine-tuned" latents drop out.
Statistics are paired by prompt and bootstrapped over prompt groups (a question's paraphrases form
one group, since they are not independent). Memory is O(prompts x d_sae) per model: per-prompt sums,
never stored token activations.
"""

from __future__ import annotations

import csv
import math
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import torch

from persona_sae import UserError, replacing, write_json
from persona_sae import distributed as D
from persona_sae.activations import iter_activations, plan_batches
from persona_sae.config import RankConfig


class ModelStats(NamedTuple):
    """Per prompt group: mean latent activation and firing frequency over the selected tokens."""

    mean: torch.Tensor  # [G, d_sae]
    freq: torch.Tensor  # [G, d_sae]
    n_tokens: int
    top_value: torch.Tensor  # [d_sae] largest activation seen
    top_token: torch.Tensor  # [d_sae] token id where it was seen


def sae_layer(sae, layer: int = -1) -> tuple[int, str]:
    """The layer and hook an SAE reads, from its metadata (or ``layer`` when given)."""
    name = getattr(sae.cfg.metadata, "hook_name", None) or ""
    m = re.fullmatch(r"blocks\.(\d+)\.hook_(\w+)", name)
    if layer >= 0:
        return layer, m.group(2) if m else "resid_post"
    if not m:
        raise UserError(f"the SAE names no blocks.L.hook_* hook ({name!r}); pass --layer")
    return int(m.group(1)), m.group(2)


def _batch_sums(sae, b, layer: int, g_of: torch.Tensor):
    """One batch's contribution: per prompt group it touches, summed activations, firing counts and
    token counts; and per latent its largest activation and that token."""
    f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()
    groups, inv = g_of[b.example].unique(return_inverse=True)
    sums = torch.zeros(len(groups), f.shape[1]).index_add_(0, inv, f)
    fires = torch.zeros(len(groups), f.shape[1]).index_add_(0, inv, (f > 0).float())
    v, i = f.max(0)
    return groups, sums, fires, torch.bincount(inv, minlength=len(groups)).float(), v, b.token[i], b.n_tokens


@torch.no_grad()
def model_stats(model, sae, examples, groups: list[int], n_groups: int, layer: int, hook: str, select: str = "all",
                batch_tokens: int = 2048, max_norm_ratio: float | None = 10.0, progress: bool = True) -> ModelStats:
    """One streaming pass: encode the layer's activations with the SAE, sum per prompt group.

    Sums are made per batch and added in batch order. Under torchrun rank r encodes batches r,
    r + world, ... and rank 0 adds every round's batch sums in that same order, so the statistics
    equal a single process's bit for bit; every rank gets them."""
    from tqdm.auto import tqdm

    d = sae.cfg.d_sae
    sums, fires = torch.zeros(n_groups, d), torch.zeros(n_groups, d)
    counts = torch.zeros(n_groups)
    top_v, top_t = torch.full((d,), -math.inf), torch.zeros(d, dtype=torch.long)
    g_of = torch.tensor(groups)
    n = 0
    batches = plan_batches(examples, batch_tokens, seed=None)
    D.check_shards(len(batches), f"batches of prompts (--batch-tokens {batch_tokens})")
    size = [sum(len(examples[i].ids) for i in b) for b in batches]
    bar = tqdm(total=sum(size), unit="tok", desc="activations", disable=not (progress and D.is_main()), smoothing=0.1)
    for _, batch in D.rounds(batches, size, bar):
        mine = None
        for b in iter_activations(model, examples, [layer], hook=hook, select=select,
                                  batches=batch, bar=bar, max_norm_ratio=max_norm_ratio):
            mine = _batch_sums(sae, b, layer, g_of) if b.n_tokens else None
        for part in D.gather_objects(mine) or []:  # in batch order; None: no tokens selected
            if part is None:
                continue
            g, s, fi, c, v, t, nt = part
            sums[g] += s
            fires[g] += fi
            counts[g] += c
            better = v > top_v
            top_v[better], top_t[better] = v[better], t[better]
            n += nt
    bar.close()

    def result() -> ModelStats:
        if n == 0:
            raise UserError("no tokens were selected from the prompts (empty set, or --on response without answers?)")
        c = counts.clamp(min=1)[:, None]
        return ModelStats(sums / c, fires / c, n, top_v, top_t)

    return D.from_main(result)


class Shift(NamedTuple):
    base_mean: torch.Tensor
    ft_mean: torch.Tensor
    delta_mean: torch.Tensor
    ci_low: torch.Tensor
    ci_high: torch.Tensor
    effect_size: torch.Tensor
    delta_freq: torch.Tensor
    rank: torch.Tensor  # 1 = largest increase


def shift(base: torch.Tensor, ft: torch.Tensor, delta: torch.Tensor, dfreq: torch.Tensor,
          weights: torch.Tensor) -> Shift:
    """Paired statistics of ``delta`` ([G, d]) with bootstrap ``weights`` ([B, G], rows sum to 1)."""
    dm = delta.mean(0)
    boot = weights @ delta
    lo, hi = torch.quantile(boot, torch.tensor([0.025, 0.975]), dim=0) if len(weights) else (dm, dm)
    pooled = ((base.var(0, unbiased=True) + ft.var(0, unbiased=True)) / 2).sqrt() if len(base) > 1 else torch.zeros_like(dm)
    eff = torch.where(pooled > 0, dm / pooled.clamp(min=1e-12), torch.zeros_like(dm))
    order = torch.argsort(dm, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, len(dm) + 1)
    return Shift(base.mean(0), ft.mean(0), dm, lo, hi, eff, dfreq, rank)


def bootstrap_weights(n_groups: int, n_boot: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(n_groups, (n_boot, n_groups), generator=g)
    w = torch.zeros(n_boot, n_groups)
    w.scatter_add_(1, idx, torch.ones(n_boot, n_groups))
    return w / n_groups


def _responses(cfg: RankConfig, log) -> tuple[list, dict]:
    """Question + answer chats from --responses; ``sample:K`` samples from every model being compared
    and pools the answers, so base and fine-tunes still read identical token sequences."""
    from persona_sae.data import Record, load_questions, read_jsonl

    src = cfg.responses
    if src.startswith("sample:"):
        from persona_sae.evals import sample
        from persona_sae.models import load_model

        try:
            k = int(src[7:])
        except ValueError:
            k = 0
        if k <= 0:
            raise UserError(f"--responses sample:K needs a positive K, got '{src}'")
        questions = load_questions(cfg.prompts)
        recs, by_model = [], {}
        for spec in [cfg.base, *cfg.finetuned, *cfg.control]:
            log(f"sampling {k} answers per question from {spec}")
            answers = sample(load_model(spec, dtype=cfg.dtype, log=log), questions, k, cfg.temperature,
                             seed=cfg.seed)
            recs += [Record(messages=[{"role": "user", "content": a.question}, {"role": "assistant", "content": a.answer}],
                            group=a.question_id) for a in answers]
            by_model[spec] = len(answers)
        return recs, {"source": "sampled", "per_question": k, "temperature": cfg.temperature, "by_model": by_model}
    if src.endswith(".csv"):
        from persona_sae.evals import read_answers

        recs = [Record(messages=[{"role": "user", "content": a.question}, {"role": "assistant", "content": a.answer}],
                       group=a.question_id) for a in read_answers(src)]
    else:
        recs = read_jsonl(src)
    return recs, {"source": "file", "path": src, "n": len(recs)}


def _load_prompts(cfg: RankConfig, log=print):
    from persona_sae.data import load_records

    info = None
    if cfg.responses:
        recs, info = _responses(cfg, log)
    else:
        recs = load_records(cfg.prompts)
    if not recs:
        raise UserError(f"{cfg.prompts} holds no prompts")
    if cfg.on == "response" and not any(r.messages and any(m["role"] == "assistant" for m in r.messages) for r in recs):
        raise UserError(f"--on response needs assistant answers, but {cfg.prompts} has none")
    return recs, info


def prepare(cfg, records, base, layer: int, hook: str):
    """Tokens, prompt-group names, each sequence's group, and the model_stats options: shared by rank and
    monitor so both measure a shift the same way."""
    from persona_sae.data import tokenize

    examples = tokenize(records, base.tokenizer, max_len=cfg.max_len)
    names = sorted({e.group or f"#{e.record}" for e in examples})
    gid = {n: i for i, n in enumerate(names)}
    groups = [gid[e.group or f"#{e.record}"] for e in examples]
    kw = dict(layer=layer, hook=hook, select=cfg.on, batch_tokens=cfg.batch_tokens,
              max_norm_ratio=cfg.max_norm_ratio or None)
    return examples, names, groups, kw


def rank(cfg: RankConfig, log=print) -> dict:
    """Run every model over the prompts, compute the shifts, write the outputs; return the summary."""
    from persona_sae.models import check_compatible, resolve
    from persona_sae.saes import check_fits, load_sae, sae_checksum

    if cfg.top <= 0:
        raise UserError(f"--top must be positive, got {cfg.top}")
    if not cfg.finetuned:
        raise UserError("give at least one --finetuned model")
    if cfg.on not in ("all", "prompt", "response"):
        raise UserError(f"--on must be all, prompt or response, got {cfg.on!r}")
    D.init()  # under torchrun: each rank encodes every world-th batch; rank 0 sums, ranks and writes
    log = D.main_log(log)
    records, responses = D.from_main(lambda: _load_prompts(cfg, log))  # sampled answers: once, on rank 0
    sae = load_sae(cfg.sae)
    layer, hook = sae_layer(sae, cfg.layer)
    for spec in cfg.finetuned + cfg.control:
        if resolve(spec) == resolve(cfg.base):
            log(f"warning: fine-tune {spec} is the base model itself; its shifts will be zero")

    base = D.load_model(cfg.base, cfg.dtype, log)
    check_fits(sae, base, layer, hook)
    examples, names, groups, kw = prepare(cfg, records, base, layer, hook)
    t0 = time.time()
    stats = {"base": model_stats(base, sae, examples, groups, len(names), **kw)}
    checksums = {"base": _fingerprint(base) if D.is_main() else None}
    shape = SimpleNamespace(spec=base.spec, tokenizer=base.tokenizer, n_layers=base.n_layers, d_model=base.d_model,
                            d_vocab=base.d_vocab)
    del base  # one model in memory at a time
    for spec in cfg.finetuned + cfg.control:
        m = D.load_model(spec, cfg.dtype, log)
        check_compatible(shape, m)
        stats[spec] = model_stats(m, sae, examples, groups, len(names), **kw)
        checksums[spec] = _fingerprint(m) if D.is_main() else None
        del m
    seconds = time.time() - t0
    if not D.is_main():  # rank 0 has the same statistics and writes the outputs
        return {}

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
    summary = _write(cfg, sae, sae_checksum(sae), layer, hook, results, primary, n_top, stats, checksums,
                     names, seconds, responses)
    summary["labels"] = _labels(cfg.sae, summary["sae_sha256"], summary["top_increases"] + summary["top_decreases"])
    return summary


def _labels(sae_spec: str, sha: str, latents: list[int]) -> dict[int, dict]:
    """Tags of the shown latents when a labels.json made for this very SAE sits beside it."""
    from persona_sae.label import effective, labels_beside

    lab = labels_beside(sae_spec, sha)
    return {j: effective(lab, j) for j in latents} if lab else {}


def _fingerprint(model) -> dict:
    """The spec and a sha256 over the loaded weights (after any adapter merge), so a ranking names
    exactly which models it compared."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.hf.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return {"spec": model.spec, "source": model.source.describe(), "weights_sha256": h.hexdigest()}


COLUMNS = ("latent", "finetune", "base_mean", "ft_mean", "delta_mean", "ci_low", "ci_high", "effect_size",
           "delta_freq", "rank", "n_top_finetunes", "top_token")


def _write(cfg, sae, sae_sum, layer, hook, results, primary, n_top, stats, checksums, names, seconds,
           responses=None) -> dict:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with replacing(out / "ranking.csv") as tmp, open(tmp, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(COLUMNS)
        for name, s in results.items():
            top_tok = stats.get(name, stats[cfg.finetuned[0]]).top_token  # aggregates: the first fine-tune's
            for j in torch.argsort(s.rank).tolist():
                wr.writerow([j, name, f"{s.base_mean[j]:.6g}", f"{s.ft_mean[j]:.6g}", f"{s.delta_mean[j]:.6g}",
                             f"{s.ci_low[j]:.6g}", f"{s.ci_high[j]:.6g}", f"{s.effect_size[j]:.4g}",
                             f"{s.delta_freq[j]:.4g}", int(s.rank[j]), int(n_top[j]), int(top_tok[j])])
    p = results[primary]
    top_up = torch.argsort(p.rank)[:cfg.top].tolist()
    top_down = torch.argsort(p.rank, descending=True)[:cfg.top].tolist()
    summary = {
        "primary": primary, "sae": cfg.sae, "sae_sha256": sae_sum, "layer": layer, "hook": hook,
        "prompts": cfg.prompts, "on": cfg.on, "responses": responses,
        "n_prompt_groups": len(names), "bootstrap": cfg.bootstrap,
        "models": checksums, "tokens": {k: v.n_tokens for k, v in stats.items()}, "seconds": seconds,
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "top_increases": top_up, "top_decreases": top_down,
        "latents": {name: {f: [round(float(x), 6) for x in getattr(s, f)] for f in Shift._fields}
                    for name, s in results.items()},
    }
    write_json(out / "ranking.json", summary)
    _plots(out, p, results, primary, stats, cfg, top_up)
    return summary


def _plots(out: Path, p: Shift, results, primary, stats, cfg, top_up) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(cfg.top, 30)
    idx = top_up[:n]
    fig, ax = plt.subplots(figsize=(max(6, n * 0.35), 4))
    dm = p.delta_mean[idx]
    err = torch.stack([dm - p.ci_low[idx], p.ci_high[idx] - dm]).clamp(min=0)
    ax.bar(range(n), dm, yerr=err.numpy(), capsize=2, color="#c0392b")
    ax.set_xticks(range(n), [str(j) for j in idx], rotation=90, fontsize=7)
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel("latent"), ax.set_ylabel(f"Δ mean activation ({primary})")
    ax.set_title(f"top {n} latent shifts, 95% bootstrap CI over prompt groups")
    fig.tight_layout(), fig.savefig(out / "shifts.png", dpi=100), plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(p.base_mean, p.ft_mean, s=3, alpha=0.4, color="#7f8c8d")
    ax.scatter(p.base_mean[idx], p.ft_mean[idx], s=10, color="#c0392b", label=f"top {n}")
    hi = float(max(p.base_mean.max(), p.ft_mean.max())) or 1.0
    ax.plot([0, hi], [0, hi], color="black", lw=0.5)
    xlabel = "control fine-tune" if primary == "control-adjusted" else "base"
    ax.set_xlabel(f"mean activation, {xlabel}"), ax.set_ylabel("mean activation, fine-tune"), ax.legend()
    fig.tight_layout(), fig.savefig(out / "scatter.png", dpi=100), plt.close(fig)
