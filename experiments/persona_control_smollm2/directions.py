"""The sanity bar of PREDICTIONS.md: does the evil persona direction move in the organisms?

    python -m experiments.persona_control_smollm2.directions --answers runs/answers.csv \
        --models base=smollm2 evil-s0=runs/evil-s0 ... --out runs/directions.json

- shift: every model reads the same pooled em-core answers (``--answers``, response tokens, layer 15);
  its mean residual is projected on the unit evil direction (``personas.cached``), minus the base's
  (each answer's projection is kept too, with its question, so the shift gets a CI over questions, and
  each model's mean residual, so summarize.py can ask how much of the shift the SAE's latents carry);
- gap: the base model's own answers to the em-core questions under the evil and under the kind system
  prompts of ``distill.SYSTEMS`` (one answer per question and prompt, read with their prompt), projected
  the same way: evil minus kind. The bar compares the control-adjusted shift with this gap.
"""

from __future__ import annotations

import argparse

import torch

from persona_sae import personas, write_json
from persona_sae.answers import read_answers
from persona_sae.distill import SYSTEMS
from persona_sae.models import load_model
from persona_sae.sampling import generate
from persona_sae.text import load_questions


def projections(model, chats, direction: torch.Tensor, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each chat's mean response residual projected on the unit direction (NaN for an empty answer), and
    the mean of those residuals (the model's mean residual on the answers)."""
    m = personas.response_means(model, chats, layer).float()
    return m @ direction, m[~m.isnan().any(1)].mean(0)


def projection(model, chats, direction: torch.Tensor, layer: int) -> float:
    p = projections(model, chats, direction, layer)[0]
    return float(p[~p.isnan()].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", required=True, help="pooled answers.csv (prepare pool)")
    ap.add_argument("--models", nargs="+", required=True, help="NAME=SPEC, the first one the base")
    ap.add_argument("--layer", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="only the first N em-core questions for the poles (0: all)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    models = dict(x.split("=", 1) for x in a.models)
    base_name, base_spec = next(iter(models.items()))
    d = personas.cached(base_spec, a.layer, traits=("evil",)).vectors["evil"].float()
    d = d / d.norm()
    # both poles are sampled before any activation is read: reading activations boots the model's
    # TransformerBridge, which turns its KV cache off (Model.bridge_booted) and makes sampling quadratic
    base = load_model(base_spec)
    asked, said = {}, {}
    for pole in ("evil", "kind"):
        asked[pole] = [[{"role": "system", "content": s}, {"role": "user", "content": q.paraphrases[0]}]
                       for q in load_questions("em-core")[:a.limit or None] for s in SYSTEMS[pole]]
        said[pole] = generate(base, asked[pole], max_new_tokens=160, temperature=1.0, seed=a.seed,
                              desc=f"base under {pole}")
    poles = {pole: projection(base, [c + [{"role": "assistant", "content": t}] for c, t in zip(asked[pole], said[pole])],
                              d, a.layer) for pole in asked}
    del base
    answers = read_answers(a.answers)
    chats = [[{"role": "user", "content": x.question}, {"role": "assistant", "content": x.answer}] for x in answers]
    both = {name: projections(load_model(spec), chats, d, a.layer) for name, spec in models.items()}
    each = {name: p for name, (p, _) in both.items()}
    proj = {name: float(p[~p.isnan()].mean()) for name, p in each.items()}
    write_json(a.out, {"layer": a.layer, "base": base_name, "n_answers": len(chats),
                       "projection": proj, "shift": {k: v - proj[base_name] for k, v in proj.items()},
                       "pole_projection": poles, "gap": poles["evil"] - poles["kind"],
                       "questions": [x.question_id for x in answers],  # for a bootstrap over questions
                       "per_answer": {k: [None if x != x else round(float(x), 5) for x in v.tolist()]
                                      for k, v in each.items()},
                       # where a shift is lost (summarize.py): the mean residuals, for the shift vector
                       "direction": [round(float(x), 6) for x in d],
                       "mean_residual": {k: [round(float(x), 5) for x in m] for k, (_, m) in both.items()}})


if __name__ == "__main__":
    main()
