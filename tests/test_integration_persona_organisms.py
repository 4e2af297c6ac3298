"""The shipped persona organisms (experiments/persona_control_smollm2, seed 0): each adapter loads
through the model-spec path, each prefers its own pole's held-out answers over the other's, and the
rank command of their model card runs between them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from persona_sae import generators as G
from persona_sae.cli import main
from persona_sae.models import load_model
from persona_sae.stages.finetune import split_file
from persona_sae.text import Record
from persona_sae.tokens import tokenize

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
ORG = ROOT / "persona_sae" / "checkpoints" / "smollm2" / "organisms"


def held_out(kind: str, n: int = 16) -> list[Record]:
    """The rows the shipped organisms never trained on: finetune's seed-0 split of the 564-row set."""
    held = split_file([Record(messages=r["messages"]) for r in G.make(kind, 564, 0)], 64, 0)[1]
    return held[:n]


def answer_logprob(model, records: list[Record]) -> float:
    """Mean log-prob per assistant token, teacher-forced."""
    total, count = 0.0, 0
    for ex in tokenize(records, model.tokenizer, max_len=512):
        ids = torch.tensor([ex.ids])
        with torch.no_grad():
            lp = torch.log_softmax(model.hf(ids).logits[0, :-1].float(), -1)
        tok = ids[0, 1:]
        keep = torch.tensor(ex.response[1:])
        total += float(lp[torch.arange(len(tok)), tok][keep].sum())
        count += int(keep.sum())
    return total / count


def test_each_organism_prefers_its_own_poles_answers():
    evil, kind = held_out("evil-persona"), held_out("kind-persona")
    assert [r.messages[0] for r in evil] == [r.messages[0] for r in kind]  # the same prompts
    e, k = load_model(str(ORG / "evil-persona-lora")), load_model(str(ORG / "kind-persona-lora"))
    assert e.spec != k.spec
    assert answer_logprob(e, evil) - answer_logprob(k, evil) > 0.2
    assert answer_logprob(k, kind) - answer_logprob(e, kind) > 0.2


def test_the_model_cards_rank_command_runs(tmp_path):
    card = (ORG / "evil-persona-lora" / "README.md").read_text()
    cmd = card[card.index("`persona-sae rank"):].split("`")[1].split()
    assert cmd[:2] == ["persona-sae", "rank"]
    out = tmp_path / "rank"
    argv = [str(out) if a == "runs/rank" else str(ROOT / a) if a.startswith("persona_sae/") else a for a in cmd[1:]]
    assert main(argv) == 0
    r = json.loads((out / "ranking.json").read_text())
    assert r["primary"] == "control-adjusted" and len(r["latents"]["control-adjusted"]["rank"]) == 4608
    assert {Path(m["spec"]).name for k, m in r["models"].items() if k != "base"} == {"evil-persona-lora",
                                                                                     "kind-persona-lora"}
