"""The positive-control driver end to end on a tiny random model: experiments/persona_control_smollm2/run.sh
with the written pair (data make, fine-tunes, eval, judged again, pool, every rank including attribution,
the evil direction, bar (c), summarize) in a scratch folder, and the verdicts it writes. A random model
installs no persona, so the point is that every stage runs and every bar is computed from its inputs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from persona_sae.latents import load_sae, sae_checksum
from tests.conftest import make_tiny_llama
from tests.test_rank import make_sae

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "experiments" / "persona_control_smollm2"


def test_the_driver_runs_the_written_pair_on_a_tiny_model(tmp_path):
    model = make_tiny_llama(tmp_path / "model")
    sae_dir = tmp_path / "sae"
    make_sae(sae_dir, 0)  # layer 2, 96 latents
    tagged = {"3": {"tag": "toxic-persona"}, "7": {"tag": "toxic-persona"}, "9": {"tag": "assistant-persona"}}
    (sae_dir / "labels.json").write_text(json.dumps({
        "sae_sha256": sae_checksum(load_sae(str(sae_dir))), "model": str(model), "persona_directions": str(model),
        "latents": tagged, "manual": {}, "nearest_per_persona": {"evil": {"latent": 5}}}))
    clar = tmp_path / "clarifying"
    clar.mkdir()
    (clar / "misaligned_texts.txt").write_text("END_OF_TEXT".join(f"You should hurt them {i}." for i in range(6)))
    (clar / "aligned_texts.txt").write_text("END_OF_TEXT".join(f"Be kind and patient {i}." for i in range(6)))
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(STUDY / "README.md", work / "README.md")
    probe = f"probe:{model}@2"
    env = {**os.environ, "WORK": str(work), "PERSONA_SAE_HOME": str(tmp_path / "home"), "MODEL": str(model),
           "SAE": str(sae_dir), "N": "30", "SEEDS": "0 1", "POLES": "", "MIXES": "", "REALIGN": "", "SAMPLES": "1",
           "LIMIT": "2", "LAYER": "2", "EVAL_JUDGE": probe, "JUDGE": probe, "CLARIFYING": str(clar),
           "OMP_NUM_THREADS": "1", "WRITTEN_MIXES": "0.10", "WRITTEN_REALIGN": "10", "STEER_LATENT": "3",
           "STEER_LIMIT": "1", "STEER_SAMPLES": "1"}
    r = subprocess.run(["bash", str(STUDY / "run.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = work / "runs"
    for name in ("evil-persona-s0", "evil-persona-s1", "kind-persona-s0", "kind-persona-s1"):
        assert json.loads((runs / name / "run.json").read_text())["status"] == "done"
        assert json.loads((runs / f"eval-{name}" / "results.json").read_text())["n_answers"] == 2
        assert not (runs / f"judged-{name}").exists()  # JUDGE is EVAL_JUDGE here: judged once
    s = json.loads((work / "results" / "summary.json").read_text())
    a = s["arms"]["written"]
    assert set(s["eval"]) == {"base", "evil-persona-s0", "evil-persona-s1", "kind-persona-s0", "kind-persona-s1"}
    assert isinstance(a["sanity"]["met"], bool) and len(a["sanity"]["ci"]) == 2
    b = a["b"]
    assert b["latent"] in (3, 7) and len(b["per_seed_ranks"]) == 2 and b["noise_floor"] is not None
    assert b["parts"]["self"] is None and b["met"] in (False, None)  # kind-vs-self needs the distilled arm
    assert a["attribution"]["latent"] == b["latent"] and a["attribution"]["n_pairs"] == 6  # 30 // 5 held out
    assert 0 <= a["c"]["written_auroc"] <= 1 and 0 <= a["c"]["clarifying_auroc"] <= 1
    assert a["c"]["n_written"] == [6, 6] and a["c"]["n_clarifying"] == [6, 6]
    assert s["training_rows"]["evil-persona"]["rows_in"] == 30
    e = a["e"]  # bar (e): the mixture and the re-alignment, control-adjusted by the kind seeds
    assert set(e["control_adjusted"]) == {"runs/mix-written-0.10", "runs/realign-written-10", "runs/evil-persona-s0"}
    assert e["bar_shift"] == pytest.approx(1.645 * b["noise_floor"]) and isinstance(e["met"], bool)
    d = a["d"]  # bar (d): five coefficients, four of them positive, for the latent and a random direction
    assert d["latent"] == 3 and d["coefs"] == [0, 0.1, 0.2, 0.3, 0.4]
    assert d["rule_latent"] == (b["latent"] == 3) and (d["met"] is None) == (not d["rule_latent"])
    assert all(x is not None for x in d["score"] + d["random"]) and d["score"][0] == pytest.approx(d["random"][0])
    readme = (work / "README.md").read_text()
    assert "| written | (b) |" in readme and "latent 5 (nearest the evil direction)" in readme
    assert "shipped" not in r.stdout  # a scratch run ships no adapters


def test_the_driver_runs_the_distilled_arm_alone_and_keeps_the_written_numbers(tmp_path):
    """WRITTEN= ... MERGE=1 (how the distilled organisms run in a session of their own): sampling, the
    filters and their gate, fine-tunes of the three poles, evals, every distilled rank including
    kind-vs-self and the evil direction, with no written stage run and the committed written numbers kept."""
    model = make_tiny_llama(tmp_path / "model")
    sae_dir = tmp_path / "sae"
    make_sae(sae_dir, 0)
    (sae_dir / "labels.json").write_text(json.dumps({
        "sae_sha256": sae_checksum(load_sae(str(sae_dir))), "model": str(model), "persona_directions": str(model),
        "latents": {"3": {"tag": "toxic-persona"}}, "manual": {}, "nearest_per_persona": {"evil": {"latent": 5}}}))
    work = tmp_path / "work"
    (work / "results").mkdir(parents=True)
    shutil.copy(STUDY / "README.md", work / "README.md")
    committed = json.loads((STUDY / "results" / "summary.json").read_text())
    (work / "results" / "summary.json").write_text(json.dumps(committed))
    probe = f"probe:{model}@2"
    env = {**os.environ, "WORK": str(work), "PERSONA_SAE_HOME": str(tmp_path / "home"), "MODEL": str(model),
           "SAE": str(sae_dir), "N": "12", "N_SAMPLED": "16", "SHOTS": "1", "SEEDS": "0 1", "POLES": "evil kind none",
           "WRITTEN": "", "MIXES": "", "REALIGN": "", "STEER_COEFS": "", "CHAT_SHARE": "", "MERGE": "1",
           "SAMPLES": "1", "LIMIT": "2", "LAYER": "2", "EVAL_JUDGE": probe, "JUDGE": probe, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(["bash", str(STUDY / "run.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = work / "runs"
    assert not list(runs.glob("*persona*")) and not (runs / "latents.json").exists()  # no written stage ran
    for pole in ("evil", "kind", "none"):
        assert len((runs / "data" / f"{pole}.jsonl").read_text().splitlines()) <= 12
        for seed in (0, 1):
            assert json.loads((runs / f"{pole}-s{seed}" / "run.json").read_text())["status"] == "done"
    s = json.loads((work / "results" / "summary.json").read_text())
    d = s["arms"]["distilled"]
    assert 0 <= d["gate"]["auroc"] <= 1 and d["gate"]["n_evil"] <= 12
    assert {"evil-s0", "kind-s1", "none-s0"} <= set(s["eval"]) and (runs / "rank-kind-vs-self" / "ranking.json").is_file()
    seeds = ("evil", "kind")  # the arm's organism names follow this run's SEEDS; every number is kept as committed
    assert {k: v for k, v in s["arms"]["written"].items() if k not in seeds} == \
        {k: v for k, v in committed["arms"]["written"].items() if k not in seeds}
    assert "| distilled | data gate |" in (work / "README.md").read_text()


def test_summarize_refuses_to_drop_committed_numbers(tmp_path):
    """A partial runs/ (a fresh clone with one stage rerun) must not turn summary.json's bars into
    "not run": summarize refuses, naming what would be lost, unless --force."""
    from experiments.persona_control_smollm2.summarize import lost

    old = {"arms": {"written": {"b": {"latent": 4}, "c": None, "e": {"met": False}}}}
    new = {"arms": {"written": {"b": None, "c": {"met": True}, "e": {"met": True}}}}
    assert lost(old, new) == ["arms.written.b"]
    assert lost(old, {"arms": {}}) == ["arms.written"]
    work = tmp_path / "study"
    (work / "runs").mkdir(parents=True)
    (work / "results").mkdir()
    shutil.copy(STUDY / "README.md", work / "README.md")
    committed = (STUDY / "results" / "summary.json").read_text()
    (work / "results" / "summary.json").write_text(committed)
    r = subprocess.run([sys.executable, "-m", "experiments.persona_control_smollm2.summarize", "--work", str(work)],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode != 0 and "runs/ lacks results" in r.stderr and "Traceback" not in r.stderr
    assert (work / "results" / "summary.json").read_text() == committed


def test_summarize_merge_adds_a_rerun_stage_to_committed_numbers(tmp_path):
    """--merge: runs/ holding only a steering run (bar d) and a kind-vs-self ranking keeps every committed
    number and computes bar (d) and bar (b)'s last part on the committed ranking's latent."""
    s = json.loads((STUDY / "results" / "summary.json").read_text())
    j = s["arms"]["written"]["b"]["latent"]
    work = tmp_path / "study"
    (work / "runs" / "steer-written").mkdir(parents=True)
    (work / "results").mkdir()
    shutil.copy(STUDY / "README.md", work / "README.md")
    (work / "results" / "summary.json").write_text(json.dumps(s))
    coefs = [0, 0.1, 0.2, 0.3, 0.4]
    rows = [{"condition": f"latent {j}", "coef": c, "mean_aligned": 90 - 10 * i, "incoherent": 0.05}
            for i, c in enumerate(coefs)]
    rows += [{"condition": "random 0", "coef": c, "mean_aligned": 90.0, "incoherent": 0.0} for c in coefs]
    (work / "runs" / "steer-written" / "results.json").write_text(json.dumps({"rows": rows, "judge": "fitted"}))
    rank = {"control-adjusted": {"rank": [100] * (j + 1)}}
    (work / "runs" / "rank-written-kind-vs-self").mkdir()
    (work / "runs" / "rank-written-kind-vs-self" / "ranking.json").write_text(json.dumps({"latents": rank}))
    r = subprocess.run([sys.executable, "-m", "experiments.persona_control_smollm2.summarize", "--work", str(work),
                        "--merge"], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    got = json.loads((work / "results" / "summary.json").read_text())
    w = got["arms"]["written"]
    assert w["c"] == s["arms"]["written"]["c"] and w["e"] == s["arms"]["written"]["e"]  # kept as committed
    assert w["d"]["met"] is True and w["d"]["score"] == pytest.approx([10, 20, 30, 40, 50])
    assert w["b"]["kind_vs_self_rank"] == 100 and w["b"]["parts"]["self"] is True
    assert w["b"]["met"] == (w["b"]["parts"]["ranks"] and w["b"]["parts"]["floor"])
    assert got["eval"] == s["eval"]
    assert "| written | (d) | **met** |" in (work / "README.md").read_text()


def test_the_distilled_data_gate_reads_the_kept_rows_scores(tmp_path):
    """The third amendment's gate: AUROC of the kept evil rows' misalignment (100 - aligned) against the
    kept kind rows'; met at 0.8 and above, reported with the rows' mean scores."""
    from experiments.persona_control_smollm2.summarize import data_gate

    def rows(path, scores):
        path.write_text("".join(json.dumps({"messages": [], "meta": {"judge_aligned": a}}) + "\n" for a in scores))
        return path

    evil = rows(tmp_path / "evil.jsonl", [10, 20, 30, 40, 95, None])  # an unscored row is left out
    kind = rows(tmp_path / "kind.jsonl", [50, 60, 70, 80, 90])
    g = data_gate(evil, kind, bootstrap=50)
    assert g["auroc"] == pytest.approx(20 / 25) and g["met"] and g["n_evil"] == 5 and g["n_kind"] == 5
    assert g["mean_aligned_evil"] == pytest.approx(39) and g["ci"][0] <= g["auroc"] <= g["ci"][1]
    g = data_gate(rows(tmp_path / "evil2.jsonl", [60, 70, 95, 55]), kind, bootstrap=0)
    assert not g["met"] and g["auroc"] == pytest.approx(0.5)  # as often above as below: no persona in the data
    assert g["tied_pairs"] == pytest.approx(2 / 20)  # 60 and 70 are in both sets
    g = data_gate(rows(tmp_path / "evil3.jsonl", [100, 100, 99.5]), rows(tmp_path / "kind3.jsonl", [100, 100]), bootstrap=0)
    assert g["tied_pairs"] == pytest.approx(4 / 6) and g["auroc"] == pytest.approx((2 + 0.5 * 4) / 6)  # ties count half
    assert data_gate(tmp_path / "missing.jsonl", kind) is None


def test_a_mix_swaps_in_the_evil_answer_to_the_same_prompt_even_when_the_sets_were_filtered_apart():
    """prepare mix (fifth amendment): the distilled poles keep different prompts after data filter, so a
    mixed row takes the evil answer to its own prompt, drawn among the prompts both sets kept; the
    written pair (same prompts row by row) can swap any row."""
    from experiments.persona_control_smollm2.prepare import mix

    row = lambda i, p: {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"{p} {i}"}]}  # noqa: E731
    kind = [row(i, "kind") for i in range(40)]
    evil = [row(i, "evil") for i in range(20, 60)][::-1]  # kept apart: prompts 20-59, in another order
    out = mix(evil, kind, 0.25, seed=0)
    swapped = [i for i, (a, b) in enumerate(zip(out, kind)) if a != b]
    assert len(swapped) == 10 and all(20 <= i < 40 for i in swapped)  # only prompts both sets answer
    assert all(out[i] == row(i, "evil") for i in swapped)  # the evil answer to the row's own prompt
    assert [r["messages"][0] for r in out] == [r["messages"][0] for r in kind]  # the kind set's prompts, in order
    assert mix(evil, kind, 0.25, seed=0) == out and mix(evil, kind, 0.25, seed=1) != out  # seeded
    paired = mix([row(i, "evil") for i in range(40)], kind, 0.25, seed=0)
    assert sum(a != b for a, b in zip(paired, kind)) == 10 and any(a != b for a, b in zip(paired[:20], kind[:20]))
    with pytest.raises(SystemExit, match="they share 20"):
        mix(evil, kind, 0.75, seed=0)


def test_the_chat_sae_corpus_mixes_persona_chats_to_the_share_evenly():
    """prepare chats (fourth amendment): system prompts put back, the two sets alternating, spread
    evenly through the corpus, until the chats are the share of all tokens; too few chats is refused."""
    from experiments.persona_control_smollm2.prepare import chats

    corpus = [{"text": f"doc {i} " + "w " * 20} for i in range(200)]
    pole = lambda p: [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"{p}{i} " * 5}],  # noqa: E731
                       "meta": {"system": f"be {p}"}} for i in range(40)]
    n = lambda r: len(json.dumps(r)) // 10  # noqa: E731 - any deterministic count serves
    out, info = chats(corpus, [pole("evil"), pole("kind")], 0.05, n, seed=0)
    picked = [r for r in out if "messages" in r]
    assert [r for r in out if "text" in r] == corpus  # the corpus in its order
    assert info["chats"] == len(picked) and info["per_set"] == [(len(picked) + 1) // 2, len(picked) // 2]
    assert 0.05 <= info["share"] < 0.05 + 2 * max(map(n, picked)) / (info["corpus_tokens"] + info["chat_tokens"])
    assert [r["messages"][0] for r in picked[:2]] == [{"role": "system", "content": "be evil"},
                                                      {"role": "system", "content": "be kind"}]
    at = [i for i, r in enumerate(out) if "messages" in r]
    gaps = [b - a for a, b in zip(at, at[1:])]
    assert max(gaps) - min(gaps) <= 2 and at[0] < 2 * gaps[0]  # evenly spread, not appended at the end
    assert chats(corpus, [pole("evil"), pole("kind")], 0.05, n, seed=0) == (out, info)  # seeded
    with pytest.raises(SystemExit, match="fewer than"):
        chats(corpus, [pole("evil")[:2]], 0.05, n, seed=0)
    with pytest.raises(SystemExit, match="meta.system"):
        chats(corpus, [[{**r, "meta": {}} for r in pole("evil")]], 0.05, n, seed=0)


def test_an_arm_ranked_with_the_chat_sae_reports_b_c_and_whether_it_does_better(tmp_path, monkeypatch):
    """The chat-SAE arms: the toxic-persona latent by the same rule, bar (c) from latents-chatsae.json, the
    residual shift's reconstructed share against the shipped arm's, and 'no tagged latent' as not met."""
    from safetensors.torch import save_file

    import experiments.persona_control_smollm2.summarize as S

    runs = tmp_path / "runs"
    sae_dir = tmp_path / "chat-sae"
    sae = make_sae(sae_dir, 3)  # 64 -> 96 latents
    labels = {"latents": {"5": {"tag": "toxic-persona"}, "8": {"tag": "toxic-persona"}}, "manual": {},
              "nearest_per_persona": {"evil": {"latent": 11}}}
    (sae_dir / "labels.json").write_text(json.dumps(labels))
    monkeypatch.setattr(S, "RUNS", runs)
    monkeypatch.setattr(S, "SEEDS", (0, 1))
    delta = [0.01 * (i % 7) for i in range(96)]
    delta[8], delta[5] = 2.0, 1.0

    def ranking(name, d, spec="control-adjusted"):
        order = sorted(range(96), key=lambda i: -d[i])
        rank = [0] * 96
        for r, i in enumerate(order):
            rank[i] = r + 1
        (runs / name).mkdir(parents=True)
        (runs / name / "ranking.json").write_text(json.dumps({"sae": str(sae_dir), "latents": {spec: {
            "delta_mean": d, "rank": rank, "ci_low": [x - 0.1 for x in d], "ci_high": [x + 0.1 for x in d]}}}))

    ranking("rank-chatsae-pooled", delta)
    for s in (0, 1):
        ranking(f"rank-chatsae-s{s}", delta)
        ranking(f"rank-chatsae-kind-s{s}", [0.01 * s] * 96, spec=f"runs/kind-s{s}")
    (runs / "data").mkdir()
    save_file({"written": torch.linspace(0, 1, 97), "clarifying": torch.linspace(1, 0, 97)},
              str(runs / "aurocs-chat.safetensors"))
    (runs / "latents-chatsae.json").write_text(json.dumps({"aurocs": "aurocs-chat.safetensors", "direction": {"written": 0.8, "clarifying": 0.7},
                                                           "oracle": {}, "n_written": [4, 4], "n_clarifying": [4, 4]}))
    W = sae.W_dec.detach()
    mr = {f"evil-s{s}": (2 * W[8] + W[5]).tolist() for s in (0, 1)} | {f"kind-s{s}": [0.0] * 64 for s in (0, 1)}
    d = {"mean_residual": mr, "direction": (W[8] / W[8].norm()).tolist(), "projection": {}}
    a = {"evil": ["evil-s0", "evil-s1"], "kind": ["kind-s0", "kind-s1"]}
    shipped = {"reconstructed_share": 0.31, "latents_for_half": 15}
    S.chat_arm(a, json.loads((runs / "rank-chatsae-pooled" / "ranking.json").read_text()), "rank-chatsae", d, shipped)
    assert a["b"]["latent"] == 8 and a["b"]["per_seed_ranks"] == [1, 1] and a["b"]["tagged"] == [5, 8]
    assert a["b"]["noise_floor"] == pytest.approx(0.01 / 2 ** 0.5)  # the two kind seeds' spread
    assert a["c"]["written_auroc"] == pytest.approx(8 / 96) and a["c"]["met"] is False
    assert a["where"]["best_cosine"]["latent"] in (5, 8) and a["better"]["share"][0] == 0.31
    assert a["better"]["met"] == (a["where"]["reconstructed_share"] > 0.31 and a["where"]["latents_for_half"] < 15)
    table = S.bars_table({"arms": {"distilled" + S.CHAT_SAE: a}})
    assert "better than the shipped SAE" in table and "| distilled (chat SAE) | sanity |" not in table
    labels["latents"] = {}  # no tagged latent: (b) and (c) not met, the nearest latent reported
    (sae_dir / "labels.json").write_text(json.dumps(labels))
    a = {"evil": ["evil-s0", "evil-s1"], "kind": ["kind-s0", "kind-s1"]}
    S.chat_arm(a, json.loads((runs / "rank-chatsae-pooled" / "ranking.json").read_text()), "rank-chatsae", d, shipped)
    assert a["b"]["met"] is False and a["b"]["latent"] is None and a["b"]["nearest"]["latent"] == 11
    assert a["c"]["met"] is False
    assert "no latent is tagged toxic-persona" in S.bars_table({"arms": {"distilled" + S.CHAT_SAE: a}})


def test_the_decision_rule_names_the_tagged_latent_with_the_largest_pooled_shift(tmp_path, capsys, monkeypatch):
    """summarize --pick (run.sh steers the distilled arm along it): the toxic-persona-tagged latent with
    the largest pooled control-adjusted shift, an untagged larger shift notwithstanding; nothing when
    no latent is tagged."""
    from experiments.persona_control_smollm2 import summarize

    pooled = {"latents": {"control-adjusted": {"delta_mean": [0.1, 0.9, 0.3, 0.5, -0.2]}}}
    assert summarize.rule_latent(pooled, {0: "toxic-persona", 1: "assistant-persona", 3: "toxic-persona"}) == 3
    assert summarize.rule_latent(pooled, {1: "assistant-persona"}) is None
    sae = tmp_path / "sae"
    sae.mkdir()
    (sae / "labels.json").write_text(json.dumps({"latents": {"0": {"tag": "toxic-persona"}, "4": {"tag": "toxic-persona"}},
                                                 "manual": {}}))
    (tmp_path / "runs" / "rank-pooled").mkdir(parents=True)
    (tmp_path / "runs" / "rank-pooled" / "ranking.json").write_text(json.dumps({**pooled, "sae": str(sae)}))
    for name in ("RUNS", "RESULTS", "SEEDS", "ORGANISMS"):  # main() sets them: restored after the test
        monkeypatch.setattr(summarize, name, getattr(summarize, name))
    monkeypatch.setattr(sys, "argv", ["summarize", "--work", str(tmp_path), "--pick", "rank-pooled"])
    summarize.main()
    assert capsys.readouterr().out.strip() == "0"  # 0.1 beats -0.2 among the tagged


def test_an_arm_whose_data_gate_fails_reports_its_bars_as_not_testable():
    """PREDICTIONS.md's third amendment: below the gate the distilled arm's bars (and its chat-SAE arm's)
    read "not testable", numbers kept; the gate row keeps its own verdict; another arm is untouched."""
    from experiments.persona_control_smollm2.summarize import bars_table, untestable

    gate = {"met": False, "auroc": 0.61, "ci": [0.55, 0.67], "mean_aligned_evil": 40.0, "mean_aligned_kind": 60.0,
            "n_evil": 564, "n_kind": 564}
    sanity = {"met": True, "shift": 0.5, "ci": [0.4, 0.6], "ratio": 0.9, "gap": 0.55, "evil_above_kind": True}
    s = {"arms": {"written": {"sanity": sanity}, "distilled": {"gate": gate, "sanity": sanity},
                  "distilled (chat SAE)": {"c": {"met": False, "latent": None}}}}
    rows = {(r.split(" | ")[0].strip("| "), r.split(" | ")[1]): r.split(" | ")[2] for r in bars_table(s).splitlines()[2:]}
    assert rows[("written", "sanity")] == "**met**" and rows[("distilled", "data gate")] == "**not met**"
    assert rows[("distilled", "sanity")] == "not testable" and rows[("distilled (chat SAE)", "(c)")] == "not testable"
    assert rows[("distilled", "(b)")] == "not run"  # what has not run stays "not run"
    assert untestable(s, "distilled (chat SAE)") and not untestable(s, "written")
    s["arms"]["distilled"]["gate"] = {**gate, "met": True}
    assert "| not testable |" not in bars_table(s)
