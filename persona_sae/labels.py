"""Latents -> labels: concept reference sets, the tagging rule, and the labels file.

labels.json (small, one entry per latent) + label_scores.safetensors (all scores) sit beside the SAE
and name its checksum, so a label is never read for another SAE. Manual labels live in the same file
and win over automatic ones.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file

from persona_sae import UserError, read_json, replacing, write_json
from persona_sae.latents import check_latents
from persona_sae.statistics import TextScores, auroc, auroc_pvalue, bh_qvalues, midranks
from persona_sae.text import Record, read_jsonl

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


class Thresholds(NamedTuple):
    auroc: float = 0.8
    """Concept vs every other text."""
    fire: float = 0.3
    """Fraction of the concept's texts the latent fires on."""
    ratio: float = 2.0
    """Mean activation on the concept over mean on the controls."""
    fdr: float = 0.05
    """Benjamini–Hochberg q-value of the AUROC's p-value, over latents x concepts (1 turns it off)."""


def score_concepts(ts: TextScores, latents: torch.Tensor | None = None, permutations: int = 1000,
                   seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """Per concept tag: AUROC vs rest and vs controls, mean ratio, fire fraction, and the AUROC's
    one-sided p-value under shuffled concept-vs-other labels (``statistics.auroc_pvalue``), for
    each latent; ``with_qvalues`` adds the BH q-values."""
    tags = ts.tags
    cols = latents if latents is not None else torch.arange(ts.peak.shape[1])
    peak, mean = ts.peak[:, cols], ts.mean[:, cols]
    ranks = midranks(peak)  # the same for every concept vs the rest
    is_ctl = torch.tensor([t.startswith(CONTROL_PREFIX) for t in tags])
    out = {}
    for i, t in enumerate(dict.fromkeys(tags)):
        if t.startswith(CONTROL_PREFIX):
            continue
        pos = torch.tensor([x == t for x in tags])
        vs_ctl = pos | is_ctl
        out[t] = {
            "auroc": auroc(peak, pos, ranks),
            "auroc_control": auroc(peak[vs_ctl], pos[vs_ctl]),
            "ratio": mean[pos].mean(0) / mean[is_ctl].mean(0).clamp(min=1e-6),
            "fire": (peak[pos] > 0).float().mean(0),
            "p": auroc_pvalue(peak, pos, permutations, seed + i, ranks),
        }
    return out


def refine_pvalues(ts: TextScores, scores: dict[str, dict[str, torch.Tensor]], latents: torch.Tensor,
                   th: Thresholds, permutations: int, refine: int, seed: int = 0) -> int:
    """Test again, with ``refine`` fresh shuffles, every latent x concept pair whose first-stage p sits
    at its floor 1/(permutations + 1) and that passes every fixed threshold; their p is replaced in
    place. BH over tens of thousands of pairs needs p far below what 1,000 shuffles can give (on the
    shipped SmolLM2 SAE no pair passed at that floor), while refining only the few hundred candidates
    costs seconds. Each refined p is a permutation p-value of fresh shuffles, valid for any selection
    rule that only decides whether to draw them (sequential Monte Carlo). Returns the pairs refined."""
    if refine <= permutations:
        return 0
    peak = ts.peak[:, latents]
    floor = 1 / (permutations + 1)
    n = 0
    for i, (t, s) in enumerate(scores.items()):
        cand = (s["p"] <= floor * (1 + 1e-9)) & (s["auroc"] >= th.auroc) & (s["fire"] >= th.fire) \
            & (s["ratio"] >= th.ratio)
        cols = cand.nonzero().squeeze(1)
        if not len(cols):
            continue
        pos = torch.tensor([x == t for x in ts.tags])
        s["p"] = s["p"].clone()
        s["p"][cols] = auroc_pvalue(peak[:, cols], pos, refine, seed + 7919 * (i + 1))  # not the first stage's streams
        n += len(cols)
    return n


def with_qvalues(scores: dict[str, dict[str, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    """Add each p-value's Benjamini–Hochberg q-value, the family being every latent x concept scored:
    a tag then has a controlled false-discovery rate over the whole labelling run. With a random-SAE
    null the p-value is the larger of the two (``p_null``): each is valid, so their maximum is."""
    tags = list(scores)
    p = torch.stack([torch.maximum(scores[t]["p"], scores[t]["p_null"]) if "p_null" in scores[t]
                     else scores[t]["p"] for t in tags], 1)
    q = bh_qvalues(p)
    return {t: {**scores[t], "q": q[:, i]} for i, t in enumerate(tags)}


class RandomSAEs:
    """``n`` random-weight SAEs of the labelled SAE's shape, the null for its AUROCs: a random
    projection of the residual separates concept texts by length or style alone (on SmolLM2 a
    random SAE's latent reached AUROC 0.908 on a 127-text concept, hugely "significant" against
    shuffled labels), so a tag must beat what random latents reach on the same texts.

    Each is a ReLU SAE (``sae(r)`` builds it as a sae_lens ``StandardSAE``): unit-norm Gaussian
    decoder rows, encoder = decoder transpose, b_dec = 0, and b_enc set so that random latent j fires
    on the same fraction of tokens as the real SAE's latent j on these texts (measured by
    ``text_scores``; estimated from a seeded sample of ``sample`` tokens). AUROC depends on a latent's
    direction and its density, and real densities span orders of magnitude, so the null keeps the real
    density spectrum and randomises only the directions; whatever the real architecture (TopK,
    JumpReLU, ...), a per-latent threshold at the same rate stands in for its sparsity rule.

    It reads the residuals ``text_scores`` already computes (``observe``) and keeps only each text's
    peak raw projection, [n, texts, d_sae] float32: a per-text peak of relu(w.x + b) is
    relu(peak of w.x + b), so the biases can be set after the pass."""

    def __init__(self, n: int, d_sae: int, d_in: int, n_texts: int, seed: int = 0, sample: int = 8192):
        self.g = torch.Generator().manual_seed(seed)
        W = torch.randn(n, d_sae, d_in, generator=self.g)
        self.W = W / W.norm(dim=2, keepdim=True)
        self.raw = torch.full((n, n_texts, d_sae), -float("inf"))
        self.size = sample
        self.sample, self.prio = torch.empty(0, d_in), torch.empty(0)

    def observe(self, x: torch.Tensor, text: torch.Tensor) -> None:
        for r in range(len(self.W)):
            p = x @ self.W[r].T
            self.raw[r].scatter_reduce_(0, text[:, None].expand_as(p), p, reduce="amax")
        prio = torch.cat([self.prio, torch.rand(len(x), generator=self.g)])  # uniform sample: top random keys
        keep = prio.topk(min(self.size, len(prio))).indices
        self.prio, self.sample = prio[keep], torch.cat([self.sample, x])[keep]

    def biases(self, rate: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """b_enc [n, d_sae]: minus the sample's (k+1)-th largest projection, k = rate x sample size, so
        that k sampled tokens exceed it (at rate 1, below every one)."""
        S = len(self.sample)
        if not S:
            raise UserError("no tokens were read from the concept texts: nothing to build the null from")
        k = (rate.double() * S).round().long()
        b = torch.empty(self.W.shape[:2])
        for r in range(len(self.W)):
            for c in range(0, self.W.shape[1], chunk):
                srt = (self.sample @ self.W[r, c:c + chunk].T).sort(0, descending=True).values
                kk = k[c:c + chunk]
                tau = srt.gather(0, kk.clamp(max=S - 1)[None]).squeeze(0)
                below = srt[-1] - srt.abs().max(0).values - 1  # rate 1: fire on every token
                b[r, c:c + chunk] = -torch.where(kk >= S, below, tau)
        return b

    def peaks(self, r: int, b: torch.Tensor) -> torch.Tensor:
        """Per-text peak activation [texts, d_sae] of random SAE r with biases ``b`` [n, d_sae]."""
        return (self.raw[r] + b[r]).clamp(min=0)  # a text without tokens: -inf, so 0

    def aurocs(self, rate: torch.Tensor, tags: list[str]) -> dict[str, torch.Tensor]:
        """Per concept tag, the AUROC of every random latent (concept vs every other text), sorted
        [n x d_sae]; ranks once per random SAE."""
        b = self.biases(rate)
        concepts = [t for t in dict.fromkeys(tags) if not t.startswith(CONTROL_PREFIX)]
        out = {t: [] for t in concepts}
        for r in range(len(self.W)):
            pk = self.peaks(r, b)
            ranks = midranks(pk)
            for t in concepts:
                out[t].append(auroc(pk, torch.tensor([x == t for x in tags]), ranks))
        return {t: torch.cat(v).sort().values for t, v in out.items()}

    def sae(self, r: int, rate: torch.Tensor, hook_name: str):
        """Random SAE r as a sae_lens StandardSAE (what ``peaks`` computes, for checking)."""
        from sae_lens import StandardSAE, StandardSAEConfig
        from sae_lens.saes.sae import SAEMetadata

        n, d_sae, d_in = self.W.shape
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=SAEMetadata(hook_name=hook_name)))
        with torch.no_grad():
            sae.W_dec.copy_(self.W[r])
            sae.W_enc.copy_(self.W[r].T)
            sae.b_dec.zero_()
            sae.b_enc.copy_(self.biases(rate)[r])
        return sae.eval()


def with_null(scores: dict[str, dict[str, torch.Tensor]], null: dict[str, torch.Tensor], quantile: float
              ) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, float]]:
    """Per concept: the AUROC a tag must exceed (``quantile`` of the random latents' AUROCs, 1: their
    maximum), and per latent ``p_null`` = (1 + random latents reaching its AUROC) / (1 + random latents).

    The threshold alone is not calibrated: a random SAE's best latent beats the maximum of n random
    SAEs with chance 1/(n + 1) per concept. ``p_null`` is an exact p-value for "a random latent of this
    density does as well", so through BH (``with_qvalues``) a random SAE gets any tag with chance at
    most --fdr."""
    out, thresholds = {}, {}
    for t, s in scores.items():
        a = null[t]
        thresholds[t] = float(torch.quantile(a.double(), quantile)) if len(a) else float("-inf")
        reach = len(a) - torch.searchsorted(a, s["auroc"].contiguous(), right=False)  # null >= observed
        out[t] = {**s, "p_null": (reach.double() + 1) / (len(a) + 1)}
    return out, thresholds


def decide(scores: dict[str, dict[str, torch.Tensor]], th: Thresholds, null: dict[str, float] | None = None
           ) -> tuple[list[str], list[str], torch.Tensor]:
    """Tag per latent: the concept with the highest AUROC among those passing every threshold (the
    q-value too, when the scores carry one; and an AUROC above the random-SAE ``null``, when given)."""
    tags = list(scores)
    au = torch.stack([scores[t]["auroc"] for t in tags], 1)  # [d, n_tags]
    ok = torch.stack([(scores[t]["auroc"] >= th.auroc) & (scores[t]["fire"] >= th.fire)
                      & (scores[t]["ratio"] >= th.ratio)
                      & (scores[t]["q"] <= th.fdr if "q" in scores[t] else True)
                      & (scores[t]["auroc"] > null[t] if null else True) for t in tags], 1)
    masked = torch.where(ok, au, torch.full_like(au, -1.0))
    order = masked.argsort(1, descending=True)
    best = [tags[i] if masked[j, i] >= 0 else "unlabelled" for j, i in enumerate(order[:, 0].tolist())]
    au_order = au.argsort(1, descending=True)
    runner = [("" if len(tags) == 1 else tags[au_order[j, 1].item()]) if best[j] != "unlabelled"
              else tags[au_order[j, 0].item()] for j in range(len(best))]  # one concept: no runner-up
    return best, runner, au


def labels_path(sae_spec: str, out: str = "") -> Path:
    if out:
        return Path(out) / "labels.json"
    p = Path(sae_spec)
    if not p.is_dir():
        raise UserError(f"--sae {sae_spec} is not a folder: pass --out for where labels.json goes")
    return p / "labels.json"


def _labels_file(path: Path) -> dict:
    lab = read_json(path, "a labels.json written by `persona-sae label`")
    if not isinstance(lab, dict):
        raise UserError(f"{path} is not a labels.json written by `persona-sae label` (not a JSON object)")
    return lab


def read_labels(path: Path, sae_sha256: str | None = None) -> dict:
    if not path.is_file():
        raise UserError(f"no labels file at {path}: run `persona-sae label` first")
    lab = _labels_file(path)
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
    lab = _labels_file(p)
    return lab if lab.get("sae_sha256") == sae_sha256 else None


def effective(lab: dict, latent: int) -> dict:
    """What a latent is called: a manual label beats the automatic one."""
    m = lab.get("manual", {}).get(str(latent))
    if m:
        return {"tag": m["tag"], "source": "manual", "note": m.get("note", "")}
    a = lab.get("latents", {}).get(str(latent), {})
    return {"tag": a.get("tag", "unlabelled"), "source": "auto"}


def set_manual(path: Path, latent: int, tag: str, note: str, sae_sha256: str, d_sae: int, known: set[str]) -> dict:
    lab = read_labels(path, sae_sha256)
    check_latents([latent], d_sae)
    if tag not in known and not tag.startswith("custom:"):
        raise UserError(f"unknown tag '{tag}' (known: {', '.join(sorted(known))}; or use custom:NAME)")
    lab.setdefault("manual", {})[str(latent)] = {"tag": tag, "note": note, "source": "manual"}
    write_json(path, lab)
    return lab


def save_labels(path: Path, meta: dict, tags: list[str], runner: list[str], concept_tags: list[str], scores: dict,
                extras: dict, latents: list[int]) -> dict:
    prev = _labels_file(path) if path.is_file() else {}
    same = prev.get("sae_sha256") == meta["sae_sha256"]
    manual = prev.get("manual", {}) if same else {}
    prev_latents = prev.get("latents", {}) if same else {}
    entries = {}
    for i, j in enumerate(latents):
        t = tags[i]
        e = {"tag": t, "runner_up": runner[i], "source": "auto"}
        for name in (t, runner[i]):
            if name in scores:
                e.setdefault("scores", {})[name] = {k: float(f"{float(v[i]):.3g}") if k in ("p", "q", "p_null")
                                                    else round(float(v[i]), 4) for k, v in scores[name].items()}
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
