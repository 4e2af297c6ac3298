"""persona_sae: which persona features did a fine-tune turn up?

The pipeline, one module per stage: models (spec -> hooked model) -> data (text -> tokens + masks)
-> activations (residual stream at layer L) -> train / rank / label / examples -> pages.
"""

import os
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


def write_json(path, obj) -> None:
    """Write JSON atomically (see ``replacing``)."""
    import json

    with replacing(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
