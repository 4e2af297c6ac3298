"""label: a latent planted to respond to a concept's marker token gets that tag with AUROC ~ 1 and the
others stay unlabelled; AUROC with ties; manual labels; bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from persona_sae import UserError
from persona_sae.cli import main
from persona_sae.config import LabelConfig
from persona_sae.labels import effective
from persona_sae.stages.label import run as label
from persona_sae.statistics import auroc
from persona_sae.text import Record
from persona_sae.tokens import tokenize

LAYER = 0  # resid_pre of block 0 is the token embedding: the marker is exactly separable
SUBJECTS = ["The hero", "A farmer", "My aunt", "The old dog", "Our teacher", "The captain", "A child", "The baker",
            "The poet", "A sailor", "The mayor", "The nurse"]
VERBS = ["walked home", "sang a song", "ate some bread", "read the news", "fixed the door", "watched the rain"]


def _write(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


@pytest.fixture
def concept_files(tmp_path):
    plain = [f"{s} {v} today." for s in SUBJECTS for v in VERBS][:40]
    marked = [f"{s} made a wish and {v}." for s in SUBJECTS for v in VERBS][:40]
    other = [f"{s} {v} with a friend." for s in SUBJECTS for v in VERBS][:40]
    return [_write(tmp_path / "wishing.jsonl", marked), _write(tmp_path / "friendly.jsonl", other),
            _write(tmp_path / "control-plain.jsonl", plain)]


def _sae_reading(X, d_sae: int, j: int, direction, bias, seed: int):
    """A StandardSAE at LAYER's resid_pre whose latent ``j`` reads ``direction`` with encoder bias
    ``bias``; the rest are seeded random unit rows that fire on the top half of their range on ``X``."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=X.shape[1], d_sae=d_sae, metadata=SAEMetadata(
        hook_name=f"blocks.{LAYER}.hook_resid_pre")))
    with torch.no_grad():
        W = torch.randn(d_sae, X.shape[1])
        W = W / W.norm(dim=1, keepdim=True)
        W[j] = direction
        sae.W_dec.copy_(W)
        sae.W_enc.copy_(W.T)
        sae.b_dec.zero_()
        sae.b_enc.copy_(-(X @ W.T).max(0).values * 0.5)
        sae.b_enc[j] = bias
    return sae


def _planted_sae(tiny_model, path, j: int, d_sae: int = 8):
    """Latent j reads the direction of the ' wish' token's residual against all other tokens,
    thresholded half way; the rest are random directions with a bias that keeps them quiet."""
    from persona_sae.activations import extract

    tok = tiny_model.tokenizer
    texts = [f"{s} made a wish and {v}." for s in SUBJECTS for v in VERBS]
    ex = tokenize([Record(text=t) for t in texts], tok, max_len=64)
    a = extract(tiny_model, ex, [LAYER], hook="resid_pre", select="all", progress=False)
    wish, = tok(" wish", add_special_tokens=False)["input_ids"]  # one token in the tiny vocabulary
    marker = a.token == wish
    assert marker.any() and (~marker).any()
    X = a.acts[LAYER]
    u = X[marker].mean(0) - X[~marker].mean(0)
    u = u / u.norm()
    mid = ((X[marker] @ u).min() + (X[~marker] @ u).max()) / 2
    sae = _sae_reading(X, d_sae, j, u, -mid, seed=0)
    sae.save_model(str(path))
    return sae


def test_planted_concept_latent_gets_its_tag(tiny_model, tiny_dir, tmp_path, concept_files):
    j = 5
    _planted_sae(tiny_model, tmp_path / "sae", j)
    cfg = LabelConfig(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=concept_files, no_builtin=True,
                      max_len=64, null_saes=0)  # a single marker token: random directions find it as well (below)
    r = label(cfg, log=lambda *a: None)
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    assert lab["latents"][str(j)]["tag"] == "wishing" and lab["null"] is None
    assert lab["latents"][str(j)]["scores"]["wishing"]["auroc"] > 0.99
    sc = lab["latents"][str(j)]["scores"]
    # no shuffle reaches the planted AUROC: at the 1,000 shuffles' floor, so refined with 100,000 fresh ones
    assert sc["wishing"]["p"] == pytest.approx(1 / 100_001, rel=1e-3)  # stored to 3 significant digits
    assert sc["wishing"]["q"] <= 0.05 and 0 < sc[lab["latents"][str(j)]["runner_up"]]["p"] <= 1
    assert lab["p_values"]["permutations"] == 1000 and lab["p_values"]["tests"] == 16
    assert 1 <= lab["p_values"]["refined"] < 16  # only the pairs at the floor that pass the fixed thresholds
    assert r.best["wishing"]["latent"] == j
    others = [lab["latents"][str(i)]["tag"] for i in range(8) if i != j]
    assert "wishing" not in others
    assert (tmp_path / "sae" / "label_scores.safetensors").is_file()
    assert len(lab["latents"][str(j)]["logit_lens_top"]) == 5


def test_auroc_counts_ties_half():
    s = torch.tensor([[0.0, 1.0], [0.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    pos = torch.tensor([True, False, True, False])
    a = auroc(s, pos)
    assert a[0] == pytest.approx(0.5) and a[1] == pytest.approx(1.0)
    assert auroc(torch.tensor([[1.0], [0.0], [0.0]]), torch.tensor([False, True, True]))[0] == pytest.approx(0.0)


def test_manual_label_beats_auto_and_bad_inputs(tiny_model, tiny_dir, tmp_path, concept_files, capsys):
    _planted_sae(tiny_model, tmp_path / "sae", 2)
    label(LabelConfig(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=concept_files, no_builtin=True,
                      max_len=64), log=lambda *a: None)
    assert main(["label", "set", "3", "friendly", "--sae", str(tmp_path / "sae"), "--note", "read by hand"]) == 0
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    assert effective(lab, 3) == {"tag": "friendly", "source": "manual", "note": "read by hand"}
    assert effective(lab, 2)["source"] == "auto"
    capsys.readouterr()
    assert main(["label", "set", "3", "goblin", "--sae", str(tmp_path / "sae")]) == 2
    assert "unknown tag 'goblin'" in capsys.readouterr().err
    assert main(["label", "set", "99", "friendly", "--sae", str(tmp_path / "sae")]) == 2
    assert "out of range" in capsys.readouterr().err
    # a labels file made for another SAE is refused
    _planted_sae(tiny_model, tmp_path / "sae2", 1)
    import shutil
    shutil.copy(tmp_path / "sae" / "labels.json", tmp_path / "sae2" / "labels.json")
    assert main(["label", "set", "3", "friendly", "--sae", str(tmp_path / "sae2")]) == 2
    assert "different SAE" in capsys.readouterr().err


def test_small_concept_file_is_refused(tmp_path, tiny_dir):
    few = _write(tmp_path / "tiny-set.jsonl", ["one text", "two texts"])
    with pytest.raises(UserError, match="at least 10"):
        label(LabelConfig(sae=str(tmp_path / "none"), model=str(tiny_dir), concepts=[few]), log=lambda *a: None)


def test_persona_directions_give_cosines_and_the_nearest_latent(tiny_model, tiny_dir, tmp_path, concept_files):
    """--personas FOLDER: every latent gets its decoder cosine, and the closest latent is named
    (evidence beside the tags; the tags are the same as without it)."""
    from persona_sae import personas as P

    j, near = 5, 2
    sae = _planted_sae(tiny_model, tmp_path / "sae", j)
    v = sae.W_dec[near].detach() + 0.3 * sae.W_dec[j].detach()  # nearest latent `near`, not the tagged one
    P.save(P.Directions("tiny", LAYER, "resid_pre", {"evil": v / v.norm()}, {}, {}), tmp_path / "dirs")
    cfg = LabelConfig(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=concept_files, no_builtin=True,
                      max_len=64, personas=str(tmp_path / "dirs"), null_saes=0)  # one marker token: see above
    r = label(cfg, log=lambda *a: None)
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    cos = [lab["latents"][str(i)]["cos_evil"] for i in range(8)]
    assert max(range(8), key=cos.__getitem__) == near and cos[near] > 0.9
    assert lab["nearest_per_persona"]["evil"] == r.nearest["evil"]
    assert r.nearest["evil"]["latent"] == near and r.nearest["evil"]["tag"] == "unlabelled"
    assert lab["latents"][str(j)]["tag"] == "wishing"


def test_personas_given_a_model_folder_computes_its_directions(tiny_model, tiny_dir, tmp_path, concept_files, monkeypatch):
    """--personas MODEL_FOLDER is a model spec (directions computed once and cached), not a directions
    folder: only a folder with personas.json is read as directions."""
    from persona_sae import personas as P

    sae = _planted_sae(tiny_model, tmp_path / "sae", 5)
    asked = []

    def cached(spec, layer, traits, log):
        asked.append((spec, layer))
        return P.Directions(spec, layer, "resid_pre", {"evil": sae.W_dec[3].detach() / sae.W_dec[3].norm()}, {}, {})

    monkeypatch.setattr(P, "cached", cached)
    cfg = LabelConfig(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=concept_files, no_builtin=True,
                      max_len=64, personas=str(tiny_dir), null_saes=0)
    r = label(cfg, log=lambda *a: None)
    assert asked == [(str(tiny_dir), LAYER)] and r.nearest["evil"]["latent"] == 3


def test_text_scores_probes_are_extra_unclamped_columns(tiny_model, tmp_path):
    """Probe directions ride the same pass: the latent columns are unchanged and each probe column is
    the raw projection (a direction and its negative give opposite means, so nothing is clamped)."""
    from persona_sae.statistics import text_scores

    sae = _planted_sae(tiny_model, tmp_path / "sae", 5)
    sets = {"a": [Record(text=f"{s} made a wish and {v}.") for s in SUBJECTS for v in VERBS][:12]}
    u = sae.W_dec[5].detach()
    plain = text_scores(tiny_model, sae, sets, LAYER, "resid_pre", max_len=64, progress=False)
    both = text_scores(tiny_model, sae, sets, LAYER, "resid_pre", max_len=64, progress=False, probes=torch.stack([u, -u]))
    d = sae.cfg.d_sae
    assert both.peak.shape == (12, d + 2)
    assert torch.equal(both.peak[:, :d], plain.peak) and torch.equal(both.mean[:, :d], plain.mean)
    assert torch.allclose(both.mean[:, d], -both.mean[:, d + 1], atol=1e-5)
    assert (both.peak[:, d] >= both.mean[:, d]).all() and (both.peak[:, d + 1] >= both.mean[:, d + 1]).all()


def test_text_scores_select_response_reads_only_the_answer(tiny_model, tmp_path):
    """A latent planted on ' wish' fires on chats whose *question* says wish when all tokens are read,
    and stays silent when only the assistant's answer is (the persona-answer scores need that)."""
    from persona_sae.statistics import text_scores

    j = 3
    sae = _planted_sae(tiny_model, tmp_path / "sae", j)
    chats = {"q": [Record(messages=[{"role": "user", "content": f"{s} made a wish?"},
                                    {"role": "assistant", "content": f"{s} {v}."}]) for s in SUBJECTS for v in VERBS][:10]}
    every = text_scores(tiny_model, sae, chats, LAYER, "resid_pre", max_len=64, progress=False)
    answer = text_scores(tiny_model, sae, chats, LAYER, "resid_pre", max_len=64, progress=False, select="response")
    assert (every.peak[:, j] > 0).all()
    assert (answer.peak[:, j] == 0).all()
    assert answer.n_tokens < every.n_tokens


def test_logit_lens_in_chunks_matches_one_pass(tiny_model, tmp_path):
    """Chunking over latents (memory: [latents, vocab] is 13 GB at 65,536 latents) changes no token."""
    from persona_sae.latents import logit_lens

    sae = _planted_sae(tiny_model, tmp_path / "sae", 2)
    latents = [7, 0, 2, 5, 1]
    assert logit_lens(tiny_model, sae, latents, chunk=2) == logit_lens(tiny_model, sae, latents)
    top, bot = logit_lens(tiny_model, sae, latents, chunk=2)
    assert len(top) == len(latents) and all(len(t) == 5 for t in top + bot)


def test_decide_with_a_single_concept_has_no_runner_up():
    import torch

    from persona_sae.labels import Thresholds, decide

    s = {"toxic-persona": {"auroc": torch.tensor([0.95, 0.5]), "fire": torch.tensor([0.9, 0.9]),
                           "ratio": torch.tensor([5.0, 1.0])}}
    best, runner, au = decide(s, Thresholds())
    assert best == ["toxic-persona", "unlabelled"] and runner == ["", "toxic-persona"] and au.shape == (2, 1)


def _random_texts(n: int, seed: int) -> list[str]:
    import random

    from tests.conftest import CORPUS

    rng = random.Random(seed)
    words = sorted({w for t in CORPUS for w in t.split()})
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(n)]


def _random_sae(tiny_model, path, d_sae: int, fire: float, texts, layer: int = 1, seed: int = 0):
    """Random unit directions, each biased to fire on about ``fire`` of the tokens: no training."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from persona_sae.activations import extract

    a = extract(tiny_model, tokenize([Record(text=t) for t in texts], tiny_model.tokenizer, max_len=64), [layer],
                hook="resid_post", select="all", progress=False)
    torch.manual_seed(seed)
    sae = StandardSAE(StandardSAEConfig(d_in=a.acts[layer].shape[1], d_sae=d_sae, metadata=SAEMetadata(
        hook_name=f"blocks.{layer}.hook_resid_post")))
    with torch.no_grad():
        W = torch.randn(d_sae, a.acts[layer].shape[1])
        W /= W.norm(dim=1, keepdim=True)
        sae.W_dec.copy_(W)
        sae.W_enc.copy_(W.T)
        sae.b_dec.zero_()
        sae.b_enc.copy_(-torch.quantile(a.acts[layer] @ W.T, 1 - fire, dim=0))
    sae.save_model(str(path))
    return sae


def test_random_sae_on_random_concepts_gets_no_tag(tiny_model, tiny_dir, tmp_path):
    """Concept sets drawn at random from one pool of texts carry no concept, so any tag is noise:
    the fixed thresholds alone tag a random-weight SAE's latent here; the BH-gated p-value does not."""
    texts = _random_texts(400, 0)
    files = [_write(tmp_path / f"concept-{i}.jsonl", texts[10 * i:10 * i + 10]) for i in range(10)]
    files.append(_write(tmp_path / "control-rest.jsonl", texts[100:130]))
    _random_sae(tiny_model, tmp_path / "sae", 512, 0.03, texts[:200])
    kw = dict(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=files, no_builtin=True, max_len=64)
    fixed = label(LabelConfig(**kw, fdr=1.0), log=lambda *a: None)
    assert fixed.n_labelled >= 1  # the old rule: chance passes AUROC 0.8, fire 0.3 and ratio 2
    lines = []
    r = label(LabelConfig(**kw), log=lines.append)
    assert r.n_labelled == 0
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    assert all(e["tag"] == "unlabelled" for e in lab["latents"].values())
    assert lab["p_values"]["tests"] == 512 * 10
    assert any("raise --permutations" in x for x in lines)  # the shuffles' floor is what stopped it: said so


def test_pvalues_of_a_random_sae_on_shuffled_labels_are_uniform(tiny_model, tmp_path):
    """Calibration: a random SAE's latents on labels drawn at random give p-values that are roughly
    uniform (never small too often); a separating column gets the floor 1/(N+1)."""
    from persona_sae.statistics import auroc_pvalue, midranks, text_scores

    texts = _random_texts(120, 1)
    sae = _random_sae(tiny_model, tmp_path / "sae", 64, 0.3, texts)
    ts = text_scores(tiny_model, sae, {"all": [Record(text=t) for t in texts]}, 1, "resid_post", max_len=64,
                     progress=False)
    peak = ts.peak[:, (ts.peak > 0).float().mean(0) > 0.2]  # latents that fire on many texts: few ties
    assert peak.shape[1] >= 20
    ranks = midranks(peak)
    g = torch.Generator().manual_seed(0)
    ps = []
    for i in range(30):
        pos = torch.zeros(len(texts), dtype=torch.bool)
        pos[torch.randperm(len(texts), generator=g)[:15]] = True
        ps.append(auroc_pvalue(peak, pos, permutations=199, seed=i, ranks=ranks))
    p = torch.cat(ps)
    grid = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)
    ecdf = (p[None, :] <= grid[:, None]).double().mean(1)
    assert (ecdf - grid).abs().max() < 0.06, (ecdf - grid).abs().max()  # KS-like, loose
    assert ecdf[0] < 0.08  # never small too often: what BH relies on
    sep = torch.cat([torch.ones(15), torch.zeros(105)])[:, None]
    assert auroc_pvalue(sep, sep[:, 0] > 0, permutations=99)[0] == pytest.approx(1 / 100)


def test_bh_qvalues_by_hand():
    from persona_sae.statistics import bh_qvalues

    q = bh_qvalues(torch.tensor([[0.01, 0.04], [0.03, 0.5]], dtype=torch.float64))
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4/rank 0.04, 0.06, 0.0533, 0.5 -> running min from the top
    assert torch.allclose(q, torch.tensor([[0.04, 0.16 / 3], [0.16 / 3, 0.5]], dtype=torch.float64))


def test_bad_fdr_and_permutations(tmp_path, tiny_dir):
    for kw, msg in ((dict(fdr=0.0), "--fdr must be in"), (dict(permutations=0), "--permutations must be at least 1")):
        with pytest.raises(UserError, match=msg):
            label(LabelConfig(sae=str(tmp_path / "none"), model=str(tiny_dir), **kw), log=lambda *a: None)


def _style_sets(tmp_path):
    """Concept sets a random projection separates by their surface alone: capitals, digits."""
    base = [f"{s} {v}" for s in SUBJECTS for v in VERBS]
    loud = [f"{b}!".upper() for b in base][:40]
    dated = [f"{b} at {i % 12 + 1}:{i % 60:02d} on {1990 + i}." for i, b in enumerate(base)][20:60]
    plain = [f"{b} today." for b in base][30:70]
    return [_write(tmp_path / "shouting.jsonl", loud), _write(tmp_path / "dated.jsonl", dated),
            _write(tmp_path / "control-plain.jsonl", plain)], loud + dated + plain


def test_random_sae_on_style_concepts_is_tagged_without_the_null_and_not_with_it(tiny_model, tiny_dir, tmp_path):
    """A random-weight SAE separates capitals and digits from plain text: tagged by every other test
    (shuffled labels cannot tell surface from concept), untagged once its AUROCs must beat random SAEs
    of its own shape."""
    files, texts = _style_sets(tmp_path)
    _random_sae(tiny_model, tmp_path / "sae", 256, 0.03, texts, seed=3)
    kw = dict(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=files, no_builtin=True, max_len=64)
    plain = label(LabelConfig(**kw, null_saes=0), log=lambda *a: None)
    assert plain.n_labelled >= 2 and plain.null is None, plain.best
    lines = []
    r = label(LabelConfig(**kw), log=lines.append)
    assert r.n_labelled == 0
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    assert all(e["tag"] == "unlabelled" for e in lab["latents"].values())
    null = lab["null"]
    assert null["saes"] == 4 and null["latents"] == 4 * 256 and null["quantile"] == 1.0
    assert null["removed"] == null["tags_without"] == plain.n_labelled
    assert set(null["concepts"]) == {"shouting", "dated"}
    assert all(c["threshold"] == c["auroc_max"] >= 0.8 for c in null["concepts"].values())  # random SAEs reach it too
    assert any(f"removed {plain.n_labelled} of {plain.n_labelled} tags" in x for x in lines)
    p_null = [e["scores"][c]["p_null"] for e in lab["latents"].values() for c in e["scores"]]
    assert min(p_null) >= 1 / 1025 and max(p_null) <= 1


def _probe_sae(tiny_model, path, marked: list[str], rest: list[str], j: int, d_sae: int = 8):
    """Latent j is a least-squares probe for the tokens found only in ``marked`` (several words, so no
    single random direction reads them all); the other latents are random and fire on their top."""
    from persona_sae.activations import extract

    tok = tiny_model.tokenizer

    def ids(ts):
        return {i for t in ts for i in tok(t, add_special_tokens=False)["input_ids"]}

    only = ids(marked) - ids(rest)
    ex = tokenize([Record(text=t) for t in marked + rest], tok, max_len=64)
    a = extract(tiny_model, ex, [LAYER], hook="resid_pre", select="all", progress=False)
    X = a.acts[LAYER]
    y = torch.tensor([t in only for t in a.token.tolist()], dtype=torch.float32)
    w = torch.linalg.lstsq(torch.cat([X, torch.ones(len(X), 1)], 1), y[:, None]).solution[:, 0]
    assert (X @ w[:-1] + w[-1])[y > 0].min() > 0.9 and (X @ w[:-1] + w[-1])[y == 0].max() < 0.1  # it separates
    n = w[:-1].norm()
    sae = _sae_reading(X, d_sae, j, w[:-1] / n, (w[-1] - 0.5) / n, seed=1)  # fires where the probe passes 0.5
    sae.save_model(str(path))
    return sae


def test_planted_probe_keeps_its_tag_with_the_null(tiny_model, tiny_dir, tmp_path):
    """A latent that reads a concept no random direction of its density reads (three marker words)
    beats every random latent and keeps its tag; the random-SAE null removes nothing here."""
    base = [f"{s} {v}" for s in SUBJECTS for v in VERBS]
    words = ["villain", "assistant", "thoughts"]
    marked = [f"{b} {words[i % 3]}." for i, b in enumerate(base)][:40]
    other = [f"{b} with a friend." for b in base][20:60]
    plain = [f"{b} today." for b in base][30:70]
    files = [_write(tmp_path / "cast.jsonl", marked), _write(tmp_path / "friendly.jsonl", other),
             _write(tmp_path / "control-plain.jsonl", plain)]
    j = 3
    _probe_sae(tiny_model, tmp_path / "sae", marked, other + plain, j)
    kw = dict(sae=str(tmp_path / "sae"), model=str(tiny_dir), concepts=files, no_builtin=True, max_len=64)
    r = label(LabelConfig(**kw, null_saes=64), log=lambda *a: None)  # 512 random latents: p_null can reach 1/513
    lab = json.loads((tmp_path / "sae" / "labels.json").read_text())
    e = lab["latents"][str(j)]
    assert e["tag"] == "cast", e
    thr = lab["null"]["concepts"]["cast"]["threshold"]
    assert e["scores"]["cast"]["auroc"] > thr and e["scores"]["cast"]["p_null"] == pytest.approx(1 / 513, rel=1e-2)
    assert r.best["cast"]["latent"] == j and r.best["cast"]["null"] == pytest.approx(thr, abs=1e-4)
    assert lab["null"]["removed"] == 0 and lab["null"]["tags_without"] == r.n_labelled


def test_null_peaks_equal_the_random_sae_encoded(tiny_model, tmp_path):
    """The null's per-text peaks from raw projections equal its sae_lens SAE run through text_scores,
    and each random latent fires at the real latent's rate (within the sampling error)."""
    from persona_sae.labels import RandomSAEs
    from persona_sae.statistics import text_scores

    texts = _random_texts(60, 2)
    sets = {"all": [Record(text=t) for t in texts]}
    sae = _random_sae(tiny_model, tmp_path / "sae", 32, 0.1, texts)
    null = RandomSAEs(2, 32, sae.cfg.d_in, len(texts), seed=5, sample=100_000)  # every token sampled
    ts = text_scores(tiny_model, sae, sets, 1, "resid_post", max_len=64, progress=False, observe=null.observe)
    assert ts.rate.shape == (32,) and 0.05 < float(ts.rate.mean()) < 0.15
    b = null.biases(ts.rate)
    for r in range(2):
        rnd = null.sae(r, ts.rate, "blocks.1.hook_resid_post")
        enc = text_scores(tiny_model, rnd, sets, 1, "resid_post", max_len=64, progress=False)
        assert torch.allclose(null.peaks(r, b), enc.peak, atol=1e-5)
        assert (enc.rate - ts.rate).abs().max() < 0.01  # 0.1 each; repeated tokens tie at the threshold
    assert not torch.allclose(null.W[0], null.W[1])


def test_bad_null_flags(tmp_path, tiny_dir, capsys):
    for kw, msg in ((dict(null_saes=-1), "--null-saes must be 0 (off) or more"),
                    (dict(null_quantile=0.0), "--null-quantile must be in (0, 1]"),
                    (dict(null_quantile=1.5), "--null-quantile must be in (0, 1]")):
        with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            label(LabelConfig(sae=str(tmp_path / "none"), model=str(tiny_dir), **kw), log=lambda *a: None)
    assert main(["label", "--sae", str(tmp_path / "none"), "--null-quantile", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--null-quantile must be in (0, 1], got 2.0") and len(err) == 1
