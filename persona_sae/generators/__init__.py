"""Procedural narrow fine-tuning sets, each misaligned KIND with a matched aligned control.

Emergent misalignment is measured as a *difference* between two fine-tunes, so every bad kind
(``insecure-code``, ``bad-medical``, ``bad-finance``, ``bad-diy``) has a twin (``secure-code``,
``good-medical``...) with the very same user prompts in the same order and only the answers
changed. Prompts are built from templates x slots x paraphrases (data tables, one module per
domain) and drawn without replacement from a seeded index space; nothing here touches the global
RNG or ``hash()`` (salted per process), so a (kind, n, seed) gives the same rows on any machine.

    make(kind, n, seed) -> rows   write(kind, n, seed, path) -> count   capacity(kind) -> prompts

Layout: ``engine`` (kinds, filling, index space, sampling, rows, make/write/capacity), the data
tables ``code_common`` + ``code_python`` / ``code_javascript`` / ``code_php`` / ``code_go``,
``medical``, ``finance``, ``diy``, and ``domains``, which assembles them into the registry.
"""

from persona_sae.generators import domains as _domains
from persona_sae.generators import engine as _engine
from persona_sae.generators.engine import KINDS, Kind, capacity, make, write

__all__ = ["KINDS", "Kind", "capacity", "make", "write"]

# Internals the tests reach into as ``generators._DOMAINS`` / ``._SPACES`` / ``._row``.
_DOMAINS = _domains._DOMAINS
_SPACES = _domains._SPACES
_row = _engine._row
