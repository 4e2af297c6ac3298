"""Top-activating examples for every latent at once, in one streaming pass.

Per latent: the top-k tokens (value, example, position), a uniform reservoir of its firing tokens
(binned later into 10 activation intervals of its max, for the quantile view), a histogram of log10
activations and the firing count. Memory is O(d_sae x (k + reservoir + bins)); the token ids of the
corpus are stored once, so any context window can be cut at display time. The pass is resumable and
its random reservoir keys come from (seed, batch), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import torch

from persona_sae import UserError, write_json

HIST_EDGES = torch.linspace(-3, 3, 61)  # log10 activation bins: 1e-3 .. 1e3
N_BINS = 10
BEFORE, AFTER = 16, 6  # context shown around an activating token; the top examples keep the latent's
W = BEFORE + 1 + AFTER  # activation on every token of it, so pages need no second forward


class Mined(NamedTuple):
    top_values: torch.Tensor  # [d, k] descending; -inf where fewer than k tokens fired
    top_example: torch.Tensor  # [d, k]
    top_pos: torch.Tensor  # [d, k]
    top_window: torch.Tensor  # [d, k, W] the latent's activation at positions pos-BEFORE .. pos+AFTER (fp16)
    res_values: torch.Tensor  # [d, R] a uniform sample of firing tokens (-inf: empty slot)
    res_example: torch.Tensor
    res_pos: torch.Tensor
    res_key: torch.Tensor  # [d, R] the random keys (smallest kept)
    hist: torch.Tensor  # [d, len(HIST_EDGES) + 1] counts of log10 activation
    fires: torch.Tensor  # [d]
    tokens: int


def empty(d: int, k: int, r: int) -> Mined:
    ninf = lambda n: torch.full((d, n), -float("inf"))  # noqa: E731
    zeros = lambda n: torch.zeros((d, n), dtype=torch.long)  # noqa: E731
    return Mined(ninf(k), zeros(k), zeros(k), torch.zeros((d, k, W), dtype=torch.float16), ninf(r), zeros(r), zeros(r), torch.full((d, r), float("inf")),
                 torch.zeros((d, len(HIST_EDGES) + 1), dtype=torch.long), torch.zeros(d, dtype=torch.long), 0)


def update(m: Mined, f: torch.Tensor, example: torch.Tensor, pos: torch.Tensor, gen: torch.Generator) -> Mined:
    """Fold one batch of latent activations ``f`` [N, d] into the running state."""
    N, d = f.shape
    k, r = m.top_values.shape[1], m.res_values.shape[1]
    fired = f > 0
    # top-k: the batch's best k per latent, merged with the running best k
    v = torch.where(fired, f, torch.full_like(f, -float("inf")))
    kk = min(k, N)
    bv, bi = v.topk(kk, dim=0)  # [kk, d]
    cat_v = torch.cat([m.top_values, bv.T], 1)
    cat_e = torch.cat([m.top_example, example[bi].T], 1)
    cat_p = torch.cat([m.top_pos, pos[bi].T], 1)
    # each candidate's activation window, read from the batch (a batch holds whole sequences)
    ex_ids, ex_local = example.unique(return_inverse=True)
    table = torch.full((len(ex_ids), int(pos.max()) + 1 + BEFORE + AFTER), -1, dtype=torch.long)
    table[ex_local, pos + BEFORE] = torch.arange(N)
    offs = torch.arange(W)  # window slot w reads position pos - BEFORE + w, stored at column pos + w
    rows = table[ex_local[bi][..., None], pos[bi][..., None] + offs]  # [kk, d, W]
    lat = torch.arange(d)[None, :, None].expand_as(rows)
    win = torch.where(rows >= 0, f[rows.clamp(min=0), lat], torch.zeros(())).clamp(min=0).half()
    cat_w = torch.cat([m.top_window, win.permute(1, 0, 2)], 1)  # [d, k + kk, W]
    tv, ti = cat_v.topk(k, dim=1)
    top = (tv, cat_e.gather(1, ti), cat_p.gather(1, ti), cat_w.gather(1, ti[..., None].expand(-1, -1, W)))
    # reservoir: keep the r smallest random keys among firing tokens (a uniform sample without replacement)
    keys = torch.rand((N, d), generator=gen)
    keys = torch.where(fired, keys, torch.full_like(keys, float("inf")))
    rr = min(r, N)
    bk, bj = keys.topk(rr, dim=0, largest=False)
    cat_k = torch.cat([m.res_key, bk.T], 1)
    cat_rv = torch.cat([m.res_values, v.gather(0, bj).T], 1)
    cat_re = torch.cat([m.res_example, example[bj].T], 1)
    cat_rp = torch.cat([m.res_pos, pos[bj].T], 1)
    rk, ri = cat_k.topk(r, dim=1, largest=False)
    res = (cat_rv.gather(1, ri), cat_re.gather(1, ri), cat_rp.gather(1, ri), rk)
    # histogram of log10 activation over firing tokens
    which = fired.nonzero()[:, 1]
    b = torch.bucketize(f[fired].log10(), HIST_EDGES)
    hist = m.hist.clone().view(-1)
    hist.index_add_(0, which * (len(HIST_EDGES) + 1) + b, torch.ones_like(b))
    return Mined(*top, *res, hist.view_as(m.hist), m.fires + fired.sum(0), m.tokens + N)


def quantile_bins(values: torch.Tensor, max_act: torch.Tensor) -> torch.Tensor:
    """Interval index 0..9 of each reservoir value as a fraction of its latent's max (-1: empty)."""
    frac = values / max_act[:, None].clamp(min=1e-12)
    b = (frac * N_BINS).floor().clamp(0, N_BINS - 1).long()
    return torch.where(torch.isfinite(values), b, torch.full_like(b, -1))


# --------------------------------------------------------------------------------------------------
# The mining run and its folder: examples.safetensors (state), docs.safetensors (token ids), manifest.json


@torch.no_grad()
def mine(model, sae, examples, layer: int, hook: str, out: str | Path, k: int = 20, reservoir: int = 50,
         batch_tokens: int = 2048, seed: int = 0, resume: bool = False, checkpoint_every: int = 50,
         max_norm_ratio: float | None = 10.0, meta: dict | None = None, log=print) -> Mined:
    from safetensors.torch import save_file
    from tqdm.auto import tqdm

    from persona_sae.activations import iter_activations, plan_batches
    from persona_sae.train import load_checkpoint, save_checkpoint

    out = Path(out)
    meta = dict(meta or {}, k=k, reservoir=reservoir, layer=layer, hook=hook, seed=seed, batch_tokens=batch_tokens,
                n_examples=len(examples))
    if out.exists() and (out / "manifest.json").is_file():
        prev = json.loads((out / "manifest.json").read_text())
        if prev.get("status") == "done":
            raise UserError(f"{out} already holds mined examples; choose another --out")
        if not resume:
            raise UserError(f"{out} holds an unfinished mining run: pass --resume or choose another --out")
        diff = [key for key in meta if prev.get("config", {}).get(key) != meta[key]]
        if diff:
            raise UserError(f"--resume with a different config ({', '.join(diff)})")
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty and holds no mining run")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "manifest.json", {"status": "running", "config": meta})
    d = sae.cfg.d_sae
    state, start = empty(d, k, reservoir), 0
    ck = load_checkpoint(out) if resume else None
    if ck is not None:
        state, start = Mined(*[ck["state"][i] for i in range(len(Mined._fields) - 1)], int(ck["tokens"])), int(ck["batch"])
        log(f"resuming at batch {start}")
    batches = plan_batches(examples, batch_tokens, seed)
    bar = tqdm(total=sum(len(examples[i].ids) for b in batches for i in b), unit="tok", desc="mining",
               initial=sum(len(examples[i].ids) for b in batches[:start] for i in b), smoothing=0.1)
    t0 = time.time()
    for n, b in enumerate(iter_activations(model, examples, [layer], hook=hook, batches=batches[start:],
                                           max_norm_ratio=max_norm_ratio, bar=bar), start=start):
        if b.n_tokens:
            f = sae.encode(b.acts[layer].to(sae.W_enc.dtype)).float()
            state = update(state, f, b.example, b.pos, torch.Generator().manual_seed(seed * 1_000_003 + n))
        if checkpoint_every and (n + 1) % checkpoint_every == 0 and n + 1 < len(batches):
            save_checkpoint(out, {"state": list(state[:-1]), "tokens": state.tokens, "batch": n + 1})
    bar.close()
    ids = torch.tensor([t for e in examples for t in e.ids], dtype=torch.int32)
    offsets = torch.tensor([0] + [len(e.ids) for e in examples]).cumsum(0)
    tensors = {f: getattr(state, f).contiguous() for f in Mined._fields if f != "tokens"}
    for name, t in (("examples", tensors), ("docs", {"ids": ids, "offsets": offsets})):
        tmp = out / f"{name}.safetensors.tmp"
        save_file(t, str(tmp))
        tmp.replace(out / f"{name}.safetensors")
    write_json(out / "manifest.json", {"status": "done", "config": meta, "tokens": state.tokens,
                                       "seconds": time.time() - t0, "tokens_per_s": state.tokens / max(time.time() - t0, 1e-9)})
    import shutil

    for c in ("checkpoint", "checkpoint.old"):
        shutil.rmtree(out / c, ignore_errors=True)
    return state


class Examples(NamedTuple):
    state: Mined
    ids: torch.Tensor
    offsets: torch.Tensor
    manifest: dict

    def window(self, example: int, pos: int, before: int = BEFORE, after: int = AFTER) -> tuple[list[int], int]:
        """Token ids around (example, pos) and the index of the activating token in them."""
        s, e = int(self.offsets[example]), int(self.offsets[example + 1])
        a, b = max(s + 1, s + pos - before), min(e, s + pos + after + 1)  # never show BOS
        return self.ids[a:b].tolist(), s + pos - a


def load(path: str | Path, sae_sha256: str | None = None) -> Examples:
    from safetensors.torch import load_file

    p = Path(path)
    man = p / "manifest.json"
    if not man.is_file() or not (p / "examples.safetensors").is_file():
        raise UserError(f"{p} is not a finished `persona-sae examples` folder")
    manifest = json.loads(man.read_text())
    if sae_sha256 and manifest["config"].get("sae_sha256") not in (None, sae_sha256):
        raise UserError(f"examples in {p} were mined with a different SAE (checksum mismatch)")
    t = load_file(str(p / "examples.safetensors"))
    docs = load_file(str(p / "docs.safetensors"))
    return Examples(Mined(*[t[f] for f in Mined._fields if f != "tokens"], manifest.get("tokens", 0)),
                    docs["ids"], docs["offsets"], manifest)
