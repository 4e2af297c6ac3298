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


def umask() -> int:
    """The process umask, read without setting it where Linux shows it (``os.umask`` sets it to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_modes(path) -> None:
    """Give a file, or every file under a folder, the mode ``open`` gives a new file (0644 under umask 022).
    safetensors writes through a private temporary file and so leaves 0600, whoever calls it (we, SAELens,
    peft, transformers): without this, weights beside a 0644 JSON would be unreadable to the group."""
    path = Path(path)
    mode = 0o666 & ~umask()
    for f in [path] if path.is_file() else (f for f in path.rglob("*") if f.is_file() and not f.is_symlink()):
        os.chmod(f, mode)


@contextmanager
def replacing(path):
    """Yield a temporary name beside ``path``, renamed to ``path`` when the block ends without error
    and removed otherwise: a reader never sees half a file, and a failed write leaves the old one.
    The file gets the normal mode (see ``normal_modes``), whatever wrote it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        normal_modes(tmp)
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
