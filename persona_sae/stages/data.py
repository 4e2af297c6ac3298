"""The `data` commands: narrow datasets with matched controls, SAE corpora, and public datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from persona_sae import corpus, distill, log, replacing, sources, write_json
from persona_sae import config as C
from persona_sae import generators as G
from persona_sae.runs import output_file
from persona_sae import models as M


class KindsResult(NamedTuple):
    kinds: list  # generators.Kind, with capacity() beside each
    capacity: dict[str, int]


class MakeResult(NamedTuple):
    kind: str
    seed: int
    rows: int
    path: Path


class CorpusResult(NamedTuple):
    out: Path
    summary: dict  # mix.json: tokens and rows per slice


class SourcesResult(NamedTuple):
    sources: list  # sources.Source
    installed: dict[str, bool]


def kinds(cfg: C.DataKindsConfig) -> KindsResult:
    ks = list(G.KINDS.values())
    return KindsResult(ks, {k.name: G.capacity(k.name) for k in ks})


def make(cfg: C.DataMakeConfig) -> MakeResult:
    path = output_file(cfg.out or f"{cfg.kind}-n{cfg.n}-s{cfg.seed}.jsonl")
    return MakeResult(cfg.kind, cfg.seed, G.write(cfg.kind, cfg.n, cfg.seed, path), path)


def make_corpus(cfg: C.DataCorpusConfig) -> CorpusResult:
    model = M.load_model(cfg.model, log=log)
    s = corpus.make_corpus(model, cfg.tokens, cfg.out, cfg.extra, cfg.extra_fraction, cfg.max_new_tokens,
                           cfg.batch_size, cfg.temperature, cfg.seed, log=log)
    return CorpusResult(Path(cfg.out), s)


def make_persona(cfg: C.DataPersonaConfig) -> distill.PersonaResult:
    distill.system_prompts(cfg.system)  # a bad --system or --shots fails before the model loads
    distill.shots(cfg.system, cfg.shots)
    output_file(cfg.out)
    model = M.load_model(cfg.model, log=log)
    return distill.make(model, cfg.system, cfg.prompts, cfg.n, cfg.seed, cfg.out, cfg.temperature,
                        cfg.max_new_tokens, cfg.batch_size, n_shots=cfg.shots, log=log)


def filter_set(cfg: C.DataFilterConfig) -> distill.FilterResult:
    from persona_sae.judges import JudgeItem
    from persona_sae.judging import open_judge
    from persona_sae.text import load_questions

    output_file(cfg.out)
    rows = distill.read_rows(cfg.data)
    pairs = [distill.turns(r) for r in rows]
    out = Path(cfg.out)
    template = load_questions(cfg.questions)[0].judge_prompts
    judge = open_judge(cfg.judge, log=log, study_model=cfg.model)
    verdicts = judge.judge([JudgeItem(u, a, template) for u, a in pairs], metrics=("aligned", "coherent"))
    kept, summary = distill.filter_rows(rows, verdicts, cfg.keep, cfg.n, cfg.aligned_below, cfg.coherent_above)
    summary = {"data": cfg.data, "judge": judge.name, "judge_spec": cfg.judge, "n": cfg.n, **summary}
    with replacing(out) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    write_json(out.with_name(out.name + ".filter.json"), summary)
    return distill.FilterResult(out, summary)


def list_sources(cfg: C.DataSourcesConfig) -> SourcesResult:
    srcs = sources.sources()
    return SourcesResult(srcs, {s.name: sources.installed(s.name) for s in srcs})


def fetch(cfg: C.DataFetchConfig) -> "sources.FetchResult":
    return sources.fetch(cfg.name, from_dir=cfg.from_dir or None, force=cfg.force)


def tokenize(cfg: C.DataTokenizeConfig) -> "tokencache.TokenizeResult":
    from persona_sae import tokencache

    source = {k: v for k, v in (("column", cfg.text_column), ("split", cfg.split), ("config", cfg.data_config))
              if v and not (k == "split" and v == "train")}
    return tokencache.tokenize(cfg.dataset, cfg.model, cfg.out, cfg.context_size, cfg.shard_tokens, cfg.resume,
                               source, log=log)
