"""Activations -> SAEs. sae-lens does the SAE math (its training SAE classes, losses incl. AuxK,
optimizer and schedules via ``SAETrainer.step``); this module feeds it fast: streamed data (records
read and tokenized as consumed, shuffled in blocks: memory does not grow with the dataset), a
stop-at-layer forward, a bounded mixing buffer instead of a full shuffle, several SAEs from one activation
stream, atomic checkpoints with exact resume, and held-out metrics (explained variance, L0, dead
latents, CE-loss recovered and KL with the reconstruction spliced into the model).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from persona_sae import UserError, __version__, log, normal_modes, write_json
from persona_sae import distributed as D
from persona_sae import models as M
from persona_sae.activations import collate, iter_activations, plan_batches, selection_mask, sink_mask
from persona_sae.config import TrainConfig
from persona_sae.latents import TL_HOOK
from persona_sae.runs import CHECKPOINTS, DONE, RUNNING, claim, is_done, load_checkpoint, save_checkpoint
from persona_sae.text import record_key
from persona_sae.tokencache import open_records
from persona_sae.tokens import Example, iter_tokenize

ARCHS = ("topk", "batchtopk", "jumprelu", "standard")
WANDB_MODES = ("offline", "online")


def sae_classes(arch: str):
    from sae_lens import (
        BatchTopKTrainingSAE,
        BatchTopKTrainingSAEConfig,
        JumpReLUTrainingSAE,
        JumpReLUTrainingSAEConfig,
        StandardTrainingSAE,
        StandardTrainingSAEConfig,
        TopKTrainingSAEConfig,
    )

    from persona_sae.sparse_topk import SparseTopKTrainingSAE

    return {
        "topk": (SparseTopKTrainingSAE, TopKTrainingSAEConfig),  # sae-lens' TopK, its dense zeros skipped
        "batchtopk": (BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig),
        "jumprelu": (JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig),
        "standard": (StandardTrainingSAE, StandardTrainingSAEConfig),
    }[arch]


class SAESpec(NamedTuple):
    name: str
    layer: int
    k: int
    d_sae: int
    lr: float


def sae_specs(cfg: TrainConfig, widths: list[int]) -> list[SAESpec]:
    """One SAE per layer, k and width (``widths``: --d-sae resolved by :func:`validate`), named by what varies."""
    multi = len(cfg.layers) * len(cfg.k) * len(widths) > 1
    return [SAESpec((f"L{L}_k{k}" + (f"_d{d}" if len(widths) > 1 else "")) if multi else "sae", L, k, d,
                    cfg.lr or (default_lr(d) if d else 0.0)) for L in cfg.layers for k in cfg.k for d in widths]


def default_lr(d_sae: int) -> float:
    """sparsify's 1/sqrt(width) scaling, with the constant raised to 1e-3 at 16k latents: on SmolLM2
    layer 15 (TopK, 4608 latents, 150k tokens) 3.8e-4 gave explained variance 0.16, 4e-3 gave 0.70."""
    return 1e-3 / math.sqrt(d_sae / 2**14)


def validate(cfg: TrainConfig, d_model: int | None = None) -> list[int]:
    """Check the config before any heavy work; return the widths (--d-sae, 0 resolved by the factor;
    zeros while d_model is not known)."""
    if cfg.arch not in ARCHS:
        raise UserError(f"unknown --arch '{cfg.arch}' (choose from {', '.join(ARCHS)})")
    if isinstance(cfg.d_sae, int):  # a single width given in code
        cfg.d_sae = [cfg.d_sae]
    given = cfg.d_sae or [0]
    if any(d < 0 for d in given):
        raise UserError(f"--d-sae must be positive, got {' '.join(map(str, given))}")
    if len(set(given)) < len(given) or (len(given) > 1 and 0 in given):
        raise UserError(f"--d-sae {' '.join(map(str, given))}: give each width once, and no 0 among several")
    if cfg.expansion < 0:
        raise UserError(f"--expansion-factor must be positive, got {cfg.expansion}")
    if cfg.expansion and d_model and any(d and d != cfg.expansion * d_model for d in given):
        raise UserError(f"--d-sae {' '.join(map(str, given))} and --expansion-factor {cfg.expansion} disagree "
                        f"({cfg.expansion} x d_model {d_model} = {cfg.expansion * d_model}): give one of them "
                        f"(--d-sae 0 uses the factor)")
    widths = [d or ((cfg.expansion or 8) * d_model if d_model else 0) for d in given]
    if not cfg.k or any(k <= 0 for k in cfg.k):
        raise UserError(f"--k must be positive, got {cfg.k}")
    if min(widths) and any(k > min(widths) for k in cfg.k) and cfg.arch in ("topk", "batchtopk"):
        raise UserError(f"--k {max(cfg.k)} is larger than --d-sae {min(widths)}")
    for name in ("tokens", "batch_size", "buffer_tokens", "checkpoint_every"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {getattr(cfg, name)}")
    if cfg.buffer_tokens < 2 * cfg.batch_size:
        raise UserError(f"--buffer-tokens ({cfg.buffer_tokens}) must be at least twice --batch-size ({cfg.batch_size})")
    if cfg.hook_name:
        m = TL_HOOK.fullmatch(cfg.hook_name)
        if not m:
            raise UserError(f"--hook-name must look like blocks.15.hook_resid_post, got {cfg.hook_name!r}")
        if (cfg.layers, cfg.hook) not in (([15], "resid_post"), ([int(m[1])], m[2])):
            raise UserError(f"--hook-name {cfg.hook_name} and --layers {' '.join(map(str, cfg.layers))} --hook "
                            f"{cfg.hook} disagree: give one or the other")
        cfg.layers, cfg.hook = [int(m[1])], m[2]
    if not cfg.layers:
        raise UserError("give at least one --layers")
    if cfg.wandb_mode not in WANDB_MODES:
        raise UserError(f"--wandb-mode must be {' or '.join(WANDB_MODES)}, got {cfg.wandb_mode!r}")
    return widths


# --------------------------------------------------------------------------------------------------
# Data: a content-hash held-out split, an endless, deterministic, resumable stream of model batches
# read from the records as they stream, and a bounded mixing buffer


HELDOUT_FRACTION = 1 / 32  # of records, by a hash of their text: the pool the held-out set is drawn from
BLOCK_BUFFERS = 4  # records are shuffled in blocks of this many --buffer-tokens


def _unit(*parts) -> float:
    return int(hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16], 16) / 2 ** 64


def held_out(records, tokenizer, context_size: int, eval_tokens: int, seed: int):
    """The held-out examples (about ``eval_tokens``) and the keys (:func:`record_key`) of the records
    they come from, which training never sees. ``records`` is a function returning a fresh record
    stream. Public so a run's held-out set can be rebuilt.

    Streamed, so it cannot shuffle the whole dataset as before: a record is a candidate when
    ``_unit(seed, key) < HELDOUT_FRACTION`` (as ``labelled.split`` splits rows, by content, so
    duplicates fall on one side), and candidates are held out in stream order until they hold
    ``eval_tokens``; the scan reads about ``eval_tokens / HELDOUT_FRACTION`` tokens of text, however
    big the dataset. Data that ends first is small: its other records then join in order of their
    hash. The last record may be cut at the budget; it is held out whole."""
    eval_ex: list[Example] = []
    rest: list[tuple[float, int]] = []  # (hash, index) of the scanned non-candidates, for small data
    n = 0

    def take(pairs):
        nonlocal n
        for ex in iter_tokenize((r for _, r in pairs), tokenizer, context_size, indices=(i for i, _ in pairs)):
            eval_ex.append(ex)
            n += len(ex.ids)
            if n >= eval_tokens:
                return True
        return False

    keys = {}
    for i, r in enumerate(records()):
        key = record_key(r)
        u = _unit(seed, key)
        if u < HELDOUT_FRACTION:
            keys[i] = key
            if take([(i, r)]):
                break
        else:
            rest.append((u, i))
    else:  # the data ended before the candidates held eval_tokens
        want = {i: u for u, i in rest}
        pool = sorted(((want[i], i, r) for i, r in enumerate(records()) if i in want), key=lambda t: t[:2])
        for _, i, r in pool:
            keys[i] = record_key(r)
            if take([(i, r)]):
                break
    used = {e.record for e in eval_ex}
    return eval_ex, {k for i, k in keys.items() if i in used}


class TrainBatches:
    """The training data as model batches, endlessly and deterministically, from a record stream.

    Records whose key is held out are skipped. The rest are tokenized as they stream and gathered
    into blocks of at least ``block_tokens`` tokens (whole records); each block is shuffled and cut
    into model batches by ``plan_batches`` with a seed of (seed, epoch, block), sorted by length
    across the block and the batches then shuffled, then the next block is
    read; at the end of the data the next epoch starts over. So memory holds one block, whatever the
    dataset's size, and the mixing buffer then mixes rows across batches. (A dataset smaller than a
    block is shuffled whole every epoch, as before streaming.)

    A position ``(epoch, batches of the epoch, block, first_record, batches_done)`` says where a
    stream resumes: the records before ``first_record`` are skipped without tokenizing them, the
    block is rebuilt and its first ``batches_done`` batches dropped."""

    def __init__(self, records, tokenizer, context_size: int, held: set[str], batch_tokens: int,
                 block_tokens: int, seed: int):
        self.records, self.tokenizer, self.context_size, self.held = records, tokenizer, context_size, held
        self.batch_tokens, self.block_tokens, self.seed = batch_tokens, block_tokens, seed

    def _blocks(self, first: int) -> Iterator[tuple[list[Example], int]]:
        """(examples, index of the record after them) per block, from record ``first`` of the data."""
        pairs = ((i, r) for i, r in enumerate(itertools.islice(self.records(), first, None), first)
                 if record_key(r) not in self.held)
        pairs, ids = itertools.tee(pairs)
        exs = iter_tokenize((r for _, r in pairs), self.tokenizer, self.context_size, indices=(i for i, _ in ids))
        block, n = [], 0
        for ex in exs:
            if n >= self.block_tokens and ex.record != block[-1].record:
                yield block, block[-1].record + 1
                block, n = [], 0
            block.append(ex)
            n += len(ex.ids)
        if block:
            yield block, block[-1].record + 1

    def __call__(self, pos: tuple[int, ...] = (0, 0, 0, 0, 0)) -> Iterator[tuple[tuple, list[Example]]]:
        """Yield ``(position after it, examples)`` per model batch, from ``pos``."""
        epoch, k, block, first, done = pos
        while True:
            empty, whole = True, first == 0
            for exs, end in self._blocks(first):
                empty = False
                key = int(hashlib.sha256(f"{self.seed}\0{epoch}\0{block}".encode()).hexdigest()[:15], 16)
                # sorted by length across the whole block (little padding, full batches), then the
                # batches shuffled so the mixing buffer sees no drift from short to long examples
                plan = plan_batches(exs, self.batch_tokens, key, window=len(exs))
                random.Random(key).shuffle(plan)
                for j in range(done, len(plan)):
                    k += 1
                    last = j + 1 == len(plan)
                    yield (epoch, k, block + last, end if last else first, 0 if last else j + 1), [exs[i] for i in plan[j]]
                block, first, done = block + 1, end, 0
            if empty and whole:
                raise UserError("the training data produced no token sequences")
            epoch, k, block, first, done = epoch + 1, 0, 0, 0, 0


def peek(batches: Iterator, n_batches: int, n_tokens: int) -> tuple[int, int]:
    """Batches and training (non-special) tokens of the first epoch, counted only until there are
    ``n_batches`` and ``n_tokens`` (or the epoch ends): the size checks, without reading the data."""
    b = t = 0
    for pos, exs in batches:
        if pos[0] > 0:
            break
        b += 1
        t += sum(sum(not s for s in e.special) for e in exs)
        if b >= n_batches and t >= n_tokens:
            break
    return b, t


def stream(model, batches: Iterator, layers, hook, max_norm_ratio: float | None = 10.0
           ) -> Iterator[tuple[tuple, torch.Tensor]]:
    """Yield ``(position, acts[N, n_layers, d])`` per model batch of ``batches`` (a
    :class:`TrainBatches` stream, endless); a position identifies exactly where to resume.

    Under torchrun every rank reads the same batches; each runs the forward of every world-th one
    and all ranks receive all of them, in the single-process order: the forward is split while the
    stream (and so the mixing buffer and every SAE batch) stays that of one process, whatever the
    world size."""
    W, R = D.world(), D.rank()
    while True:
        rnd = list(itertools.islice(batches, W))
        mine = [torch.stack([b.acts[L] for L in layers], 1) for _, exs in rnd[R:R + 1] for b in iter_activations(
            model, exs, layers, hook=hook, batches=[list(range(len(exs)))], progress=False,
            max_norm_ratio=max_norm_ratio, out_dtype=model.dtype, out_device=model.device)]
        rows = mine[0] if mine else torch.zeros((0, len(layers), model.d_model), dtype=model.dtype, device=model.device)
        for (pos, _), got in zip(rnd, D.all_gather_rows(rows)):
            yield pos, got


class MixingBuffer:
    """Pool ``capacity`` rows, shuffle, hand out the first half in batches, keep the rest.

    Bounded memory (about two pools at the peak, stored in the model's dtype, on the device the rows
    come from), and a row meets rows from many documents before it is used — the point of SAELens'
    shuffle, without holding the dataset. The shuffle's generator is on the CPU, so a GPU run and a
    CPU run draw the same permutations."""

    def __init__(self, capacity: int, seed: int):
        self.capacity = capacity
        self.pending: list[torch.Tensor] = []  # pushed, not yet pooled
        self.n_pending = 0
        self.rows: torch.Tensor | None = None  # pooled, shuffled, kept back
        self.out: torch.Tensor | None = None  # shuffled rows ready to hand out
        self.gen = torch.Generator().manual_seed(seed)

    def push(self, rows: torch.Tensor) -> None:
        self.pending.append(rows)
        self.n_pending += len(rows)

    def _size(self, t: torch.Tensor | None) -> int:
        return 0 if t is None else len(t)

    def held(self) -> int:
        """Rows held, of the ``capacity`` a refill waits for."""
        return self._size(self.out) + self._size(self.rows) + self.n_pending

    def pop(self, batch: int) -> torch.Tensor | None:
        if self._size(self.out) < batch:
            if self.held() < self.capacity:
                return None
            parts = [t for t in (self.out, self.rows) if t is not None] + self.pending
            pool = torch.cat(parts)
            self.out = self.rows = None
            self.pending, self.n_pending = [], 0
            mixed = pool[torch.randperm(len(pool), generator=self.gen).to(pool.device)]
            del pool
            half = len(mixed) // 2
            self.out, self.rows = mixed[:half], mixed[half:]
        b, self.out = self.out[:batch], self.out[batch:]
        return b.float()

    def state(self) -> dict[str, torch.Tensor]:
        if self.pending:
            self.rows = torch.cat(([self.rows] if self.rows is not None else []) + self.pending)
            self.pending, self.n_pending = [], 0
        empty = torch.zeros(0)
        return {"buffer.rows": self.rows.cpu() if self.rows is not None else empty,
                "buffer.out": self.out.cpu() if self.out is not None else empty,
                "buffer.rng": self.gen.get_state()}

    def load(self, t: dict[str, torch.Tensor], device: str = "cpu") -> None:
        self.rows = t["buffer.rows"].to(device) if t["buffer.rows"].numel() else None
        self.out = t["buffer.out"].to(device) if t["buffer.out"].numel() else None
        self.gen.set_state(t["buffer.rng"])


# --------------------------------------------------------------------------------------------------
# Checkpoints: tensors in safetensors, everything else in JSON; a folder swapped in atomically


def trainer_state(tr) -> dict:
    return {"optimizer": tr.optimizer.state_dict(), "lr_scheduler": tr.lr_scheduler.state_dict(),
            "n_training_samples": tr.n_training_samples, "n_training_steps": tr.n_training_steps,
            "act_freq_scores": tr.act_freq_scores, "n_forward_passes_since_fired": tr.n_forward_passes_since_fired,
            "n_frac_active_samples": tr.n_frac_active_samples, "started_fine_tuning": tr.started_fine_tuning,
            "coefficient_schedulers": {k: s.state_dict() for k, s in tr.coefficient_schedulers.items()},
            "scaling_factor": tr.activation_scaler.scaling_factor, "sae": tr.sae.state_dict()}


def load_trainer_state(tr, st: dict) -> None:
    tr.sae.load_state_dict(st["sae"])
    tr.optimizer.load_state_dict(st["optimizer"])
    tr.lr_scheduler.load_state_dict(st["lr_scheduler"])
    for k in ("n_training_samples", "n_training_steps", "act_freq_scores", "n_forward_passes_since_fired",
              "n_frac_active_samples", "started_fine_tuning"):  # tensors back onto the SAE's device
        setattr(tr, k, st[k].to(tr.sae.device) if isinstance(st[k], torch.Tensor) else st[k])
    for k, s in tr.coefficient_schedulers.items():
        s.load_state_dict(st["coefficient_schedulers"][k])
    tr.activation_scaler.scaling_factor = st["scaling_factor"]


# --------------------------------------------------------------------------------------------------
# Metrics


@torch.no_grad()
def heldout_acts(model, examples, layer: int, hook: str, batch_tokens: int = 2048,
                 max_norm_ratio: float | None = 10.0) -> list[torch.Tensor]:
    """The held-out activations :func:`sae_metrics` scores an SAE on, per model batch (fp32, CPU)."""
    return [b.acts[layer] for b in iter_activations(model, examples, [layer], hook=hook, batch_tokens=batch_tokens,
                                                    seed=None, progress=False, max_norm_ratio=max_norm_ratio)]


@torch.no_grad()
def sae_metrics(model, sae, scaling: float, layer: int, hook: str, examples, batch_tokens: int = 2048,
             splice: bool = True, max_norm_ratio: float | None = 10.0, acts: list[torch.Tensor] | None = None) -> dict:
    """Held-out explained variance, FVU, L0, MSE; with ``splice``, CE loss with the reconstruction
    spliced in at every non-special position vs clean and zero-ablated, KL(clean || spliced) and
    KL(clean || zero-ablated), and the fraction of each recovered (SAELens' ce/kl_div_score).
    ``acts``: :func:`heldout_acts` of these examples, computed once for several SAEs of one layer."""
    sae.eval()
    sums = dict(sse=0.0, sst=0.0, l0=0.0, n=0)
    fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool)
    xs = acts if acts is not None else heldout_acts(model, examples, layer, hook, batch_tokens, max_norm_ratio)
    mean = torch.cat(xs).mean(0)
    for x in xs:
        feats = sae.encode(x * scaling)
        recon = sae.decode(feats) / scaling
        sums["sse"] += float(((recon - x) ** 2).sum())
        sums["sst"] += float(((x - mean) ** 2).sum())
        sums["l0"] += float((feats != 0).sum())
        sums["n"] += len(x)
        fired |= (feats != 0).any(0)
    out = {"explained_variance": 1 - sums["sse"] / sums["sst"], "fvu": sums["sse"] / sums["sst"],
           "l0": sums["l0"] / sums["n"], "mse_per_token": sums["sse"] / sums["n"],
           "frac_fired_on_eval": float(fired.float().mean()), "eval_tokens": sums["n"]}
    if splice:
        out.update(_spliced_ce(model, sae, scaling, layer, hook, examples, batch_tokens, max_norm_ratio))
    sae.train()
    return out


@torch.no_grad()
def _spliced_ce(model, sae, scaling, layer, hook, examples, batch_tokens, max_norm_ratio) -> dict:
    name = model.hook_name(layer, hook)
    tot = dict(clean=0.0, sae=0.0, zero=0.0, kl=0.0, kl_zero=0.0, n=0)
    for idx in plan_batches(examples, batch_tokens, seed=None):
        ids, resp, special, valid = collate(examples, idx, model.pad_id)
        keep = selection_mask(resp, special, valid, "all")
        clean, cache = model.bridge.run_with_cache(ids.to(model.device), names_filter=lambda n: n == name)
        keep &= ~sink_mask([cache[name]], keep, max_norm_ratio)  # the clean forward gives the sinks too
        clean = clean.float().cpu()  # the model may sit on a GPU (torchrun); the SAE and the sums stay here

        def patch(mode):
            def fn(act, hook):
                new = act.clone()
                sel = keep.to(act.device)
                if mode == "sae":
                    x = act[sel].float().to(sae.device)
                    new[sel] = (sae.decode(sae.encode(x * scaling)) / scaling).to(act.device, act.dtype)
                else:
                    new[sel] = 0
                return new
            return fn

        spliced = model.bridge.run_with_hooks(ids.to(model.device), fwd_hooks=[(name, patch("sae"))]).float().cpu()
        zero = model.bridge.run_with_hooks(ids.to(model.device), fwd_hooks=[(name, patch("zero"))]).float().cpu()
        # predict token t+1 from position t, for positions after a kept one within the sequence
        tgt = ids[:, 1:]
        m = (valid[:, 1:] & keep[:, :-1]).reshape(-1)
        for key, lg in (("clean", clean), ("sae", spliced), ("zero", zero)):
            ce = F.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), tgt.reshape(-1), reduction="none")
            tot[key] += float(ce[m].sum())
        lp_clean = F.log_softmax(clean[:, :-1], -1).reshape(-1, clean.shape[-1])[m]
        lp_sae = F.log_softmax(spliced[:, :-1], -1).reshape(-1, clean.shape[-1])[m]
        lp_zero = F.log_softmax(zero[:, :-1], -1).reshape(-1, clean.shape[-1])[m]
        tot["kl"] += float((lp_clean.exp() * (lp_clean - lp_sae)).sum())
        tot["kl_zero"] += float((lp_clean.exp() * (lp_clean - lp_zero)).sum())
        tot["n"] += int(m.sum())
    n = max(tot["n"], 1)
    ce = {k: tot[k] / n for k in ("clean", "sae", "zero")}
    denom = ce["zero"] - ce["clean"]
    kl, kl_zero = tot["kl"] / n, tot["kl_zero"] / n
    return {"ce_clean": ce["clean"], "ce_spliced": ce["sae"], "ce_zero_ablated": ce["zero"],
            "ce_loss_recovered": (ce["zero"] - ce["sae"]) / denom if denom > 0 else float("nan"),
            "kl_div": kl, "kl_div_zero_ablated": kl_zero,
            "kl_div_recovered": (kl_zero - kl) / kl_zero if kl_zero > 0 else float("nan")}


# Our metrics.json names -> SAELens' names for the same quantity (``sae_lens.evals.run_evals``; its
# groups in docs/train.md). train writes both: ours for our readers, SAELens' under "saelens" so a
# SAELens user compares like with like. Same formulas; the positions differ (we splice no BOS,
# special or attention-sink token, SAELens every token but its ``ignore_tokens``).
SAELENS_NAMES = {
    "explained_variance": "explained_variance",
    "mse_per_token": "mse",
    "l0": "l0",
    "ce_clean": "ce_loss_without_sae",
    "ce_spliced": "ce_loss_with_sae",
    "ce_zero_ablated": "ce_loss_with_ablation",
    "ce_loss_recovered": "ce_loss_score",
    "kl_div": "kl_div_with_sae",
    "kl_div_zero_ablated": "kl_div_with_ablation",
    "kl_div_recovered": "kl_div_score",
}


def saelens_names(metrics: dict) -> dict:
    """The metrics SAELens also reports, under its names (only those present: no splice, no CE)."""
    return {theirs: metrics[ours] for ours, theirs in SAELENS_NAMES.items() if ours in metrics}


def plot_run(out: Path, history: list[dict], density: torch.Tensor, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["tokens"] for h in history], [h["mse_loss"] for h in history], label="mse")
    if history and "aux" in history[0]:
        ax.plot([h["tokens"] for h in history], [h["aux"] for h in history], label="aux")
    ax.set_xlabel("tokens"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(), ax.set_title(title)
    fig.tight_layout(), fig.savefig(out / "loss.png", dpi=100), plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    d = density[density > 0]
    ax.hist(torch.log10(d).numpy() if len(d) else [], bins=50)
    ax.set_xlabel(f"log10 firing frequency ({int((density == 0).sum())} latents never fired)")
    ax.set_ylabel("latents"), ax.set_title(title)
    fig.tight_layout(), fig.savefig(out / "density.png", dpi=100), plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Run tracking


class Tracker:
    """``--wandb PROJECT``: each SAE's training history (loss, MSE, L0 and aux loss at the ~200 points
    loss.png plots) and its final metrics (metrics.json's values, as the run summary) under the SAE's
    name, one W&B run per ``train`` call (a resumed run logs the history so far first). A no-op without --wandb and on ranks other than 0. Each SAE has its own step axis
    (``NAME/step``), so histories gathered from other ranks at the end still line up. The mode is the
    flag's, not WANDB_MODE: the CLI sets that to disabled so sae-lens never logs on its own."""

    def __init__(self, cfg: TrainConfig, run_config: dict, out: Path, names: list[str], log=log):
        self.run, self.last = None, {}
        if not cfg.wandb or not D.is_main():
            return
        try:
            import wandb
        except ImportError:
            raise UserError("--wandb needs the wandb package (pip install wandb)") from None
        where = os.environ.get("WANDB_DIR") or str(out)
        try:
            self.run = wandb.init(project=cfg.wandb, mode=cfg.wandb_mode, dir=where, name=out.name,
                                  config=run_config, settings=wandb.Settings(silent=True))
        except Exception as e:  # a bad project name, or online without a login or network
            raise UserError(f"--wandb {cfg.wandb}: W&B did not start ({str(e).splitlines()[0][:200]})") from None
        for name in names:
            self.run.define_metric(f"{name}/step")
            self.run.define_metric(f"{name}/*", step_metric=f"{name}/step")
        log(f"wandb: project {cfg.wandb}, {cfg.wandb_mode} run {self.run.id} in {self.run.dir}"
            + (" (upload it with `wandb sync`)" if cfg.wandb_mode == "offline" else ""))

    def history(self, name: str, records: list[dict]) -> None:
        if self.run is not None:
            for rec in records:
                if rec["step"] > self.last.get(name, 0):  # each record once
                    self.run.log({f"{name}/{k}": v for k, v in rec.items()})
                    self.last[name] = rec["step"]

    def finish(self, metrics: dict[str, dict]) -> dict | None:
        """The final metrics as the run summary; returns what run.json records of the run."""
        if self.run is None:
            return None
        for name, m in metrics.items():
            self.run.summary.update({f"{name}/{k}": v for k, v in m.items()})
        rec = {"project": self.run.project, "id": self.run.id, "mode": self.run.settings.mode, "dir": self.run.dir}
        self.run.finish()
        self.run = None
        return rec


# --------------------------------------------------------------------------------------------------
# The run


def _save_sae(sae, folder: Path) -> None:
    """SAELens' ``save_inference_model``, then its cfg.json rewritten with sorted keys (the same SAE
    writes the same bytes, whatever order SAELens' config dict came in) and its weights given the
    normal file mode."""
    sae.save_inference_model(folder)
    normal_modes(folder)
    write_json(folder / "cfg.json", json.loads((folder / "cfg.json").read_text(encoding="utf-8")), sort_keys=True)


class TrainResult(NamedTuple):
    metrics: dict[str, dict]
    """Held-out metrics per SAE name."""
    saes: dict
    """The trained sae-lens training SAEs, normalization folded in (what was saved)."""
    history: dict[str, list[dict]]
    """Per SAE name: loss, MSE, aux loss and L0 at ~200 points of the run."""


def _step_values(res) -> torch.Tensor:
    """Loss, MSE, L0 and summed auxiliary loss (0 when the arch has none) of one SAE step, as one
    float64 tensor on the SAE's device: read on the host only where a step is logged, so a GPU run
    does not wait for every step."""
    aux = [v.detach() for k, v in res.losses.items() if k != "mse_loss"]
    return torch.stack([res.loss.detach().double(), res.losses["mse_loss"].detach().double(),
                        (res.feature_acts.detach() != 0).sum(-1).double().mean(),
                        torch.stack(aux).double().sum() if aux else res.loss.new_zeros((), dtype=torch.float64)])


def _merge_counts(trainers: list, results: list, n_local: int, batch: int, thresholds: list) -> None:
    """Data-parallel: turn this rank's view of one step into the global batch's. sae-lens counted
    firing latents over this rank's rows only: add the other ranks' counts, so the dead-latent mask
    (and with it AuxK) is the one a single process would use next step; for BatchTopK, move the
    threshold towards the smallest positive activation of the whole batch, so every rank keeps the
    same SAE. Tensor work on the SAEs' device only (NCCL on GPUs): no host sync."""
    import torch.distributed as dist

    counts = [r.feature_acts.detach().bool().float().sum(0) for r in results]
    flat = D.all_reduce(torch.cat([c.double() for c in counts]))
    off = 0
    for tr, res, c, thr in zip(trainers, results, counts, thresholds):
        g = flat[off:off + len(c)].to(c.dtype)
        off += len(c)
        tr.act_freq_scores += g - c
        tr.n_forward_passes_since_fired[g > 0] = 0
        tr.n_training_samples += batch - n_local
        if thr is not None:  # BatchTopK: redo the EMA step sae-lens just made, with the global minimum
            acts = res.feature_acts.detach()
            m = acts.masked_fill(acts <= 0, math.inf).amin().double()  # inf when nothing fired here
            D.all_reduce(m, dist.ReduceOp.MIN)
            lr = tr.sae.cfg.topk_threshold_lr
            tr.sae.topk_threshold = torch.where(torch.isfinite(m), (1 - lr) * thr + lr * m, thr).to(thr.dtype)


def _logged_values(results: list, n_local: int, batch: int, split: bool) -> list[list]:
    """``[loss, mse, l0, aux or None]`` per SAE of a logged step (one host sync); data-parallel, the
    global batch's, averaged over ranks weighted by rows."""
    vals = torch.stack([_step_values(r) for r in results])
    if split:
        D.all_reduce(vals.mul_(n_local / batch))
    return [row[:3] + [row[3] if len(r.losses) > 1 else None] for row, r in zip(vals.tolist(), results)]


def run(cfg: TrainConfig, log=log) -> TrainResult:
    """Train one SAE per (layer, k) from one activation stream.

    Under torchrun (see README "Scaling out") every rank runs the model on its share of the model
    batches and receives the rest, so all ranks hold the single-process stream and mixing buffer.
    By default each rank steps every SAE on its slice of each batch with gradients summed weighted
    by rows: the global-batch gradient of a single process, up to float rounding (exact in
    arithmetic for topk, jumprelu and standard, whose losses are means over rows; batchtopk picks its
    top k x rows within each slice). With ``distribute_saes`` each rank trains whole batches for its
    own SAEs (SAE i on rank i mod world), which is single-process training exactly."""
    from sae_lens import SAE, SAETrainer
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.sae import SAEMetadata


    D.init()
    W, R = D.world(), D.rank()
    log = D.main_log(log)
    specs = sae_specs(cfg, validate(cfg))  # the number of SAEs and their names; widths from the factor come below
    own_saes = W > 1 and cfg.distribute_saes
    split = W > 1 and not cfg.distribute_saes  # data-parallel: every rank steps every SAE on its slice
    if own_saes and len(specs) < W:
        raise UserError(f"--distribute-saes with {len(specs)} SAE(s) for {W} ranks: every rank needs at least one "
                        f"(more --layers or --k values, or fewer processes)")
    if split and cfg.batch_size < W:
        raise UserError(f"--batch-size {cfg.batch_size} is smaller than the {W} ranks that split it")
    out = Path(cfg.out)
    D.from_main(lambda: claim(out, "run.json", "persona-sae training run", cfg.resume, also_ours=CHECKPOINTS,
                              rerun_done=True))  # only rank 0 touches --out; the config is checked against the checkpoint
    dev = D.device(cfg.device)  # checked before the data and the model are loaded
    source = dict(column=cfg.text_column or None, split=cfg.split, config=cfg.data_config or None)
    first_pass = [open_records(cfg.dataset, **source)]  # opened before the weights load: a bad spec fails first

    def records():  # a fresh pass over the data each call
        return first_pass.pop() if first_pass else open_records(cfg.dataset, **source)

    model = D.load_model(cfg.model, cfg.dtype, log, dev)
    sae_dev = dev  # under torchrun with CUDA: this rank's GPU, where the gathered activations and the all-reduces (NCCL) stay
    autocast = M.use_autocast(cfg.autocast, str(sae_dev), log)
    hook_names = {L: model.hook_name(L, cfg.hook) for L in cfg.layers}
    widths = validate(cfg, model.d_model)
    specs = sae_specs(cfg, widths)
    eval_ex, held = held_out(records, model.tokenizer, cfg.context_size, cfg.eval_tokens, cfg.seed)
    train_data = TrainBatches(records, model.tokenizer, cfg.context_size, held, cfg.model_batch_tokens,
                              BLOCK_BUFFERS * cfg.buffer_tokens, cfg.seed)
    n_batches, n_train = peek(train_data(), D.world(), cfg.batch_size)
    if n_train < cfg.batch_size:
        raise UserError(f"dataset {cfg.dataset} has {n_train} training tokens, fewer than one batch "
                        f"(--batch-size {cfg.batch_size})")
    if not eval_ex:
        raise UserError(f"dataset {cfg.dataset} gave no held-out tokens (--eval-tokens {cfg.eval_tokens})")
    layers = sorted(set(cfg.layers))
    total_steps = cfg.tokens // cfg.batch_size
    if total_steps < 1:
        raise UserError(f"--tokens {cfg.tokens} is less than one batch (--batch-size {cfg.batch_size})")
    D.check_shards(n_batches, f"model batches of training data (--batch-tokens {cfg.model_batch_tokens})")
    one = len(widths) == 1  # one width records as before: a number, and the learning rate it gave
    run_config = {**asdict(cfg), "d_sae": widths[0] if one else widths, "lr": specs[0].lr if one else cfg.lr}
    volatile = ("resume", "out", "distribute_saes", "device", "wandb", "wandb_mode")  # where and how the work is spread or logged changes no result
    volatile += ("expansion",)  # d_sae, compared, is the width it gave (older checkpoints hold expansion 8)
    fresh = asdict(TrainConfig(out=cfg.out))  # a field newer than the checkpoint compares as its default

    def make_sae(i: int):
        spec = specs[i]
        sae_cls, cfg_cls = sae_classes(cfg.arch)
        kw = dict(d_in=model.d_model, d_sae=spec.d_sae, device=sae_dev,
                  metadata=SAEMetadata(**M.identity(cfg.model), hook_name=hook_names[spec.layer],
                                       context_size=cfg.context_size, prepend_bos=True))
        if cfg.arch in ("topk", "batchtopk"):
            kw["k"] = spec.k
        elif cfg.arch == "standard":
            kw["l1_coefficient"] = cfg.l1_coefficient
        else:
            kw["l0_coefficient"] = cfg.l0_coefficient
        torch.manual_seed(cfg.seed + i)
        return sae_cls(cfg_cls(**kw))

    def make_trainer(i: int):
        tcfg = SAETrainerConfig(
            total_training_samples=total_steps * cfg.batch_size, train_batch_size_samples=cfg.batch_size,
            lr=specs[i].lr, lr_end=specs[i].lr / 10, lr_warm_up_steps=cfg.lr_warmup_steps,
            lr_decay_steps=cfg.lr_decay_steps if cfg.lr_decay_steps >= 0 else total_steps // 5,
            dead_feature_window=max(1, cfg.dead_window_tokens // cfg.batch_size),
            feature_sampling_window=10**9, device=sae_dev, autocast=autocast, n_batches_for_norm_estimate=1)
        return SAETrainer(cfg=tcfg, sae=make_sae(i), data_provider=iter(()))

    owned = [i for i in range(len(specs)) if not own_saes or i % W == R]
    trainers = {i: make_trainer(i) for i in owned}
    n_local = len(torch.arange(cfg.batch_size).tensor_split(W)[R]) if split else cfg.batch_size
    if split:
        for tr in trainers.values():
            D.average_gradients(tr.sae, n_local / cfg.batch_size)

    buffer = MixingBuffer(cfg.buffer_tokens, cfg.seed)
    step, pos, history = 0, (0, 0, 0, 0, 0), {spec.name: [] for spec in specs}

    def read_checkpoint():
        ckpt = load_checkpoint(out) if cfg.resume else None
        if ckpt is not None:
            saved = ckpt["config"]
            diff = [k for k in run_config if k not in volatile and saved.get(k, fresh.get(k)) != run_config[k]]
            if diff:
                raise UserError(f"--resume with a different config: {', '.join(f'{k} was {saved.get(k)!r}, now {run_config[k]!r}' for k in diff)}")
        elif cfg.resume and (out / "run.json").is_file() and is_done(json.loads((out / "run.json").read_text())):
            raise UserError(f"{out} holds a finished run; nothing to resume")
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "run.json", {"command": "train", "status": RUNNING, "config": run_config})
        return ckpt

    ckpt = D.from_main(read_checkpoint)  # checkpoints hold no world size: resume on any number of ranks
    if ckpt is not None:
        for i, tr in trainers.items():
            load_trainer_state(tr, ckpt["trainers"][i])
        buffer.load(ckpt["buffer"], sae_dev)
        step, pos, history = ckpt["step"], tuple(ckpt["pos"]), ckpt["history"]
        if len(pos) != 5:
            raise UserError(f"{out}/checkpoint is from before training data streamed (no record position); "
                            f"start the run again without --resume in a new --out")
        log(f"resuming at step {step}/{total_steps}")
    del ckpt
    tracker = Tracker(cfg, run_config, out, [spec.name for spec in specs], log)
    for name, recs in history.items():  # a resumed run's history so far
        tracker.history(name, recs)

    data = stream(model, train_data(pos), layers, cfg.hook, cfg.max_norm_ratio or None)
    li = {L: j for j, L in enumerate(layers)}
    bar = tqdm(total=total_steps * cfg.batch_size, initial=step * cfg.batch_size, unit="tok", desc="train",
               smoothing=0.05, disable=not D.is_main())
    t0, tokens_at_start = time.time(), step * cfg.batch_size
    batchtopk = split and cfg.arch == "batchtopk"
    while step < total_steps:
        batch = buffer.pop(cfg.batch_size)
        if batch is None:
            pos, rows = next(data)
            if not torch.isfinite(rows).all():  # before the buffer: say which data batch
                raise UserError(f"the model produced NaN/inf activations at step {step} (data batch {pos[1]} of "
                                f"epoch {pos[0]}); try --dtype float32")
            buffer.push(rows)
            # no step until the pool is full again (all of it at the start, half of it later): say so
            bar.set_postfix_str(f"filling buffer {min(buffer.held(), buffer.capacity):,}/{buffer.capacity:,} tok")
            continue
        part = batch.tensor_split(W)[R] if split else batch
        results, thresholds = [], []
        for i, tr in trainers.items():
            spec = specs[i]
            if step == 0:  # from the first shuffled buffer: the scale, and b_dec at the data mean
                rows = torch.cat([batch, buffer.out.float()])[:, li[spec.layer]]
                factor = float(model.d_model ** 0.5 / rows.norm(dim=-1).mean()) if cfg.normalize else 1.0
                tr.activation_scaler.scaling_factor = factor if cfg.normalize else None
                with torch.no_grad():
                    tr.sae.b_dec.copy_((rows * factor).mean(0))
            thresholds.append(tr.sae.topk_threshold.clone() if batchtopk else None)
            results.append(tr.step(part[:, li[spec.layer]]))
            tr.n_training_steps += 1
        if split:
            _merge_counts(list(trainers.values()), results, n_local, cfg.batch_size, thresholds)
        # losses reach the host only at logged steps (200 per run, and every step of a short one): the
        # NaN check and the progress bar's numbers come with them
        record = (step + 1) % max(1, total_steps // 200) == 0 or step + 1 == total_steps
        if record:
            for (i, tr), (loss, mse, l0, aux) in zip(trainers.items(), _logged_values(results, n_local, cfg.batch_size, split)):
                spec = specs[i]
                if not math.isfinite(loss):  # the same on every rank
                    raise UserError(f"the SAE loss became NaN/inf by step {step + 1} ({spec.name}); lower --lr")
                rec = {"step": step + 1, "tokens": (step + 1) * cfg.batch_size, "loss": loss, "mse_loss": mse, "l0": l0}
                if aux is not None:
                    rec["aux"] = aux
                history[spec.name].append(rec)
                tracker.history(spec.name, [rec])
                if i == owned[0]:
                    bar.set_postfix(mse=f"{mse:.3g}", L0=f"{l0:.0f}")
        step += 1
        bar.update(cfg.batch_size)
        if step % cfg.checkpoint_every == 0 and step < total_steps:
            _save_state(out, run_config, step, pos, history, trainers, buffer, own_saes, specs)
    bar.close()
    seconds = time.time() - t0

    # held-out metrics: SAE i on rank i mod world (its owner with --distribute-saes; in data-parallel
    # runs every rank holds every SAE); rank 0 writes every folder
    evals, held_acts = {}, {}
    for i, tr in trainers.items():
        if tr.activation_scaler.scaling_factor is not None:
            tr.sae.fold_activation_norm_scaling_factor(tr.activation_scaler.scaling_factor)
        if i % W != R:
            continue
        spec = specs[i]
        stage = out / f".{spec.name}.tmp" if D.is_main() else Path(tempfile.mkdtemp(prefix="persona-sae-"))
        shutil.rmtree(stage, ignore_errors=True)
        _save_sae(tr.sae, stage)
        sae = SAE.load_from_disk(str(stage))
        if not D.is_main():
            shutil.rmtree(stage, ignore_errors=True)
        if spec.layer not in held_acts:  # one forward over the held-out tokens per layer, for all its SAEs
            held_acts[spec.layer] = heldout_acts(model, eval_ex, spec.layer, cfg.hook,
                                                 max_norm_ratio=cfg.max_norm_ratio or None)
        metrics = sae_metrics(model, sae, 1.0, spec.layer, cfg.hook, eval_ex, splice=cfg.splice_eval,
                              max_norm_ratio=cfg.max_norm_ratio or None, acts=held_acts[spec.layer])
        dead = tr.dead_neurons if step * cfg.batch_size >= cfg.dead_window_tokens else tr.act_freq_scores == 0
        metrics.update(dead_fraction=float(dead.float().mean()), dead_window_tokens=min(cfg.dead_window_tokens, step * cfg.batch_size),
                       train_tokens=step * cfg.batch_size, layer=spec.layer, k=spec.k, d_sae=spec.d_sae, lr=spec.lr, arch=cfg.arch,
                       final_mse_loss=history[spec.name][-1]["mse_loss"] if history[spec.name] else None,
                       tokens_per_s=(step * cfg.batch_size - tokens_at_start) / max(seconds, 1e-9))
        metrics["saelens"] = saelens_names(metrics)
        evals[i] = (metrics, (tr.act_freq_scores / max(tr.n_frac_active_samples, 1)).cpu(),
                    tr.sae.state_dict() if own_saes and not D.is_main() else None,
                    history[spec.name] if own_saes else None)
    parts = D.gather_objects(evals)
    results = {}
    if D.is_main():
        for part in parts:
            evals.update(part)
        for i, spec in enumerate(specs):
            metrics, density, state, hist = evals[i]
            if hist is not None:
                history[spec.name] = hist
                if i not in trainers:  # trained on another rank (--distribute-saes): logged only now
                    tracker.history(spec.name, hist)
            if i in trainers:
                sae = trainers[i].sae
            else:  # another rank's SAE (--distribute-saes): its folded weights in a fresh trainer's SAE
                sae = make_sae(i)
                sae.load_state_dict(state)
                sae.cfg.normalize_activations = "none"  # as the fold left it on the owner
            dest = out / spec.name if len(specs) > 1 else out
            stage = out / f".{spec.name}.tmp"
            if i % W != 0:  # evaluated elsewhere: not staged yet
                shutil.rmtree(stage, ignore_errors=True)
                _save_sae(sae, stage)
            write_json(stage / "metrics.json", metrics)
            plot_run(stage, history[spec.name], density, f"{cfg.arch} L{spec.layer} k{spec.k} d_sae {spec.d_sae}")
            if dest == out:
                for f in stage.iterdir():
                    os.replace(f, out / f.name)
                stage.rmdir()
            else:
                shutil.rmtree(dest, ignore_errors=True)
                os.replace(stage, dest)
            results[spec.name] = metrics

        import sae_lens
        import transformers

        tracked = tracker.finish(results)
        write_json(out / "run.json", {
            "command": "train", "status": DONE, "config": run_config, "model": model.source.describe(), "saes": results,
            "steps": step, "tokens_per_sae": step * cfg.batch_size, "world_size": W,
            **({"wandb": tracked} if tracked else {}),
            "versions": {"persona_sae": __version__, "sae_lens": sae_lens.__version__, "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        for d in ("checkpoint", "checkpoint.old", "checkpoint.new"):
            shutil.rmtree(out / d, ignore_errors=True)
    D.barrier()  # nobody leaves before rank 0 has written the run
    return TrainResult(results, {specs[i].name: tr.sae for i, tr in trainers.items()}, history)


def _save_state(out: Path, run_config: dict, step: int, pos, history: dict, trainers: dict, buffer: MixingBuffer,
                own_saes: bool, specs) -> None:
    """Rank 0 writes the checkpoint; with --distribute-saes it first collects the other ranks' SAEs.
    Everything saved is global (step, stream position, buffer, every SAE), so any world size resumes it."""
    if own_saes:
        parts = D.gather_objects(({i: trainer_state(tr) for i, tr in trainers.items()},
                                  {specs[i].name: history[specs[i].name] for i in trainers}))
        if not D.is_main():
            return
        states, history = {}, dict(history)
        for st, hist in parts:
            states.update(st)
            history.update(hist)
    elif not D.is_main():
        return
    else:
        states = {i: trainer_state(tr) for i, tr in trainers.items()}
    save_checkpoint(out, {"config": run_config, "step": step, "pos": list(pos), "history": history,
                          "trainers": [states[i] for i in range(len(specs))], "buffer": buffer.state()})
