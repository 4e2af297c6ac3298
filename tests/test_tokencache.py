"""persona_sae.tokencache and `persona-sae data tokenize`: a token cache gives exactly what its text
gives (examples, held-out keys, and so a trained SAE), resumes after its last shard, and refuses a
tokenizer or context size it was not made with."""

import json

import pytest
import torch

from persona_sae import UserError
from persona_sae import tokencache as TC
from persona_sae.cli import main
from persona_sae.models import load_tokenizer
from persona_sae.stages.train import record_key
from persona_sae.text import iter_records
from persona_sae.tokencache import open_records
from persona_sae.tokens import iter_tokenize
from tests.conftest import SHARED, make_tiny_llama

TEXT = SHARED / "corpora" / "tinyshakespeare" / "input.txt"


@pytest.fixture()
def small_text(tmp_path):
    """The first ~600 paragraphs of tinyshakespeare, with an empty-ish record and a chat among them."""
    paras = TEXT.read_text().split("\n\n")[:600]
    p = tmp_path / "small.jsonl"
    rows = [{"text": t} for t in paras[:300]] + [{"text": " "}] + [
        {"messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello, friend."}]}
    ] + [{"text": t} for t in paras[300:]]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def test_the_cache_gives_the_text_s_examples_and_keys(tmp_path, tiny_dir, small_text):
    out = tmp_path / "cache"
    res = TC.tokenize(str(small_text), str(tiny_dir), out, context_size=48, shard_tokens=2000, log=lambda *_: None)
    assert res.shards > 3 and len(list(out.glob("shard-*.safetensors"))) == res.shards
    tok = load_tokenizer(str(tiny_dir))
    want = list(iter_tokenize(iter_records(str(small_text)), tok, 48))
    got = list(iter_tokenize(open_records(str(out)), tok, 48))
    assert res.tokens == sum(len(e.ids) for e in want) and res.examples == len(want)
    assert [(e.ids, e.response, e.special) for e in got] == [(e.ids, e.response, e.special) for e in want]
    assert any(any(e.response) for e in got)  # the chat's answer tokens kept their mask
    # one record each for the records that made tokens, in order, with the text's held-out key
    texts = [r for r in iter_records(str(small_text))]
    made = sorted({e.record for e in want})
    cached = list(open_records(str(out)))
    assert [r.key for r in cached] == [record_key(texts[i]) for i in made]
    with pytest.raises(UserError, match="is a token cache: this command reads text"):
        iter_records(str(out))  # a command that reads text (eval, rank's prompts) refuses a cache by name
    assert main(["data", "tokenize", str(small_text), "--model", str(tiny_dir), "--out", str(out),
                 "--context-size", "48"]) == 2  # a finished cache is not written over


def test_training_from_the_cache_equals_training_from_the_text(tmp_path, tiny_dir, small_text):
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    cache = tmp_path / "cache"
    assert main(["data", "tokenize", str(small_text), "--model", str(tiny_dir), "--out", str(cache),
                 "--context-size", "64", "--shard-tokens", "3000"]) == 0

    def fit(data, out):
        return train(TrainConfig(out=str(tmp_path / out), model=str(tiny_dir), layers=[1], dataset=str(data), d_sae=[64],
                                 k=[4], tokens=2048, batch_size=128, buffer_tokens=1024, eval_tokens=512, context_size=64,
                                 model_batch_tokens=512, checkpoint_every=1000, splice_eval=False), log=lambda *_: None)

    a, b = fit(small_text, "from-text"), fit(cache, "from-cache")
    for (n, p), q in zip(a.saes["sae"].state_dict().items(), b.saes["sae"].state_dict().values()):
        assert torch.equal(p, q), n
    assert a.metrics["sae"]["explained_variance"] == b.metrics["sae"]["explained_variance"]
    with pytest.raises(UserError, match="cut at context size 64, not 32"):
        list(iter_tokenize(open_records(str(cache)), load_tokenizer(str(tiny_dir)), 32))
    other = make_tiny_llama(tmp_path / "other", tokenizer=None, seed=1)
    m = json.loads((cache / "tokens.json").read_text())
    m["config"]["tokenizer"] = "0" * 16  # as if another tokenizer had made it
    (cache / "tokens.json").write_text(json.dumps(m))
    with pytest.raises(UserError, match="another tokenizer"):
        list(iter_tokenize(open_records(str(cache)), load_tokenizer(str(other)), 64))


def test_an_interrupted_run_resumes_after_its_last_shard(tmp_path, tiny_dir, small_text, monkeypatch):
    whole = TC.tokenize(str(small_text), str(tiny_dir), tmp_path / "whole", 48, 2000, log=lambda *_: None)
    real, calls = TC._write_shard, []

    def dies_on_the_third(path, exs):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, exs)

    monkeypatch.setattr(TC, "_write_shard", dies_on_the_third)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        TC.tokenize(str(small_text), str(tiny_dir), out, 48, 2000, log=lambda *_: None)
    monkeypatch.setattr(TC, "_write_shard", real)
    assert json.loads((out / "tokens.json").read_text())["status"] != "done"
    with pytest.raises(UserError, match="unfinished token cache"):
        next(open_records(str(out)))
    with pytest.raises(UserError, match="pass --resume"):
        TC.tokenize(str(small_text), str(tiny_dir), out, 48, 2000, log=lambda *_: None)
    with pytest.raises(UserError, match="different config"):
        TC.tokenize(str(small_text), str(tiny_dir), out, 64, 2000, resume=True, log=lambda *_: None)
    done = TC.tokenize(str(small_text), str(tiny_dir), out, 48, 2000, resume=True, log=lambda *_: None)
    assert done == whole._replace(out=out)
    for f in sorted((tmp_path / "whole").glob("shard-*")):
        assert f.read_bytes() == (out / f.name).read_bytes(), f.name


def test_bad_input_is_one_line(tmp_path, tiny_dir, capsys):
    assert main(["data", "tokenize", str(tmp_path / "missing.jsonl"), "--model", str(tiny_dir),
                 "--out", str(tmp_path / "c")]) == 2
    assert main(["data", "tokenize", str(TEXT), "--model", str(tiny_dir), "--out", str(tmp_path / "c"),
                 "--context-size", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not found" in err[0] and "at least 2" in err[-1] and "Traceback" not in "".join(err)
