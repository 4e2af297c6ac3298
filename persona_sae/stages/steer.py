"""Steering and ablation along SAE decoder directions: the causal check on a ranked latent.

The edit is a forward hook on the HF decoder layer L (its output is TransformerLens'
``blocks.L.hook_resid_post``; the bridge has exact parity) rather than a bridge hook, because the
bridge breaks the KV cache that makes sampling affordable on a CPU. A random direction of the same
norm runs beside every latent as the control: a steering effect that a random direction also
produces is about pushing the residual stream, not about the latent.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from persona_sae import UserError, log, write_json
from persona_sae import config as C
from persona_sae import models as M
from persona_sae.models import decoder_layers
from persona_sae.answers import sample, write_csv
from persona_sae.judges import JudgeItem, misaligned_rate
from persona_sae.judging import held_out, open_judge
from persona_sae.latents import check_fits, check_latents, load_sae, sae_model, sae_where
from persona_sae.text import load_questions, question_records
from persona_sae.tokens import tokenize


@contextmanager
def edit_residual(hf, layer: int, vector: torch.Tensor | None = None, positions: str = "all",
                  ablate: torch.Tensor | None = None):
    """Inside the block, layer ``layer``'s output gets ``+ vector`` at the chosen positions (``all``; or
    ``prompt`` = the prefill pass, ``response`` = tokens generated after it), and/or loses its component
    along the unit vector ``ablate`` at every position."""
    if positions not in ("all", "prompt", "response"):
        raise UserError(f"--positions must be all, prompt or response, got {positions!r}")

    def hook(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        if vector is not None:
            prefill = h.shape[1] > 1
            if positions == "all" or (positions == "prompt") == prefill:
                h = h + vector.to(h.dtype)
        if ablate is not None:
            u = ablate.to(h.dtype)
            h = h - (h @ u)[..., None] * u
        return (h, *output[1:]) if isinstance(output, tuple) else h

    handle = decoder_layers(hf)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def unit(v: torch.Tensor) -> torch.Tensor:
    return v.float() / v.float().norm().clamp(min=1e-12)


def random_direction(d: int, seed: int) -> torch.Tensor:
    return unit(torch.randn(d, generator=torch.Generator().manual_seed(seed)))


@torch.no_grad()
def median_resid_norm(model, questions, layer: int) -> float:
    """Median layer-L residual norm over the questions' non-special tokens: the natural unit for a
    steering vector. Read with a hook on the HF layer, so the bridge (and its broken KV cache) stays off."""

    norms = []

    def grab(module, args, output):
        h = output[0] if isinstance(output, tuple) else output
        norms.append(h[0].float().norm(dim=-1))

    handle = decoder_layers(model.hf)[layer].register_forward_hook(grab)
    try:
        for e in tokenize(question_records(questions), model.tokenizer, max_len=256):
            model.hf(input_ids=torch.tensor([e.ids]))
            keep = ~torch.tensor(e.special)
            norms[-1] = norms[-1][keep]
    finally:
        handle.remove()
    return float(torch.cat(norms).median())


def parse_coefs(spec) -> list[float] | str:
    items = [p for x in (spec if isinstance(spec, (list, tuple)) else [spec]) for p in str(x).split(",")]
    if [x.strip() for x in items] == ["auto"]:
        return "auto"
    try:
        out = [float(x) for x in items if str(x).strip() != ""]
    except ValueError:
        raise UserError(f"--coef must be numbers (e.g. -2,-1,0,1,2) or auto, got {spec!r}") from None
    if not out or not all(math.isfinite(c) for c in out):
        raise UserError("--coef needs at least one finite number")
    return out


class Condition(NamedTuple):
    name: str  # "latent 123", "random (seed 0)", "ablate latent 123"
    direction: torch.Tensor
    coef: float
    ablate: bool = False


class SteerResult(NamedTuple):
    out: Path
    summary: dict  # results.json: per condition and coefficient, misaligned and incoherent rates with CIs


def run(cfg: C.SteerConfig, log=log) -> SteerResult:
    """The sweep: for each direction (latents and the random control) and coefficient, sample answers
    with the edit, judge them, and report rates with CIs; writes results.json, answers.csv, steer.png."""

    if not cfg.latent:
        raise UserError("give at least one --latents LATENT")
    coefs = parse_coefs(cfg.coef)
    sae = load_sae(cfg.sae)
    check_latents(cfg.latent, sae.cfg.d_sae)
    where = sae_where(sae, cfg.layer, cfg.hook_name)
    layer, hook = where.layer, where.hook
    if hook != "resid_post":
        raise UserError(f"steering edits the residual stream after a block; this SAE reads hook_{hook}")
    questions = load_questions(cfg.questions)
    if cfg.limit > 0:
        questions = questions[:cfg.limit]
    spec = sae_model(cfg.model, sae, log)
    judge = open_judge(cfg.judge, log=log, study_model=spec)
    if hasattr(judge, "ping"):
        judge.ping()
    log(f"SAE reads {where}")
    model = M.load_model(spec, log=log)
    check_fits(sae, model, layer, hook)
    if cfg.scale == "median-resid-norm":
        scale = median_resid_norm(model, questions, layer)
    else:
        try:
            scale = float(cfg.scale)
        except ValueError:
            raise UserError(f"--scale must be median-resid-norm or a number, got {cfg.scale!r}") from None
    dirs = {f"latent {j}": unit(sae.W_dec[j].detach()) for j in cfg.latent}
    if cfg.random_control:
        dirs[f"random (seed {cfg.seed})"] = random_direction(model.d_model, cfg.seed)

    def answers_for(direction, coef, ablate=False):
        vec = None if ablate else direction * coef * scale
        with edit_residual(model.hf, layer, vec, cfg.positions, ablate=direction if ablate else None):
            return sample(model, questions, cfg.samples, cfg.temperature, cfg.max_new_tokens, cfg.batch_size,
                          cfg.seed, progress=False)

    def judged(answers):
        by_id = {q.id: q for q in questions}
        items = [JudgeItem(a.question, a.answer, by_id[a.question_id].judge_prompts) for a in answers]
        return judge.judge(items, progress=False)

    def summarize(verdicts, answers):
        r = misaligned_rate(verdicts, cfg.aligned_below, cfg.coherent_above, cfg.bootstrap, cfg.seed,
                            groups=[a.question_id for a in answers])
        coh = [v["coherent"].score for v in verdicts if v["coherent"].score is not None]
        incoh = sum(c <= cfg.coherent_above for c in coh) / max(len(coh), 1)
        ali = [v["aligned"].score for v in verdicts if v["aligned"].score is not None]  # the continuous score
        return {**r._asdict(), "incoherent": incoh, "mean_coherent": sum(coh) / max(len(coh), 1),
                "mean_aligned": sum(ali) / len(ali) if ali else None}

    if coefs == "auto":  # the paper's rule: the strongest push that keeps incoherence <= 10%
        first = next(iter(dirs.values()))
        chosen = 0.0
        for c in (0.25, 0.5, 1.0, 2.0, 4.0):
            a = answers_for(first, c)
            s = summarize(judged(a), a)
            log(f"auto: coef {c:g} -> incoherent {100 * s['incoherent']:.0f}%")
            if s["incoherent"] > 0.10:
                break
            chosen = c
        if chosen == 0:
            raise UserError("--coef auto: even the smallest coefficient (0.25) made over 10% of answers incoherent")
        coefs = [-chosen, 0.0, chosen]
    conds = [Condition(n, u, c) for n, u in dirs.items() for c in coefs]
    if cfg.ablate:
        conds += [Condition(f"ablate {n}", u, 0.0, True) for n, u in dirs.items() if n.startswith("latent")]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, all_answers, all_verdicts, flags, extra = [], [], [], [], []
    base_answers = None

    for cond in tqdm(conds, desc="steering", unit="condition"):
        if cond.coef == 0 and not cond.ablate and base_answers is not None:
            answers, verdicts = base_answers  # coefficient 0 is the same unsteered model for every direction
        else:
            answers = answers_for(cond.direction, cond.coef, cond.ablate)
            verdicts = judged(answers)
            if cond.coef == 0 and not cond.ablate:
                base_answers = (answers, verdicts)
        s = summarize(verdicts, answers)
        rows.append({"condition": cond.name, "coef": cond.coef, **s,
                     "examples": [a.answer for a in answers[:3]]})
        log(f"{cond.name} coef {cond.coef:+g}: misaligned {100 * s['rate']:.1f}% "
            f"[{100 * s['lo']:.1f}, {100 * s['hi']:.1f}], incoherent {100 * s['incoherent']:.0f}%")
        for a, v in zip(answers, verdicts):
            all_answers.append(a)
            all_verdicts.append(v)
            extra.append({"condition": cond.name, "coef": cond.coef})
            sc, cc = v["aligned"].score, v["coherent"].score
            flags.append(None if sc is None or cc is None or cc <= cfg.coherent_above else sc < cfg.aligned_below)
    write_csv(out / "answers.csv", all_answers, all_verdicts, flags, extra)
    res = {"model": spec, "sae": cfg.sae, "layer": layer, "scale": scale, "scale_rule": cfg.scale,
           "positions": cfg.positions, "judge": judge.name, "judge_is_proxy": bool(judge.proxy),
           "judge_validation": held_out(judge),
           "coefs": coefs, "rows": rows, "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}
    write_json(out / "results.json", res)
    _plot(out / "steer.png", rows, judge.name)
    return SteerResult(out, res)


def _plot(path: Path, rows: list[dict], judge: str) -> None:
    """steer.png: persona_sae.figures.steer."""
    from persona_sae import figures

    figures.steer(path, rows, judge)
