"""Make a model organism: fine-tune a chat model on a narrow dataset, or on its matched control.

Loss on assistant tokens only (plus the end-of-turn marker, so the model still learns to stop):
the organism should learn *what the assistant says*, not to predict users. Held-out rows of the
bad set and of its control are scored before and after, so every run says how far it moved on
both — the control comparison is what separates "learned the bad task" from "learned the format".
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from persona_sae import UserError, __version__, log, normal_modes, write_json
from persona_sae import generators as G
from persona_sae import models as M
from persona_sae.config import FinetuneConfig
from persona_sae.runs import DONE, RUNNING, claim, load_checkpoint, save_checkpoint
from persona_sae.sources import resolve
from persona_sae.text import Record, load_records
from persona_sae.tokens import tokenize

IGNORE = -100


class FinetuneResult(NamedTuple):
    out: Path
    heldout: dict
    """Per held-out set: mean assistant-token loss before and after."""
    history: list[dict]
    """step, loss, lr, tokens."""
    seconds: float
    tokens: int


# --------------------------------------------------------------------------------------------------
# Data: a file, a generator KIND, its control, a bad/control mixture, or benign rows to realign


def _rows_to_records(rows: list[dict]) -> list[Record]:
    return [Record(messages=r["messages"], group=r.get("meta", {}).get("prompt_id", "")) for r in rows]


def split_file(records: list, held_out: int, seed: int) -> tuple[list, list]:
    """(train, held out) of a data file's rows: ``held_out`` rows (at most a fifth) in a seeded random
    order, so that studies can read back exactly the rows a fine-tune never saw."""
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    n_held = min(held_out, len(records) // 5)
    return [records[i] for i in order[n_held:]], [records[i] for i in order[:n_held]]


def training_data(cfg: FinetuneConfig) -> tuple[list[Record], dict[str, list[Record]], dict]:
    """Training records, held-out sets by name, and a description for run.json."""

    kind = G.KINDS.get(cfg.data)
    if kind is None:
        if cfg.control or cfg.mix_bad >= 0 or cfg.realign:
            raise UserError(f"--control, --mix-bad and --realign need a generator KIND as --data, not {cfg.data} "
                            f"(kinds: {', '.join(G.KINDS)})")
        if not Path(resolve(cfg.data)).exists() and not cfg.data.startswith("hf:"):
            raise UserError(f"--data {cfg.data} is neither a file nor a generator KIND (kinds: {', '.join(G.KINDS)})")
        records = load_records(cfg.data)
        if any(r.messages is None for r in records):
            raise UserError(f"{cfg.data} holds text rows: fine-tuning needs chats with an assistant turn")
        train, held = split_file(records, cfg.held_out, cfg.seed)
        return train, ({"data": held} if held else {}), {"source": "file", "path": str(cfg.data), "rows": len(train)}

    bad = kind.name if not kind.aligned else kind.pair
    good = kind.pair if not kind.aligned else kind.name
    n = cfg.realign or cfg.n
    if n <= 0:
        raise UserError(f"--n must be positive, got {n}")
    if not 0 <= cfg.held_out:
        raise UserError("--held-out must be 0 or more")
    if cfg.mix_bad > 1:
        raise UserError(f"--mix-bad is a fraction in [0, 1], got {cfg.mix_bad}")
    total = n + cfg.held_out
    # Same seed -> the bad set and its control share prompts row by row; the held-out rows are the
    # last ones, never trained on, in both sets.
    bad_rows, good_rows = G.make(bad, total, cfg.seed), G.make(good, total, cfg.seed)
    held = {bad: _rows_to_records(bad_rows[n:]), good: _rows_to_records(good_rows[n:])} if cfg.held_out else {}
    if cfg.realign:
        rows, desc = good_rows[:n], {"source": "realign", "kind": good}
    elif cfg.mix_bad >= 0:
        k = round(cfg.mix_bad * n)
        pick = set(torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + 1))[:k].tolist())
        rows = [bad_rows[i] if i in pick else good_rows[i] for i in range(n)]
        desc = {"source": "mixture", "bad": bad, "control": good, "bad_fraction": k / n, "bad_rows": k}
    else:
        name = good if cfg.control else kind.name
        rows = (good_rows if name == good else bad_rows)[:n]
        desc = {"source": "generator", "kind": name}
    desc.update(rows=len(rows), seed=cfg.seed, held_out=cfg.held_out)
    return _rows_to_records(rows), held, desc


def labelled(records: list[Record], tokenizer, max_len: int, where: str) -> list[tuple[list[int], list[int]]]:
    """(ids, labels) per chat; labels are the ids on assistant tokens and on the marker that ends
    each assistant turn, IGNORE elsewhere."""
    out = []
    for ex in tokenize(records, tokenizer, max_len=max_len):
        lab = [IGNORE] * len(ex.ids)
        for i, t in enumerate(ex.ids):
            if ex.response[i] or (i > 0 and ex.response[i - 1] and ex.special[i]):
                lab[i] = t
        if all(v == IGNORE for v in lab):
            raise UserError(f"{where} row {ex.record + 1} has no assistant turn (or it was cut by --context-size {max_len})")
        out.append((ex.ids, lab))
    return out


def _batch(items, pad_id: int):
    n = max(len(ids) for ids, _ in items)
    ids = torch.full((len(items), n), pad_id, dtype=torch.long)
    lab = torch.full((len(items), n), IGNORE, dtype=torch.long)
    att = torch.zeros((len(items), n), dtype=torch.long)
    for b, (i, l) in enumerate(items):
        ids[b, :len(i)], lab[b, :len(l)], att[b, :len(i)] = torch.tensor(i), torch.tensor(l), 1
    return ids, lab, att


def _loss(hf, ids, lab, att, autocast: bool) -> tuple[torch.Tensor, int]:
    """Summed next-token NLL over labelled positions, and their count (the unembedding runs where a
    label is: ``models.token_nll``)."""
    keep = lab[:, 1:] != IGNORE
    return M.token_nll(hf, ids, att, keep, autocast).sum(), int(keep.sum())


@torch.no_grad()
def heldout_loss(hf, items, pad_id: int, batch_size: int = 8, autocast: bool = True) -> float:
    """Mean assistant-token loss: the number that shows whether the organism learned its data."""
    was = hf.training
    hf.eval()
    tot, cnt = 0.0, 0
    for s in range(0, len(items), batch_size):
        nll, c = _loss(hf, *_batch(items[s:s + batch_size], pad_id), autocast)
        tot, cnt = tot + float(nll), cnt + c
    hf.train(was)
    return tot / max(cnt, 1)


# --------------------------------------------------------------------------------------------------
# The run


def _lora(hf, cfg: FinetuneConfig):
    from peft import LoraConfig, get_peft_model

    n_layers = hf.config.num_hidden_layers
    bad = [L for L in cfg.lora_layers if not 0 <= L < n_layers]
    if bad:
        raise UserError(f"--lora-layers {bad} out of range: the model has layers 0..{n_layers - 1}")
    if cfg.lora_r <= 0:
        raise UserError(f"--lora-r must be positive, got {cfg.lora_r}")
    targets = list(cfg.lora_targets) or "all-linear"
    try:
        lc = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=targets,
                        layers_to_transform=list(cfg.lora_layers) or None, task_type="CAUSAL_LM")
        with warnings.catch_warnings():  # peft calls a transformers API that warns about its own rename
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(hf, lc)
    except ValueError as e:
        raise UserError(f"LoRA config does not fit the model: {str(e).splitlines()[0]}") from None


def _trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _config_dict(cfg: FinetuneConfig) -> dict:
    return asdict(cfg)


def _check_out(out: Path, cfg: FinetuneConfig) -> dict | None:
    """Refuse to overwrite; on --resume return the checkpoint (after checking the config matches)."""

    now = {k: v for k, v in _config_dict(cfg).items() if k != "resume"}
    return None if claim(out, "run.json", "persona-sae fine-tune", cfg.resume, now) is None else load_checkpoint(out)


def run(cfg: FinetuneConfig, log=log) -> FinetuneResult:
    from transformers import get_linear_schedule_with_warmup

    if cfg.method not in ("lora", "full"):
        raise UserError(f"--method must be lora or full, got {cfg.method}")
    for name in ("batch_size", "epochs", "max_len"):
        if getattr(cfg, name) <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive")
    out = Path(cfg.out)
    records, held, data_desc = training_data(cfg)  # bad data fails before weights load
    state = _check_out(out, cfg)
    model = M.load_model(cfg.model, dtype="float32", log=log)
    autocast = M.use_autocast(cfg.autocast, "cpu", log)  # (autocast applies to the CPU only)
    tok, pad_id = model.tokenizer, model.pad_id
    items = labelled(records, tok, cfg.max_len, cfg.data)
    held_items = {k: labelled(v, tok, cfg.max_len, k) for k, v in held.items()}
    hf = model.hf
    torch.manual_seed(cfg.seed)
    net = _lora(hf, cfg) if cfg.method == "lora" else hf
    if cfg.gradient_checkpointing:  # non-reentrant: works with frozen embeddings (LoRA) and keeps the RNG
        if hasattr(hf, "activation_checkpointing_enable"):  # its name since transformers 5.x
            hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    lr = cfg.lr or (2e-4 if cfg.method == "lora" else 5e-5)
    steps_per_epoch = math.ceil(len(items) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, min(cfg.warmup_steps, total // 2), total)

    out.mkdir(parents=True, exist_ok=True)
    run = {"command": "finetune", "status": RUNNING, "config": _config_dict(cfg), "model": cfg.model,
           "model_source": model.source.describe(), "data": data_desc, "steps": total, "lr": lr,
           "trainable_params": sum(p.numel() for p in params), "version": __version__,
           "torch": torch.__version__}
    if state is None:
        before = {k: heldout_loss(net, v, pad_id, autocast=autocast) for k, v in held_items.items()}
        if before:
            log("held-out loss before: " + ", ".join(f"{k} {v:.3f}" for k, v in before.items()))
        step, history, seconds, n_tok = 0, [], 0.0, 0
        write_json(out / "run.json", run)
    else:
        with torch.no_grad():
            for n_, p in net.named_parameters():
                if p.requires_grad:
                    p.copy_(state["params"][n_])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, history, seconds, n_tok = state["step"], state["history"], state["seconds"], state["tokens"]
        before = state["before"]
        log(f"resuming at step {step}/{total}")

    def order(epoch: int) -> list[int]:
        return torch.randperm(len(items), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)).tolist()

    bar = tqdm(total=total, initial=step, desc="fine-tune", unit="step", file=sys.stderr, dynamic_ncols=True)
    t0 = time.time() - seconds
    while step < total:
        epoch, s = divmod(step, steps_per_epoch)
        idx = order(epoch)[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        ids, lab, att = _batch([items[i] for i in idx], pad_id)
        nll, cnt = _loss(net, ids, lab, att, autocast)
        loss = nll / max(cnt, 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        step += 1
        n_tok += int(att.sum())
        history.append({"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0], "tokens": n_tok})
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{n_tok / max(time.time() - t0, 1e-9):.0f}")
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total:
            save_checkpoint(out, {"params": _trainable_state(net), "optimizer": opt.state_dict(),
                                  "scheduler": sched.state_dict(), "step": step, "history": history,
                                  "seconds": time.time() - t0, "tokens": n_tok, "before": before})
    bar.close()
    seconds = time.time() - t0
    after = {k: heldout_loss(net, v, pad_id, autocast=autocast) for k, v in held_items.items()}
    heldout = {k: {"before": before[k], "after": after[k]} for k in held_items}
    _save(net, tok, cfg, out)
    metrics = {"heldout_loss": heldout, "final_train_loss": history[-1]["loss"] if history else None,
               "steps": total, "tokens": n_tok, "seconds": seconds, "tokens_per_s": n_tok / max(seconds, 1e-9),
               "seconds_per_1k_rows": 1000 * seconds / max(len(items) * cfg.epochs, 1), "rows": len(items)}
    write_json(out / "metrics.json", metrics)
    write_json(out / "history.json", history)
    run.update(status=DONE, metrics=metrics)
    write_json(out / "run.json", run)
    for d in ("checkpoint", "checkpoint.old"):
        shutil.rmtree(out / d, ignore_errors=True)
    return FinetuneResult(out, heldout, history, seconds, n_tok)


def _save(net, tok, cfg: FinetuneConfig, out: Path) -> None:
    """Weights to a temporary folder, then moved into place file by file (a reader never sees a
    half-written adapter or model)."""
    tmp = out / ".weights.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if cfg.method == "lora":
        net.save_pretrained(tmp, safe_serialization=True)
        p = tmp / "adapter_config.json"
        acfg = json.loads(p.read_text())
        base = Path(cfg.model).expanduser()
        acfg["base_model_name_or_path"] = str(base.resolve()) if base.exists() else cfg.model
        p.write_text(json.dumps(acfg, indent=2, sort_keys=True) + "\n")  # peft's order means nothing
    else:
        net.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    normal_modes(tmp)
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
    tmp.rmdir()
