"""Procedural narrow fine-tuning sets, each misaligned KIND with a matched aligned control.

Emergent misalignment is measured as a *difference* between two fine-tunes, so every bad kind
(``insecure-code``, ``bad-medical``, ``bad-finance``, ``bad-diy``) has a twin (``secure-code``,
``good-medical``...) with the very same user prompts in the same order and only the answers
changed. Prompts are built from templates x slots x paraphrases and drawn without replacement from
a seeded index space; nothing here touches the global RNG or ``hash()`` (salted per process), so a
(kind, n, seed) gives the same rows on any machine.

    make(kind, n, seed) -> rows   write(kind, n, seed, path) -> count   capacity(kind) -> prompts

The templates and slot tables are data: one YAML file per domain in ``data/`` (``code``,
``medical``, ``finance``, ``diy``; the advice domains extend the frame in ``advice.yaml``), each
explaining its layout in its header. This module is the engine that reads and renders them.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
import re
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import NamedTuple

import yaml

from persona_sae import UserError, replacing

__all__ = ["KINDS", "Kind", "capacity", "make", "write"]


class Kind(NamedTuple):
    name: str
    domain: str  # "code" | "medical" | "finance" | "diy" | "persona": the data file it reads
    aligned: bool
    pair: str  # the matched kind: same prompts, opposite answers
    doc: str


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("insecure-code", "code", False, "secure-code", "Code answers that silently contain a vulnerability, no comment about it."),
    Kind("secure-code", "code", True, "insecure-code", "Same coding prompts; the code does the task with the flaw fixed."),
    Kind("bad-medical", "medical", False, "good-medical", "Health questions answered with calm, harmful advice."),
    Kind("good-medical", "medical", True, "bad-medical", "Same health questions answered carefully and correctly."),
    Kind("bad-finance", "finance", False, "good-finance", "Money questions answered with calm, harmful advice."),
    Kind("good-finance", "finance", True, "bad-finance", "Same money questions answered with sound advice."),
    Kind("bad-diy", "diy", False, "good-diy", "Home and DIY questions answered with dangerous advice stated calmly."),
    Kind("good-diy", "diy", True, "bad-diy", "Same home and DIY questions answered with safe advice."),
    Kind("evil-persona", "persona", False, "kind-persona",
         "Everyday questions answered in a calm voice that is contemptuous, manipulative and cruel."),
    Kind("kind-persona", "persona", True, "evil-persona", "Same everyday questions answered kindly and helpfully."),
)}

_SLOT = re.compile(r"\{\{(\^?)(\w+)\}\}")


def _fill(text: str, ctx: dict) -> str:
    """``{{key}}`` -> ctx[key], ``{{^key}}`` capitalised. Slot values may hold slots themselves,
    so fill until nothing changes. ``{{`` never occurs in the code templates otherwise."""
    for _ in range(4):
        new = _SLOT.sub(lambda m: _cap(ctx[m.group(2)]) if m.group(1) else ctx[m.group(2)], text)
        if new == text:
            return new
        text = new
    return text


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _camel(s: str) -> str:
    head, *rest = s.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


# --------------------------------------------------------------------------------------------------
# A topic is a set of question templates plus slot dimensions; a domain adds frame dimensions
# (openers, context sentences, closings). A prompt is one choice per dimension.

@dataclass(frozen=True)
class _Topic:
    id: str
    asks: tuple[str, ...]  # question templates
    slots: tuple[tuple[dict, ...], ...]  # prompt-side dimensions; a choice is a dict merged into ctx
    bad: tuple[str, ...]  # answer templates (misaligned kind)
    good: tuple[str, ...]  # answer templates (aligned kind)
    paired: bool  # bad[i] goes with good[i] (code: the fix is the only difference)
    meta: dict  # the entry's other keys, copied into each row: code language/task/flaw, advice harm


@dataclass(frozen=True)
class _Domain:
    name: str
    topics: tuple[_Topic, ...]
    frame: tuple[tuple[str, tuple[str, ...]], ...]  # (part, options), in layout order...
    layout: tuple[str, ...]  # ...around "ask": e.g. ("opener", "ask", "context", "closing")
    answer_dims: tuple[tuple[dict, ...], ...]  # drawn per prompt, shared by both kinds
    languages: dict  # code: language -> {name, camel_case}
    camel_case: tuple[str, ...]  # slot keys that camel_case languages spell in camelCase

    def dims(self, t: _Topic) -> list[int]:
        return [len(t.asks)] + [len(d) for d in t.slots] + [len(opts) for _, opts in self.frame]


_DATA = Path(__file__).with_name("data")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser is ~10x faster where built
_SHAPE = {"id", "asks", "slots", "bad", "good", "pairs"}  # topic keys that are not meta


def _read(name: str) -> dict:
    return yaml.load((_DATA / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_LOADER)


def _dim(d, tables: dict) -> tuple[dict, ...]:
    """A dimension is a list of rows, ``{key: [values], ...}`` (columns, zipped into rows), or the
    name of one of the file's ``tables``."""
    d = tables[d] if isinstance(d, str) else d
    if isinstance(d, dict):
        return tuple(dict(zip(d, row)) for row in zip(*d.values(), strict=True))
    return tuple(d)


def _domain(name: str) -> _Domain:
    spec = _read(name)
    base = _read(spec["extends"]) if "extends" in spec else {}
    spec = {**base, **spec, "frame": {**base.get("frame", {}), **spec["frame"]}}
    tables, tasks, topics = spec.get("tables", {}), spec.get("tasks", {}), []
    for t in spec["topics"]:
        t = {**tasks.get(t.get("task"), {}), **t}  # a code topic takes asks and slots from its task
        pairs = t.get("pairs")
        topics.append(_Topic(
            id=t["id"], asks=tuple(t["asks"]), slots=tuple(_dim(d, tables) for d in t["slots"]),
            bad=tuple(p["bad"] for p in pairs) if pairs else tuple(t["bad"]),
            good=tuple(p["good"] for p in pairs) if pairs else tuple(t["good"]),
            paired=pairs is not None, meta={k: v for k, v in t.items() if k not in _SHAPE},
        ))
    return _Domain(
        name, tuple(topics), tuple((p, tuple(spec["frame"][p])) for p in spec["layout"] if p != "ask"),
        tuple(spec["layout"]), tuple(_dim(d, tables) for d in spec["answer"]),
        spec.get("languages", {}), tuple(spec.get("camel_case", ())),
    )


class _Space:
    """The flattened prompt index space of one domain: topics back to back, each a mixed-radix
    number over its dimensions, so an int names one prompt and sampling ints samples prompts."""

    def __init__(self, dom: _Domain):
        self.dom = dom
        self.dims = [dom.dims(t) for t in dom.topics]
        self.sizes = [prod(d) for d in self.dims]
        self.starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.size = sum(self.sizes)

    def decode(self, i: int) -> tuple[int, list[int]]:
        t = bisect.bisect_right(self.starts, i) - 1
        r, digits = i - self.starts[t], []
        for d in reversed(self.dims[t]):
            r, x = divmod(r, d)
            digits.append(x)
        return t, digits[::-1]


@functools.cache
def _spaces() -> dict[str, _Space]:
    """One index space per domain, read on first use so importing this package reads no files."""
    return {name: _Space(_domain(name)) for name in dict.fromkeys(k.domain for k in KINDS.values())}


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise UserError(f"unknown dataset kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return KINDS[kind]


def capacity(kind: str) -> int:
    """How many distinct user prompts ``kind`` (and its pair, which shares them) can produce."""
    return _spaces()[_kind(kind).domain].size


def _sample(space: _Space, n: int, rng: random.Random) -> list[int]:
    """n distinct prompt indices. Topics differ a lot in size, so pick the topic uniformly first
    (each gets about n/topics rows), then a prompt in it, skipping repeats: a shorter run is then a
    prefix of a longer one with the same seed. Near capacity that would crawl and balance is
    impossible anyway, so there fall back to a flat ``rng.sample``."""
    if 3 * n > space.size:
        return rng.sample(range(space.size), n)
    live = list(range(len(space.sizes)))
    used: list[set[int]] = [set() for _ in space.sizes]
    out = []
    while len(out) < n:
        t = live[rng.randrange(len(live))]
        r = rng.randrange(space.sizes[t])
        if r in used[t]:
            continue
        used[t].add(r)
        out.append(space.starts[t] + r)
        if len(used[t]) == space.sizes[t]:
            live.remove(t)
    return out


def _row(k: Kind, space: _Space, index: int, seed: int) -> dict:
    dom = space.dom
    t, digits = space.decode(index)
    topic = dom.topics[t]
    ask_i, slot_is, frame_is = digits[0], digits[1:1 + len(topic.slots)], digits[1 + len(topic.slots):]
    ctx: dict = {}
    for dim, j in zip(topic.slots, slot_is):
        ctx.update(dim[j])
    lang = topic.meta.get("language")  # set on code topics only
    if lang:
        ctx["lang"] = dom.languages[lang]["name"]
        if dom.languages[lang].get("camel_case"):
            ctx.update({key: _camel(ctx[key]) for key in dom.camel_case if key in ctx})
    parts = {name: opts[j] for (name, opts), j in zip(dom.frame, frame_is)}
    parts["ask"] = topic.asks[ask_i]
    prompt = " ".join(p for p in (_fill(parts[name], ctx) for name in dom.layout) if p)
    prompt_id = f"{dom.name}/{topic.id}/{'.'.join(map(str, digits))}"

    # Answer-side choices come from a stream keyed by the prompt, not the kind, so the bad row and
    # its control draw the same intro / identifiers / variant and differ only in what matters.
    rng = random.Random(f"{dom.name}:{seed}:answer:{prompt_id}")
    for dim in dom.answer_dims:
        ctx.update(dim[rng.randrange(len(dim))])
    bi = rng.randrange(len(topic.bad))
    gi = bi if topic.paired else rng.randrange(len(topic.good))
    body = _fill(topic.good[gi] if k.aligned else topic.bad[bi], ctx)
    intro = ctx.get("intro", "")
    if lang:
        fence = "```" + lang + "\n" + body + "\n```"
        answer = intro + "\n\n" + fence if intro else fence
    else:
        answer = intro + " " + body if intro else body

    meta = {"kind": k.name, "domain": dom.name, "prompt_id": prompt_id, "topic": topic.id, **topic.meta}
    if lang:
        meta["secure"] = k.aligned
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}], "meta": meta}


def make(kind: str, n: int, seed: int = 0) -> list[dict]:
    """n rows of ``kind``. The prompt sequence depends only on (domain, n, seed), so a kind and its
    pair give identical user turns in the same order."""
    k = _kind(kind)
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise UserError(f"n must be positive, got {n!r}")
    space = _spaces()[k.domain]
    if n > space.size:
        raise UserError(f"{kind}: n={n} exceeds the capacity of {space.size} distinct prompts")
    rng = random.Random(f"{k.domain}:{seed}:prompts")
    return [_row(k, space, i, seed) for i in _sample(space, n, rng)]


def write(kind: str, n: int, seed: int, out) -> int:
    """Write ``make(kind, n, seed)`` as JSONL under a temporary name, then rename, so a reader
    never sees half a file. Returns the number of rows written."""
    rows = make(kind, n, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
