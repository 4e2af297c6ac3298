"""Latents as the JSON that Neuronpedia and SAEDashboard load, from a mining folder.

Per latent: its top activations (token strings and the latent's value on every token, from the windows
stored at mining time), the activation density and histogram, the direct logit effects (top and bottom
tokens with values, and their histogram) and the labels. The shapes follow those tools' own writers
(field names and file layout; tests/export_schemas.py names the files they were read from); the code is
ours. Text is stored as the tokenizer decodes it: JSON, no HTML escaping, no token substitutions.

- ``neuronpedia``: Neuronpedia's export layout, which its importer reads:
  ``MODEL/SOURCE/{features,activations,explanations}/batch-N.jsonl.gz``, one Neuron, Activation or
  Explanation row per line (column names of its database tables), 1,024 latents per batch.
- ``saedashboard``: SAEDashboard's ``neuronpedia_runner`` output, ``batch-N.json`` (model_id, layer,
  sae_set, features[...]), 128 latents per batch, keys exactly those its dataclasses accept, and the
  labels beside them in ``explanations.json`` (the batch format has no field for them).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import NamedTuple

from persona_sae import replacing, write_json
from persona_sae.labels import effective
from persona_sae.latents import LogitEffects
from persona_sae.mined import HIST_EDGES, Examples, Top
from persona_sae.runs import replaceable

MARKER = "export.json"  # what every export folder holds: only such a folder is ever replaced
BATCH = {"neuronpedia": 1024, "saedashboard": 128}  # latents per batch file (their tools' usual sizes)
LOGIT_BINS = 40


class Latent(NamedTuple):
    """What both formats hold for one latent."""

    index: int
    fires: int
    frac_nonzero: float
    max_act: float  # 0 when it never fired
    top: list[tuple[list[str], Top]]  # token strings and the mined example
    freq_heights: list[int]
    freq_values: list[float]
    lens: LogitEffects
    pos_str: list[str]
    neg_str: list[str]
    label: dict | None  # effective tag, source, note, scores of the tag; None without labels.json
    explanation: dict | None  # `label --explain`'s entry, when it has a text


def density_histogram(counts: list[int]) -> tuple[list[int], list[float]]:
    """The mined log10-activation histogram as bar heights and the activation each bar stands for: the
    geometric centre of its bin (the two open-ended bins: their edge, 1e-3 and 1e3), empty bars at
    either end left out. The bins are log-spaced, so the bars are not evenly spaced in activation."""
    e = HIST_EDGES.tolist()
    values = [10 ** e[0]] + [10 ** ((a + b) / 2) for a, b in zip(e, e[1:])] + [10 ** e[-1]]
    nz = [i for i, c in enumerate(counts) if c]
    if not nz:
        return [], []
    a, b = nz[0], nz[-1] + 1
    return [int(c) for c in counts[a:b]], values[a:b]


def latent_records(ex: Examples, tok, latents: list[int], lens: list[LogitEffects], labels: dict | None) -> list[Latent]:
    m = ex.state
    n_tok = max(int(ex.manifest.get("tokens", m.tokens)), 1)
    strs = lambda ids: [tok.decode([i]) for i in ids]  # noqa: E731
    out = []
    for j, le in zip(latents, lens):
        label = expl = None
        if labels:
            entry = labels.get("latents", {}).get(str(j), {})
            label = {**effective(labels, j), "scores": entry.get("scores", {}).get(entry.get("tag"), {})}
            e = entry.get("explanation")
            expl = e if isinstance(e, dict) and e.get("text") else None
        vmax = float(m.top_values[j, 0])
        heights, values = density_histogram(m.hist[j].tolist())
        out.append(Latent(j, int(m.fires[j]), int(m.fires[j]) / n_tok, vmax if vmax > -float("inf") else 0.0,
                          [(strs(t.ids), t) for t in ex.top(j)], heights, values, le,
                          strs(le.pos_ids), strs(le.neg_ids), label, expl))
    return out


def _id(*parts) -> str:
    """A stable row id (the same export twice gives the same ids), 25 characters like Neuronpedia's cuids."""
    return "ps" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:23]


def _label_note(lab: dict) -> str:
    sc = lab.get("scores") or {}
    bits = [f"persona-sae label ({lab['source']})"]
    if sc.get("auroc") is not None:
        bits.append(f"AUROC {sc['auroc']:.3f}")
    if sc.get("fire") is not None:
        bits.append(f"fires on {100 * sc['fire']:.0f}% of the concept texts")
    if lab.get("note"):
        bits.append(lab["note"])
    return "; ".join(bits)


def _expl_note(e: dict) -> str:
    d = e.get("detection") or {}
    return "persona-sae label --explain" + (f"; detection balanced accuracy {d['balanced_accuracy']:.3f}"
                                            if d.get("balanced_accuracy") is not None else "")


def source_id(layer: int, source_set: str) -> str:
    return f"{layer}-{source_set}"


def neuronpedia_rows(recs: list[Latent], model_id: str, source: str, source_set: str, creator: str, sae_sha: str
                     ) -> tuple[list[dict], list[dict], list[dict]]:
    """Neuron, Activation and Explanation rows (Neuronpedia's column names), in latent order."""
    features, acts, expls = [], [], []
    for r in recs:
        where = {"modelId": model_id, "layer": source, "index": str(r.index)}
        features.append({
            **where, "creatorId": creator, "sourceSetName": source_set, "maxActApprox": r.max_act,
            "frac_nonzero": r.frac_nonzero,
            "freq_hist_data_bar_heights": r.freq_heights, "freq_hist_data_bar_values": r.freq_values,
            "logits_hist_data_bar_heights": r.lens.hist_heights, "logits_hist_data_bar_values": r.lens.hist_centres,
            "neg_str": r.neg_str, "neg_values": r.lens.neg_values, "pos_str": r.pos_str, "pos_values": r.lens.pos_values,
            # not computed here: left at Neuronpedia's own defaults
            "neuron_alignment_indices": [], "neuron_alignment_values": [], "neuron_alignment_l1": [],
            "correlated_neurons_indices": [], "correlated_neurons_pearson": [], "correlated_neurons_l1": [],
            "decoder_weights_dist": [], "topkCosSimIndices": [], "topkCosSimValues": [],
            "hasVector": False, "vector": [], "vectorLabel": None, "hookName": None, "vectorDefaultSteerStrength": 10,
        })
        for i, (tokens, t) in enumerate(r.top):
            top = max(t.acts)
            acts.append({
                "id": _id(sae_sha, r.index, "act", i), **where, "creatorId": creator, "dataSource": None,
                "tokens": tokens, "values": t.acts, "maxValue": top, "maxValueTokenIndex": t.acts.index(top),
                "minValue": min(t.acts), "qualifyingTokenIndex": t.at,
                "dfaValues": [], "dfaMaxValue": None, "dfaTargetIndex": None,
                # SAEDashboard's convention for the top-activations group: bin -1 .. the latent's max
                "binMin": -1.0, "binMax": r.max_act, "binContains": -1.0,
            })
        row = {**where, "authorId": creator, "typeName": None, "explanationModelName": None}
        if r.label and r.label["tag"] != "unlabelled":
            expls.append({"id": _id(sae_sha, r.index, "tag"), **row, "description": r.label["tag"],
                          "notes": _label_note(r.label)})
        if r.explanation:
            expls.append({"id": _id(sae_sha, r.index, "explanation"), **row, "description": r.explanation["text"],
                          "notes": _expl_note(r.explanation)})
    return features, acts, expls


def saedashboard_features(recs: list[Latent], manifest: dict, n_docs: int) -> list[dict]:
    """SAEDashboard's NeuronpediaDashboardFeature fields, one dict per latent."""
    c = manifest.get("config", {})
    out = []
    for r in recs:
        out.append({
            "feature_index": r.index,
            "neuron_alignment_indices": [], "neuron_alignment_values": [], "neuron_alignment_l1": [],
            "correlated_neurons_indices": [], "correlated_neurons_l1": [], "correlated_neurons_pearson": [],
            "correlated_features_indices": [], "correlated_features_l1": [], "correlated_features_pearson": [],
            "neg_str": r.neg_str, "neg_values": r.lens.neg_values, "pos_str": r.pos_str, "pos_values": r.lens.pos_values,
            "frac_nonzero": r.frac_nonzero,
            "freq_hist_data_bar_values": r.freq_values, "freq_hist_data_bar_heights": r.freq_heights,
            "logits_hist_data_bar_heights": r.lens.hist_heights, "logits_hist_data_bar_values": r.lens.hist_centres,
            "n_prompts_total": n_docs, "n_tokens_in_prompt": int(c.get("max_len", 0)), "dataset": str(c.get("dataset", "")),
            "decoder_weights_dist": [],
            "activations": [{"bin_min": -1.0, "bin_max": r.max_act, "bin_contains": -1.0, "tokens": tokens,
                             "values": t.acts, "qualifying_token_index": t.at} for tokens, t in r.top],
            "vector": [],
        })
    return out


def labels_sidecar(recs: list[Latent]) -> dict:
    """Latent -> its label and explanation, for the latents that have a tag or an explanation text."""
    tagged = lambda r: r.label is not None and r.label["tag"] != "unlabelled"  # noqa: E731
    return {str(r.index): {**(r.label or {}), **({"explanation": r.explanation} if r.explanation else {})}
            for r in recs if tagged(r) or r.explanation}


def _jsonl_gz(path: Path, rows: list[dict]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with replacing(path) as tmp:
        tmp.write_bytes(gzip.compress(data, compresslevel=5, mtime=0))  # mtime 0: the same export, the same bytes


def model_id_of(spec: str) -> str:
    """Neuronpedia-style model id from a model spec: its last path part, lower case, [a-z0-9-_] only."""
    name = Path(str(spec).rstrip("/")).name.lower()
    return re.sub(r"[^a-z0-9_-]+", "-", name).strip("-") or "model"


def write(fmt: str, out: str | Path, recs: list[Latent], *, model_id: str, layer: int, source_set: str,
          creator: str, sae_sha: str, manifest: dict, n_docs: int, force: bool = False, meta: dict | None = None
          ) -> tuple[Path, list[str]]:
    """Write the export into a fresh folder beside ``out`` and swap it in; returns the folder and the
    files written (relative paths). ``out`` is replaced only when it is an earlier export or with ``force``."""
    out = replaceable(out, MARKER, "an export", force)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = []
    n = BATCH[fmt]
    if fmt == "neuronpedia":
        src = source_id(layer, source_set)
        base = tmp / model_id / src
        for b in range(0, max(len(recs), 1), n):
            rows = neuronpedia_rows(recs[b:b + n], model_id, src, source_set, creator, sae_sha)
            for kind, part in zip(("features", "activations", "explanations"), rows):
                (base / kind).mkdir(parents=True, exist_ok=True)
                _jsonl_gz(base / kind / f"batch-{b // n}.jsonl.gz", part)
                files.append(f"{model_id}/{src}/{kind}/batch-{b // n}.jsonl.gz")
    else:
        for b in range(0, max(len(recs), 1), n):
            batch = {"model_id": model_id, "layer": layer, "sae_set": source_set, "sae_id_suffix": None,
                     "features": saedashboard_features(recs[b:b + n], manifest, n_docs)}
            write_json(tmp / f"batch-{b // n}.json", batch)
            files.append(f"batch-{b // n}.json")
        write_json(tmp / "explanations.json", labels_sidecar(recs))
        files.append("explanations.json")
    write_json(tmp / MARKER, {"format": fmt, "latents": [r.index for r in recs], "files": files, **(meta or {})})
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out, files
