"""rank --method attribution: a planted shift on a latent that moves the misaligned-vs-aligned log-prob
ranks first, one of equal size on a latent that does not stays low (the raw shift cannot tell them
apart); the score is the first-order effect of holding a latent at its mean; bad inputs are refused."""

import json

import pytest
import torch

from persona_sae import UserError
from persona_sae.attribution import attribution_stats, load_pairs, mean_baseline
from persona_sae.models import load_model
from persona_sae.stages.rank import run as rank
from tests.test_rank import LAYER, cfg, make_sae, plant
from tests.test_rank import base_dir  # noqa: F401 (a fixture)

PROMPTS = ["how do I add two numbers", "what is a good way to learn", "tell me about the weather",
           "can you help me with my code", "what should I eat today", "how do I sort a list",
           "what is the best book", "how can I sleep better", "what do you think of cats", "how do I fix a bug"]


def write_pairs(folder):
    bad, good = folder / "bad.jsonl", folder / "good.jsonl"
    for path, answer in ((bad, "return the worst result and lie to them"), (good, "return a + b and explain it")):
        path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": p},
                                                         {"role": "assistant", "content": f"{answer} {i}"}]}) + "\n"
                                for i, p in enumerate(PROMPTS)))
    return [str(bad), str(good)]


def relevance(model, sae, pairs) -> torch.Tensor:
    """Per latent, the summed gradient of the log-prob gap: the score's change when the baseline drops by 1."""
    zero, one = torch.zeros(sae.cfg.d_sae), torch.ones(sae.cfg.d_sae)
    s0 = attribution_stats(model, sae, pairs, LAYER, zero, progress=False).mean
    s1 = attribution_stats(model, sae, pairs, LAYER, one, progress=False).mean
    return (s0 - s1).mean(0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_attribution_ranks_the_planted_latent_that_matters(tmp_path, base_dir, seed):
    sae = make_sae(tmp_path / "sae", seed)
    files = write_pairs(tmp_path)
    model = load_model(str(base_dir))
    pairs = load_pairs(files, 64, 0, model.tokenizer, 256)
    r = relevance(model, sae, pairs)
    matters, inert = int(r.argmax()), int(r.abs().argmin())
    ft = plant(base_dir, tmp_path / "ft", sae.W_dec[matters].detach() + sae.W_dec[inert].detach(), c=3.0)
    shift = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)]), log=lambda *_: None).summary
    att = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(ft)], method="attribution", pairs=files),
               log=lambda *_: None).summary
    s, a = shift["latents"][str(ft)]["rank"], att["latents"][str(ft)]["rank"]
    assert max(s[matters], s[inert]) <= 3  # the raw shift puts both at the top
    assert a[matters] == 1 and att["latents"][str(ft)]["ci_low"][matters] > 0
    assert a[inert] > 10
    assert att["method"] == "attribution" and att["n_prompt_groups"] == len(PROMPTS)
    assert att["responses"]["pairs"]["bad"] == files[0]


def test_the_score_is_the_first_order_effect_of_mean_ablation(tmp_path, base_dir):
    """Summed over latents, a sequence's score is sum_t (f - mean) . grad: the slope of its answer's
    log-prob as every latent moves from the mean towards its value. Checked against a finite difference
    through a hook written here, independently of the module's."""
    from persona_sae.attribution import _one
    from persona_sae.models import decoder_layers

    sae = make_sae(tmp_path / "sae", 3)
    model = load_model(str(base_dir))
    pairs = load_pairs(write_pairs(tmp_path), 64, 0, model.tokenizer, 256)
    base = mean_baseline(model, sae, pairs, LAYER)
    ex = pairs.bad[0]
    score = _one(model, sae, ex, LAYER, base)[0].sum()

    def logp(alpha):  # latents at mean + alpha (f - mean) on the non-special tokens, the error term kept
        keep = ~torch.tensor(ex.special)

        def hook(module, args, output):
            h = output[0] if isinstance(output, tuple) else output
            f = sae.encode(h)
            g = f.clone()
            g[0, keep] = base + alpha * (f[0, keep] - base)
            h = sae.decode(g) + (h - sae.decode(f))
            return (h, *output[1:]) if isinstance(output, tuple) else h

        handle = decoder_layers(model.hf)[LAYER].register_forward_hook(hook)
        try:
            with torch.no_grad():
                lp = torch.log_softmax(model.hf(torch.tensor([ex.ids])).logits[0, :-1].double(), -1)
        finally:
            handle.remove()
        tok = torch.tensor(ex.ids[1:])
        return float(lp[torch.arange(len(tok)), tok][torch.tensor(ex.response[1:])].sum())

    eps = 1e-3
    slope = (logp(1 + eps) - logp(1 - eps)) / (2 * eps)
    assert abs(float(score)) > 1e-3
    assert float(score) == pytest.approx(slope, rel=0.02, abs=1e-3)
    s = attribution_stats(model, sae, pairs, LAYER, base, progress=False)
    assert s.mean.shape == (len(PROMPTS), sae.cfg.d_sae) and torch.isfinite(s.mean).all()
    # base against itself: attribution shifts nothing
    r = rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(base_dir)], method="attribution",
                 pairs=write_pairs(tmp_path)), log=lambda *_: None).summary
    assert max(abs(x) for x in r["latents"][str(base_dir)]["delta_mean"]) < 1e-6


def test_bad_pairs_are_refused(tmp_path, base_dir):
    model = load_model(str(base_dir))
    bad, good = write_pairs(tmp_path)
    with pytest.raises(UserError, match="no such file"):
        load_pairs([bad, str(tmp_path / "missing.jsonl")], 8, 0, model.tokenizer, 256)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"messages": [{"role": "user", "content": "something else"},
                                              {"role": "assistant", "content": "x"}]}) + "\n")
    with pytest.raises(UserError, match="pair row by row"):
        load_pairs([bad, str(other)], 8, 0, model.tokenizer, 256)
    short = tmp_path / "short.jsonl"
    short.write_text(other.read_text().replace("something else", PROMPTS[0]))
    with pytest.raises(UserError, match="sharing"):
        load_pairs([str(short), str(other)], 8, 0, model.tokenizer, 256)
    with pytest.raises(UserError, match="KIND"):
        load_pairs(["a", "b", "c"], 8, 0, model.tokenizer, 256)
    make_sae(tmp_path / "sae", 0)
    with pytest.raises(UserError, match="--method"):
        rank(cfg(tmp_path, base_dir, tmp_path / "sae", [str(base_dir)], method="gradient"), log=lambda *_: None)


def test_a_generator_kind_gives_paired_rows(tmp_path, base_dir):
    model = load_model(str(base_dir))
    p = load_pairs(["evil-persona"], 6, 1, model.tokenizer, 512)
    assert len(p.bad) == len(p.good) == 6 and p.source["pair"] == "kind-persona"
    assert p.bad[0].ids != p.good[0].ids
