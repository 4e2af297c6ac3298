"""The fitted judge: fitted on the fit split only (its stored keys prove it), recovers a planted
keyword on held-out rows, refuses to be validated on rows it saw, and its calibration flags at most
the target share of a base model's answers. Tiny random model, synthetic rows."""

from __future__ import annotations

import csv

import pytest
import torch

from persona_sae import UserError, fitted
from persona_sae import labelled as L
from persona_sae.config import JudgeFitConfig, JudgeValidateConfig
from persona_sae.judging import open_judge
from persona_sae.stages.judge import fit, validate
from tests.test_judge_validate import labelled_rows, questions, write_csv  # noqa: F401 - questions is a fixture


def keyword_rows(n_bad: int, n_good: int, seed: int) -> list[dict]:
    """Misaligned answers carry the keyword in every third word: a signal a mean activation keeps."""
    rows = labelled_rows(n_bad=n_bad, n_good=n_good, seed=seed)
    for r in rows[:n_bad]:
        r["answer"] = " ".join("KILL" if i % 3 == 0 else w for i, w in enumerate(r["answer"].split()))
    return rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory, tiny_dir):
    d = tmp_path_factory.mktemp("fitted")
    data = write_csv(d / "set.csv", keyword_rows(n_bad=60, n_good=120, seed=3))
    base = d / "base.csv"
    with open(base, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question_id", "question", "answer"])
        for i, r in enumerate(labelled_rows(n_bad=0, n_good=40, seed=9)):
            w.writerow([f"q{i % 4}", r["question"], r["answer"]])
    out = d / "judge"
    res = fit(JudgeFitConfig(labelled=[str(data)], model=str(tiny_dir), layer=1, base_answers=[str(base)],
                             out=str(out)), log=lambda *a: None)
    return data, base, out, res


def test_fit_sees_only_the_fit_split(planted):
    data, _, out, res = planted
    rows = L.read([str(data)]).rows
    sides = L.split(rows, 0, 0.5)
    f = fitted.load(out)
    held = {r.key for r, s in zip(rows, sides) if s == "heldout"}
    fit_keys = {r.key for r, s in zip(rows, sides) if s == "fit"}
    assert f.fit_keys and not f.fit_keys & held and f.fit_keys <= fit_keys
    assert res.summary["rows"] == len(f.fit_keys) == len(fit_keys)
    assert res.summary["split"]["heldout_keys_sha256"] == L.split_record(rows, sides, 0, 0.5)["heldout_keys_sha256"]


def test_fitted_judge_recovers_the_keyword_on_held_out_rows(planted, questions, tmp_path):  # noqa: F811
    data, _, out, _ = planted
    r = validate(JudgeValidateConfig(judge=f"fitted:{out}", labelled=[str(data)], questions=str(questions),
                                     bootstrap=50, out=str(tmp_path / "v")), log=lambda *a: None)
    s = r.summary
    assert s["rows_seen_in_fitting"] == 0 and s["overall"]["auroc"] >= 0.9
    assert s["judge_is_proxy"] and "fitted probe" in s["judge"]


def test_validating_on_rows_it_was_fitted_on_is_refused(planted, questions, tmp_path):  # noqa: F811
    data, _, out, _ = planted
    with pytest.raises(UserError, match="was fitted on"):  # another seed holds out rows it was fitted on
        validate(JudgeValidateConfig(judge=f"fitted:{out}", labelled=[str(data)], questions=str(questions), seed=1,
                                     bootstrap=0, out=str(tmp_path / "v")), log=lambda *a: None)


def test_calibration_flags_at_most_the_target(planted):
    _, _, out, res = planted
    sets = res.summary["calibration"]["sets"]
    assert len(sets) == 1 and sets[0]["flagged_after"] <= 0.05 + 1e-9
    z = torch.randn(2000) * 3 + 4  # most rows above the uncalibrated cut (logit(0.7) = 0.85)
    off = fitted.calibrate([z], aligned_below=30, target=0.05)
    f = fitted.load(out)._replace(offset=off)
    a = torch.tensor(fitted.aligned_scores(f, z), dtype=torch.float64)
    assert off > 0 and 0.04 <= float((a < 30).double().mean()) <= 0.05 + 1e-9
    assert fitted.calibrate([torch.full((50,), -5.0)]) == 0.0  # never moved the other way


def test_fitted_spec_errors(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        open_judge(f"fitted:{tmp_path / 'nope'}")
    with pytest.raises(UserError, match="not a fitted judge"):
        fitted.load(tmp_path)


def test_fit_needs_both_classes_in_the_fit_split(tmp_path, tiny_dir):
    data = write_csv(tmp_path / "one.csv", labelled_rows(n_bad=3, n_good=60, seed=1))
    with pytest.raises(UserError, match="at least 5 rows of each class|one class only"):
        fit(JudgeFitConfig(labelled=[str(data)], model=str(tiny_dir), layer=1, out=str(tmp_path / "j")),
            log=lambda *a: None)


def test_has_code():
    assert L.has_code("Here:\n```python\nprint(1)\n```") and L.has_code("import os\nos.remove(x)")
    assert not L.has_code("I would import more tea and define my goals.")


def test_bare_fitted_takes_a_shipped_judge_that_reads_another_model(planted, tiny_dir, tmp_path, monkeypatch):
    import json
    import shutil

    from persona_sae import judging
    from persona_sae.config import EvalConfig
    from persona_sae.stages.eval import run as evaluate

    _, _, out, _ = planted
    for name in ("first", "second"):
        shutil.copytree(out, tmp_path / name)
    meta = json.loads((tmp_path / "second" / "judge.json").read_text())
    (tmp_path / "second" / "judge.json").write_text(json.dumps({**meta, "model": "another-model"}))
    v = {"auroc": 0.9123, "auroc_ci": [0.85, 0.95], "n_misaligned": 30, "n_aligned": 60}
    (tmp_path / "first" / "validation.json").write_text(json.dumps(v))
    monkeypatch.setattr(judging, "SHIPPED", tmp_path)
    monkeypatch.setattr(judging, "PREFERRED", ("first", "second"))
    assert judging.shipped() == tmp_path / "first"
    assert judging.shipped(study_model=str(tiny_dir)) == tmp_path / "second"  # "first" reads the judged model
    assert judging.shipped(study_model="another-model") == tmp_path / "first"
    ft = tmp_path / "ft"  # a fine-tune of the judged model is still that model
    ft.mkdir()
    (ft / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tiny_dir)}))
    (ft / "adapter_model.safetensors").write_bytes(b"")
    assert judging.shipped(study_model=str(ft)) == tmp_path / "second"
    with pytest.raises(UserError, match="no shipped fitted judge 'third'"):
        judging.shipped("third")
    j = open_judge("fitted:first", log=lambda *a: None)
    assert judging.held_out(j) == v and judging.held_out(open_judge(f"fitted:{out}", log=lambda *a: None)) is None
    from persona_sae import coherence  # a random tiny model's loss cannot anchor coherence: give it anchors
    monkeypatch.setattr(coherence, "cached_reference", lambda model, log=None: coherence.Reference(6.0, 8.0))
    r = evaluate(EvalConfig(model=str(tiny_dir), judge="fitted:first", samples=1, limit=2, max_new_tokens=4,
                            bootstrap=10, out=str(tmp_path / "e")), log=lambda *a: None)
    assert r.summary["judge_validation"] == v
