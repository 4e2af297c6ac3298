"""persona_sae: which persona features did a fine-tune turn up?

The pipeline, one module per stage: models (spec -> hooked model) -> data (text -> tokens + masks)
-> activations (residual stream at layer L) -> train / rank / label / examples -> pages.
"""

__version__ = "0.1.0"


class UserError(Exception):
    """A problem with what the user asked for. The CLI prints it as one line and exits 2."""


def write_json(path, obj) -> None:
    """Write JSON under a temporary name, then rename: a reader never sees half a file."""
    import json
    import os
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
