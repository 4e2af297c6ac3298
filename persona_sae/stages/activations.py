"""The `activations` command: residual-stream activations at chosen layers into a safetensors cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

from persona_sae import config as C
from persona_sae import log
from persona_sae import models as M
from persona_sae.activations import write_cache
from persona_sae.text import STREAM_CHARS_PER_TOKEN, load_records
from persona_sae.tokens import load_examples


class ActivationsResult(NamedTuple):
    out: Path
    manifest: dict
    n_sequences: int
    layers: list[int]
    seconds: float


def run(cfg: C.ActivationsConfig) -> ActivationsResult:
    records = load_records(cfg.dataset, column=cfg.column or None, split=cfg.split, config=cfg.data_config or None,
                           max_chars=STREAM_CHARS_PER_TOKEN * cfg.max_tokens)  # bad data fails before the weights load
    model = M.load_model(cfg.model, dtype=cfg.dtype, log=log)
    for L in cfg.layers:
        model.hook_name(L, cfg.hook)
    examples = load_examples(model, records, cfg.max_len, cfg.max_tokens)
    t0 = time.time()
    manifest = write_cache(model, examples, cfg, resume=cfg.resume)
    return ActivationsResult(Path(cfg.out), manifest, len(examples), manifest["config"]["layers"], time.time() - t0)
