"""Pre-tokenized data: `persona-sae data tokenize` writes a dataset's token sequences once, as
safetensors shards, so that every training run after it (a rerun, each point of a sweep, each rank
of a torchrun job) reads token ids instead of running the tokenizer.

A cache folder is a data spec like any other where a command tokenizes: :func:`open_records` yields one
:class:`TokenRecord` per record of the source, in the source's order, carrying the record's
examples as the tokenizer cut them and the record's held-out key (a hash of its content, as
``text.record_key`` computes it). So the held-out split, the shuffle and every batch are the ones the
text would give, and :func:`persona_sae.tokens.iter_tokenize` hands the stored examples on
unchanged. A cache made with another tokenizer or another context size is refused, not re-cut.

Layout: ``tokens.json`` (the manifest, rewritten after each shard) and ``shard-NNNNN.safetensors``
with ``ids`` (int32), ``response`` and ``special`` (uint8) per token, and ``offsets`` (int64, one
more than examples), ``record`` (int64: the record's index in the source) and ``key`` (uint8 x 32:
sha256) per example. A shard holds whole records; an interrupted run resumes after its last shard.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from persona_sae import UserError, read_json, replacing, write_json
from persona_sae.sources import resolve
from persona_sae.runs import DONE, RUNNING, claim
from persona_sae.text import Record, iter_records, record_key
from persona_sae.tokens import Example, fingerprint

FORMAT = "persona-sae-tokens/1"
MANIFEST = "tokens.json"


@dataclass
class TokenRecord:
    """One record of a token cache: stands in for a ``text.Record`` wherever records are tokenized."""

    key: str
    examples: list[Example]
    tokenizer: str
    """The fingerprint of the tokenizer that made ``examples``."""
    max_len: int
    messages: None = field(default=None, repr=False)
    text: None = field(default=None, repr=False)
    group: str = ""


def is_cache(spec) -> bool:
    p = Path(str(spec))
    return p.is_dir() and (p / MANIFEST).is_file()


def manifest(folder) -> dict:
    m = read_json(Path(folder) / MANIFEST)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise UserError(f"{folder}/{MANIFEST} is not a persona-sae token cache ({FORMAT})")
    return m


def open_records(spec, column: str | None = None, split: str = "train", config: str | None = None
                 ) -> Iterator[Record | TokenRecord]:
    """The records of a data spec for a command that tokenizes (train, examples): a token cache's
    :class:`TokenRecord` s, else ``text.iter_records(spec, ...)``. The options choose within a `datasets`
    source and were fixed when a cache was made, so they are refused for one."""
    s = str(resolve(str(spec)))
    if not is_cache(s):
        return iter_records(s, column=column, split=split, config=config)
    if column or split != "train" or config:
        raise UserError(f"{s} is a token cache: --text-column, --split and --data-config were chosen when it was made")
    manifest(s)
    return read(s)


def read(folder) -> Iterator[TokenRecord]:
    """The cache's records in order (a finished cache only)."""
    folder = Path(folder)
    m = manifest(folder)
    if m.get("status") != DONE:
        raise UserError(f"{folder} is an unfinished token cache: finish it with `persona-sae data tokenize ... --resume`")
    for shard in m["shards"]:
        t = load_file(str(folder / shard["file"]))
        ids, off = t["ids"].tolist(), t["offsets"].tolist()
        resp, spec = t["response"].bool().tolist(), t["special"].bool().tolist()
        recs, keys = t["record"].tolist(), [bytes(k).hex() for k in t["key"].tolist()]
        j = 0
        while j < len(recs):
            e = j
            while e < len(recs) and recs[e] == recs[j]:
                e += 1
            exs = [Example(ids[off[i]:off[i + 1]], resp[off[i]:off[i + 1]], spec[off[i]:off[i + 1]], recs[j], "")
                   for i in range(j, e)]
            yield TokenRecord(keys[j], exs, m["config"]["tokenizer"], m["config"]["context_size"])
            j = e


class TokenizeResult(NamedTuple):
    out: Path
    records: int
    examples: int
    tokens: int
    shards: int


def _write_shard(path: Path, exs: list[tuple[str, Example]]) -> int:
    ids = [t for _, e in exs for t in e.ids]
    tensors = {
        "ids": torch.tensor(ids, dtype=torch.int32),
        "response": torch.tensor([r for _, e in exs for r in e.response], dtype=torch.uint8),
        "special": torch.tensor([s for _, e in exs for s in e.special], dtype=torch.uint8),
        "offsets": torch.tensor([0] + [len(e.ids) for _, e in exs], dtype=torch.int64).cumsum(0),
        "record": torch.tensor([e.record for _, e in exs], dtype=torch.int64),
        "key": torch.tensor([list(bytes.fromhex(k)) for k, _ in exs], dtype=torch.uint8).reshape(len(exs), 32),
    }
    with replacing(path) as tmp:
        save_file(tensors, str(tmp))
    return len(ids)


def tokenize(dataset: str, model: str, out, context_size: int = 256, shard_tokens: int = 1 << 20,
             resume: bool = False, source: dict | None = None, log=print) -> TokenizeResult:
    """Write ``dataset``'s token sequences for ``model``'s tokenizer into the cache folder ``out``."""
    from persona_sae.models import load_tokenizer
    from persona_sae.tokens import iter_tokenize

    if context_size < 2:
        raise UserError(f"--context-size must be at least 2, got {context_size}")
    if shard_tokens < 1:
        raise UserError(f"--shard-tokens must be positive, got {shard_tokens}")
    out = Path(out)
    if is_cache(dataset):
        raise UserError(f"{dataset} is already a token cache")
    records = iter_records(dataset, **(source or {}))  # a bad spec fails before the tokenizer loads
    tok = load_tokenizer(model, log=log)
    config = {"dataset": str(dataset), "source": source or {}, "model": model, "tokenizer": fingerprint(tok),
              "context_size": context_size, "shard_tokens": shard_tokens}
    prev = claim(out, MANIFEST, "token cache", resume, config)  # finished: refused; unfinished: --resume, same config
    out.mkdir(parents=True, exist_ok=True)
    shards = prev["shards"] if prev else []
    first = shards[-1]["end_record"] if shards else 0
    if first:
        log(f"resuming after {len(shards)} shard(s), at record {first:,}")

    def save(status):
        write_json(out / MANIFEST, {"format": FORMAT, "status": status, "config": config, "shards": shards,
                                    "examples": sum(s["examples"] for s in shards),
                                    "tokens": sum(s["tokens"] for s in shards)})

    save(RUNNING)
    keys: OrderedDict[int, str] = OrderedDict()  # record index -> held-out key, for the records not yet cut

    def texts():
        for i, r in enumerate(itertools.islice(records, first, None), first):
            keys[i] = record_key(r)
            yield r

    bar = tqdm(unit="tok", desc="tokenize", initial=sum(s["tokens"] for s in shards))
    block: list[tuple[str, Example]] = []
    n = 0

    def flush(end):
        nonlocal block, n
        name = f"shard-{len(shards):05d}.safetensors"
        shards.append({"file": name, "start_record": block[0][1].record, "end_record": end,
                       "examples": len(block), "tokens": _write_shard(out / name, block)})
        save(RUNNING)
        block, n = [], 0

    for ex in iter_tokenize(texts(), tok, context_size, indices=itertools.count(first)):
        if n >= shard_tokens and ex.record != block[-1][1].record:
            flush(ex.record)  # whole records per shard: a resume starts at a record
        while next(iter(keys)) < ex.record:  # records before this one are done (or made no tokens)
            keys.popitem(last=False)
        block.append((keys[ex.record], ex))
        n += len(ex.ids)
        bar.update(len(ex.ids))
    if block:
        flush(block[-1][1].record + 1)
    bar.close()
    if not shards:
        raise UserError(f"{dataset} produced no token sequences")
    save(DONE)
    return TokenizeResult(out, shards[-1]["end_record"], sum(s["examples"] for s in shards),
                          sum(s["tokens"] for s in shards), len(shards))
