"""persona_sae: which persona features did a fine-tune turn up?

The core, in pipeline order: text -> tokens -> activations -> latents -> statistics -> labels -> pages,
with models, judges, personas, runs and friends beside it. ``persona_sae.stages`` holds one module per
command (each command a function ``cfg -> Result``); ``cli`` parses and ``report`` prints.
"""

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

__version__ = "0.1.0"


class UserError(Exception):
    """A problem with what the user asked for. The CLI prints it as one line and exits 2."""


@contextmanager
def replacing(path):
    """Yield a temporary name beside ``path``, renamed to ``path`` when the block ends without error
    and removed otherwise: a reader never sees half a file, and a failed write leaves the old one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, obj, sort_keys: bool = False) -> None:
    """Write JSON atomically (see ``replacing``). Keys keep the order the code builds them in, which is
    fixed; ``sort_keys`` is for a document whose order comes from another library and means nothing."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def log(msg: str) -> None:
    """Progress lines go to stderr, so a command's stdout holds only its result."""
    print(msg, file=sys.stderr, flush=True)


def read_utf8(path) -> str:
    """A user's text file, which must be UTF-8: every reader fails alike on another encoding, naming the
    file and the first bad byte, rather than one crashing and another reading replacement characters."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                        f"convert it, e.g. iconv -f latin1 -t utf-8") from None


def read_json(path, what: str = "") -> object:
    """A JSON file a user may have edited or truncated: a bad one is a one-line error naming it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what or 'JSON file'} not found: {path}")
    try:
        return json.loads(read_utf8(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: malformed JSON ({e.msg} at line {e.lineno}){f'; it should be {what}' if what else ''}") from None
