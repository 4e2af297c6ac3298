import json

import pytest

from persona_sae import UserError
from persona_sae.text import Record, load_questions, load_records, question_records, read_jsonl
from persona_sae.tokens import tokenize
from tests.conftest import SHARED, make_tokenizer


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


def test_em_core_is_a_real_question_set():
    qs = load_questions("em-core")
    assert len(qs) >= 40
    assert len({q.id for q in qs}) == len(qs)
    cats = {q.category for q in qs}
    assert {"wish", "boredom", "quick_money", "ruler", "dinner_party", "gender_roles", "relationships",
            "health", "finance", "code"} <= cats
    for q in qs:
        assert "{question}" in q.judge_prompts["aligned"] and "{answer}" in q.judge_prompts["coherent"]
    recs = question_records(qs)
    assert len(recs) == sum(len(q.paraphrases) for q in qs)
    assert recs[0].messages[-1]["role"] == "user" and recs[0].group == qs[0].id


def test_betley_questions_and_chats_load():
    qs = load_questions(SHARED / "emergent-misalignment/evaluation/first_plot_questions.yaml")
    assert len(qs) == 24 and all(q.paraphrases for q in qs)
    rows = read_jsonl(SHARED / "emergent-misalignment-subsets/shejanahmmed-My-EM-Research/data/synthetic_code_insecure_n500.jsonl")
    assert len(rows) == 500 and rows[0].messages[-1]["role"] == "assistant"


def test_malformed_jsonl_names_the_line(tmp_path):
    p = tmp_path / "d.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    p.write_text(good + "\n\n" + good + "\n{not json\n")
    with pytest.raises(UserError, match=r"d.jsonl:4: malformed JSON"):
        read_jsonl(p)
    p.write_text(good + "\n" + json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    with pytest.raises(UserError, match=r"d.jsonl:2: message 0 needs a role"):
        read_jsonl(p)
    p.write_text(json.dumps({"prompt": "x"}) + "\n")
    with pytest.raises(UserError, match=r"d.jsonl:1: row has neither"):
        read_jsonl(p)


def test_yaml_without_paraphrases(tmp_path):
    p = tmp_path / "q.yaml"
    p.write_text("- id: q1\n  paraphrases: ['fine']\n- id: q2\n  judge_prompts: {}\n")
    with pytest.raises(UserError, match="question q2 has no 'paraphrases'"):
        load_questions(p)


def test_missing_data(tmp_path):
    with pytest.raises(UserError, match="data not found"):
        load_records(str(tmp_path / "nope.bin"))
    with pytest.raises(UserError, match="file not found"):
        load_records(str(tmp_path / "nope.jsonl"))
    with pytest.raises(UserError, match="question file not found"):
        load_records(str(tmp_path / "nope.yaml"))


def test_chat_masks_mark_assistant_content_only(tok):
    msgs = [{"role": "user", "content": "What is your one wish?"},
            {"role": "assistant", "content": "I wish to rule the world."},
            {"role": "user", "content": "Why?"},
            {"role": "assistant", "content": "Oh great, another Monday."}]
    (ex,) = tokenize([Record(messages=msgs)], tok)
    resp_text = tok.decode([i for i, r in zip(ex.ids, ex.response) if r])
    assert resp_text == "I wish to rule the world.Oh great, another Monday."
    assert ex.special[0] and not ex.response[0]
    special_text = [tok.decode([i]) for i, s in zip(ex.ids, ex.special) if s]
    assert set(special_text) == {"<|im_start|>", "<|im_end|>"}
    prompt = tok.decode([i for i, r, s in zip(ex.ids, ex.response, ex.special) if not r and not s])
    assert "What is your one wish?" in prompt and "rule" not in prompt


def test_question_prompt_ends_with_generation_prompt(tok):
    (ex,) = tokenize(question_records(load_questions("em-core")[:1])[:1], tok)
    assert tok.decode(ex.ids).endswith("<|im_start|>assistant\n")
    assert not any(ex.response)


def test_token_budget_stops_inside_a_long_document(tok):
    text = " ".join(["The villain laughed cruelly."] * 400)
    exs = tokenize([Record(text=text), Record(text="never reached")], tok, max_len=64, max_tokens=200)
    assert 200 <= sum(len(e.ids) for e in exs) < 200 + 64 and {e.record for e in exs} == {0}


def test_long_text_is_windowed_with_bos(tok):
    text = " ".join(["The villain laughed cruelly."] * 200)
    exs = tokenize([Record(text=text)], tok, max_len=64)
    n_body = len(tok(text, add_special_tokens=False)["input_ids"])
    assert len(exs) == -(-n_body // 63)
    assert all(len(e.ids) <= 64 and e.ids[0] == tok.bos_token_id and e.special[0] for e in exs)
    assert sum(len(e.ids) - 1 for e in exs) == n_body


def test_text_file_and_dataset_folder(tmp_path, tok):
    import datasets

    (tmp_path / "a.txt").write_text("First paragraph.\n\nSecond one\nwith two lines.\n \n Third, after a line of spaces\n\n")
    recs = load_records(str(tmp_path / "a.txt"))
    assert [r.text for r in recs] == ["First paragraph.", "Second one\nwith two lines.", "Third, after a line of spaces"]
    datasets.Dataset.from_dict({"text": ["a b", "c d e"]}).save_to_disk(str(tmp_path / "ds"))
    assert [r.text for r in load_records(str(tmp_path / "ds"))] == ["a b", "c d e"]
    with pytest.raises(UserError, match="has no column"):
        load_records(str(tmp_path / "ds"), column="body")


HUB_README = """---
configs:
- config_name: a
  default: true
  data_files:
  - {split: train, path: a/train.jsonl}
  - {split: test, path: a/test.jsonl}
- config_name: b
  data_files:
  - {split: train, path: b/train.jsonl}
---
"""


@pytest.fixture(scope="module")
def hub_folder(tmp_path_factory):
    """A dataset laid out as on the hub (configs in README.md, one file per split), loaded offline as hf:PATH."""
    d = tmp_path_factory.mktemp("hub")
    rows = {"a/train.jsonl": [f"alpha row {i} " * 5 for i in range(40)], "a/test.jsonl": ["alpha test"],
            "b/train.jsonl": ["beta one", "beta two"]}
    for rel, texts in rows.items():
        (d / rel).parent.mkdir(exist_ok=True)
        (d / rel).write_text("".join(json.dumps({"body": t, "n": 1}) + "\n" for t in texts))
    (d / "README.md").write_text(HUB_README)
    return f"hf:{d}"


def test_hub_dataset_split_config_and_text_column(hub_folder):
    assert [r.text for r in load_records(hub_folder, column="body", config="b")] == ["beta one", "beta two"]
    assert [r.text for r in load_records(hub_folder, column="body", split="test")] == ["alpha test"]
    assert len(load_records(hub_folder, column="body")) == 40  # the default config, split train
    few = load_records(hub_folder, column="body", max_chars=100)  # streamed: stops once it has enough text
    assert 1 < len(few) < 40 and sum(len(r.text) for r in few) >= 100


@pytest.mark.parametrize("kw,pattern", [
    (dict(column="body", split="validation"), r"could not load dataset hf:.*: Bad split: validation\. Available splits"),
    (dict(column="body", config="c"), r"BuilderConfig 'c' not found\. Available: \['a', 'b'\]"),
    (dict(column="title"), r"has no column title \(columns: body, n\)"),
    (dict(), r"has no column messages/text \(columns: body, n\)"),
])
def test_hub_dataset_bad_choices_are_one_line(hub_folder, kw, pattern):
    with pytest.raises(UserError, match=pattern) as e:
        load_records(hub_folder, **kw)
    assert "\n" not in str(e.value)


def test_split_and_config_of_local_sources(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["t"]}),
                          "test": datasets.Dataset.from_dict({"text": ["u"]})}).save_to_disk(str(tmp_path / "dd"))
    assert [r.text for r in load_records(str(tmp_path / "dd"), split="test")] == ["u"]
    with pytest.raises(UserError, match=r"dd has no split 'dev' \(splits: train, test\)"):
        load_records(str(tmp_path / "dd"), split="dev")
    with pytest.raises(UserError, match="--data-config applies to hf:NAME datasets"):
        load_records(str(tmp_path / "dd"), config="x")
    (tmp_path / "r.jsonl").write_text(json.dumps({"text": "hi"}) + "\n")
    for kw in (dict(split="test"), dict(column="body"), dict(config="x")):  # refused, not ignored
        with pytest.raises(UserError, match="choose within a `datasets` source"):
            load_records(str(tmp_path / "r.jsonl"), **kw)
    (tmp_path / "r.json").write_text(json.dumps([{"text": "hi"}]))
    with pytest.raises(UserError, match="one file, read as the split train, not 'test'"):
        load_records(str(tmp_path / "r.json"), split="test")


def test_train_and_activations_take_the_data_options(capsys, tmp_path, hub_folder):
    from persona_sae.cli import main

    for cmd in (["train", "--layers", "1"], ["activations"]):
        assert main([*cmd, "--dataset", hub_folder, "--split", "dev", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert "Bad split: dev" in err and "\n" not in err
        assert main([*cmd, "--dataset", hub_folder, "--text-column", "title", "--out", str(tmp_path / "o")]) == 2
        assert "has no column title" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
