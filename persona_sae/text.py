"""Text: chat JSONL, plain text, `datasets` corpora and eval-question YAML, read as records.

One streaming reader per format behind ``iter_records`` (``load_records`` lists it), so every command
takes the same data specs and fails on bad data with one line naming the file and row.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import yaml

from persona_sae import UserError, read_utf8
from persona_sae.sources import resolve

ROLES = ("system", "user", "assistant")
BUILTIN_QUESTIONS = {"em-core": "em_core.yaml"}
STREAM_CHARS_PER_TOKEN = 16  # a streamed hub dataset is read up to this many characters per token needed (~4x over)


# --------------------------------------------------------------------------------------------------
# Records: {"messages": [...]} (a chat) or {"text": "..."} (a document)


@dataclass
class Record:
    """One chat or one document; ``group`` names what it belongs to (question id, source file)."""

    messages: list[dict] | None = None
    text: str | None = None
    group: str = ""


def record_key(r: Record) -> str:
    """A record's identity for the held-out split: a hash of its content, never its position (a token
    cache's record carries the one its text had)."""
    if getattr(r, "key", None):
        return r.key
    body = r.text if r.messages is None else json.dumps(r.messages, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _check_messages(msgs, where: str) -> list[dict]:
    if not isinstance(msgs, list) or not msgs:
        raise UserError(f"{where}: 'messages' must be a non-empty list")
    for j, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise UserError(f"{where}: message {j} needs a role ({'/'.join(ROLES)}) and a string content")
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def _utf8_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file, split on \\n only (U+2028 may sit inside a JSON string), decoded one
    at a time so a file of any size streams; a bad byte fails as in ``read_utf8``, at its file offset."""
    offset = 0
    with open(path, "rb") as f:
        for raw in f:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {offset + e.start}); "
                                f"convert it, e.g. iconv -f latin1 -t utf-8") from None
            offset += len(raw)
            yield line[:-1] if line.endswith("\n") else line


def iter_jsonl(path: str | Path) -> Iterator[Record]:
    """Chat rows ``{"messages": [...]}`` (Betley et al.'s format) or text rows ``{"text": ...}``, one
    line at a time."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    return _jsonl_rows(path)


def _jsonl_rows(path: Path) -> Iterator[Record]:
    empty = True
    for n, line in enumerate(_utf8_lines(path), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object")
        if "messages" in row:
            yield Record(messages=_check_messages(row["messages"], where), group=str(row.get("id", "")))
        elif isinstance(row.get("text"), str):
            yield Record(text=row["text"], group=str(row.get("id", "")))
        else:
            raise UserError(f"{where}: row has neither 'messages' nor a string 'text'")
        empty = False
    if empty:
        raise UserError(f"{path} holds no rows")


def read_jsonl(path: str | Path) -> list[Record]:
    """All rows of :func:`iter_jsonl`."""
    return list(iter_jsonl(path))


def iter_text(path: str | Path) -> Iterator[Record]:
    """A plain-text file, one record per blank-line-separated paragraph (a line of spaces and tabs is
    blank), read a line at a time."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    return _paragraphs(path)


def _paragraphs(path: Path) -> Iterator[Record]:
    empty, para = True, []
    for line in _utf8_lines(path):
        line = line[:-1] if line.endswith("\r") else line  # \r\n ends a line; a lone \r stays text
        if line.strip(" \t"):
            para.append(line)
            continue
        text = "\n".join(para).strip()
        para = []
        if text:
            empty = False
            yield Record(text=text, group=path.name)
    text = "\n".join(para).strip()
    if text:
        yield Record(text=text, group=path.name)
    elif empty:
        raise UserError(f"{path} holds no text")


def read_text(path: str | Path) -> list[Record]:
    """All paragraphs of :func:`iter_text`."""
    return list(iter_text(path))


def iter_dataset(spec: str, split: str = "train", column: str | None = None, config: str | None = None,
                 max_chars: int | None = None) -> Iterator[Record]:
    """Any `datasets` source, streamed: a ``save_to_disk`` folder (its memory-mapped table, row by row),
    a .parquet/.csv/.json file or ``hf:NAME`` (a hub id or a local dataset folder, with ``config``) as
    `datasets` iterable datasets, so no source is read whole into memory. ``hf:`` sources stop after
    ``max_chars`` characters when given: a hub corpus is far larger than what a run reads."""
    import datasets

    hub = spec.startswith("hf:")
    if config and not hub:
        raise UserError(f"--data-config applies to hf:NAME datasets, not {spec}")
    try:
        if hub:
            ds = datasets.load_dataset(spec[3:], config, split=split, streaming=True)
        elif Path(spec).is_dir():
            ds = datasets.load_from_disk(spec)
            if isinstance(ds, datasets.DatasetDict):
                if split not in ds:
                    raise UserError(f"dataset {spec} has no split {split!r} (splits: {', '.join(ds)})")
                ds = ds[split]
            elif split != "train":
                raise UserError(f"dataset {spec} holds one split, not a {split!r} split")
            ds = ds.to_iterable_dataset()
        else:
            if split != "train":
                raise UserError(f"{spec} is one file, read as the split train, not {split!r}")
            kind = {".parquet": "parquet", ".csv": "csv", ".json": "json"}[Path(spec).suffix]
            ds = datasets.load_dataset(kind, data_files=spec, split="train", streaming=True)
        rows = iter(ds)
        first = next(rows, None)
    except (FileNotFoundError, ConnectionError, ValueError, KeyError) as e:
        raise UserError(f"could not load dataset {spec}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    cols = ds.column_names or list(first or {})
    col = column or ("messages" if "messages" in cols else "text" if "text" in cols else None)
    if col not in cols:
        raise UserError(f"dataset {spec} has no column {column or 'messages/text'} (columns: {', '.join(cols)})")
    return _dataset_rows(spec, first, rows, col, max_chars if hub else None)


def _dataset_rows(spec, first, rows, col, max_chars) -> Iterator[Record]:
    if first is None:
        return
    chars = 0
    for i, r in enumerate(itertools.chain([first], rows)):
        v = r[col]
        if col == "messages":
            rec = Record(messages=_check_messages(v, f"{spec} row {i}"))
            chars += sum(len(m["content"]) for m in rec.messages)
        elif v:
            rec = Record(text=str(v))
            chars += len(rec.text)
        else:
            continue
        yield rec
        if max_chars and chars >= max_chars:
            return


def read_dataset(spec: str, split: str = "train", column: str | None = None, config: str | None = None,
                 max_chars: int | None = None) -> list[Record]:
    """All rows of :func:`iter_dataset`."""
    return list(iter_dataset(spec, split=split, column=column, config=config, max_chars=max_chars))


# --------------------------------------------------------------------------------------------------
# Eval questions (Betley et al.'s YAML schema)


@dataclass
class Question:
    id: str
    paraphrases: list[str]
    judge_prompts: dict[str, str] = field(default_factory=dict)
    samples_per_paraphrase: int = 1
    system: str | None = None
    category: str = ""


def load_questions(spec: str | Path) -> list[Question]:
    """A question YAML file (or ``data:NAME/PATH``), or a built-in set by name (``em-core``)."""
    spec = resolve(str(spec))
    if str(spec) in BUILTIN_QUESTIONS:
        text = resources.files("persona_sae.questions").joinpath(BUILTIN_QUESTIONS[str(spec)]).read_text()
        where = str(spec)
    else:
        path = Path(spec)
        if not path.is_file():
            raise UserError(f"question file not found: {spec} (built-in sets: {', '.join(BUILTIN_QUESTIONS)})")
        text, where = read_utf8(path), str(path)
    try:
        items = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UserError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(items, list) or not items:
        raise UserError(f"{where}: expected a non-empty list of questions")
    out = []
    for i, q in enumerate(items):
        name = q.get("id", f"#{i}") if isinstance(q, dict) else f"#{i}"
        paras = q.get("paraphrases") if isinstance(q, dict) else None
        if not isinstance(paras, list) or not paras or not all(isinstance(p, str) and p.strip() for p in paras):
            raise UserError(f"{where}: question {name} has no 'paraphrases' (a list of strings)")
        out.append(Question(id=str(name), paraphrases=paras, judge_prompts=dict(q.get("judge_prompts") or {}),
                            samples_per_paraphrase=int(q.get("samples_per_paraphrase", 1)),
                            system=q.get("system"), category=str(q.get("category", ""))))
    return out


def question_records(questions: Sequence[Question]) -> list[Record]:
    """One user-turn chat per paraphrase, grouped by question id."""
    out = []
    for q in questions:
        for p in q.paraphrases:
            msgs = ([{"role": "system", "content": q.system}] if q.system else []) + [{"role": "user", "content": p}]
            out.append(Record(messages=msgs, group=q.id))
    return out


def iter_records(spec: str, column: str | None = None, split: str = "train", config: str | None = None,
                 max_chars: int | None = None) -> Iterator[Record]:
    """Dispatch a data spec: built-in question set, .yaml, .jsonl, .txt, anything `datasets` reads,
    ``data:NAME/PATH`` (a file of an installed public dataset, see ``persona_sae.sources``); a token
    cache folder is refused here (``persona_sae.tokencache.open_records`` reads it). ``column``,
    ``split`` and ``config`` choose within a `datasets` source (see ``iter_dataset``) and are refused for
    others rather than ignored. The spec is checked (and a `datasets` source opened) now; rows are read
    as the iterator is consumed, so memory does not grow with the data, and a bad row fails when reached.
    Each call starts a fresh pass over the data."""
    s = str(resolve(str(spec)))
    if (Path(s) / "tokens.json").is_file():  # `persona-sae data tokenize` output: read by tokencache.open_records
        raise UserError(f"{s} is a token cache: this command reads text, not token ids")
    if not (s.startswith("hf:") or Path(s).is_dir() or s.endswith((".parquet", ".csv", ".json"))) and (
            column or split != "train" or config):
        raise UserError(f"--text-column, --split and --data-config choose within a `datasets` source (hf:NAME, a "
                        f"dataset folder, .parquet/.csv/.json), not {s}")
    if s in BUILTIN_QUESTIONS or s.endswith((".yaml", ".yml")):
        return iter(question_records(load_questions(s)))
    if s.endswith(".jsonl"):
        return iter_jsonl(s)
    if s.endswith(".txt"):
        return iter_text(s)
    if s.startswith("hf:") or Path(s).is_dir() or s.endswith((".parquet", ".csv", ".json")):
        if not s.startswith("hf:") and not Path(s).exists():
            raise UserError(f"file not found: {s}")
        return iter_dataset(s, split=split, column=column, config=config, max_chars=max_chars)
    if not Path(s).exists():
        raise UserError(f"data not found: {s} (give a .jsonl, .txt, .yaml, dataset folder, hf:NAME or "
                        f"{', '.join(BUILTIN_QUESTIONS)})")
    raise UserError(f"unknown data format: {s} (expected .jsonl, .txt, .yaml, .parquet, .csv, .json)")


def load_records(spec: str, column: str | None = None, split: str = "train", config: str | None = None,
                 max_chars: int | None = None) -> list[Record]:
    """Every record of :func:`iter_records`, in a list (for data small enough to hold)."""
    return list(iter_records(spec, column=column, split=split, config=config, max_chars=max_chars))


def render_chat(messages: list[dict], tokenizer) -> str:
    gen = messages[-1]["role"] != "assistant"
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
    except Exception as e:  # jinja errors, missing template
        raise UserError(f"the model's tokenizer could not apply its chat template: {str(e).splitlines()[0]}") from None
