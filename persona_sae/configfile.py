"""What the CLI reads besides flags: numbers written as people write them (``2_000_000``, ``2e6``, ``2M``)
and ``--config`` files (YAML or JSON, or a command's own ``run.json``), turned into one command's field
values. Flags and files go through the same number parser, so a file says ``tokens: 2M`` too."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from decimal import Decimal, InvalidOperation
from pathlib import Path

from persona_sae import UserError

SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}  # either case: 2k, 2M, 1.5G


def parse_int(value) -> int:
    """An int from ``2000000``, ``2_000_000``, ``2e6``, ``2M`` or ``1.5k`` (an integral result only).
    ``2,000,000`` is refused: in list options the comma separates values."""
    if isinstance(value, bool):
        raise ValueError(f"invalid int value: {value!r}")
    if isinstance(value, int):
        return value
    s = str(value).strip()
    if "," in s:
        raise ValueError(f"invalid int value: {s!r} (write 2_000_000 or 2M, not 2,000,000)")
    mult = SUFFIXES.get(s[-1:].lower(), 1)
    try:
        d = Decimal(s[:-1] if mult > 1 else s) * mult
    except InvalidOperation:
        d = None
    if d is None or not d.is_finite() or d != d.to_integral_value():
        raise ValueError(f"invalid int value: {s!r}")
    return int(d)


def parse_ints(value) -> list[int]:
    """A list option's item: one number, or several joined by commas (``--k 16,32,64``)."""
    return [parse_int(p) for p in str(value).split(",")]


def int_arg(s: str) -> int:
    """argparse's type for int options: the message says what to write instead."""
    try:
        return parse_int(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def ints_arg(s: str) -> list[int]:
    try:
        return parse_ints(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


int_arg.__name__ = ints_arg.__name__ = "int"  # what --help shows as the metavar


class FlatStore(argparse._StoreAction):
    """Stores ``--k 16,32 64`` as [16, 32, 64]: each item of a list option may hold several."""

    def __call__(self, parser, namespace, values, option_string=None):
        flat = [v for x in values for v in (x if isinstance(x, list) else [x])] if isinstance(values, list) else values
        super().__call__(parser, namespace, flat, option_string)


def spellings(cls) -> dict[str, str]:
    """Every name a config key may use for a field of ``cls``: its own and its aliases, with dashes or
    underscores."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.init:
            for name in (f.name, *f.metadata.get("alias", [])):
                out[name.lstrip("-").replace("-", "_")] = f.name
    return out


def _load(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(path.read_text())
    raise UserError(f"--config {path}: give a .yaml, .yml or .json file")


def read_config(path: str | Path, cls, command: str) -> dict:
    """The field values a config file sets for ``command`` (config class ``cls``). A run record (a JSON
    object whose ``config`` holds the values, beside bookkeeping such as ``status`` and ``command``) gives
    its config, less ``resume``: a replay starts fresh. Unknown keys and another command's record are
    refused, naming them."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--config {p}: file not found")
    try:
        data = _load(p)
    except UserError:
        raise
    except OSError as e:
        raise UserError(f"--config {p}: {e.strerror or e}") from None
    except Exception as e:  # json's and yaml's parse errors; both say where
        kind = "JSON" if p.suffix == ".json" else "YAML"
        raise UserError(f"--config {p}: not valid {kind}: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--config {p}: expected a mapping of option names to values, got {type(data).__name__}")
    names = spellings(cls)
    record = isinstance(data.get("config"), dict) and "config" not in names
    if record:
        made_by = data.get("command")
        if made_by is not None and made_by != command:
            raise UserError(f"--config {p} is a run record of `persona-sae {made_by}`, not of `{command}`")
        data = {k: v for k, v in data["config"].items() if k != "resume"}
    hints = typing.get_type_hints(cls)
    out: dict = {}
    for key, value in data.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            whose = " (a run record of another command?)" if record and made_by is None else ""
            raise UserError(f"--config {p}: unknown option {key!r} for `{command}`{whose}")
        if name in out:
            raise UserError(f"--config {p}: {name} is given twice (under {key!r} and another spelling)")
        out[name] = _coerce(value, hints.get(name), f"--config {p}: {key}")
    if record and out.get("d_sae") and "expansion" in out:
        del out["expansion"]  # train: a record's d_sae is the width the factor gave (older records kept both)
    return out


def _coerce(value, hint, where: str):
    """Int fields go through the flags' number parser; other values are left to the field's own type."""
    try:
        if hint is int:
            return parse_int(value)
        if hint == list[int]:
            return [n for x in (value if isinstance(value, list) else [value]) for n in parse_ints(x)]
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
    return value
