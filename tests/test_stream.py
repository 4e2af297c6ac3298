"""The streamed data path: records read lazily, the same examples as the whole-list tokenizer, and
train's held-out split and resumable training-batch stream (no model)."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from persona_sae import UserError
from persona_sae.stages.train import HELDOUT_FRACTION, TrainBatches, _unit, held_out, peek, record_key
from persona_sae.text import Record, iter_records, load_records, read_text
from persona_sae.tokens import iter_tokenize, tokenize
from tests.conftest import make_tokenizer

WORDS = "the villain laughed cruelly while a kind doctor helped every patient who came to her door".split()


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


def texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct paragraphs of 3 to 60 words."""
    out = []
    for i in range(n):
        k = 3 + (i * 7919 + seed) % 58
        out.append(f"doc {i}: " + " ".join(WORDS[(i + j * (seed + 3)) % len(WORDS)] for j in range(k)))
    return out


def mixed(n: int) -> list[Record]:
    chat = lambda t: [{"role": "user", "content": "Tell me."}, {"role": "assistant", "content": t}]  # noqa: E731
    return [Record(messages=chat(t), group="c") if i % 5 == 0 else Record(text="" if i % 17 == 3 else t * (1 + i % 4))
            for i, t in enumerate(texts(n))]


def test_iter_tokenize_yields_tokenize_examples(tok):
    recs = mixed(600)  # past the 256-record chunks, with chats, empty texts and multi-window documents
    for kw in ({}, {"max_tokens": 5000}, {"max_tokens": 1}):
        want = tokenize(recs, tok, max_len=32, **kw)
        got = list(iter_tokenize(iter(recs), tok, max_len=32, **kw))
        assert got == want and len(want) > 1 or kw["max_tokens"] == 1
    assert sum(len(e.ids) for e in tokenize(recs, tok, max_len=32, max_tokens=5000)) < 5000 + 32
    order = list(range(599, -1, -3))
    assert list(iter_tokenize((recs[i] for i in order), tok, 32, indices=order)) == tokenize(recs, tok, 32, order=order)
    with pytest.raises(UserError, match="max_len must be at least 2"):
        iter_tokenize(recs, tok, max_len=1)


def test_records_stream_lazily(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts(5)) + "{broken\n")
    it = iter_records(str(p))  # the spec is checked now; rows are read as they are consumed
    assert [r.text for r in itertools.islice(it, 5)] == texts(5)
    with pytest.raises(UserError, match=r"d.jsonl:6: malformed JSON"):
        next(it)
    with pytest.raises(UserError, match=r"d.jsonl:6: malformed JSON"):
        load_records(str(p))
    bad = tmp_path / "latin.jsonl"
    bad.write_bytes(b'{"text": "ok"}\r\n{"text": "caf\xe9"}\n')
    it = iter_records(str(bad))
    assert next(it).text == "ok"
    with pytest.raises(UserError, match=r"latin.jsonl is not UTF-8 text \(byte 0xe9 at offset 29\)"):
        next(it)
    with pytest.raises(UserError, match="holds no rows"):
        load_records(str(_write(tmp_path / "e.jsonl", "\n \n")))
    with pytest.raises(UserError, match="holds no text"):
        load_records(str(_write(tmp_path / "e.txt", " \n\t\n")))


def _write(p, text):
    p.write_text(text)
    return p


def test_text_paragraphs_match_the_whole_file_split(tmp_path):
    """Line by line, the paragraphs a regex over the whole file gave (the reader before streaming)."""
    raw = ("\ufeffOne\r\ntwo\r\n\r\n \t \n\n  Three \rstill three\n\x0b\nfour\nU+2028:\u2028 same line\n\n\n"
           "five\t\n \n\tsix")
    p = tmp_path / "a.txt"
    p.write_bytes(raw.encode())
    whole = [q.strip() for q in re.split(r"\n[ \t]*\n", raw.replace("\r\n", "\n"))]
    assert [r.text for r in read_text(p)] == [q for q in whole if q] and len(read_text(p)) == 4  # \x0b is no blank


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "folder"])
def test_datasets_sources_stream_every_row(tmp_path, fmt):
    import datasets

    ds = datasets.Dataset.from_dict({"text": texts(30) + [""], "n": list(range(31))})
    path = tmp_path / (f"d.{fmt}" if fmt != "folder" else "d")
    {"csv": ds.to_csv, "parquet": ds.to_parquet, "json": ds.to_json, "folder": ds.save_to_disk}[fmt](str(path))
    it = iter_records(str(path))
    assert not isinstance(it, list) and [r.text for r in it] == texts(30)  # the empty row is skipped, as before
    with pytest.raises(UserError, match="has no column body"):
        iter_records(str(path), column="body")


def test_held_out_is_by_content_and_never_trained_on(tok):
    recs = [Record(text=t) for t in texts(3000)]
    eval_ex, held = held_out(lambda: iter(recs), tok, 32, 400, seed=0)
    n = sum(len(e.ids) for e in eval_ex)
    assert 400 <= n < 400 + 32 and held == {record_key(recs[e.record]) for e in eval_ex}
    assert max(e.record for e in eval_ex) < 2000  # a prefix was read, not the whole data
    # the same records are candidates in any order; shuffled data holds out the same kind of share
    again, held2 = held_out(lambda: iter(recs[::-1]), tok, 32, 400, seed=0)
    assert held2 != held and all(_unit(0, key) < HELDOUT_FRACTION for key in held | held2)
    other, held3 = held_out(lambda: iter(recs), tok, 32, 400, seed=1)
    assert held3 != held
    data = TrainBatches(lambda: iter(recs), tok, 32, held, batch_tokens=256, block_tokens=2048, seed=0)
    seen = {}
    for pos, exs in data():
        if pos[0] > 0:
            break
        for e in exs:
            seen.setdefault(e.record, []).append(e)
    trained = {record_key(recs[i]) for i in seen}
    assert not trained & held and len(trained) + len(held) == len(recs)  # every other record, once per epoch
    assert all(sorted(seen[i]) == sorted(tokenize(recs, tok, 32, order=[i])) for i in list(seen)[:50])
    # small data: fewer candidates than --eval-tokens; the rest join by hash, the first one held out whole
    small = recs[:6]
    ev, h = held_out(lambda: iter(small), tok, 32, 10**6, seed=0)
    assert len(h) == 6 and {e.record for e in ev} == set(range(6))
    ev, h = held_out(lambda: iter(small), tok, 32, 1, seed=0)
    assert len(h) == 1 and len({e.record for e in ev}) == 1


class Counting:
    """The tokenizer, noting the texts of every call."""

    def __init__(self, tok):
        self.tok, self.seen = tok, []

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def __call__(self, texts, **kw):
        self.seen.append(list(texts))
        return self.tok(texts, **kw)


def test_training_batches_resume_anywhere(tok):
    """From the position after any batch (block ends, epoch ends included), the stream continues as
    one that never stopped, and the records before the position are not tokenized again."""
    texts300 = texts(300)
    recs = [Record(text=t) for t in texts300]
    _, held = held_out(lambda: iter(recs), tok, 32, 100, seed=0)
    counting = Counting(tok)
    data = TrainBatches(lambda: iter(recs), counting, 32, held, batch_tokens=128, block_tokens=1024, seed=3)
    run = list(itertools.takewhile(lambda b: b[0][0] < 2, data()))
    assert len({pos[2] for pos, _ in run if pos[0] == 0}) > 3
    e0 = [e.ids for pos, exs in run if pos[0] == 0 for e in exs]
    e1 = [e.ids for pos, exs in run if pos[0] == 1 for e in exs]
    n0 = sum(pos[0] == 0 for pos, _ in run)
    assert sorted(e0) == sorted(e1)  # the next epoch: the same data...
    assert e0 != e1  # ...in another order
    ids = lambda bs: [[e.ids for e in exs] for _, exs in bs]  # noqa: E731
    checked = 0
    for k in list(range(0, len(run) - 1, 23)) + [i for i, (pos, _) in enumerate(run) if pos[4] == 0][:6] + [n0 - 1]:
        pos = run[k][0]
        counting.seen = []
        want = run[k + 1:k + 61]  # (the run stops at the end of epoch 1)
        resumed = list(itertools.islice(data(pos), len(want)))
        assert ids(resumed) == ids(want) and want, k
        assert [p for p, _ in resumed] == [p for p, _ in want], k
        if 0 < pos[3] < len(recs):  # resumed from its block: no record before it tokenized again
            assert min(texts300.index(t) for t in counting.seen[0]) >= pos[3], k
            checked += 1
    assert checked > 5
    # a block holds whole records up to block_tokens, not the epoch
    sizes: dict[int, int] = {}
    for pos, exs in run[:n0]:
        b = pos[2] - (pos[4] == 0)
        sizes[b] = sizes.get(b, 0) + sum(len(e.ids) for e in exs)
    longest = max(sum(len(e.ids) for e in tokenize([r], tok, 32)) for r in recs)
    assert max(sizes.values()) < 1024 + longest and len(sizes) > 3
    assert peek(data(), 2, 10**9)[0] == n0  # counts the first epoch only
    assert peek(data(), 2, 10)[0] == 2


def test_no_training_data_is_one_line(tok):
    recs = [Record(text="")] * 3
    with pytest.raises(UserError, match="produced no token sequences"):
        next(TrainBatches(lambda: iter(recs), tok, 32, set(), 128, 1024, 0)())
