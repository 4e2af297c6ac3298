"""Top-activating examples for every latent at once, in one streaming pass.

Per latent: the top-k tokens (value, example, position), a uniform reservoir of its firing tokens
(binned later into 10 activation intervals of its max, for the quantile view), a histogram of log10
activations and the firing count. Memory is O(d_sae x (k + reservoir + bins)); the token ids of the
corpus are stored once, so any context window can be cut at display time. The pass is resumable and
its random reservoir keys come from (seed, batch), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from safetensors.torch import load_file

from persona_sae import UserError, read_json
from persona_sae import distributed as D

HIST_EDGES = torch.linspace(-3, 3, 61)  # log10 activation bins: 1e-3 .. 1e3
N_BINS = 10
BEFORE, AFTER = 16, 6  # context shown around an activating token; the top examples keep the latent's
W = BEFORE + 1 + AFTER  # activation on every token of it, so pages need no second forward
SNAP = 8  # tokens a context edge may move outwards to reach a word boundary


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


def _order(key: torch.Tensor, example: torch.Tensor, pos: torch.Tensor, descending: bool) -> torch.Tensor:
    """Per row of ``[d, M]`` candidates, the permutation sorting by key, then example, then position: a
    total order on tokens, so the best n of a union is the same however it was cut into batches or
    ranks (equal activations are common: identical prefixes give identical tokens)."""
    i = torch.argsort(example * 2**24 + pos, dim=1, stable=True)  # positions stay far below 2**24
    return i.gather(1, torch.argsort(key.gather(1, i), dim=1, stable=True, descending=descending))


def _best_rows(score: torch.Tensor, example: torch.Tensor, pos: torch.Tensor, n: int, largest: bool) -> torch.Tensor:
    """Row indices ``[n, d]`` of the n best entries per column of ``score`` ``[N, d]``: a plain topk,
    except for the rare column with a tie across the cut, which is settled by :func:`_order`."""
    best, idx = score.topk(min(n + 1, len(score)), dim=0, largest=largest)
    if len(best) > n:  # the (n+1)-th equal to the n-th: the cut splits a tie
        for j in ((best[n] == best[n - 1]) & torch.isfinite(best[n - 1])).nonzero()[:, 0].tolist():
            c = (score[:, j] >= best[n - 1, j] if largest else score[:, j] <= best[n - 1, j]).nonzero()[:, 0]
            idx[:n, j] = c[_order(score[c, j][None], example[c][None], pos[c][None], largest)[0, :n]]
    return idx[:n]


def merge(parts: list[Mined]) -> Mined:
    """One state from states over disjoint batches: per latent the k best tokens and the r smallest
    reservoir keys under :func:`_order`'s total order, counts summed. Mining all batches in one
    process gives the same state, whatever the split (this is how ranks are merged)."""
    k, r = parts[0].top_values.shape[1], parts[0].res_values.shape[1]
    cat = lambda f: torch.cat([getattr(p, f) for p in parts], 1)  # noqa: E731
    tv, te, tp, tw = cat("top_values"), cat("top_example"), cat("top_pos"), cat("top_window")
    o = _order(tv, te, tp, descending=True)[:, :k]
    rk, rv, re, rp = cat("res_key"), cat("res_values"), cat("res_example"), cat("res_pos")
    q = _order(rk, re, rp, descending=False)[:, :r]
    return Mined(tv.gather(1, o), te.gather(1, o), tp.gather(1, o), tw.gather(1, o[..., None].expand(-1, -1, W)),
                 rv.gather(1, q), re.gather(1, q), rp.gather(1, q), rk.gather(1, q),
                 sum(p.hist for p in parts), sum(p.fires for p in parts), sum(p.tokens for p in parts))


MERGE_EVERY = 8  # batch states folded into the running state at once: a merge sorts every latent's candidates,
# and one sort of 9 states costs about a third of 8 pairwise ones (mining's overhead over the forward)


def batch_state(m: Mined, f: torch.Tensor, example: torch.Tensor, pos: torch.Tensor, gen: torch.Generator) -> Mined:
    """One batch of latent activations ``f`` [N, d] as a state of ``m``'s shape, to :func:`merge` with it
    (alone or with other batches' states: the result is the same). Empty slots (fewer firing tokens than
    slots) always read example 0, position 0, so states compare exactly."""
    N, d = f.shape
    k, r = m.top_values.shape[1], m.res_values.shape[1]
    fired = f > 0
    # top-k: the batch's best k per latent, merged with the running best k
    v = torch.where(fired, f, torch.full_like(f, -float("inf")))
    bi = _best_rows(v, example, pos, min(k, N), largest=True)  # [kk, d]
    bv = v.gather(0, bi)
    void = ~torch.isfinite(bv)
    # each candidate's activation window, read from the batch (a batch holds whole sequences)
    ex_ids, ex_local = example.unique(return_inverse=True)
    table = torch.full((len(ex_ids), int(pos.max()) + 1 + BEFORE + AFTER), -1, dtype=torch.long)
    table[ex_local, pos + BEFORE] = torch.arange(N)
    offs = torch.arange(W)  # window slot w reads position pos - BEFORE + w, stored at column pos + w
    rows = table[ex_local[bi][..., None], pos[bi][..., None] + offs]  # [kk, d, W]
    lat = torch.arange(d)[None, :, None].expand_as(rows)
    win = torch.where(rows >= 0, f[rows.clamp(min=0), lat], torch.zeros(())).clamp(min=0).half()
    win = win.masked_fill(void[..., None], 0)
    # reservoir: keep the r smallest random keys among firing tokens (a uniform sample without replacement)
    keys = torch.rand((N, d), generator=gen)
    keys = torch.where(fired, keys, torch.full_like(keys, float("inf")))
    bj = _best_rows(keys, example, pos, min(r, N), largest=False)
    bk = keys.gather(0, bj)
    rvoid = ~torch.isfinite(bk)
    # histogram of log10 activation over firing tokens
    which = fired.nonzero()[:, 1]
    b = torch.bucketize(f[fired].log10(), HIST_EDGES)
    hist = torch.zeros_like(m.hist).view(-1)
    hist.index_add_(0, which * (len(HIST_EDGES) + 1) + b, torch.ones_like(b))
    return Mined(bv.T, example[bi].masked_fill(void, 0).T, pos[bi].masked_fill(void, 0).T, win.permute(1, 0, 2),
                 v.gather(0, bj).T, example[bj].masked_fill(rvoid, 0).T, pos[bj].masked_fill(rvoid, 0).T, bk.T,
                 hist.view_as(m.hist), fired.sum(0), N)


def quantile_bins(values: torch.Tensor, max_act: torch.Tensor) -> torch.Tensor:
    """Interval index 0..9 of each reservoir value as a fraction of its latent's max (-1: empty)."""
    frac = values / max_act[:, None].clamp(min=1e-12)
    b = (frac * N_BINS).floor().clamp(0, N_BINS - 1).long()
    return torch.where(torch.isfinite(values), b, torch.full_like(b, -1))


# --------------------------------------------------------------------------------------------------
# The mining run and its folder: examples.safetensors (state), docs.safetensors (token ids), manifest.json


def _collect(state: Mined) -> Mined:
    """Under torchrun: every rank's state merged on rank 0; the others start over from empty, so a
    later merge counts nothing twice."""

    if D.world() == 1:
        return state
    parts = D.gather_objects(state)
    return merge(parts) if D.is_main() else empty(state.top_values.shape[0], state.top_values.shape[1],
                                                   state.res_values.shape[1])


class Top(NamedTuple):
    """One of a latent's top examples: the mined value, the context's token ids, the latent's activation
    on each of them (the window stored at mining time; NaN where a wider context reaches past it) and
    the index of the activating token; ``example`` and ``start`` (the document position of ``ids[0]``)
    say where the context sits, so two rows from one window can be told apart."""

    value: float
    ids: list[int]
    acts: list[float]
    at: int
    example: int = -1
    start: int = 0


def word_break(left: str, right: str) -> bool:
    """Whether a context may be cut between two decoded tokens: anywhere but inside a run of letters
    and digits (BPE splits words into pieces; a cut there shows half a word)."""
    return not (left[-1:].isalnum() and right[:1].isalnum())


def _similar(x: list[int], y: list[int], at_least: float) -> bool:
    """SequenceMatcher ratio >= at_least, its cheap upper bounds tried first."""
    m = SequenceMatcher(None, x, y, autojunk=False)
    return m.real_quick_ratio() >= at_least and m.quick_ratio() >= at_least and m.ratio() >= at_least


def split_width(width: int) -> tuple[int, int]:
    """Tokens shown before and after the activating one for a context ``width`` tokens wide, in the
    mined window's proportions (the default width is the mined window: 16 before, 6 after)."""
    width = max(int(width), 1)
    before = round((width - 1) * BEFORE / (BEFORE + AFTER))
    return before, width - 1 - before


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

    def context(self, example: int, pos: int, width: int = W, decode: Callable[[int], str] | None = None
                ) -> tuple[list[int], int, int]:
        """Token ids of a context about ``width`` tokens wide around (example, pos), each edge moved to the
        nearest word boundary (:func:`word_break` on ``decode``'d tokens; a document's ends always are
        one), inwards on a tie and outwards by at most ``SNAP`` tokens; the index of the activating token
        in them and the document position of the first."""
        before, after = split_width(width)
        s, e = int(self.offsets[example]), int(self.offsets[example + 1])
        at = s + pos
        a, b = max(s + 1, at - before), min(e, at + after + 1)  # never show BOS
        if decode is not None:
            lo = max(s, a - SNAP - 1)
            seg = self.ids[lo:min(e, b + SNAP) + 1].tolist()  # one read: indexing a tensor per token is slow
            cut = lambda i: i <= s + 1 or i >= e or word_break(decode(seg[i - 1 - lo]), decode(seg[i - lo]))  # noqa: E731
            # the nearest cut to each edge, the activating token kept inside; on a tie the narrower window
            a = min((i for i in range(max(s + 1, a - SNAP), at + 1) if cut(i)), key=lambda i: (abs(i - a), i < a), default=a)
            b = min((i for i in range(at + 1, min(e, b + SNAP) + 1) if cut(i)), key=lambda i: (abs(i - b), i > b), default=b)
        return self.ids[a:b].tolist(), at - a, a - s

    def contexts(self, j: int, n: int | None = None, width: int = W, decode: Callable[[int], str] | None = None,
                 similar: float = 0.8) -> list[Top]:
        """Latent ``j``'s top examples as a reader should see them: one row per context. Top-k is per
        token, so one passage can fill several slots (neighbouring tokens of one window, or the same
        text repeated in the corpus); a token is skipped when its context overlaps a kept row's in the
        same document, or when its token ids match a kept row's with a ``SequenceMatcher`` ratio of at
        least ``similar`` (a near-duplicate passage elsewhere). Windows per :meth:`context`; the
        activation on each token comes from the stored window (NaN past it)."""
        m, out = self.state, []
        for v, e, p, w in zip(m.top_values[j], m.top_example[j], m.top_pos[j], m.top_window[j]):
            if not torch.isfinite(v) or (n is not None and len(out) >= n):
                break
            e, p = int(e), int(p)
            ids, at, start = self.context(e, p, width, decode)
            if any(o.example == e and start < o.start + len(o.ids) and o.start < start + len(ids) for o in out):
                continue
            if any(_similar(o.ids, ids, similar) for o in out):
                continue
            w = w.float().tolist()
            acts = [w[BEFORE + i - at] if 0 <= BEFORE + i - at < W else float("nan") for i in range(len(ids))]
            out.append(Top(float(v), ids, acts, at, e, start))
        return out

    def top(self, j: int, n: int | None = None) -> list[Top]:
        """Latent ``j``'s top examples, best first (at most ``n``; empty slots skipped), each with the
        activation on every token of its context."""
        m, out = self.state, []
        for v, e, p, w in zip(m.top_values[j][:n], m.top_example[j], m.top_pos[j], m.top_window[j]):
            if not torch.isfinite(v):
                break
            ids, at = self.window(int(e), int(p))
            out.append(Top(float(v), ids, [float(w[BEFORE - at + i]) for i in range(len(ids))], at, int(e),
                           int(p) - at))
        return out


def load(path: str | Path, sae_sha256: str | None = None) -> Examples:
    p = Path(path)
    man = p / "manifest.json"
    if not man.is_file() or not (p / "examples.safetensors").is_file():
        raise UserError(f"{p} is not a finished `persona-sae examples` folder")
    manifest = read_json(man, "the manifest of a `persona-sae examples` folder")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise UserError(f"{man} is not the manifest of a `persona-sae examples` folder")
    if sae_sha256 and manifest["config"].get("sae_sha256") not in (None, sae_sha256):
        raise UserError(f"examples in {p} were mined with a different SAE (checksum mismatch)")
    t = load_file(str(p / "examples.safetensors"))
    docs = load_file(str(p / "docs.safetensors"))
    return Examples(Mined(*[t[f] for f in Mined._fields if f != "tokens"], manifest.get("tokens", 0)),
                    docs["ids"], docs["offsets"], manifest)
