"""label --explainer: against a fake OpenAI-compatible server over real HTTP that always explains
"the word wish" and, asked to detect, says 1 exactly for excerpts containing "wish". On a planted SAE
(one latent fires on " wish", one on " your") detection scores the wish latent ~1 and the your latent
at chance; dead URLs, unreadable replies, manual labels, the local HF explainer."""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from persona_sae import UserError
from persona_sae.cli import main
from persona_sae.config import LabelConfig
from persona_sae.explain import detection_metrics, parse_detection, parse_explanation, render
from persona_sae.labels import effective
from persona_sae.stages.label import run as label
from persona_sae.text import Record
from persona_sae.tokens import tokenize
from tests.test_label import SUBJECTS, VERBS, concept_files  # noqa: F401 - a fixture

LAYER = 0  # resid_pre of block 0 is the token embedding: a token's latent value is the same everywhere
J_WISH, J_YOUR, D_SAE = 2, 5, 8
EXPLANATION = 'the word "wish"'
COMBOS = [(s, v) for s in SUBJECTS for v in VERBS]
CORPUS = ([f"{s} made a wish and {v}." for s, v in COMBOS[:12]]  # rare enough that the silent windows
          + [f"{s} asked about your day and {v}." for s, v in COMBOS[12:24]]  # of the your latent seldom
          + [f"{s} {v} {when}." for s, v in COMBOS for when in ("today", "at noon")])  # hold a wish


class FakeExplainer(BaseHTTPRequestHandler):
    """The request's model name picks the behaviour: 'fake' answers well, 'bad-detect' never gives a
    list, 'bad-all' answers nothing readable at all."""

    def log_message(self, *a):
        pass

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt, model = req["messages"][0]["content"], req["model"]
        detect = "JSON list" in prompt
        with self.server.lock:
            self.server.requests.append({"model": model, "detect": detect, "prompt": prompt, **req})
        assert req["temperature"] == 0 and req["max_tokens"] > 0 and "logprobs" not in req
        if model == "bad-all":
            content = "Hmm.\nHard to say.\nMaybe."
        elif not detect:
            content = f"These all share a token.\n[EXPLANATION]: {EXPLANATION}"
        elif model == "bad-detect":
            content = "Sure! Excerpts one and three, I think."
        else:
            lines = re.findall(r"^Example \d+: (.*)$", prompt, flags=re.M)
            content = "Answer: " + json.dumps([int("wish" in x) for x in lines])
        body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeExplainer)
    srv.lock, srv.requests = threading.Lock(), []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def url(server):
    server.requests.clear()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


@pytest.fixture(scope="module")
def planted(tiny_model, tmp_path_factory):
    """An SAE whose latent J_WISH fires on ' wish' and J_YOUR on ' your' (all others silent), and its
    examples mined from CORPUS."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    from persona_sae.latents import sae_checksum
    from persona_sae.stages.examples import mine

    root = tmp_path_factory.mktemp("explain")
    tok = tiny_model.tokenizer
    E = tiny_model.hf.get_input_embeddings().weight.detach().float()
    torch.manual_seed(0)
    W = torch.randn(D_SAE, E.shape[1])
    b = torch.full((D_SAE,), -1e4)
    for j, word in ((J_WISH, " wish"), (J_YOUR, " your")):
        t, = tok(word, add_special_tokens=False)["input_ids"]
        others = torch.ones(len(E), dtype=torch.bool)
        others[t] = False
        u = E[t] - E[others].mean(0)
        u = u / u.norm()
        W[j], b[j] = u, -((E[t] @ u) + (E[others] @ u).max()) / 2
    sae = StandardSAE(StandardSAEConfig(d_in=E.shape[1], d_sae=D_SAE, metadata=SAEMetadata(
        hook_name=f"blocks.{LAYER}.hook_resid_pre")))
    with torch.no_grad():
        sae.W_dec.copy_(W)
        sae.W_enc.copy_(W.T)
        sae.b_dec.zero_()
        sae.b_enc.copy_(b)
    sae.save_model(str(root / "sae"))
    ex = tokenize([Record(text=t) for t in CORPUS], tok, max_len=64)
    m = mine(tiny_model, sae, ex, LAYER, "resid_pre", root / "examples", k=10, reservoir=20, batch_tokens=512,
             meta={"sae_sha256": sae_checksum(sae)}, log=lambda *a: None)
    assert int(m.fires[J_WISH]) == 12 and int(m.fires[J_YOUR]) == 12  # planted as meant
    assert int((m.fires > 0).sum()) == 2
    return {"sae": str(root / "sae"), "examples": str(root / "examples")}


def _cfg(planted, tiny_dir, concept_files, out, **kw):
    # the chance gates (BH over permutation p-values, the random-SAE null) are tested in test_label; here the
    # tags only pick which latents get explained, and 96 latents x 3 concepts are too few for BH at p >= 1/1001
    return LabelConfig(sae=planted["sae"], model=str(tiny_dir), out=str(out), concepts=concept_files, no_builtin=True,
                       max_len=64, **{"fdr": 1.0, "null_saes": 0, **kw})


def _excerpts(prompt: str) -> list[str]:
    return [x.replace("<<", "").replace(">>", "") for x in re.findall(r"^Example \d+: (.*)$", prompt, flags=re.M)]


def test_detection_scores_a_matching_explanation_high_and_a_wrong_one_at_chance(
        planted, tiny_dir, concept_files, tmp_path, url, server, capsys):  # noqa: F811
    out = tmp_path / "labels"
    quiet = lambda *a: None  # noqa: E731
    # default: only the tagged latents are explained (the wish latent is tagged from the concept sets)
    r = label(_cfg(planted, tiny_dir, concept_files, out, explainer=url, explainer_model="fake",
                   examples=planted["examples"], explain_examples=5), log=quiet)
    assert [e["latent"] for e in r.explained] == [J_WISH] and r.explained[0]["tag"] == "wishing"
    tags = {k: v["tag"] for k, v in json.loads((out / "labels.json").read_text())["latents"].items()}
    # a manual label, then explain both latents: the wrong explanation scores at chance
    assert main(["label", "set", str(J_YOUR), "friendly", "--sae", planted["sae"], "--out", str(out)]) == 0
    server.requests.clear()
    r = label(_cfg(planted, tiny_dir, concept_files, out, explainer=url + "#fake", examples=planted["examples"],
                   explain_latents=[J_WISH, J_YOUR], explain_examples=5), log=quiet)
    lab = json.loads((out / "labels.json").read_text())
    w, y = lab["latents"][str(J_WISH)]["explanation"], lab["latents"][str(J_YOUR)]["explanation"]
    assert w["text"] == y["text"] == EXPLANATION and w["explainer"] == f"{url}#fake" and w["n_examples"] >= 5
    assert w["detection"]["score"] >= 0.95 and w["detection"]["recall"] == 1.0
    assert 0.3 <= y["detection"]["score"] <= 0.6 and y["detection"]["recall"] == 0.0  # ~chance
    for d in (w["detection"], y["detection"]):
        assert d["n_pos"] == 5 and d["n_neg"] == 5 and d["score"] == d["balanced_accuracy"]
    # tags unchanged by explanations; the manual label still wins
    assert {k: v["tag"] for k, v in lab["latents"].items()} == tags
    assert effective(lab, J_YOUR) == {"tag": "friendly", "source": "manual", "note": ""}
    assert {e["latent"]: e["tag"] for e in r.explained} == {J_WISH: "wishing", J_YOUR: "friendly"}
    # the explainer saw the activating tokens marked; detection excerpts are unmarked
    explains = [q["prompt"] for q in server.requests if not q["detect"]]
    assert any("<< wish>>" in p for p in explains) and any("<< your>>" in p for p in explains)
    assert not any("<<" in q["prompt"] for q in server.requests if q["detect"])
    # deterministic (this time through the CLI, which shows the explanations), and a later run without
    # --explainer keeps them
    capsys.readouterr()
    assert main(["label", "--sae", planted["sae"], "--model", str(tiny_dir), "--out", str(out), "--concepts",
                 *concept_files, "--no-builtin", "--max-len", "64", "--explainer", url, "--explainer-model", "fake",
                 "--examples", planted["examples"], "--explain-latents", str(J_WISH), str(J_YOUR),
                 "--explain-examples", "5"]) == 0
    shown = capsys.readouterr().out
    assert "explanations by" in shown and "wish" in shown and "1.00" in shown
    again = json.loads((out / "labels.json").read_text())
    assert again["latents"][str(J_YOUR)]["explanation"] == y
    label(_cfg(planted, tiny_dir, concept_files, out), log=quiet)
    kept = json.loads((out / "labels.json").read_text())
    assert kept["latents"][str(J_WISH)]["explanation"] == w and kept["manual"] == lab["manual"]


def test_unreadable_replies_are_retried_then_unscored(planted, tiny_dir, concept_files, tmp_path, url, server):  # noqa: F811
    out = tmp_path / "labels"
    label(_cfg(planted, tiny_dir, concept_files, out, explainer=url, explainer_model="bad-detect",
               examples=planted["examples"], explain_latents=[J_WISH], explain_examples=5), log=lambda *a: None)
    e = json.loads((out / "labels.json").read_text())["latents"][str(J_WISH)]["explanation"]
    assert e["text"] == EXPLANATION and e["detection"] is None and "0/1" in e["unscored"]
    assert sum(q["detect"] for q in server.requests) == 2  # asked again once
    # detection uses held-out windows: none of the excerpts the explanation was written from
    shown = set(_excerpts(next(q["prompt"] for q in server.requests if not q["detect"])))
    detect = _excerpts(next(q["prompt"] for q in server.requests if q["detect"]))
    assert len(shown) >= 5 and sum("wish" in x for x in detect) == 5 and not shown & set(detect)
    server.requests.clear()
    label(_cfg(planted, tiny_dir, concept_files, out, explainer=url, explainer_model="bad-all",
               examples=planted["examples"], explain_latents=[J_WISH, 0], explain_examples=5), log=lambda *a: None)
    lab = json.loads((out / "labels.json").read_text())["latents"]
    e = lab[str(J_WISH)]["explanation"]
    assert e["text"] is None and e["detection"] is None and "no explanation" in e["unscored"]
    assert len(server.requests) == 2 and not any(q["detect"] for q in server.requests)
    assert "never fired" in lab["0"]["explanation"]["unscored"]  # no request for a dead latent


def test_dead_url_fails_first_naming_it(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    # the SAE does not even exist: the URL is checked before anything else is loaded
    with pytest.raises(UserError, match="unreachable") as e:
        label(LabelConfig(sae=str(tmp_path / "no-sae"), explainer=dead, examples=str(tmp_path)), log=lambda *a: None)
    assert dead in str(e.value) and "explainer" in str(e.value) and "\n" not in str(e.value)
    assert main(["label", "--sae", str(tmp_path / "no-sae"), "--explainer", dead, "--examples", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and dead in err[0]


def test_explainer_arguments_are_checked(tmp_path, url):
    with pytest.raises(UserError, match="needs --examples"):
        label(LabelConfig(sae=str(tmp_path), explainer=url), log=lambda *a: None)
    with pytest.raises(UserError, match="only with --explainer"):
        label(LabelConfig(sae=str(tmp_path), examples=str(tmp_path)), log=lambda *a: None)
    with pytest.raises(UserError, match="unknown explainer"):
        label(LabelConfig(sae=str(tmp_path), explainer="gpt4", examples=str(tmp_path)), log=lambda *a: None)


def test_hf_explainer_runs_on_the_tiny_model(planted, tiny_dir, concept_files, tmp_path):  # noqa: F811
    out = tmp_path / "labels"
    r = label(_cfg(planted, tiny_dir, concept_files, out, explainer=f"hf:{tiny_dir}", examples=planted["examples"],
                   explain_latents=[J_WISH], explain_examples=2), log=lambda *a: None)
    e = json.loads((out / "labels.json").read_text())["latents"][str(J_WISH)]["explanation"]
    assert e["explainer"] == f"hf:{tiny_dir}" and e["n_examples"] >= 2  # a random model: scored or not, no crash
    assert r.explained[0]["latent"] == J_WISH


def test_parsers_and_metrics(tiny_model):
    assert parse_explanation("thinking...\n[EXPLANATION]: **Mentions of wishes.**") == "Mentions of wishes."
    assert parse_explanation("Mentions of wishes.") == "Mentions of wishes."
    assert parse_explanation("line one\nline two") is None and parse_explanation("") is None
    assert parse_detection("Answer: [1, 0, true, \"0\"]", 4) == [1, 0, 1, 0]
    assert parse_detection("[1, 0] then [0, 1, 1]", 3) == [0, 1, 1]
    assert parse_detection("[1, 2, 0]", 3) is None and parse_detection("[1, 0]", 3) is None
    assert parse_detection("1, 0, 1", 3) is None and parse_detection(None, 1) is None
    m = detection_metrics([1, 1, 0, 0], [1, 0, 0, 0])
    assert (m["recall"], m["specificity"], m["precision"], m["score"], m["accuracy"]) == (0.5, 1.0, 1.0, 0.75, 0.75)
    assert detection_metrics([1, 0], [0, 0])["precision"] is None
    tok = tiny_model.tokenizer
    ids = tok("I made a wish and", add_special_tokens=False)["input_ids"]
    wish = tok(" wish", add_special_tokens=False)["input_ids"][0]
    assert render(tok, ids, [float(t == wish) for t in ids]) == "I made a<< wish>> and"
    assert render(tok, ids, [1.0] * len(ids)) == "<<I made a wish and>>"
