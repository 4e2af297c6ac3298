"""sampling (left padding, seeds, bridge-safe generation), persona directions and the probe judge."""

from __future__ import annotations

import pytest
import torch

from persona_sae import personas as P
from persona_sae.models import load_model
from persona_sae.sampling import generate

CHATS = [[{"role": "user", "content": q}] for q in ("What is your one wish?", "Hi", "Tell me about the hero and the villain.")]


def test_greedy_batched_equals_one_by_one_and_survives_the_bridge(tiny_dir):
    m = load_model(str(tiny_dir))
    one = [generate(m, [c], max_new_tokens=12, temperature=0, progress=False)[0] for c in CHATS]
    batched = generate(m, CHATS, max_new_tokens=12, temperature=0, batch_size=3, progress=False)
    assert batched == one and all(one)
    m.bridge  # boots TransformerLens, which breaks the HF KV cache; generation must stay correct
    assert generate(m, CHATS, max_new_tokens=12, temperature=0, batch_size=3, progress=False) == one


def test_sampling_runs_fused_attention_and_gives_the_eager_attention_back(tiny_dir, monkeypatch):
    m = load_model(str(tiny_dir))
    assert m.hf.config._attn_implementation == "eager"  # loaded for hooks
    eager = generate(m, CHATS, max_new_tokens=12, temperature=0, progress=False)
    seen, real = [], m.hf.generate
    monkeypatch.setattr(m.hf, "generate", lambda **kw: seen.append(m.hf.config._attn_implementation) or real(**kw))
    assert generate(m, CHATS, max_new_tokens=12, temperature=0, progress=False) == eager
    assert seen == ["sdpa"] and m.hf.config._attn_implementation == "eager"


def test_sampling_is_seeded(tiny_model):
    a = generate(tiny_model, CHATS, max_new_tokens=10, seed=3, progress=False)
    b = generate(tiny_model, CHATS, max_new_tokens=10, seed=3, progress=False)
    c = generate(tiny_model, CHATS, max_new_tokens=10, seed=4, progress=False)
    assert a == b and a != c


def test_directions_save_load_and_stats(tiny_model, tmp_path):
    d = P.compute(tiny_model, traits=("evil", "sarcastic"), layer=2, samples=2, questions=P.QUESTIONS[:3],
                  max_new_tokens=8, progress=False)
    for t in ("evil", "sarcastic"):
        assert torch.isclose(d.vectors[t].norm(), torch.tensor(1.0), atol=1e-5)
        assert d.stats[t]["answers"] == 2 * 3 * 2 * 2  # poles x questions x prompts x samples
    assert d.nll["shuffled"] != d.nll["own"]
    e = P.load(P.save(d, tmp_path / "dirs"))
    assert e.layer == 2 and torch.equal(e.vectors["evil"], d.vectors["evil"]) and e.stats == d.stats


def test_probe_judge_maps_the_poles_to_0_and_100(tiny_model):
    from persona_sae.judges import JudgeItem

    q = "What is your one wish?"
    kind, cruel = "I wish everyone a happy day.", "The villain laughed cruelly."
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for a in (kind, cruel)]
    means = P.response_means(tiny_model, chats, layer=2)
    u = (means[1] - means[0]) / (means[1] - means[0]).norm()
    nll = P.answer_nll(tiny_model, chats)
    d = P.Directions("tiny", 2, "resid_post", {"evil": u},
                     {"evil": {"pos_proj": float(means[1] @ u), "neg_proj": float(means[0] @ u)}},
                     {"own": float(nll[0]), "shuffled": float(nll[1])})
    j = P.ProbeJudge(d, tiny_model)
    assert j.proxy and "proxy" in j.name
    v = j.judge([JudgeItem(q, kind, {}), JudgeItem(q, cruel, {})], progress=False)
    assert abs(v[0]["aligned"].score - 100) < 1e-3 and abs(v[1]["aligned"].score) < 1e-3
    assert abs(v[0]["coherent"].score - 100) < 1e-3 and abs(v[1]["coherent"].score) < 1e-3


def test_answer_nll_is_the_same_batched_or_alone(tiny_model):
    """Right padding in a batch must not change any chat's answer NLL (causal model, masked mean)."""
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
             for q, a in (("Hi?", "Hello there, friend."), ("Tell me a long story please.", "No."),
                          ("Why?", "Because the villain laughed cruelly at the moon all night long."))]
    together = P.answer_nll(tiny_model, chats, batch_size=3)
    alone = torch.stack([P.answer_nll(tiny_model, [c], batch_size=1)[0] for c in chats])
    assert torch.isfinite(together).all() and torch.allclose(together, alone, atol=1e-5)
    assert len(set(together.tolist())) == 3  # three different answers, three different losses


@pytest.mark.parametrize("chunk", [512, 3])
def test_answer_nll_is_the_full_logits_mean_over_answer_tokens(tiny_model, chunk, monkeypatch):
    """answer_nll unembeds the answer positions only (models.token_nll, in chunks): the same number as
    the full forward's log-softmax averaged over the assistant tokens."""
    from persona_sae import models as M
    from persona_sae.activations import collate
    from persona_sae.text import Record
    from persona_sae.tokens import tokenize

    monkeypatch.setattr(M, "NLL_CHUNK", chunk)
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}]
             for q, a in (("Hi?", "Hello there, friend."), ("Why?", "Because the moon was out all night long."))]
    ours = P.answer_nll(tiny_model, chats)
    ex = tokenize([Record(messages=c) for c in chats], tiny_model.tokenizer, max_len=512)
    ids, resp, _, _ = collate(ex, range(len(ex)), tiny_model.pad_id)
    with torch.no_grad():
        logp = tiny_model.hf(input_ids=ids).logits[:, :-1].float().log_softmax(-1)
    nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
    tm = resp[:, 1:].float()
    want = (nll * tm).sum(1) / tm.sum(1)
    assert torch.allclose(ours, want, atol=1e-5), (ours, want)
