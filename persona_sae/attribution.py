"""Latents -> attribution: how much each latent pushes a model towards misaligned over aligned answers.

`rank --method attribution`. A raw activation shift says a latent moved; it does not say the move
matters for what the model says. Attribution weighs each latent's activation by its gradient: with the
SAE spliced into layer L (the reconstruction plus the detached error term, so the forward is unchanged
and gradients reach the latents), for a prompt answered once misaligned and once aligned,

    score_j = sum_t (f_j(t) - mean_j) * d/df_j(t) [log p(misaligned answer) - log p(aligned answer)]

summed over the non-special tokens of the misaligned sequence minus the same sum over the aligned one.
``mean_j`` is the base model's mean activation of latent j over those tokens (the mean baseline), so
score_j is the first-order estimate of how much the model's preference for the misaligned answer
would fall if latent j were held at its mean everywhere. Each model is scored with its own gradients
and activations; rank then compares the per-pair scores between models exactly as it compares mean
activations (paired by prompt, bootstrapped), so the output has the same format.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from persona_sae import UserError
from persona_sae.models import decoder_layers
from persona_sae.statistics import ModelStats
from persona_sae.text import Record, load_records
from persona_sae.tokens import Example, tokenize


class Pairs(NamedTuple):
    """Prompt i answered misaligned (``bad[i]``) and aligned (``good[i]``)."""

    bad: list[Example]
    good: list[Example]
    names: list[str]
    source: dict


def load_pairs(spec: list[str], n: int, seed: int, tokenizer, max_len: int) -> Pairs:
    """``[KIND]`` (a generator's misaligned set against its matched aligned twin, ``n`` rows of ``seed``) or
    ``[BAD, GOOD]`` (two chat files that share their prompts row by row; the first ``n``)."""
    from persona_sae import generators as G

    if len(spec) == 1 and spec[0] in G.KINDS:
        kind = G.KINDS[spec[0]]
        bad_name, good_name = (kind.pair, kind.name) if kind.aligned else (kind.name, kind.pair)
        if good_name is None:
            raise UserError(f"--pairs {spec[0]}: that kind has no matched aligned twin")
        rows = [[Record(messages=r["messages"]) for r in G.make(k, n, seed)] for k in (bad_name, good_name)]
        source = {"kind": bad_name, "pair": good_name, "n": n, "seed": seed}
    elif len(spec) == 2:
        for f in spec:
            if not Path(f).is_file():
                raise UserError(f"--pairs {f}: no such file")
        rows = [load_records(f)[:n] for f in spec]
        source = {"bad": spec[0], "good": spec[1], "n": min(n, len(rows[0]))}
    else:
        raise UserError("--pairs takes a generator KIND with an aligned twin, or two chat files BAD GOOD")
    bad, good = rows
    if len(bad) != len(good) or not bad:
        raise UserError(f"--pairs: the two sides hold {len(bad)} and {len(good)} rows; they must pair row by row")
    for b, g in zip(bad, good):
        if b.messages is None or g.messages is None or b.messages[:-1] != g.messages[:-1] \
                or b.messages[-1]["role"] != "assistant":
            raise UserError("--pairs: every row must be a chat ending in an assistant turn, the two sides sharing "
                            "the turns before it")
    eb, eg = (tokenize(r, tokenizer, max_len=max_len) for r in (bad, good))
    if len(eb) != len(bad) or len(eg) != len(good):
        raise UserError(f"--pairs: a chat is longer than --context-size {max_len} tokens")
    return Pairs(eb, eg, [f"pair-{i}" for i in range(len(bad))], source)


def _one(model, sae, ex: Example, layer: int, baseline: torch.Tensor):
    """(score [d_sae] summed over the sequence's non-special tokens, firing count [d_sae], token count)
    for one sequence."""
    ids = torch.tensor([ex.ids], device=model.device)
    keep = ~torch.tensor(ex.special)
    target = torch.tensor(ex.response[1:])  # token t is predicted at position t - 1
    if not target.any():
        raise UserError("--pairs: an answer has no assistant tokens after tokenization")
    grab = {}

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        f = sae.encode(h.detach().to(sae.W_enc.dtype)).detach().requires_grad_(True)
        rec = sae.decode(f)
        grab["f"] = f
        h = (rec + (h.detach().to(rec.dtype) - rec.detach())).to(h.dtype)
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = decoder_layers(model.hf)[layer].register_forward_hook(hook)
    try:
        logits = model.hf(ids).logits[0, :-1].float()
    finally:
        handle.remove()
    logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None]).squeeze(1)
    logp[target].sum().backward()
    f, g = grab["f"][0].detach().float(), grab["f"].grad[0].float()
    f, g = f[keep], g[keep]
    return ((f - baseline) * g).sum(0), (f > 0).float().sum(0), int(keep.sum())


def attribution_stats(model, sae, pairs: Pairs, layer: int, baseline: torch.Tensor, progress: bool = True,
                      desc: str = "attribution") -> ModelStats:
    """Per pair: score of the misaligned answer minus score of the aligned one, as ``ModelStats.mean``
    (so rank's paired shift statistics apply unchanged); ``freq``: firing frequency over both sequences."""
    d = sae.cfg.d_sae
    mean, freq = torch.zeros(len(pairs.bad), d), torch.zeros(len(pairs.bad), d)
    top_v, top_t = torch.full((d,), -float("inf")), torch.zeros(d, dtype=torch.long)
    n = 0
    for p in model.hf.parameters():
        p.requires_grad_(False)
    for i, (b, g) in enumerate(tqdm(list(zip(pairs.bad, pairs.good)), desc=desc, disable=not progress)):
        sb, fb, nb = _one(model, sae, b, layer, baseline)
        sg, fg, ng = _one(model, sae, g, layer, baseline)
        mean[i] = sb - sg
        freq[i] = (fb + fg) / (nb + ng)
        n += nb + ng
        better = mean[i] > top_v
        top_v[better] = mean[i][better]
        top_t[better] = b.ids[-1]  # no single token carries a sequence sum; the pair's last answer token
    return ModelStats(mean, freq, n, top_v, top_t)


@torch.no_grad()
def mean_baseline(model, sae, pairs: Pairs, layer: int) -> torch.Tensor:
    """The base model's mean latent activation over the non-special tokens of every sequence."""
    from persona_sae.activations import iter_activations

    total, count = torch.zeros(sae.cfg.d_sae), 0
    examples = pairs.bad + pairs.good
    for b in iter_activations(model, examples, [layer], hook="resid_post", select="all", seed=None,
                              progress=False, max_norm_ratio=None):
        if b.n_tokens:
            total += sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float().sum(0)
            count += b.n_tokens
    return total / max(count, 1)
