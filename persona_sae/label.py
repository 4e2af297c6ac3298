"""Tag SAE latents with persona concepts, offline, with the evidence kept.

Every latent is scored on reference texts per concept (``persona_sae/concepts/`` plus the user's
own): AUROC of its per-text peak activation for the concept's texts against everything else
(so a generic "fiction" latent does not win "conflict in fiction"), against the neutral controls,
the ratio of mean activations, and the fraction of concept texts it fires on. The best concept whose
evidence passes the thresholds becomes the tag; the runner-up and all scores are kept. Decoder
cosines with persona directions and logit-lens tokens are recorded beside them. Manual labels live in
the same file and win over automatic ones. With ``--explainer`` an LLM also explains chosen latents from
their mined examples and is scored on detecting them (``explain.py``); that is kept as evidence under
"explanation" and never changes a tag.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, replacing, write_json
from persona_sae.data import Record, read_jsonl, tokenize

CONTROL_PREFIX = "control-"
MIN_TEXTS = 10


def builtin_concepts() -> dict[str, list[Record]]:
    root = resources.files("persona_sae.concepts")
    return {Path(f.name).stem: read_jsonl(str(f)) for f in sorted(root.iterdir(), key=lambda f: f.name)
            if f.name.endswith(".jsonl")}


def load_concepts(extra: list[str] = (), builtin: bool = True) -> dict[str, list[Record]]:
    """Built-in sets plus user JSONL files (each named after its tag; ``control-*`` files are controls)."""
    sets = builtin_concepts() if builtin else {}
    for f in extra:
        recs = read_jsonl(f)
        if len(recs) < MIN_TEXTS:
            raise UserError(f"concept file {f} has {len(recs)} texts; a concept needs at least {MIN_TEXTS}")
        sets[Path(f).stem] = recs
    if not any(t.startswith(CONTROL_PREFIX) for t in sets):
        raise UserError(f"no control set ({CONTROL_PREFIX}*.jsonl) among the concepts: tags need a contrast")
    if not any(not t.startswith(CONTROL_PREFIX) for t in sets):
        raise UserError("no concept sets to tag with (only controls)")
    return sets


class TextScores(NamedTuple):
    peak: torch.Tensor  # [n_texts, d_sae (+ probes)] max activation over each text's tokens
    mean: torch.Tensor  # [n_texts, d_sae (+ probes)]
    tags: list[str]  # per text
    top_token: torch.Tensor  # [d_sae] token id at each latent's highest activation
    n_tokens: int


@torch.no_grad()
def text_scores(model, sae, sets: dict[str, list[Record]], layer: int, hook: str, max_len: int = 256,
                batch_tokens: int = 2048, max_norm_ratio: float | None = 10.0, progress: bool = True,
                probes: torch.Tensor | None = None, select: str = "all") -> TextScores:
    """One streaming pass over all concept texts: per-text peak and mean activation of every latent.
    ``select="response"`` reads only the assistant tokens of chat records.

    ``probes`` ([k, d_model] directions, e.g. persona directions) add k columns after the latents: the
    residual's projection on each, unclamped (it can be negative), from the same forward pass."""
    from persona_sae.activations import iter_activations

    tags, records = [], []
    for t, recs in sets.items():
        tags += [t] * len(recs)
        records += recs
    ex = tokenize(records, model.tokenizer, max_len=max_len)
    k = 0 if probes is None else len(probes)
    n, d = len(records), sae.cfg.d_sae + k
    peak, total, cnt = torch.zeros(n, d), torch.zeros(n, d), torch.zeros(n)
    peak[:, d - k:] = -float("inf")  # projections can be negative: start their maximum below any
    top_v, top_t = torch.full((d,), -float("inf")), torch.zeros(d, dtype=torch.long)
    rec_of = torch.tensor([e.record for e in ex])
    n_tok = 0
    for b in iter_activations(model, ex, [layer], hook=hook, select=select, batch_tokens=batch_tokens, seed=None,
                              progress=progress, max_norm_ratio=max_norm_ratio):
        if not b.n_tokens:
            continue
        f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float().clamp(min=0)
        if k:
            f = torch.cat([f, b.acts[layer].float() @ probes.float().T], 1)
        r = rec_of[b.example]
        peak.scatter_reduce_(0, r[:, None].expand_as(f), f, reduce="amax")
        total.index_add_(0, r, f)
        cnt.index_add_(0, r, torch.ones(len(r)))
        v, i = f.max(0)
        better = v > top_v
        top_v[better], top_t[better] = v[better], b.token[i[better]]
        n_tok += b.n_tokens
    return TextScores(peak, total / cnt.clamp(min=1)[:, None], tags, top_t, n_tok)


def auroc(scores: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Column-wise AUROC of ``scores`` [n, d] for the boolean labels ``pos`` [n], ties counted half
    (most latents are exactly zero on most texts, so ties are the rule, not the exception)."""
    from scipy.stats import rankdata

    r = torch.from_numpy(rankdata(scores.numpy(), axis=0))
    n_p, n_n = int(pos.sum()), int((~pos).sum())
    if not n_p or not n_n:
        return torch.full((scores.shape[1],), float("nan"))
    return ((r[pos].sum(0) - n_p * (n_p + 1) / 2) / (n_p * n_n)).float()


class Thresholds(NamedTuple):
    auroc: float = 0.8
    """Concept vs every other text."""
    fire: float = 0.3
    """Fraction of the concept's texts the latent fires on."""
    ratio: float = 2.0
    """Mean activation on the concept over mean on the controls."""


def score_concepts(ts: TextScores, latents: torch.Tensor | None = None) -> dict[str, dict[str, torch.Tensor]]:
    """Per concept tag: AUROC vs rest and vs controls, mean ratio, fire fraction, for each latent."""
    tags = ts.tags
    cols = latents if latents is not None else torch.arange(ts.peak.shape[1])
    peak, mean = ts.peak[:, cols], ts.mean[:, cols]
    is_ctl = torch.tensor([t.startswith(CONTROL_PREFIX) for t in tags])
    out = {}
    for t in dict.fromkeys(tags):
        if t.startswith(CONTROL_PREFIX):
            continue
        pos = torch.tensor([x == t for x in tags])
        vs_ctl = pos | is_ctl
        out[t] = {
            "auroc": auroc(peak, pos),
            "auroc_control": auroc(peak[vs_ctl], pos[vs_ctl]),
            "ratio": mean[pos].mean(0) / mean[is_ctl].mean(0).clamp(min=1e-6),
            "fire": (peak[pos] > 0).float().mean(0),
        }
    return out


def decide(scores: dict[str, dict[str, torch.Tensor]], th: Thresholds) -> tuple[list[str], list[str], torch.Tensor]:
    """Tag per latent: the concept with the highest AUROC among those passing every threshold."""
    tags = list(scores)
    au = torch.stack([scores[t]["auroc"] for t in tags], 1)  # [d, n_tags]
    ok = torch.stack([(scores[t]["auroc"] >= th.auroc) & (scores[t]["fire"] >= th.fire)
                      & (scores[t]["ratio"] >= th.ratio) for t in tags], 1)
    masked = torch.where(ok, au, torch.full_like(au, -1.0))
    order = masked.argsort(1, descending=True)
    best = [tags[i] if masked[j, i] >= 0 else "unlabelled" for j, i in enumerate(order[:, 0].tolist())]
    au_order = au.argsort(1, descending=True)
    runner = [tags[au_order[j, 1].item()] if best[j] != "unlabelled" else tags[au_order[j, 0].item()]
              for j in range(len(best))]
    return best, runner, au


def logit_lens(model, sae, latents: list[int], k: int = 5, chunk: int = 1024) -> tuple[list[list[str]], list[list[str]]]:
    """Tokens each decoder direction promotes and suppresses through the final norm's scale and the
    unembedding (a cheap look at what a latent *writes*). In chunks of latents: all at once is
    [latents, vocab], 13 GB for 65,536 latents and SmolLM2's 49,152 tokens."""
    hf, tok = model.hf, model.tokenizer
    W_U = hf.get_output_embeddings().weight.detach().float()  # [vocab, d]
    norm = getattr(getattr(hf, "model", hf), "norm", None)
    scale = norm.weight.detach().float() if norm is not None and hasattr(norm, "weight") else 1.0
    W_dec = sae.W_dec.detach().float()
    top, bot = [], []
    for s in range(0, len(latents), chunk):
        logits = (W_dec[latents[s:s + chunk]] * scale) @ W_U.T
        top += logits.topk(k, dim=1).indices.tolist()
        bot += (-logits).topk(k, dim=1).indices.tolist()
    dec = lambda ids: [tok.decode([i]) for i in ids]  # noqa: E731
    return [dec(t) for t in top], [dec(b) for b in bot]


def persona_cosines(sae, directions) -> dict[str, torch.Tensor]:
    if directions is None:
        return {}
    W = sae.W_dec.detach().float()
    W = W / W.norm(dim=1, keepdim=True).clamp(min=1e-12)
    return {t: W @ v.float() for t, v in directions.vectors.items()}


# --------------------------------------------------------------------------------------------------
# The labels file: labels.json (small, one entry per latent) + label_scores.safetensors (all scores)


def labels_path(sae_spec: str, out: str = "") -> Path:
    if out:
        return Path(out) / "labels.json"
    p = Path(sae_spec)
    if not p.is_dir():
        raise UserError(f"--sae {sae_spec} is not a folder: pass --out for where labels.json goes")
    return p / "labels.json"


def read_labels(path: Path, sae_sha256: str | None = None) -> dict:
    if not path.is_file():
        raise UserError(f"no labels file at {path}: run `persona-sae label` first")
    lab = json.loads(path.read_text())
    if sae_sha256 and lab.get("sae_sha256") != sae_sha256:
        raise UserError(f"{path} was made for a different SAE (checksum {str(lab.get('sae_sha256'))[:12]}… "
                        f"vs {sae_sha256[:12]}…)")
    return lab


def labels_beside(sae_spec: str, sae_sha256: str, strict: bool = False) -> dict | None:
    """The labels.json beside an SAE folder when it was made for this very SAE; a file made for another
    SAE is ignored, or refused with ``strict``."""
    p = Path(sae_spec) / "labels.json"
    if not p.is_file():
        return None
    if strict:
        return read_labels(p, sae_sha256)
    lab = json.loads(p.read_text())
    return lab if lab.get("sae_sha256") == sae_sha256 else None


def effective(lab: dict, latent: int) -> dict:
    """What a latent is called: a manual label beats the automatic one."""
    m = lab.get("manual", {}).get(str(latent))
    if m:
        return {"tag": m["tag"], "source": "manual", "note": m.get("note", "")}
    a = lab.get("latents", {}).get(str(latent), {})
    return {"tag": a.get("tag", "unlabelled"), "source": "auto"}


def set_manual(path: Path, latent: int, tag: str, note: str, sae_sha256: str, d_sae: int, known: set[str]) -> dict:
    from persona_sae.saes import check_latents

    lab = read_labels(path, sae_sha256)
    check_latents([latent], d_sae)
    if tag not in known and not tag.startswith("custom:"):
        raise UserError(f"unknown tag '{tag}' (known: {', '.join(sorted(known))}; or use custom:NAME)")
    lab.setdefault("manual", {})[str(latent)] = {"tag": tag, "note": note, "source": "manual"}
    write_json(path, lab)
    return lab


def save_labels(path: Path, meta: dict, tags: list[str], runner: list[str], concept_tags: list[str], scores: dict,
                extras: dict, latents: list[int]) -> dict:
    from safetensors.torch import save_file

    prev = json.loads(path.read_text()) if path.is_file() else {}
    same = prev.get("sae_sha256") == meta["sae_sha256"]
    manual = prev.get("manual", {}) if same else {}
    prev_latents = prev.get("latents", {}) if same else {}
    entries = {}
    for i, j in enumerate(latents):
        t = tags[i]
        e = {"tag": t, "runner_up": runner[i], "source": "auto"}
        for name in (t, runner[i]):
            if name in scores:
                e.setdefault("scores", {})[name] = {k: round(float(v[i]), 4) for k, v in scores[name].items()}
        for k, v in extras.items():
            e[k] = v[i]
        if "explanation" in prev_latents.get(str(j), {}):  # an earlier run's explanation stays until redone
            e["explanation"] = prev_latents[str(j)]["explanation"]
        entries[str(j)] = e
    lab = {**meta, "concepts": concept_tags, "latents": entries, "manual": manual}
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"{t}.{k}": v.contiguous() for t, s in scores.items() for k, v in s.items()}
    tensors["latents"] = torch.tensor(latents)
    with replacing(path.with_name("label_scores.safetensors")) as tmp:
        save_file(tensors, str(tmp))
    write_json(path, lab)
    return lab


def label(cfg, log=print) -> dict:
    """Score every latent (or a ranking's top) on the concept sets and write the labels file."""
    from persona_sae import __version__
    from persona_sae import models as M
    from persona_sae.rank import sae_layer
    from persona_sae.saes import check_fits, load_sae, sae_checksum

    th = Thresholds(cfg.min_auroc, cfg.min_fire, cfg.min_ratio)
    sets = load_concepts(cfg.concepts, builtin=not cfg.no_builtin)
    explainer = None
    if cfg.explainer:
        from persona_sae.explain import make_explainer

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
    layer, hook = sae_layer(sae, cfg.layer)
    mined = None
    if explainer is not None:
        from persona_sae.examples import load as load_examples
        from persona_sae.saes import check_latents

        mined = load_examples(cfg.examples, sha)
        check_latents(cfg.explain_latents, sae.cfg.d_sae)
    model = M.load_model(cfg.model, dtype=cfg.dtype, log=log)
    check_fits(sae, model, layer, hook)
    latents = list(range(sae.cfg.d_sae))
    if cfg.ranking:
        r = json.loads(Path(cfg.ranking, "ranking.json").read_text()) if Path(cfg.ranking).is_dir() else None
        if r is None:
            raise UserError(f"--ranking {cfg.ranking} is not a rank output folder (ranking.json)")
        latents = sorted(set(r["top_increases"][:cfg.top]) | set(r["top_decreases"][:cfg.top]))
    missing = sorted(set(cfg.explain_latents) - set(latents))
    if missing:
        raise UserError(f"--explain-latents {', '.join(map(str, missing))} not among the latents labelled "
                        f"(the --ranking top {cfg.top})")
    directions = None
    if cfg.personas:
        from persona_sae import personas as P

        directions = P.load(cfg.personas) if Path(cfg.personas).is_dir() else \
            P.cached(cfg.personas, layer, traits=("evil",), log=log)
        if directions.layer != layer:
            raise UserError(f"persona directions are from layer {directions.layer}, the SAE reads layer {layer}")
    ts = text_scores(model, sae, sets, layer, hook, max_len=cfg.max_len, batch_tokens=cfg.batch_tokens)
    idx = torch.tensor(latents)
    scores = score_concepts(ts, idx)
    tags, runner, _ = decide(scores, th)
    top, bottom = logit_lens(model, sae, latents)
    extras = {"top_token": [model.tokenizer.decode([t]) for t in ts.top_token[idx].tolist()],
              "logit_lens_top": top, "logit_lens_bottom": bottom}
    nearest = {}
    for t, c in persona_cosines(sae, directions).items():
        extras[f"cos_{t}"] = [round(float(x), 4) for x in c[idx]]
        j = int(c[idx].argmax())
        nearest[t] = {"latent": latents[j], "cos": round(float(c[idx][j]), 4), "tag": tags[j]}
    meta = {"sae": cfg.sae, "sae_sha256": sha, "model": cfg.model, "layer": layer, "hook": hook,
            "thresholds": th._asdict(), "n_texts": {t: len(v) for t, v in sets.items()}, "tokens": ts.n_tokens,
            "version": __version__, "persona_directions": cfg.personas or None}
    lab = save_labels(path, meta, tags, runner, list(scores), scores, extras, latents)
    best = {}
    for t, s in scores.items():
        j = int(s["auroc"].argmax())
        best[t] = {"latent": latents[j], "auroc": float(s["auroc"][j]), "fire": float(s["fire"][j]),
                   "ratio": float(s["ratio"][j]), "n_tagged": sum(x == t for x in tags)}
    lab["best_per_tag"] = best
    # evidence beside the tags, never a tag itself: on SmolLM2 the model's own evil direction separated
    # a real EM model's answers where the concept-tagged latents did not (experiments/sae_sweep_smollm2)
    lab["nearest_per_persona"] = nearest
    explained = []
    if explainer is not None:
        from persona_sae.explain import explain, zero_windows

        todo = list(dict.fromkeys(cfg.explain_latents)) or \
            (latents if cfg.ranking else [j for j in latents if effective(lab, j)["tag"] != "unlabelled"])
        log(f"explaining {len(todo)} latents with {explainer.name}")
        neg = zero_windows(model, sae, mined, layer, hook, todo, cfg.explain_examples,
                           batch_tokens=cfg.batch_tokens) if todo else {}
        for j, e in explain(explainer, mined, model.tokenizer, todo, neg, n=cfg.explain_examples).items():
            lab["latents"][str(j)]["explanation"] = e
            explained.append({"latent": j, "tag": effective(lab, j)["tag"], **e})
    write_json(path, lab)
    return {"path": str(path), "best": best, "nearest": nearest, "n_latents": len(latents),
            "n_labelled": sum(t != "unlabelled" for t in tags), "explained": explained}
