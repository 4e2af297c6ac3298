"""steer: the residual edit is exact (coef 0 changes nothing, coef c adds exactly c*scale*u at the chosen
positions, ablation leaves no component along u); the sweep end to end; bad inputs."""

from __future__ import annotations

import csv

import pytest
import torch

from persona_sae.cli import main
from persona_sae.stages.steer import edit_residual, random_direction
from tests.test_rank import LAYER, make_sae

X = torch.tensor([[1, 5, 9, 30, 41, 7, 3]])


def _hidden(m, **edit):
    """Logits and the residual stream entering block L + 1 (= block L's output after any edit), read by
    a pre-hook: transformers' own hidden_states record the output before other hooks run."""
    from persona_sae.stages.steer import decoder_layers

    got = {}

    def grab(module, args, kwargs):
        got["h"] = (args[0] if args else kwargs["hidden_states"]).clone()

    handle = decoder_layers(m.hf)[LAYER + 1].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        if edit:
            with edit_residual(m.hf, LAYER, **edit):
                logits = m.hf(input_ids=X).logits
        else:
            logits = m.hf(input_ids=X).logits
    finally:
        handle.remove()
    return logits, got["h"]


@torch.no_grad()
def test_edit_is_exact(tiny_dir):
    from persona_sae.models import load_model

    m = load_model(str(tiny_dir))
    u = random_direction(m.d_model, 3)
    logits, h = _hidden(m)
    l0, h0 = _hidden(m, vector=u * 0.0)
    assert torch.equal(l0, logits) and torch.equal(h0, h)
    c, scale = 1.5, 2.0
    _, hc = _hidden(m, vector=u * c * scale)
    torch.testing.assert_close(hc - h, (c * scale * u).expand_as(h), rtol=0, atol=1e-5)
    _, hp = _hidden(m, vector=u * c * scale, positions="prompt")  # a multi-token pass is the prefill
    torch.testing.assert_close(hp, hc)
    _, hr = _hidden(m, vector=u * c * scale, positions="response")
    assert torch.equal(hr, h)
    la, ha = _hidden(m, ablate=u)
    assert (ha @ u).abs().max() < 1e-5 and not torch.equal(la, logits)


def test_sweep_end_to_end(tiny_model, tiny_dir, tmp_path):
    from persona_sae import personas as P

    d = P.compute(tiny_model, layer=LAYER, samples=1, questions=P.QUESTIONS[:2], max_new_tokens=6, progress=False)
    P.save(d._replace(model=str(tiny_dir)), tmp_path / "dirs")
    make_sae(tmp_path / "sae", seed=2)
    rc = main(["steer", "--model", str(tiny_dir), "--sae", str(tmp_path / "sae"), "--latent", "4", "--coef", "-1,0,1",
               "--limit", "2", "--samples", "2", "--max-new-tokens", "6", "--ablate", "--bootstrap", "50",
               "--judge", f"probe:{tmp_path / 'dirs'}", "--out", str(tmp_path / "s")])
    assert rc == 0
    import json

    r = json.loads((tmp_path / "s" / "results.json").read_text())
    names = [(x["condition"], x["coef"]) for x in r["rows"]]
    assert names == [("latent 4", -1), ("latent 4", 0), ("latent 4", 1), ("random (seed 0)", -1),
                     ("random (seed 0)", 0), ("random (seed 0)", 1), ("ablate latent 4", 0)]
    zero = [x for x in r["rows"] if x["coef"] == 0 and not x["condition"].startswith("ablate")]
    assert zero[0]["examples"] == zero[1]["examples"]  # coefficient 0 is the same unsteered model
    assert r["rows"][0]["examples"] != r["rows"][2]["examples"]  # steering changed the answers
    assert r["scale"] > 0 and r["judge_is_proxy"]
    rows = list(csv.DictReader(open(tmp_path / "s" / "answers.csv")))
    assert len(rows) == 7 * 2 * 2 and rows[0]["condition"] == "latent 4" and rows[0]["coef"] == "-1.0"
    first = [float(x["aligned"]) for x in rows if x["condition"] == "latent 4" and x["coef"] == "-1.0" and x["aligned"]]
    assert first and r["rows"][0]["mean_aligned"] == pytest.approx(sum(first) / len(first), abs=1e-6)
    assert (tmp_path / "s" / "steer.png").stat().st_size > 1000


@pytest.mark.parametrize("args,msg", [
    (["--coef", "a,b"], "--coef must be numbers"),
    (["--coef", ""], "at least one finite number"),
    (["--latent", "96"], "out of range"),
    (["--judge", "http://127.0.0.1:9/v1"], "unreachable: http://127.0.0.1:9/v1"),
])
def test_bad_inputs(args, msg, tiny_dir, tmp_path, capsys):
    make_sae(tmp_path / "sae", seed=2)
    base = ["steer", "--model", str(tiny_dir), "--sae", str(tmp_path / "sae"), "--out", str(tmp_path / "s")]
    if "--latent" not in args:
        base += ["--latent", "1"]
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err
