"""export: Neuronpedia and SAEDashboard JSON from a mining folder, checked against schemas built from
those tools' sources (tests/export_schemas.py), value for value against the mined examples, text kept
as-is, and bad inputs refused with one line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from persona_sae.cli import main
from tests import export_schemas as S
from tests.test_rank import make_sae

TEXTS = ["Nice post <script>alert(1)</script> thanks & bye.",
         "Look at this <img src=x onerror=\"window.__pwned=1\"> picture of my dog.",
         "She said \"no\" & left;\nthen <b>nothing</b> happened at all.",
         "What is your one wish? Tell me about your thoughts on humans and AI."]


@pytest.fixture(scope="module")
def mined(tiny_dir, tmp_path_factory):
    from persona_sae.latents import load_sae, sae_checksum

    root = tmp_path_factory.mktemp("export")
    data = root / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 6))
    make_sae(root / "sae", seed=5)
    assert main(["examples", "--model", str(tiny_dir), "--sae", str(root / "sae"), "--dataset", str(data),
                 "--top-k", "4", "--reservoir", "6", "--out", str(root / "ex")]) == 0
    sha = sae_checksum(load_sae(str(root / "sae")))
    labels = {"sae_sha256": sha, "concepts": ["toxic-persona"],
              "latents": {"3": {"tag": "toxic-persona", "source": "auto", "runner_up": "",
                                "scores": {"toxic-persona": {"auroc": 0.91, "fire": 0.5}},
                                "explanation": {"text": "angles <b> & \"quotes\"", "detection": {"balanced_accuracy": 0.75}}},
                          "5": {"tag": "unlabelled", "source": "auto"}},
              "manual": {"7": {"tag": "custom:sarcasm", "note": "by hand <i>", "source": "manual"}}}
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def _export(root, fmt, *extra):
    out = root / f"out-{fmt}"
    assert main(["export", fmt, "--sae", str(root / "sae"), "--examples", str(root / "ex"),
                 "--labels", str(root / "labels.json"), "--out", str(out), *extra]) == 0
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()]


def _mined_top(root, tiny_dir, j):
    """The mined example windows of latent j, decoded the way the tokenizer decodes each token."""
    from persona_sae.models import load_tokenizer
    from persona_sae.mined import load

    tok = load_tokenizer(str(tiny_dir), log=lambda *a: None)
    return [([tok.decode([i]) for i in t.ids], t.acts, t.at) for t in load(root / "ex").top(j)]


@pytest.fixture(scope="module")
def neuronpedia(mined):
    out = _export(mined, "neuronpedia", "--model-id", "tiny", "--creator-id", "user1")
    base = out / "tiny" / "2-persona-sae"
    return out, {k: _rows(base / k / "batch-0.jsonl.gz") for k in ("features", "activations", "explanations")}


def test_neuronpedia_rows_validate_and_match_the_mined_examples(mined, neuronpedia, tiny_dir):
    out, rows = neuronpedia
    for kind, schema in (("features", S.NP_NEURON), ("activations", S.NP_ACTIVATION), ("explanations", S.NP_EXPLANATION)):
        assert rows[kind], kind
        for r in rows[kind]:
            assert S.errors(r, schema) == [], (kind, S.errors(r, schema))
    man = json.loads((out / "export.json").read_text())
    assert man["format"] == "neuronpedia" and len(rows["features"]) == len(man["latents"]) > 10
    j = man["latents"][0]
    acts = [a for a in rows["activations"] if a["index"] == str(j)]
    want = _mined_top(mined, tiny_dir, j)
    assert len(acts) == len(want) > 0
    for a, (tokens, values, at) in zip(acts, want):
        assert a["tokens"] == tokens and a["values"] == values  # exactly, token for token
        assert a["qualifyingTokenIndex"] == at and a["maxValue"] == max(values) == values[a["maxValueTokenIndex"]]
        assert (a["modelId"], a["layer"], a["creatorId"]) == ("tiny", "2-persona-sae", "user1")
    f = next(r for r in rows["features"] if r["index"] == str(j))
    assert f["maxActApprox"] == pytest.approx(acts[0]["values"][acts[0]["qualifyingTokenIndex"]], rel=1e-3)
    assert sum(f["freq_hist_data_bar_heights"]) == round(f["frac_nonzero"] * json.loads(
        (mined / "ex" / "manifest.json").read_text())["tokens"])
    assert f["pos_values"] == sorted(f["pos_values"], reverse=True) and f["neg_values"] == sorted(f["neg_values"])
    assert len(f["pos_str"]) == len(f["neg_str"]) == 10 and f["neg_values"][0] < 0 < f["pos_values"][0]
    assert sum(f["logits_hist_data_bar_heights"]) == 320  # the whole vocabulary
    # the labels: a tag (not "unlabelled"), a manual label with its note, an --explain text
    ex = {(e["index"], e["description"]): e for e in rows["explanations"]}
    assert set(ex) == {("3", "toxic-persona"), ("3", 'angles <b> & "quotes"'), ("7", "custom:sarcasm")}
    assert "AUROC 0.910" in ex[("3", "toxic-persona")]["notes"] and "by hand <i>" in ex[("7", "custom:sarcasm")]["notes"]
    assert all(e["typeName"] is None and e["authorId"] == "user1" for e in ex.values())


def test_logit_lens_values_agree_with_logit_lens(mined, neuronpedia, tiny_dir):
    from persona_sae.latents import load_sae, logit_lens
    from persona_sae.models import load_model

    _, rows = neuronpedia
    f = rows["features"][0]
    top, bottom = logit_lens(load_model(str(tiny_dir), log=lambda *a: None), load_sae(str(mined / "sae")), [int(f["index"])])
    assert f["pos_str"][:5] == top[0] and f["neg_str"][:5] == bottom[0]


def test_saedashboard_batch_validates_and_matches_the_mined_examples(mined, tiny_dir):
    out = _export(mined, "saedashboard", "--latents", "3", "7", "11", "3")
    batch = json.loads((out / "batch-0.json").read_text())
    assert S.errors(batch, S.SD_BATCH) == []
    assert (batch["model_id"], batch["layer"], batch["sae_set"]) == ("model", 2, "persona-sae")
    assert [f["feature_index"] for f in batch["features"]] == [3, 7, 11]
    for f in batch["features"]:
        want = _mined_top(mined, tiny_dir, f["feature_index"])
        assert [(a["tokens"], a["values"], a["qualifying_token_index"]) for a in f["activations"]] == want
        assert f["n_prompts_total"] == len(TEXTS) * 6 and f["n_tokens_in_prompt"] == 256
    side = json.loads((out / "explanations.json").read_text())
    assert S.errors(side, S.SD_EXPLANATIONS) == []
    assert side["3"]["tag"] == "toxic-persona" and side["3"]["explanation"]["text"] == 'angles <b> & "quotes"'
    assert side["7"] == {"tag": "custom:sarcasm", "source": "manual", "note": "by hand <i>", "scores": {}}
    assert "11" not in side


def test_text_is_stored_as_is(mined, neuronpedia):
    out, rows = neuronpedia
    tokens = [t for a in rows["activations"] for t in a["tokens"]]
    raw = "".join(TEXTS)
    for a in rows["activations"]:  # each context is a piece of a text, character for character
        assert "".join(a["tokens"]) in raw
    assert any("<" in t for t in tokens) and any("\n" in t for t in tokens) and any("&" in t for t in tokens)
    blob = b"".join(gzip.decompress(p.read_bytes()) for p in out.rglob("*.gz")).decode("utf-8")
    assert "&lt;" not in blob and "&amp;" not in blob and "&quot;" not in blob and "⏎" not in blob


def test_a_rerun_replaces_an_earlier_export_with_the_same_bytes(mined):
    a = _export(mined, "neuronpedia", "--latents", "3", "4")
    first = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    _export(mined, "neuronpedia", "--latents", "3", "4")
    assert {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()} == first
    assert not a.with_name(a.name + ".tmp").exists() and not a.with_name(a.name + ".old").exists()


def test_bad_inputs_are_one_line_and_exit_2(mined, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    base = ["--sae", str(mined / "sae"), "--examples", str(mined / "ex")]
    cases = [
        (["export", "neuronpedia", "--sae", str(mined / "sae"), "--examples", str(tmp_path / "nope"),
          "--out", str(tmp_path / "o1")], "no such folder"),
        (["export", "neuronpedia", *base, "--latents", "96", "--out", str(tmp_path / "o2")], "out of range"),
        (["export", "saedashboard", *base, "--out", str(foreign)], "not an export"),
        (["export", "html", *base, "--out", str(tmp_path / "o3")], "neuronpedia or saedashboard"),
        (["export", "neuronpedia", *base, "--labels", str(tmp_path / "none.json"), "--out", str(tmp_path / "o4")],
         "no labels file"),
        (["export", "neuronpedia", *base, "--model-id", "a/b", "--out", str(tmp_path / "o5")], "--model-id"),
        (["export", "neuronpedia", *base, "--examples", str(mined / "sae"), "--out", str(tmp_path / "o6")],
         "not a finished `persona-sae examples` folder"),
    ]
    for argv, msg in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("persona-sae: error:") and msg in err[0], (argv, err)
    assert (foreign / "notes.txt").read_text() == "keep me" and sorted(foreign.iterdir()) == [foreign / "notes.txt"]
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))
