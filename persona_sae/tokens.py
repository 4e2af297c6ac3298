"""Text -> tokens with masks.

Every later statistic needs to know which tokens are the assistant's response, which are the
prompt, and which are special (BOS, chat-template markers, position 0 with its huge attention-sink
norm) and must be left out. So tokenization returns those masks beside the ids.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import Iterable, Iterator, NamedTuple, Sequence

from persona_sae import UserError
from persona_sae.text import Record, render_chat


class Example(NamedTuple):
    """One token sequence. ``response``: assistant-content tokens; ``special``: tokens every statistic
    skips (position 0, BOS, chat-template special tokens). Prompt tokens are neither."""

    ids: list[int]
    response: list[bool]
    special: list[bool]
    record: int
    group: str


def tokenize(records: Sequence[Record], tokenizer, max_len: int = 512, max_tokens: int | None = None,
             order: Sequence[int] | None = None) -> list[Example]:
    """Chats through the chat template (generation prompt added when the last turn is the user's);
    text prefixed with BOS and cut into windows of ``max_len``, so long documents are not lost.

    ``order`` visits records in that order, and ``max_tokens`` stops once that many tokens are made,
    so a run that needs a slice of a big corpus does not tokenize all of it. The list of
    :func:`iter_tokenize`."""
    order = range(len(records)) if order is None else order
    return list(iter_tokenize((records[i] for i in order), tokenizer, max_len, max_tokens, indices=order))


def iter_tokenize(records: Iterable[Record], tokenizer, max_len: int = 512, max_tokens: int | None = None,
                  indices: Iterable[int] | None = None) -> Iterator[Example]:
    """:func:`tokenize` as a stream: the same examples, made as ``records`` (any iterable, read 256
    records or 2^18 characters at a time) are consumed, so memory stays that of one chunk. ``indices`` numbers the records (each
    example's ``record``; default 0, 1, ...); ``max_tokens`` stops at or just past that many tokens.
    Plain texts are encoded in batches (the fast tokenizer's parallel path)."""
    if max_len < 2:
        raise UserError(f"max_len must be at least 2, got {max_len}")
    return _examples(records, tokenizer, max_len, max_tokens, indices)


def _examples(records, tokenizer, max_len, max_tokens, indices) -> Iterator[Example]:
    special_ids = special_token_ids(tokenizer)
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = max_len - len(bos)
    pairs = zip(itertools.count() if indices is None else indices, records)
    n = 0
    while chunk := _chunk(pairs):
        texts = [(i, r) for i, r in chunk if r.messages is None and r.text is not None]
        bodies = tokenizer([r.text for _, r in texts], add_special_tokens=False)["input_ids"] if texts else []
        bodies = iter(bodies)
        for i, r in chunk:
            if getattr(r, "examples", None) is not None:  # a token cache's record: its examples as they were cut
                if r.tokenizer != fingerprint(tokenizer):
                    raise UserError("this token cache was made with another tokenizer than this model's: make one "
                                    "for it with `persona-sae data tokenize`")
                if r.max_len != max_len:
                    raise UserError(f"this token cache was cut at context size {r.max_len}, not {max_len}: give "
                                    f"--context-size {r.max_len} or make another with `persona-sae data tokenize`")
                for e in r.examples:
                    n += len(e.ids)
                    yield e._replace(record=i, group=r.group)
                    if max_tokens is not None and n >= max_tokens:
                        return
            elif r.messages is not None:
                ids, resp = _tokenize_chat(r.messages, tokenizer)
                ex = make_example(ids[:max_len], resp[:max_len], special_ids, i, r.group)
                n += len(ex.ids)
                yield ex
            else:
                body = next(bodies)
                for s in range(0, max(len(body), 1), step):
                    win = bos + body[s:s + step]
                    if len(win) > len(bos):
                        n += len(win)
                        yield make_example(win, [False] * len(win), special_ids, i, r.group)
                    if max_tokens is not None and n >= max_tokens:
                        return
            if max_tokens is not None and n >= max_tokens:
                return


CHUNK_RECORDS, CHUNK_CHARS = 256, 1 << 18


def _chunk(pairs) -> list:
    """The next records for one tokenizer call: up to 256, and no more once they hold 2^18 characters,
    since the tokenizer's working memory for a call is ~500 bytes per token it makes."""
    out, chars = [], 0
    for p in pairs:
        out.append(p)
        r = p[1]
        chars += len(r.text or "") if r.messages is None else sum(len(m["content"]) for m in r.messages)
        if len(out) == CHUNK_RECORDS or chars >= CHUNK_CHARS:
            break
    return out


def fingerprint(tokenizer) -> str:
    """A tokenizer's identity (a hash of its vocabulary and special tokens), cached on the object: what a
    token cache was made with."""
    fp = getattr(tokenizer, "_persona_sae_fingerprint", None)
    if fp is None:
        body = json.dumps([sorted(tokenizer.get_vocab().items()), tokenizer.bos_token_id,
                           sorted(map(int, tokenizer.all_special_ids))])
        fp = hashlib.sha256(body.encode()).hexdigest()[:16]
        try:
            tokenizer._persona_sae_fingerprint = fp
        except AttributeError:
            pass
    return fp


def special_token_ids(tokenizer) -> set[int]:
    """Ids every statistic skips: the special ids plus added tokens flagged special (Qwen's tokenizer
    lists only <|endoftext|> and <|im_end|> as special ids, though every <|im_start|> is a marker too)."""
    return set(tokenizer.all_special_ids) | {i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()
                                             if getattr(t, "special", False)}


def make_example(ids, resp, special_ids, i, group) -> Example:
    """An Example from token ids: position 0 and ``special_ids`` marked special, never response."""
    special = [t in special_ids for t in ids]
    special[0] = True
    resp = [r and not s for r, s in zip(resp, special)]
    return Example(list(ids), resp, special, i, group)


def _tokenize_chat(messages: list[dict], tokenizer) -> tuple[list[int], list[bool]]:
    """Render the whole chat once; find each assistant message's characters by rendering the prefix
    before it; map characters to tokens through the tokenizer's offsets."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the model's tokenizer has no chat template; give plain text instead of chats")
    text = render_chat(messages, tokenizer)
    spans = []
    for j, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = tokenizer.apply_chat_template(messages[:j], tokenize=False, add_generation_prompt=True) if j else ""
        start = text.find(m["content"].strip(), len(prefix) if text.startswith(prefix) else 0)
        if start >= 0:
            spans.append((start, start + len(m["content"].strip())))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    resp = [any(a < e and b > s for s, e in spans) for a, b in enc["offset_mapping"]]
    return list(enc["input_ids"]), resp


def load_examples(model, records, max_len: int, max_tokens: int = 0):
    """Tokenize records (a list or a stream: read only as far as the budget) for ``model``, keeping whole
    sequences up to ``max_tokens`` (0 = all)."""

    examples = list(iter_tokenize(records, model.tokenizer, max_len=max_len, max_tokens=max_tokens or None))
    if max_tokens > 0:  # tokenize stops at or just past the budget: drop the overshoot
        n = sum(len(e.ids) for e in examples)
        while examples and n > max_tokens:
            n -= len(examples.pop().ids)
    if not examples:
        raise UserError("the data produced no token sequences")
    return examples
