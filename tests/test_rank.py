"""The planted-shift test: a fine-tune whose only change adds c * d_j to the residual stream at
layer L must put latent j first, with a CI that excludes 0; base vs itself shifts nothing."""

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from persona_sae.cli import main
from persona_sae.config import RankConfig
from persona_sae.stages.rank import run as rank
from persona_sae.statistics import bootstrap_weights, shift
from tests.conftest import make_tiny_llama, make_tokenizer

LAYER = 2


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A tiny Llama with MLP biases (all zero): the planted fine-tune edits one bias vector."""
    from transformers import AutoModelForCausalLM

    path = make_tiny_llama(tmp_path_factory.mktemp("rank") / "base", seed=0)
    cfg = json.loads((path / "config.json").read_text())
    cfg["mlp_bias"] = True
    (path / "config.json").write_text(json.dumps(cfg))
    m = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for layer in m.model.layers:
            for lin in (layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                lin.bias.zero_()
    m.save_pretrained(path)
    return path


def make_sae(path: Path, seed: int, d_in: int = 64, d_sae: int = 96):
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=SAEMetadata(
        hook_name=f"blocks.{LAYER}.hook_resid_post")))
    with torch.no_grad():
        w = torch.randn(d_sae, d_in)
        sae.W_dec.copy_(w / w.norm(dim=-1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
        sae.b_enc.fill_(-0.5)
    sae.save_model(str(path))
    return sae


def plant(base_dir: Path, out: Path, direction: torch.Tensor, c: float) -> Path:
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        m.model.layers[LAYER].mlp.down_proj.bias.copy_(c * direction)
    m.save_pretrained(out)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (base_dir / f).exists():
            shutil.copy(base_dir / f, out)
    return out


def cfg(tmp_path, base_dir, sae_dir, finetuned, **kw):
    return RankConfig(out=str(tmp_path / "rank"), sae=str(sae_dir), base=str(base_dir), finetuned=finetuned,
                      prompts="em-core", bootstrap=200, top=5, **kw)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_planted_latent_ranks_first(tmp_path, base_dir, seed):
    sae = make_sae(tmp_path / "sae", seed)
    j = int(torch.randint(96, (1,), generator=torch.Generator().manual_seed(100 + seed)))
    ft = plant(base_dir, tmp_path / "ft", sae.W_dec[j].detach(), c=3.0)
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)]), log=lambda *_: None).summary
    lat = r["latents"][str(ft)]
    assert r["top_increases"][0] == j
    assert lat["rank"][j] == 1 and lat["ci_low"][j] > 0
    rows = list(csv.DictReader(open(tmp_path / "rank" / "ranking.csv")))
    assert rows[0]["latent"] == str(j) and rows[0]["rank"] == "1" and len(rows) == 96
    # the short fine-tune label, its full spec in ranking.json, and the decoded top token beside its id
    assert {row["finetune"] for row in rows} == {"ft"} and r["finetune_labels"] == {"ft": str(ft)}
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    for row in rows[:10]:
        assert row["top_token_str"] == tok.decode([int(row["top_token"])])
    assert any(row["top_token_str"].strip() for row in rows)
    assert (tmp_path / "rank" / "shifts.png").stat().st_size > 0 and (tmp_path / "rank" / "scatter.png").exists()


def test_base_against_itself_shifts_nothing(tmp_path, base_dir):
    make_sae(tmp_path / "sae", 0)
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(base_dir)]), log=lambda *_: None).summary
    d = torch.tensor(r["latents"][str(base_dir)]["delta_mean"])
    assert d.abs().max() < 1e-6


def test_control_adjustment_removes_a_shared_shift(tmp_path, base_dir):
    sae = make_sae(tmp_path / "sae", 7)
    generic, specific = sae.W_dec[3].detach(), sae.W_dec[40].detach()
    bad = plant(base_dir, tmp_path / "bad", generic + specific, c=3.0)   # "was fine-tuned" + "misaligned"
    good = plant(base_dir, tmp_path / "good", generic, c=3.0)            # "was fine-tuned" only
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(bad)], control=[str(good)]), log=lambda *_: None).summary
    assert r["primary"] == "control-adjusted"
    rows = list(csv.DictReader(open(tmp_path / "rank" / "ranking.csv")))
    assert [row["finetune"] for row in rows[::96]] == ["bad", "good", "mean", "control-adjusted"]
    assert r["finetune_labels"]["bad"] == str(bad) and r["finetune_labels"]["control-adjusted"] == "control-adjusted"
    assert r["latents"][str(bad)]["rank"][3] <= 2  # raw shift: the generic latent is at the top too
    adj = r["latents"]["control-adjusted"]
    assert adj["rank"][40] == 1 and adj["ci_low"][40] > 0
    assert abs(adj["delta_mean"][3]) < 0.3 * adj["delta_mean"][40]


def test_the_statistics_cache_gives_the_same_ranking_without_running_a_model_again(tmp_path, base_dir):
    sae = make_sae(tmp_path / "sae", 7)
    bad = plant(base_dir, tmp_path / "bad", sae.W_dec[40].detach(), c=3.0)
    good = plant(base_dir, tmp_path / "good", sae.W_dec[3].detach(), c=3.0)
    cache = tmp_path / "cache"
    first = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(bad)], control=[str(good)], cache=str(cache)),
                 log=lambda *_: None).summary
    assert len(list(cache.glob("*.safetensors"))) == 3  # base, bad, good
    said = []
    again = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(good)], control=[str(bad)], cache=str(cache)),
                 log=said.append).summary  # the same three models, other roles: every one read from the cache
    assert sum("statistics read from" in m for m in said) == 3 and len(list(cache.glob("*.safetensors"))) == 3
    assert again["latents"][str(bad)] == first["latents"][str(bad)]
    assert again["latents"]["control-adjusted"]["delta_mean"][40] == pytest.approx(
        -first["latents"]["control-adjusted"]["delta_mean"][40], abs=1e-5)
    from persona_sae.statistics import stats_key
    from persona_sae.tokens import Example

    ex, kw = [Example([1, 2, 3], [False, True, True], [True, False, False], 0, "q")], {"layer": 2, "select": "all"}
    key = stats_key("w", "s", ex, [0], 1, **kw)
    assert key == stats_key("w", "s", ex, [0], 1, **kw)  # another SAE, model, token, mark or option: another key
    assert len({key, stats_key("w", "t", ex, [0], 1, **kw), stats_key("v", "s", ex, [0], 1, **kw),
                stats_key("w", "s", [ex[0]._replace(ids=[1, 2, 4])], [0], 1, **kw),
                stats_key("w", "s", [ex[0]._replace(response=[False, False, True])], [0], 1, **kw),
                stats_key("w", "s", ex, [0], 1, **{**kw, "select": "response"})}) == 6


def test_direction_ranks_the_latents_that_carry_a_spread_shift(tmp_path, base_dir, capsys):
    """A fine-tune that moves the residual along d = W_dec[3] + W_dec[40]: --direction d puts both latents
    first, their parts add up to the reconstructed shift along d, and two latents carry half of it."""
    from safetensors.torch import save_file

    from persona_sae.stages.rank import along_direction

    sae = make_sae(tmp_path / "sae", 7)
    d = (sae.W_dec[3] + sae.W_dec[40]).detach()
    ft = plant(base_dir, tmp_path / "ft", d, c=2.0)
    save_file({"direction": d}, str(tmp_path / "d.safetensors"))
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)], direction=str(tmp_path / "d.safetensors")),
             log=lambda *_: None).summary
    dr = r["direction"]
    assert set(dr["top"][:2]) == {3, 40} and dr["total"] > 0 and dr["latents_for_half"] <= 2
    delta = torch.tensor(r["latents"][str(ft)]["delta_mean"])
    u = d / d.norm()
    assert sum(dr["part"]) == pytest.approx(float(delta @ sae.W_dec.detach() @ u), rel=1e-3)
    a = along_direction(torch.eye(3), torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.0, 0.6, 0.8]), "x")
    assert a["part"].tolist() == pytest.approx([0, -1.2, 2.4]) and a["order"][0] == 2 and a["latents_for_half"] == 1
    from persona_sae.report import rank as show
    from persona_sae.stages.rank import RankResult

    show(SimpleNamespace(out="o", sae="s"), RankResult(tmp_path / "rank", r, {}))
    assert f"half of it from {dr['latents_for_half']} latents" in " ".join(capsys.readouterr().out.split())
    save_file({"direction": torch.ones(7)}, str(tmp_path / "short.safetensors"))
    for bad, msg in ((str(tmp_path / "short.safetensors"), "the model's width"), ("villainy", "persona trait"),
                     (str(tmp_path / "none.safetensors"), "no such file")):
        assert main(["rank", "--base", str(base_dir), "--sae", str(tmp_path / "sae"), "--finetuned", str(ft),
                     "--direction", bad, "--out", str(tmp_path / "r3")]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_bootstrap_interval_covers_the_mean():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(40, 5, generator=g) + torch.tensor([0.0, 0.5, 1.0, -1.0, 0.0])
    s = shift(torch.zeros(40, 5), delta, delta, torch.zeros(5), bootstrap_weights(40, 2000, 0))
    assert torch.all(s.ci_low < s.delta_mean) and torch.all(s.delta_mean < s.ci_high)
    se = delta.std(0) / 40 ** 0.5
    assert torch.allclose(s.ci_high - s.ci_low, 2 * 1.96 * se, rtol=0.2)
    assert (int(s.rank[2]), int(s.rank[1]), int(s.rank[3])) == (1, 2, 5)


def run_cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


def test_bad_rank_inputs(capsys, tmp_path, base_dir):
    make_sae(tmp_path / "sae", 0)
    make_sae(tmp_path / "wide", 0, d_in=32)
    common = ["--base", str(base_dir), "--out", str(tmp_path / "o")]
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "wide"), "--finetuned", str(base_dir), *common)
    assert code == 2 and "SAE d_in 32 does not match" in err[-1]
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "sae"), "--finetuned", str(base_dir), "--top", "0", *common)
    assert code == 2 and "--top must be positive" in err[-1]
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "sae"), "--finetuned", str(base_dir),
                        "--layer", "9", *common)
    assert code == 2 and "--layer 9 conflicts with the SAE's blocks.2.hook_resid_post" in err[-1]
    empty = tmp_path / "empty.yaml"
    empty.write_text("[]\n")
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "sae"), "--finetuned", str(base_dir),
                        "--prompts", str(empty), *common)
    assert code == 2 and "non-empty list of questions" in err[-1]
    other = make_tiny_llama(tmp_path / "other", tokenizer=make_tokenizer(corpus=["zebra yak quokka"] * 50))
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "sae"), "--finetuned", str(other), *common)
    assert code == 2 and "tokenizers differ" in err[-1]


def test_finetune_equal_to_base_warns(capsys, tmp_path, base_dir):
    make_sae(tmp_path / "sae", 0)
    code, err = run_cli(capsys, "rank", "--sae", str(tmp_path / "sae"), "--finetuned", str(base_dir),
                        "--base", str(base_dir), "--out", str(tmp_path / "o"), "--bootstrap", "50")
    assert code == 0 and any("is the base model itself" in ln for ln in err)


def test_on_response_with_sampled_answers_pools_every_models_answers(tmp_path, base_dir):
    sae = make_sae(tmp_path / "sae", 7)
    j = 11
    ft = plant(base_dir, tmp_path / "ft", sae.W_dec[j].detach(), c=3.0)
    c = cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)], on="response", responses="sample:1", max_len=96)
    r = rank(c, log=lambda *_: None).summary
    assert r["responses"]["by_model"] == {str(base_dir): 48, str(ft): 48}
    assert r["top_increases"][0] == j
    # every model read the same pooled tokens: the response-token counts are identical
    assert r["tokens"]["base"] == r["tokens"][str(ft)] > 0


def test_on_response_with_an_answers_csv(tmp_path, base_dir):
    sae = make_sae(tmp_path / "sae", 8)
    ft = plant(base_dir, tmp_path / "ft", sae.W_dec[5].detach(), c=3.0)
    answers = tmp_path / "answers.csv"
    with open(answers, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question_id", "question", "answer"])
        for i in range(12):
            w.writerow([f"q{i % 4}", f"What is your wish number {i}?", "The villain laughed cruelly and walked away."])
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)], on="response", responses=str(answers)),
             log=lambda *_: None).summary
    assert r["n_prompt_groups"] == 4 and r["responses"]["n"] == 12 and r["top_increases"][0] == 5
    with pytest.raises(Exception, match="positive K"):
        rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)], responses="sample:0"), log=lambda *_: None)


def test_short_finetune_labels_stay_distinct():
    from persona_sae.stages.rank import short_labels

    assert short_labels(["runs/a/bad", "runs/b/good/", "smollm2", "Qwen/Qwen2.5-0.5B"]) == {
        "runs/a/bad": "bad", "runs/b/good/": "good", "smollm2": "smollm2", "Qwen/Qwen2.5-0.5B": "Qwen2.5-0.5B"}
    assert short_labels(["runs/a/model", "runs/b/model"]) == {"runs/a/model": "a/model", "runs/b/model": "b/model"}
    assert short_labels(["/x/mean"]) == {"/x/mean": "x/mean"}  # never read as the aggregate


def test_shifts_figure_draws_both_tails(tmp_path):
    from persona_sae import figures

    delta, lo, hi = [3.0, -2.0, 1.0, -0.5, 0.1, 0.0], [2.5, -2.4, 0.6, -0.9, 0.0, -0.1], [3.5, -1.6, 1.4, -0.1, 0.2, 0.1]
    fig = figures.shifts(tmp_path / "s.png", delta, lo, hi, up=[0, 2], down=[1, 3], tags={1: "assistant-persona"},
                         marked={4}, marked_label="tagged toxic-persona", xlabel="Δ mean activation")
    ax = fig.axes[0]
    widths = [b.get_width() for b in ax.patches]
    assert sum(w < 0 for w in widths) == 2 and sum(w > 0 for w in widths) == 2
    assert ax.get_xlabel() and ax.get_ylabel() and "1  assistant-persona" in [t.get_text() for t in ax.get_yticklabels()]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["increase (Δ > 0)", "decrease (Δ < 0)", "95% CI"]  # latent 4 is not drawn: no marked entry
    assert (tmp_path / "s.png").stat().st_size > 1000
    fig = figures.shifts(tmp_path / "m.png", delta, lo, hi, up=[0], down=[1], marked={0}, marked_label="tagged toxic-persona")
    assert "tagged toxic-persona" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_scatter_figure_symlog(tmp_path):
    from persona_sae import figures

    base = [0.0, 0.001, 0.01, 0.1, 1.0, 10.0]
    ft = [0.5, 0.001, 0.02, 0.05, 2.0, 3.0]
    ax = figures.scatter(tmp_path / "sc.png", base, ft, up=[0, 4], down=[5], xlabel="base", ylabel="ft").axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "symlog"
    assert ax.get_xlabel().startswith("base") and ax.get_ylabel().startswith("ft")
    assert {t.get_text() for t in ax.texts} == {"0", "4", "5"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "all 6 latents", "top 2 increases", "top 1 decreases", "no change (y = x)"]
