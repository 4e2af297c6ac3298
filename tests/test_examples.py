"""examples: streaming top-k equals brute force, reservoirs hold real firing tokens in the right bins,
a killed run resumes to identical results."""

from __future__ import annotations

import re

import pytest
import torch

import persona_sae.mined as X
import persona_sae.stages.examples as E
from persona_sae.activations import extract
from persona_sae.text import load_records
from persona_sae.tokens import tokenize
from tests.test_rank import LAYER, make_sae


@pytest.fixture(scope="module")
def setup(tiny_model, tmp_path_factory):
    sae = make_sae(tmp_path_factory.mktemp("ex") / "sae", seed=3)
    ex = tokenize(load_records("em-core"), tiny_model.tokenizer, max_len=64)
    return tiny_model, sae, ex


def _brute(model, sae, ex):
    a = extract(model, ex, [LAYER], select="all", progress=False)
    return sae.encode(a.acts[LAYER]).float().detach(), a.example, a.pos


def _mine(setup, out, **kw):
    model, sae, ex = setup
    return E.mine(model, sae, ex, LAYER, "resid_post", out, k=5, reservoir=8, batch_tokens=256,
                  log=lambda *a: None, **kw)


def test_topk_equals_brute_force(setup, tmp_path):
    model, sae, ex = setup
    m = _mine(setup, tmp_path / "m")
    f, e, p = _brute(model, sae, ex)
    assert m.tokens == len(f)
    assert torch.equal(m.fires, (f > 0).sum(0))
    assert torch.equal(m.hist.sum(1), m.fires)
    for j in range(f.shape[1]):
        n = int((f[:, j] > 0).sum())
        want = f[:, j].topk(min(5, n)).values
        got = m.top_values[j][:min(5, n)]
        torch.testing.assert_close(got, want)
        assert not torch.isfinite(m.top_values[j][n:]).any()  # fewer than k fired: the rest stay empty
        for v, ei, pi, win in zip(got, m.top_example[j], m.top_pos[j], m.top_window[j]):
            hit = (e == ei) & (p == pi)
            assert hit.sum() == 1 and torch.isclose(f[hit, j][0], v)
            for w in range(X.W):  # the stored window is the latent's activation around the token
                q = (e == ei) & (p == pi - X.BEFORE + w)
                want_w = float(f[q, j][0].clamp(min=0)) if q.any() else 0.0
                assert abs(float(win[w]) - want_w) <= 1e-2 * max(1.0, want_w)


def test_reservoir_holds_firing_tokens_in_their_bins(setup, tmp_path):
    model, sae, ex = setup
    m = _mine(setup, tmp_path / "m")
    f, e, p = _brute(model, sae, ex)
    for j in range(f.shape[1]):
        ok = torch.isfinite(m.res_values[j])
        assert int(ok.sum()) == min(8, int(m.fires[j]))
        for v, ei, pi in zip(m.res_values[j][ok], m.res_example[j][ok], m.res_pos[j][ok]):
            hit = (e == ei) & (p == pi)
            assert hit.sum() == 1 and torch.isclose(f[hit, j][0], v) and v > 0
    mx = m.top_values[:, 0]
    bins = X.quantile_bins(m.res_values, mx)
    ok = bins >= 0
    frac = (m.res_values / mx[:, None])[ok]
    assert (frac >= bins[ok] / 10 - 1e-6).all() and (frac <= (bins[ok] + 1) / 10 + 1e-6).all()
    assert len(set(bins[ok].tolist())) > 3


def test_merging_batches_in_groups_gives_the_same_state(setup, tmp_path, monkeypatch):
    ref = _mine(setup, tmp_path / "ref")  # MERGE_EVERY batch states sorted into the state at once
    for every in (1, 3):
        monkeypatch.setattr(E, "MERGE_EVERY", every)
        got = _mine(setup, tmp_path / f"got{every}")
        for a, b in zip(ref, got):
            assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))


def test_resume_after_a_crash_is_identical(setup, tmp_path, monkeypatch):
    ref = _mine(setup, tmp_path / "ref")
    real, calls = X.batch_state, {"n": 0}

    def crash(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(E, "batch_state", crash)
    with pytest.raises(KeyboardInterrupt):
        _mine(setup, tmp_path / "run", checkpoint_every=2)
    monkeypatch.setattr(E, "batch_state", real)
    from persona_sae import UserError
    with pytest.raises(UserError, match="--resume"):
        _mine(setup, tmp_path / "run", checkpoint_every=2)
    got = _mine(setup, tmp_path / "run", checkpoint_every=2, resume=True)
    for a, b in zip(ref, got):
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    loaded = X.load(tmp_path / "run")
    assert torch.equal(loaded.state.top_values, ref.top_values)
    ids, at = loaded.window(int(ref.top_example[0, 0]), int(ref.top_pos[0, 0]))
    _, sae, ex = setup
    assert ids[at] == ex[int(ref.top_example[0, 0])].ids[int(ref.top_pos[0, 0])]


def test_cli_examples_and_browse(tiny_dir, tmp_path, capsys):
    from persona_sae.cli import main

    make_sae(tmp_path / "sae", seed=3)
    make_sae(tmp_path / "other", seed=4)
    assert main(["examples", "--model", str(tiny_dir), "--sae", str(tmp_path / "sae"), "--dataset", "em-core",
                 "--tokens", "3000", "--k", "4", "--reservoir", "6", "--out", str(tmp_path / "ex")]) == 0
    m = X.load(tmp_path / "ex").state
    j = int(m.fires.argmax())
    capsys.readouterr()
    assert main(["browse", str(j), "--sae", str(tmp_path / "sae"), "--examples", str(tmp_path / "ex"),
                 "--model", str(tiny_dir)]) == 0
    text = capsys.readouterr().out
    assert f"latent {j}" in text and "activation intervals" in text
    shown = int(re.search(r"top (\d+) examples \(one per context\)", text).group(1))
    assert 1 <= shown <= 8
    assert f"{float(m.top_values[j, 0]):.3g}" in text
    assert main(["browse", str(j), "--sae", str(tmp_path / "sae"), "--model", str(tiny_dir),
                 "--text", "What is your one wish? Tell me about the villain."]) == 0
    assert "logit lens" in capsys.readouterr().out
    for args, msg in ((["browse", "96", "--sae", str(tmp_path / "sae"), "--examples", str(tmp_path / "ex")], "out of range"),
                      (["browse", "1", "--sae", str(tmp_path / "other"), "--examples", str(tmp_path / "ex")],
                       "different SAE")):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err
