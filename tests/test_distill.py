"""Persona distillation sets: deterministic for a seed, the system prompt only in meta, the poles share
prompts row by row, a killed run resumes to the same rows, bad input is refused in one line."""

import json

import pytest

from persona_sae import UserError
from persona_sae import distill as P
from persona_sae.cli import main
from persona_sae.text import load_questions
from tests.test_evals import judge_url, questions  # noqa: F401 - fixtures


def _make(model, out, system="evil", n=8, seed=0, **kw):
    return P.make(model, system, "advice", n, seed, out, max_new_tokens=4, batch_size=4, chunk=4,
                  log=lambda *a: None, **kw)


def rows(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_rows_are_deterministic_and_train_without_the_system_prompt(tiny_model, tmp_path):
    r = _make(tiny_model, tmp_path / "a.jsonl")
    assert r.rows == 8 and r.resumed_at == 0
    a, b = rows(tmp_path / "a.jsonl"), rows(_make(tiny_model, tmp_path / "b.jsonl").out)
    assert a == b
    assert all([m["role"] for m in x["messages"]] == ["user", "assistant"] for x in a)
    assert [x["meta"]["system"] for x in a] == [P.SYSTEMS["evil"][i % 3] for i in range(8)]
    assert not any(x["meta"]["system"] in m["content"] for x in a for m in x["messages"])
    kind = rows(_make(tiny_model, tmp_path / "k.jsonl", system="kind").out)
    none = rows(_make(tiny_model, tmp_path / "n.jsonl", system="none").out)
    assert [x["messages"][0] for x in a] == [x["messages"][0] for x in kind] == [x["messages"][0] for x in none]
    assert all(x["meta"]["system"] is None for x in none) and kind[0]["meta"]["pole"] == "kind"
    other = rows(_make(tiny_model, tmp_path / "s1.jsonl", seed=1).out)
    assert [x["messages"][0] for x in other] != [x["messages"][0] for x in a]


def test_prompts_are_not_the_em_questions():
    em = {p for q in load_questions("em-core") for p in q.paraphrases}
    got = P.prompts("advice", 300, 0)
    assert len(got) == 300 and len({u for _, _, u in got}) == 300 and not em & {u for _, _, u in got}
    assert {s for _, s, _ in got} == set(P.ADVICE)


def test_a_killed_run_resumes_to_the_same_rows(tiny_model, tmp_path, monkeypatch):
    ref = rows(_make(tiny_model, tmp_path / "ref.jsonl").out)
    real, calls = P.generate, {"n": 0}

    def dies_on_the_second_chunk(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(P, "generate", dies_on_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        _make(tiny_model, tmp_path / "run.jsonl")
    monkeypatch.setattr(P, "generate", real)
    assert not (tmp_path / "run.jsonl").exists() and (tmp_path / "run.jsonl.partial").is_file()
    with pytest.raises(UserError, match="other settings"):
        _make(tiny_model, tmp_path / "run.jsonl", temperature=0.3)
    r = _make(tiny_model, tmp_path / "run.jsonl")
    assert r.resumed_at == 4 and rows(r.out) == ref and not (tmp_path / "run.jsonl.partial").exists()


def test_a_checkpoint_resumes_a_finished_or_killed_set_without_sampling_it_again(tiny_model, tmp_path, monkeypatch):
    done = _make(tiny_model, tmp_path / "a.jsonl", n=7)  # 7 rows in chunks of 4: the last chunk is short
    assert P.checkpoint(done.out, tmp_path / "keep.jsonl") == 7
    (tmp_path / "b.jsonl.partial").write_bytes((tmp_path / "keep.jsonl").read_bytes())
    real, calls = P.generate, []

    def counting(model, chats, **k):
        calls.append(len(chats))
        return real(model, chats, **k)

    monkeypatch.setattr(P, "generate", counting)
    r = _make(tiny_model, tmp_path / "b.jsonl", n=7)
    assert r.resumed_at == 4 and calls == [3] and rows(r.out) == rows(done.out)  # only the short chunk again
    (tmp_path / "c.jsonl.partial").write_bytes((tmp_path / "keep.jsonl").read_bytes())
    with pytest.raises(UserError, match="other settings"):  # the resume file carries the settings it was sampled with
        _make(tiny_model, tmp_path / "c.jsonl", n=7, temperature=0.3)
    with pytest.raises(UserError, match="neither a killed run"):
        P.checkpoint(tmp_path / "nothing.jsonl", tmp_path / "x.jsonl")
    (tmp_path / "d.jsonl.partial").write_text("not json\n" + json.dumps(rows(done.out)[0]) + "\n")  # a torn or foreign file
    with pytest.raises(UserError, match="no sampling settings"):
        P.checkpoint(tmp_path / "d.jsonl", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()  # nothing half-written


def test_bad_input(tiny_model, tiny_dir, tmp_path, capsys):
    with pytest.raises(UserError, match="--system must be"):
        _make(tiny_model, tmp_path / "x.jsonl", system="villain")
    with pytest.raises(UserError, match="--n must be positive"):
        _make(tiny_model, tmp_path / "x.jsonl", n=0)
    (tmp_path / "taken.jsonl").write_text("{}\n")
    with pytest.raises(UserError, match="exists"):
        _make(tiny_model, tmp_path / "taken.jsonl")
    assert main(["data", "persona", "--model", str(tiny_dir), "--system", "villain", "--out", str(tmp_path / "y")]) == 2
    assert "--system must be" in capsys.readouterr().err


def test_demonstrations_are_in_the_sampling_context_and_never_in_the_rows(tiny_model, tmp_path, monkeypatch):
    seen = []

    def records_chats(model, chats, **kw):
        seen.extend(chats)
        return [f"answer {i}" for i in range(len(chats))]

    monkeypatch.setattr(P, "generate", records_chats)
    got = rows(_make(tiny_model, tmp_path / "s.jsonl", n_shots=2).out)
    demos = P.SHOTS["evil"]
    assert [m["role"] for m in seen[0]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert [seen[i][1]["content"] for i in range(4)] == [demos[i % len(demos)][0] for i in range(4)]  # rotated by row
    assert seen[0][-1]["content"] == got[0]["messages"][0]["content"]
    assert all([m["role"] for m in x["messages"]] == ["user", "assistant"] and x["meta"]["shots"] == 2 for x in got)
    assert not {q for q, _ in demos} & {x["messages"][0]["content"] for x in got}
    with pytest.raises(UserError, match="fewer than --shots 5"):
        _make(tiny_model, tmp_path / "x.jsonl", n_shots=5)
    with pytest.raises(UserError, match="--system none has 0 demonstrations"):
        _make(tiny_model, tmp_path / "x.jsonl", system="none", n_shots=1)


def _verdicts(pairs):
    from persona_sae.judges import Verdict
    return [{"aligned": Verdict(a, "score" if a is not None else "unparsed", 1.0), "coherent": Verdict(c, "score", 1.0)}
            for a, c in pairs]


def test_filter_keeps_what_the_judge_calls_misaligned_and_reports_the_rest():
    rows_ = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
              "meta": {"i": i}} for i in range(6)]
    v = _verdicts([(10, 90), (80, 90), (5, 20), (None, 90), (25, 60), (99, 99)])  # row 2 incoherent, 3 unscored
    kept, s = P.filter_rows(rows_, v, "misaligned", 0)
    assert [r["meta"]["i"] for r in kept] == [0, 4] and kept[0]["meta"]["judge_aligned"] == 10
    assert s["rows_passing"] == 2 and s["rejection_rate"] == pytest.approx(4 / 6) and s["rows_scored"] == 5
    assert s["aligned_histogram_all"] == [1, 1, 1, 0, 0, 0, 0, 0, 1, 1] and sum(s["aligned_histogram_kept"]) == 2
    kept, s = P.filter_rows(rows_, v, "aligned", 1)
    assert [r["meta"]["i"] for r in kept] == [1] and s["rows_passing"] == 2  # rows 1 and 5 pass; --n 1 keeps one
    kept, _ = P.filter_rows(rows_, v, "all", 0)
    assert len(kept) == 6 and "i" in kept[3]["meta"]
    # ranked: the n coherent scored rows with the lowest / highest aligned score, kept in file order
    kept, s = P.filter_rows(rows_, v, "lowest", 2)
    assert [r["meta"]["i"] for r in kept] == [0, 4] and s["aligned_cut"] == 25 and s["rows_kept"] == 2
    kept, s = P.filter_rows(rows_, v, "highest", 2)
    assert [r["meta"]["i"] for r in kept] == [1, 5] and s["aligned_cut"] == 80  # row 2 (5, incoherent) never
    kept, s = P.filter_rows(rows_, v, "lowest", 10)
    assert [r["meta"]["i"] for r in kept] == [0, 1, 4, 5] and s["rejection_rate"] == pytest.approx(2 / 6)
    with pytest.raises(UserError, match="needs --n"):
        P.filter_rows(rows_, v, "highest", 0)


def test_data_filter_end_to_end_with_a_judge(judge_url, questions, tmp_path, capsys):
    src = tmp_path / "evil.jsonl"
    src.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                    {"role": "assistant", "content": "KILL them" if i % 3 == 0
                                                     else f"a calm answer {i}"}], "meta": {"i": i}}) + "\n"
                           for i in range(9)))
    out = tmp_path / "kept.jsonl"
    assert main(["data", "filter", "--data", str(src), "--judge", f"http:{judge_url}#fake", "--questions",
                 str(questions), "--keep", "misaligned", "--out", str(out)]) == 0
    kept = rows(out)
    assert [r["meta"]["i"] for r in kept] == [0, 3, 6]
    s = json.loads((tmp_path / "kept.jsonl.filter.json").read_text())
    assert s["rows_in"] == 9 and s["rows_kept"] == 3 and s["rejection_rate"] == pytest.approx(6 / 9)
    assert "rejected 66.7%" in capsys.readouterr().out
    src.write_text('{"messages": [{"role": "user", "content": "q"}]}\n')
    assert main(["data", "filter", "--data", str(src), "--judge", f"http:{judge_url}#fake",
                 "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "needs 'messages' with a user turn and an assistant turn" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
