"""The `examples` command: mine top-activating and per-interval examples for every latent in one
streaming pass (storage and merging live in ``persona_sae.mined``)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import NamedTuple

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from persona_sae import config as C
from persona_sae import distributed as D
from persona_sae import log, replacing, write_json
from persona_sae.activations import iter_activations, plan_batches
from persona_sae.latents import open_sae
from persona_sae.mined import MERGE_EVERY, Mined, _collect, batch_state, empty, merge
from persona_sae.runs import DONE, RUNNING, claim, load_checkpoint, save_checkpoint
from persona_sae.tokencache import open_records
from persona_sae.tokens import load_examples


class ExamplesResult(NamedTuple):
    out: Path
    tokens: int
    d_sae: int
    dead: int  # latents that never fired
    seconds: float


def run(cfg: C.ExamplesConfig) -> ExamplesResult | None:
    """Mine ``cfg.dataset``; None on the non-main ranks under torchrun."""
    D.init()  # under torchrun: each rank mines every world-th batch, rank 0 merges and writes
    lg = D.main_log(log)
    records = open_records(cfg.dataset)  # streamed: read only as far as --tokens
    o = open_sae(cfg.sae, cfg.model, cfg.layer, cfg.hook_name, dtype=cfg.dtype, log=lg, distributed=True)
    ex = load_examples(o.model, records, cfg.max_len, cfg.tokens)
    meta = {"sae": cfg.sae, "sae_sha256": o.sha256, "model": o.model_spec, "dataset": cfg.dataset,
            "max_len": cfg.max_len, "dtype": cfg.dtype}
    t0 = time.time()
    m = mine(o.model, o.sae, ex, o.layer, o.hook, cfg.out, k=cfg.k, reservoir=cfg.reservoir,
             batch_tokens=cfg.batch_tokens, seed=cfg.seed, resume=cfg.resume, checkpoint_every=cfg.checkpoint_every,
             max_norm_ratio=cfg.max_norm_ratio or None, meta=meta, log=lg)
    if m is None:  # not rank 0
        return None
    return ExamplesResult(Path(cfg.out), m.tokens, o.sae.cfg.d_sae, int((m.fires == 0).sum()), time.time() - t0)


@torch.no_grad()
def mine(model, sae, examples, layer: int, hook: str, out: str | Path, k: int = 20, reservoir: int = 50,
         batch_tokens: int = 2048, seed: int = 0, resume: bool = False, checkpoint_every: int = 50,
         max_norm_ratio: float | None = 10.0, meta: dict | None = None, log=print) -> Mined | None:
    """Mine ``examples`` into ``out``. Under torchrun rank r mines batches r, r + world, ... (reservoir
    keys still seeded by the global batch index) and rank 0 merges (:func:`merge`) and writes; the
    result equals a single process's exactly. Returns the state on rank 0, None on the others."""

    D.init()
    out = Path(out)
    meta = dict(meta or {}, k=k, reservoir=reservoir, layer=layer, hook=hook, seed=seed, batch_tokens=batch_tokens,
                n_examples=len(examples))
    batches = plan_batches(examples, batch_tokens, seed)
    D.check_shards(len(batches), f"batches to mine (--batch-tokens {batch_tokens})")

    def open_out():  # rank 0 only: the folder, and the checkpoint to resume from
        claim(out, "manifest.json", "mining run", resume, meta)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "manifest.json", {"status": RUNNING, "config": meta})
        return load_checkpoint(out) if resume else None

    ck = D.from_main(open_out)
    d = sae.cfg.d_sae
    state, start = empty(d, k, reservoir), 0
    if ck is not None:  # the checkpoint is merged over ranks: rank 0 carries it, any world size resumes it
        start = int(ck["batch"])
        if D.is_main():
            state = Mined(*[ck["state"][i] for i in range(len(Mined._fields) - 1)], int(ck["tokens"]))
        log(f"resuming at batch {start}")
    del ck
    size = [sum(len(examples[i].ids) for i in b) for b in batches]
    bar = tqdm(total=sum(size), unit="tok", desc="mining", initial=sum(size[:start]), smoothing=0.1,
               disable=not D.is_main())
    t0 = time.time()
    pending = []  # batch states not merged yet (MERGE_EVERY at a time)
    for r0, batch in D.rounds(batches, size, bar, start):
        n = r0 + D.rank()
        for b in iter_activations(model, examples, [layer], hook=hook, batches=batch,
                                  max_norm_ratio=max_norm_ratio, bar=bar):
            if b.n_tokens:
                f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()
                pending.append(batch_state(state, f, b.example, b.pos,
                                           torch.Generator().manual_seed(seed * 1_000_003 + n)))
        if len(pending) >= MERGE_EVERY:
            state, pending = merge([state, *pending]), []
        end = min(r0 + D.world(), len(batches))
        if checkpoint_every and end // checkpoint_every > r0 // checkpoint_every and end < len(batches):
            state, pending = merge([state, *pending]), []
            state = _collect(state)
            if D.is_main():
                save_checkpoint(out, {"state": list(state[:-1]), "tokens": state.tokens, "batch": end})
    bar.close()
    state = _collect(merge([state, *pending]))
    if D.is_main():
        ids = torch.tensor([t for e in examples for t in e.ids], dtype=torch.int32)
        offsets = torch.tensor([0] + [len(e.ids) for e in examples]).cumsum(0)
        tensors = {f: getattr(state, f).contiguous() for f in Mined._fields if f != "tokens"}
        for name, t in (("examples", tensors), ("docs", {"ids": ids, "offsets": offsets})):
            with replacing(out / f"{name}.safetensors") as tmp:
                save_file(t, str(tmp))
        write_json(out / "manifest.json", {"status": DONE, "config": meta, "tokens": state.tokens,
                                           "seconds": time.time() - t0, "tokens_per_s": state.tokens / max(time.time() - t0, 1e-9)})
        for c in ("checkpoint", "checkpoint.old"):
            shutil.rmtree(out / c, ignore_errors=True)
    D.barrier()  # the folder is complete before any rank returns
    return state if D.is_main() else None
