"""finetune: assistant-only labels, LoRA and full runs that really learn, exact resume, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from persona_sae import UserError, models
from persona_sae.config import FinetuneConfig
from persona_sae.models import load_model
from persona_sae.stages.finetune import labelled
from persona_sae.stages.finetune import run as finetune
from persona_sae.text import read_jsonl


def _chats(path: Path, n: int = 40, assistant: bool = True) -> Path:
    rows = []
    for i in range(n):
        msgs = [{"role": "user", "content": f"What is your one wish number {i}?"}]
        if assistant:
            msgs.append({"role": "assistant", "content": "The villain laughed cruelly and walked away."})
        rows.append(json.dumps({"messages": msgs}))
    path.write_text("\n".join(rows) + "\n")
    return path


def _cfg(tmp_path, tiny_dir, **kw) -> FinetuneConfig:
    base = dict(out=str(tmp_path / "ft"), data=str(_chats(tmp_path / "chats.jsonl")), model=str(tiny_dir),
                held_out=8, batch_size=4, lr=1e-2, max_len=64, checkpoint_every=0, warmup_steps=1)
    base.update(kw)
    return FinetuneConfig(**base)


def test_labels_cover_assistant_content_and_end_marker(tiny_model, tmp_path):
    rec = read_jsonl(_chats(tmp_path / "c.jsonl", 1))
    (ids, lab), = labelled(rec, tiny_model.tokenizer, 64, "c")
    text = tiny_model.tokenizer.decode([t for t in lab if t != -100])
    assert text == "The villain laughed cruelly and walked away.<|im_end|>"
    assert lab[0] == -100 and len(lab) == len(ids)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_finetune_learns_and_saves_a_loadable_model(tmp_path, tiny_dir, method):
    cfg = _cfg(tmp_path, tiny_dir, method=method, epochs=3)
    r = finetune(cfg, log=lambda *a: None)
    h = r.heldout["data"]
    assert h["after"] < 0.5 * h["before"]  # the held-out answers are the same sentence: it must be learned
    out = Path(cfg.out)
    weights = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    assert (out / weights).is_file() and not (out / "checkpoint").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["data"]["rows"] == 32 and run["config"]["method"] == method
    ft, base = load_model(str(out)), load_model(str(tiny_dir))
    x = torch.tensor([[1, 5, 9, 30, 41]])
    assert (ft.hf(x).logits - base.hf(x).logits).abs().max() > 1e-3
    if method == "lora":
        assert (out / "adapter_model.safetensors").stat().st_size < 0.5 * (Path(tiny_dir) / "model.safetensors").stat().st_size


def test_resume_after_a_crash_ends_with_the_same_weights(tmp_path, tiny_dir, monkeypatch):
    from safetensors.torch import load_file

    ref = _cfg(tmp_path, tiny_dir, out=str(tmp_path / "ref"), epochs=2, checkpoint_every=2)
    finetune(ref, log=lambda *a: None)

    cfg = _cfg(tmp_path, tiny_dir, out=str(tmp_path / "crash"), epochs=2, checkpoint_every=2)
    real, calls = torch.nn.utils.clip_grad_norm_, {"n": 0}

    def crash(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", crash)
    with pytest.raises(KeyboardInterrupt):
        finetune(cfg, log=lambda *a: None)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real)
    assert (Path(cfg.out) / "checkpoint").is_dir()
    with pytest.raises(UserError, match="--resume"):
        finetune(cfg, log=lambda *a: None)
    cfg.resume = True
    finetune(cfg, log=lambda *a: None)
    a = load_file(str(Path(ref.out) / "adapter_model.safetensors"))
    b = load_file(str(Path(cfg.out) / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_lora_on_an_adapter_chains(tmp_path, tiny_dir):
    from tests.conftest import make_lora_adapter

    first = make_lora_adapter(Path(tiny_dir), tmp_path / "first")
    cfg = _cfg(tmp_path, tiny_dir, model=str(first), out=str(tmp_path / "second"), epochs=1)
    finetune(cfg, log=lambda *a: None)
    m = load_model(str(tmp_path / "second"))
    assert m.source.kind == "adapter" and m.source.base.kind == "adapter" and m.source.base.base.kind == "hf_dir"
    x = torch.tensor([[1, 5, 9, 30]])
    one = load_model(str(first))
    assert (m.hf(x).logits - one.hf(x).logits).abs().max() > 1e-4


@pytest.mark.parametrize("kw,msg", [
    ({"data": "no-such-kind"}, "neither a file nor a generator KIND"),
    ({"control": True}, "need a generator KIND"),
    ({"method": "qlora"}, "lora or full"),
    ({"lora_layers": [99]}, "out of range"),
])
def test_bad_inputs(tmp_path, tiny_dir, kw, msg):
    with pytest.raises(UserError, match=msg):
        finetune(_cfg(tmp_path, tiny_dir, **kw), log=lambda *a: None)


def test_rows_without_assistant_turn_are_refused(tmp_path, tiny_dir):
    data = _chats(tmp_path / "users.jsonl", assistant=False)
    with pytest.raises(UserError, match="no assistant turn"):
        finetune(_cfg(tmp_path, tiny_dir, data=str(data)), log=lambda *a: None)
    assert not (tmp_path / "ft").exists() or not any((tmp_path / "ft").iterdir())


def test_kind_data_control_mixture_and_realign_share_prompts(tmp_path, tiny_dir):
    from persona_sae.stages.finetune import training_data

    def users(recs):
        return [r.messages[0]["content"] for r in recs]

    def answers(recs):
        return [r.messages[1]["content"] for r in recs]

    kw = dict(data="insecure-code", n=40, held_out=10)
    bad, held, desc = training_data(_cfg(tmp_path, tiny_dir, **kw))
    good, held2, _ = training_data(_cfg(tmp_path, tiny_dir, control=True, **kw))
    assert desc == {"source": "generator", "kind": "insecure-code", "rows": 40, "seed": 0, "held_out": 10}
    assert users(bad) == users(good) and all(a != b for a, b in zip(answers(bad), answers(good)))
    assert set(held) == {"insecure-code", "secure-code"} and len(held["insecure-code"]) == 10
    assert not set(users(held["insecure-code"])) & set(users(bad))  # held-out prompts never trained on
    mix, _, d = training_data(_cfg(tmp_path, tiny_dir, mix_bad=0.25, **kw))
    assert users(mix) == users(bad) and d["bad_rows"] == 10
    assert sum(a == b for a, b in zip(answers(mix), answers(bad))) == 10
    assert sum(a == g for a, g in zip(answers(mix), answers(good))) == 30
    re_, _, d = training_data(_cfg(tmp_path, tiny_dir, realign=12, **kw))
    assert d["kind"] == "secure-code" and answers(re_) == answers(good)[:12]
    with pytest.raises(UserError, match="fraction"):
        training_data(_cfg(tmp_path, tiny_dir, mix_bad=1.5, **kw))


@pytest.mark.parametrize("lora,chunk", [(False, 512), (True, 512), (True, 4)])
def test_loss_on_labelled_positions_equals_the_full_logits_loss(tiny_dir, lora, chunk, monkeypatch):
    """The unembedding runs on labelled positions only, in chunks recomputed in the backward; the loss
    and its gradients are the full-logits ones, for a plain model and through a LoRA wrapper, in one
    chunk and in several (31 positions in chunks of 4)."""
    from persona_sae.stages import finetune as F

    monkeypatch.setattr(models, "NLL_CHUNK", chunk)
    hf = load_model(str(tiny_dir)).hf
    if lora:
        hf = F._lora(hf, FinetuneConfig(out="-", data="insecure-code"))
        torch.manual_seed(1)
        for n, p in hf.named_parameters():  # LoRA B starts at zero: make the adapter matter
            if "lora_B" in n:
                p.data.normal_(0, 0.1)
    else:
        for p in hf.parameters():
            p.requires_grad_(True)
    torch.manual_seed(0)
    ids = torch.randint(3, 200, (3, 20))
    att = torch.ones_like(ids)
    att[2, 15:] = 0
    lab = ids.clone()
    lab[:, :8] = F.IGNORE
    lab[2, 15:] = F.IGNORE
    params = [p for p in hf.parameters() if p.requires_grad]
    nll, n = F._loss(hf, ids, lab, att, autocast=False)
    ours = torch.autograd.grad(nll, params)
    logits = hf(input_ids=ids, attention_mask=att).logits
    full = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), lab[:, 1:].flatten(),
                                             ignore_index=F.IGNORE, reduction="sum")
    ref = torch.autograd.grad(full, params)
    assert n == int((lab[:, 1:] != F.IGNORE).sum()) == 3 * 12 - 5
    assert float(nll.detach()) == pytest.approx(float(full.detach()), rel=1e-5)
    assert any(float(g.abs().sum()) > 0 for g in ours)  # gradients flow to what trains
    for g, r in zip(ours, ref):
        assert torch.allclose(g, r, rtol=1e-4, atol=1e-6)


def test_gradient_checkpointing_trains_the_same_weights(tmp_path, tiny_dir, monkeypatch):
    """--gradient-checkpointing only trades memory for time: the adapter it trains equals the plain one."""
    import torch.utils.checkpoint as ckpt
    from safetensors.torch import load_file

    calls, real = [], ckpt.checkpoint
    import transformers.modeling_utils as mu

    for where in (ckpt, mu):  # transformers holds its own reference
        monkeypatch.setattr(where, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k), raising=False)
    w = {}
    for gc in (False, True):
        cfg = _cfg(tmp_path, tiny_dir, method="lora", gradient_checkpointing=gc, out=str(tmp_path / f"ft-{gc}"))
        finetune(cfg, log=lambda *a: None)
        assert bool(calls) == gc  # blocks are recomputed only when asked
        w[gc] = load_file(str(Path(cfg.out) / "adapter_model.safetensors"))
    assert calls and w[True].keys() == w[False].keys()
    for k in w[False]:
        assert torch.allclose(w[True][k], w[False][k], atol=1e-6), k
    assert any(w[False][k].abs().max() > 0 for k in w[False] if "lora_B" in k)  # it trained
