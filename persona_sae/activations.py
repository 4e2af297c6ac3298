"""Tokens -> residual-stream activations at one or more layers, streamed, with an optional
resumable safetensors shard cache.

Each batch comes back flattened to the selected tokens (``[N, d_model]`` per layer) with the
example index, position, token id and response flag of every row, so that later stages can
aggregate per prompt (rank), keep contexts (examples) or just shuffle rows (train).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from persona_sae import UserError, read_json, replacing, write_json
from persona_sae.config import ActivationsConfig
from persona_sae.runs import DONE, RUNNING, claim
from persona_sae.tokens import Example

SELECT = ("all", "response", "prompt")


class ActivationBatch(NamedTuple):
    acts: dict[int, torch.Tensor]
    """layer -> [N, d_model] activations of the selected tokens."""
    example: torch.Tensor
    """[N] index into the example list."""
    pos: torch.Tensor
    token: torch.Tensor
    response: torch.Tensor
    """[N] bool: token is part of an assistant response."""
    n_sinks: int = 0
    """Tokens dropped as attention sinks (norm > max_norm_ratio x the batch median)."""

    @property
    def n_tokens(self) -> int:
        return int(self.example.numel())


def plan_batches(examples: Sequence[Example], batch_tokens: int = 4096, seed: int | None = 0,
                 window: int = 64) -> list[list[int]]:
    """Group example indices into batches of at most ``batch_tokens`` padded tokens.

    Deterministic for a given seed (``None`` keeps the input order). Within windows of
    ``window`` examples, sequences are sorted by length so little compute goes into padding.
    """
    if batch_tokens < 1:
        raise UserError(f"batch_tokens must be positive, got {batch_tokens}")
    order = list(range(len(examples)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    batches: list[list[int]] = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: len(examples[i].ids))
        cur: list[int] = []
        longest = 0
        for i in chunk:
            n = len(examples[i].ids)
            if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
                batches.append(cur)
                cur, longest = [], 0
            cur.append(i)
            longest = max(longest, n)
        if cur:
            batches.append(cur)
    return batches


def collate(examples: Sequence[Example], idx: Sequence[int], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ids ``[B, T]`` plus response, special and valid masks of the same shape."""
    T = max(len(examples[i].ids) for i in idx)
    ids = torch.full((len(idx), T), pad_id, dtype=torch.long)
    resp = torch.zeros((len(idx), T), dtype=torch.bool)
    special = torch.ones((len(idx), T), dtype=torch.bool)
    valid = torch.zeros((len(idx), T), dtype=torch.bool)
    for b, i in enumerate(idx):
        e = examples[i]
        n = len(e.ids)
        ids[b, :n] = torch.tensor(e.ids)
        resp[b, :n] = torch.tensor(e.response)
        special[b, :n] = torch.tensor(e.special)
        valid[b, :n] = True
    return ids, resp, special, valid


def selection_mask(resp: torch.Tensor, special: torch.Tensor, valid: torch.Tensor, select: str) -> torch.Tensor:
    if select not in SELECT:
        raise UserError(f"unknown token selection '{select}' (choose from {', '.join(SELECT)})")
    keep = valid & ~special
    if select == "response":
        keep &= resp
    elif select == "prompt":
        keep &= ~resp
    return keep


def sink_mask(acts, keep: torch.Tensor, max_norm_ratio: float | None) -> torch.Tensor:
    """Kept tokens whose norm in any of ``acts`` ([B, T, d] each) exceeds ``max_norm_ratio`` x the
    median norm of the kept tokens (see :func:`iter_activations`)."""
    sink = torch.zeros_like(keep)
    if not max_norm_ratio or not keep.any():
        return sink
    for a in acts:
        norms = a.float().norm(dim=-1).cpu()
        sink |= keep & (norms > max_norm_ratio * norms[keep].median())
    return sink


def iter_activations(model, examples: Sequence[Example], layers: Sequence[int], *, hook: str = "resid_post",
                     select: str = "all", batch_tokens: int = 2048, seed: int | None = 0, stop: bool = True,
                     batches: list[list[int]] | None = None, progress: bool = True,
                     out_dtype: torch.dtype = torch.float32, bar: tqdm | None = None,
                     max_norm_ratio: float | None = 10.0, out_device: str = "cpu") -> Iterator[ActivationBatch]:
    """Stream :class:`ActivationBatch` es over ``examples`` (see module docstring); ``bar`` lets a
    caller that streams in parts keep one progress bar. Activations come back on ``out_device`` (the
    model's device keeps training on a GPU free of host copies).

    Attention sinks are not always at position 0: in SmolLM2 about 1 token in 8,000 (at position 1)
    has a residual norm of ~20,000 against a median of ~170, and one such token outweighs thousands
    of others in any squared-error or mean statistic. Tokens whose norm at any requested layer exceeds
    ``max_norm_ratio`` times the batch median are dropped (counted in ``n_sinks``); None keeps them."""
    layers = sorted(set(layers))
    for L in layers:
        model.check_layer(L)
    if batches is None:
        batches = plan_batches(examples, batch_tokens, seed)
    pad = model.pad_id
    own_bar = bar is None
    if own_bar:
        total = sum(len(examples[i].ids) for b in batches for i in b)
        bar = tqdm(total=total, unit="tok", desc="activations", disable=not progress, smoothing=0.1)
    for idx in batches:
        ids, resp, special, valid = collate(examples, idx, pad)
        keep = selection_mask(resp, special, valid, select)
        acts = model.run_to_layer(ids, layers, hook=hook, stop=stop)
        sink = sink_mask(acts.values(), keep, max_norm_ratio)
        n_sinks = int(sink.sum())
        keep &= ~sink
        b, p = keep.nonzero(as_tuple=True)
        yield ActivationBatch(
            acts={L: a[keep.to(a.device)].to(out_device, out_dtype) for L, a in acts.items()},
            example=torch.tensor(idx, dtype=torch.long)[b], pos=p, token=ids[b, p], response=resp[b, p],
            n_sinks=n_sinks)
        bar.update(int(valid.sum()))
    if own_bar:
        bar.close()


def concat(batches: Sequence[ActivationBatch]) -> ActivationBatch:
    if not batches:
        raise UserError("no activations were produced (empty data?)")
    return ActivationBatch(
        acts={L: torch.cat([b.acts[L] for b in batches]) for L in batches[0].acts},
        example=torch.cat([b.example for b in batches]), pos=torch.cat([b.pos for b in batches]),
        token=torch.cat([b.token for b in batches]), response=torch.cat([b.response for b in batches]),
        n_sinks=sum(b.n_sinks for b in batches))


def extract(model, examples: Sequence[Example], layers: Sequence[int], **kw) -> ActivationBatch:
    """All selected activations at once (for small data; stream with :func:`iter_activations`)."""
    return concat(list(iter_activations(model, examples, layers, **kw)))


# --------------------------------------------------------------------------------------------------
# On-disk cache: shards of ``shard_batches`` batches; a manifest lists finished shards.


def cache_record(cfg: ActivationsConfig, n_examples: int) -> dict:
    """What a cache is made of (kept in its manifest): a resume must match it field for field."""
    return {"model": cfg.model, "data": cfg.dataset, "layers": sorted(set(cfg.layers)), "hook": cfg.hook,
            "select": cfg.select, "batch_tokens": cfg.batch_tokens, "max_len": cfg.max_len, "seed": cfg.seed,
            "dtype": cfg.dtype, "store_dtype": cfg.store_dtype, "shard_batches": cfg.shard_batches,
            "n_examples": n_examples, "max_norm_ratio": cfg.max_norm_ratio,
            **{k: v for k, v in (("column", cfg.column), ("split", cfg.split), ("data_config", cfg.data_config))
               if v not in ("", "train")}}  # only when set: older caches still resume


def write_cache(model, examples: Sequence[Example], cfg: ActivationsConfig, out: str | Path | None = None,
                resume: bool = True, progress: bool = True) -> dict:
    """Write activations as ``shard-NNNNN.safetensors`` (tensors ``acts.L``, ``example``, ``pos``,
    ``token``, ``response``) into ``out`` (default ``cfg.out``). A rerun with the same config skips
    finished shards; each shard is written to a temporary name and renamed, so a killed run never leaves
    a half shard."""
    out = Path(out or cfg.out)
    want = cache_record(cfg, len(examples))
    manifest = claim(out, "manifest.json", "activation cache", resume, want, rerun_done=True) or \
        {"config": want, "shards": [], "status": RUNNING}
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    batches = plan_batches(examples, cfg.batch_tokens, cfg.seed)
    shards = [batches[s:s + cfg.shard_batches] for s in range(0, len(batches), cfg.shard_batches)]
    done = {s["index"] for s in manifest["shards"]}
    store = torch.bfloat16 if cfg.store_dtype in ("bf16", "bfloat16") else torch.float32
    n_tok = [sum(len(examples[i].ids) for bt in shard for i in bt) for shard in shards]
    bar = tqdm(total=sum(n_tok), initial=sum(n_tok[k] for k in done), unit="tok", desc="activations",
               disable=not progress, smoothing=0.1)
    for k, shard in enumerate(shards):
        if k in done:
            continue
        b = concat(list(iter_activations(model, examples, want["layers"], hook=cfg.hook, select=cfg.select,
                                         max_norm_ratio=cfg.max_norm_ratio or None,
                                         batches=shard, out_dtype=store, bar=bar)))
        name = f"shard-{k:05d}.safetensors"
        tensors = {f"acts.{L}": a.contiguous() for L, a in b.acts.items()}
        tensors.update(example=b.example, pos=b.pos, token=b.token, response=b.response)
        with replacing(out / name) as tmp:
            save_file(tensors, str(tmp))
        manifest["shards"].append({"index": k, "file": name, "tokens": b.n_tokens})
        manifest["shards"].sort(key=lambda s: s["index"])
        write_json(manifest_path, manifest)
    bar.close()
    manifest["status"] = DONE
    manifest["tokens"] = sum(s["tokens"] for s in manifest["shards"])
    write_json(manifest_path, manifest)
    return manifest


def read_cache(path: str | Path) -> Iterator[ActivationBatch]:
    """Stream a cache written by :func:`write_cache`, shard by shard, in order."""
    path = Path(path)
    mp = path / "manifest.json"
    if not mp.is_file():
        raise UserError(f"{path} is not an activation cache (no manifest.json)")
    manifest = read_json(mp, "an activation cache manifest")
    for s in manifest["shards"]:
        t = load_file(str(path / s["file"]))
        yield ActivationBatch(acts={int(k.split(".")[1]): v for k, v in t.items() if k.startswith("acts.")},
                              example=t["example"], pos=t["pos"], token=t["token"], response=t["response"])
