"""Bad inputs found by trying the tool as a new user would: each is one line on stderr, exit 2, no
traceback, refused before any model loads, and leaves nothing behind (nor deletes what it did not write)."""

import json
import time

import pytest
import torch

from tests.test_cli import assert_one_line_error, run
from tests.test_rank import make_sae


@pytest.fixture
def sae(tmp_path):
    make_sae(tmp_path / "sae", seed=0)
    return tmp_path / "sae"


def _nonutf(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(b'{"text": "caf\xe9"}\n')
    return p


CASES = {
    "non-UTF-8 dataset": (lambda t, s, m: ["activations", "--model", m, "--dataset", _nonutf(t), "--out", t / "o"],
                          r"latin1.jsonl is not UTF-8 text \(byte 0xe9 at offset 13\)"),
    "non-UTF-8 concepts": (lambda t, s, m: ["label", "--sae", s, "--model", m, "--concepts", _nonutf(t)],
                           r"latin1.jsonl is not UTF-8 text"),
    "label --ranking without ranking.json": (
        lambda t, s, m: (t / "norank").mkdir() or ["label", "--sae", s, "--model", m, "--ranking", t / "norank"],
        r"--ranking .*norank is not a rank output folder \(no ranking.json\)"),
    "garbage labels.json for label set": (
        lambda t, s, m: (s / "labels.json").write_text("{garbage") and ["label", "set", "1", "toxic-persona", "--sae", s],
        r"labels.json: malformed JSON \(.* at line 1\)"),
    "corrupt examples manifest": (
        lambda t, s, m: ((t / "ex").mkdir(), (t / "ex" / "manifest.json").write_text("{not json"),
                         (t / "ex" / "examples.safetensors").write_bytes(b""))
        and ["browse", "--sae", s, "--examples", t / "ex", "1"],
        r"manifest.json: malformed JSON"),
    "dashboard --out an existing file": (
        lambda t, s, m: (t / "existing").write_text("x") and ["dashboard", "--sae", s, "--examples", t / "ex", "--out", t / "existing"],
        r"--out .*existing exists and is not a folder"),
    "dashboard --out .": (lambda t, s, m: ["dashboard", "--sae", s, "--examples", t / "ex", "--out", "."],
                          r"--out \. is the current folder"),
    "fake .gguf": (lambda t, s, m: (t / "fake.gguf").write_bytes(b"GGUFxxxx") and ["models", "info", t / "fake.gguf"],
                   r"fake.gguf is not a GGUF file \(truncated header\)"),
    "not a .gguf at all": (lambda t, s, m: (t / "junk.gguf").write_bytes(b"x" * 64) and ["models", "info", t / "junk.gguf"],
                           r"junk.gguf is not a GGUF file \(no GGUF magic\)"),
    "serve --port 99999": (lambda t, s, m: ["serve", t, "--port", "99999"], r"--port must be 1\.\.65535, got 99999"),
    "data make --out an existing folder": (
        lambda t, s, m: (t / "folder").mkdir() or ["data", "make", "evil-persona", "--n", "5", "--out", t / "folder"],
        r"--out .*folder is a folder; name a file"),
    "data make --out in a missing folder": (
        lambda t, s, m: ["data", "make", "evil-persona", "--n", "5", "--out", t / "nope" / "x.jsonl"],
        r"folder .*nope does not exist"),
    "examples --tokens -5": (
        lambda t, s, m: ["examples", "--sae", s, "--model", m, "--dataset", "em-core", "--tokens", "-5", "--out", t / "o"],
        r"--tokens must be 0 \(the whole dataset\) or positive, got -5"),
    "monitor --dataset a .txt": (
        lambda t, s, m: ["monitor", "--sae", s, "--base", m, "--latents", "1", "--dataset", t / "c.txt", "--out", t / "o"],
        r"--dataset must be a chat \.jsonl"),
    "steer --positions middle": (
        lambda t, s, m: ["steer", "--model", m, "--sae", s, "--latent", "1", "--positions", "middle", "--out", t / "o"],
        r"--positions must be all, prompt or response, got 'middle'"),
    "train --arch gated": (lambda t, s, m: ["train", "--model", m, "--arch", "gated", "--out", t / "o"],
                           r"unknown --arch 'gated'"),
    "train --tokens -100": (lambda t, s, m: ["train", "--model", m, "--tokens", "-100", "--out", t / "o"],
                            r"--tokens must be positive, got -100"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_before_work_and_leaves_nothing(case, tmp_path, sae, tiny_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, pattern = CASES[case]
    args = [str(a) for a in argv(tmp_path, sae, str(tiny_dir))]
    before = {p for p in tmp_path.rglob("*")}
    t0 = time.time()
    assert_one_line_error(*run(capsys, *args), pattern)
    assert time.time() - t0 < 5, "refused only after work"  # every case here is refused before a model loads
    assert {p for p in tmp_path.rglob("*")} == before, "a refused command left files behind"


def test_dashboard_never_deletes_a_folder_it_did_not_write(tmp_path, sae, capsys):
    own = tmp_path / "precious"
    own.mkdir()
    (own / "thesis.tex").write_text("mine")
    assert_one_line_error(*run(capsys, "dashboard", "--sae", str(sae), "--examples", str(tmp_path / "ex"),
                               "--out", str(own)), r"holds files that are not a dashboard \(no site.json\).*--force")
    assert (own / "thesis.tex").read_text() == "mine" and sorted(p.name for p in own.iterdir()) == ["thesis.tex"]


def test_pickle_only_model_folder_is_refused_without_unpickling(tmp_path, tiny_dir, capsys, monkeypatch):
    import shutil

    full = tmp_path / "full"
    shutil.copytree(tiny_dir, full)
    for w in full.glob("*.safetensors"):
        w.unlink()
    torch.save({"w": torch.zeros(1)}, full / "pytorch_model.bin")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a pickle was opened"))
    assert_one_line_error(*run(capsys, "activations", "--model", str(full), "--out", str(tmp_path / "o")),
                          r"holds no .safetensors weights \(only pickles: pytorch_model.bin")
    assert not (tmp_path / "o").exists()


def test_an_os_error_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    """I/O no check can foresee (here: a disk that refuses the write) is named, not traced."""
    from persona_sae import generators

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.jsonl.tmp"))

    monkeypatch.setattr(generators, "write", refuse)
    assert_one_line_error(*run(capsys, "data", "make", "evil-persona", "--n", "5", "--out", str(tmp_path / "x.jsonl")),
                          r"Permission denied: .*x.jsonl.tmp")


def test_a_refused_run_keeps_an_earlier_folder_and_a_checkpoint(tmp_path):
    from persona_sae.runs import tidy_refused

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "run.json").write_text(json.dumps({"status": "running"}))
    tidy_refused(fresh, existed=False)
    assert not fresh.exists()  # created by the refused command, nothing of value in it
    ck = tmp_path / "ck"
    (ck / "checkpoint").mkdir(parents=True)
    (ck / "checkpoint" / "state.json").write_text("{}")
    tidy_refused(ck, existed=False)
    assert (ck / "checkpoint" / "state.json").is_file()  # work that --resume would continue
    old = tmp_path / "old"
    old.mkdir()
    tidy_refused(old, existed=True)
    assert old.is_dir()


def test_a_truncated_or_nan_sae_is_refused_naming_it(tmp_path, sae, tiny_dir, capsys):
    import shutil

    from safetensors.torch import load_file, save_file

    cut = tmp_path / "cut"
    shutil.copytree(sae, cut)
    w = cut / "sae_weights.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    assert_one_line_error(*run(capsys, "browse", "1", "--sae", str(cut), "--model", str(tiny_dir), "--text", "hi"),
                          r"SAE .*cut: a safetensors file is corrupt or truncated")
    nan = tmp_path / "nan"
    shutil.copytree(sae, nan)
    t = load_file(str(nan / "sae_weights.safetensors"))
    t["W_dec"][3, 5] = float("nan")
    save_file(t, str(nan / "sae_weights.safetensors"))
    assert_one_line_error(*run(capsys, "rank", "--sae", str(nan), "--base", str(tiny_dir), "--finetuned", str(tiny_dir),
                               "--out", str(tmp_path / "r")), r"SAE .*nan: tensor W_dec holds 1 NaN or inf value\(s\) of")
    assert not (tmp_path / "r").exists()
