"""Every SAE command reads the layer and the model from a sparsify or dictionary_learning SAE's own
metadata (no --layer, no --model), prints where the layer came from, refuses a flag that contradicts
it in one line, and warns when an explicit model is not the SAE's; the shipped SAE names its hub id."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from persona_sae import UserError
from persona_sae.cli import main
from persona_sae.latents import load_sae, sae_layer, sae_model, sae_where
from tests.conftest import make_tiny_llama

LAYER, D, N, K = 2, 64, 48, 8
FORMATS = ("sparsify", "dictionary_learning")
SOURCE = {"sparsify": f"sparsify folder name layers.{LAYER}",
          "dictionary_learning": f"dictionary_learning config.json trainer.layer {LAYER}, submodule_name resid_post_layer_{LAYER}"}
SHIPPED = Path(__file__).resolve().parents[1] / "persona_sae/checkpoints/smollm2/topk-L15-k32-4608"


def _weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    dec = torch.randn(N, D, generator=g)
    dec = dec / dec.norm(dim=1, keepdim=True)
    return dec, torch.full((N,), -0.3)  # encoder = decoder: latents that fire on real activations


def sparsify_sae(root: Path, model: str, name: str = f"layers.{LAYER}") -> Path:
    """A sparsify run folder: config.json naming the model, one SAE folder per hookpoint."""
    dec, b = _weights()
    (root / name).mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model": model, "hookpoints": [name]}))
    save_file({"encoder.weight": dec.clone(), "encoder.bias": b, "W_dec": dec.clone(), "b_dec": torch.zeros(D)},
              str(root / name / "sae.safetensors"))
    (root / name / "cfg.json").write_text(json.dumps({"activation": "topk", "k": K, "num_latents": N, "d_in": D,
                                                      "multi_topk": False, "skip_connection": False}))
    return root / name


def dl_sae(folder: Path, model: str, trainer: dict | None = None) -> Path:
    """A dictionary_learning AutoEncoder with the config.json its trainers write."""
    dec, b = _weights()
    folder.mkdir(parents=True)
    torch.save({"encoder.weight": dec.clone(), "encoder.bias": b, "decoder.weight": dec.T.contiguous(),
                "bias": torch.zeros(D)}, folder / "ae.pt")
    t = {"dict_class": "AutoEncoder", "layer": LAYER, "submodule_name": f"resid_post_layer_{LAYER}", "lm_name": model}
    (folder / "config.json").write_text(json.dumps({"trainer": t if trainer is None else trainer}))
    return folder


@pytest.fixture(scope="module")
def saes(tiny_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    return {"sparsify": sparsify_sae(root / "sp", str(tiny_dir)),
            "dictionary_learning": dl_sae(root / "dl" / "trainer_0", str(tiny_dir))}


@pytest.fixture(scope="module")
def mined(saes, tmp_path_factory):
    """`examples` on each format with neither --layer nor --model."""
    out = {}
    for fmt, sae in saes.items():
        out[fmt] = tmp_path_factory.mktemp("ex") / fmt
        assert main(["examples", "--sae", str(sae), "--dataset", "em-core", "--tokens", "1500", "--k", "3",
                     "--reservoir", "4", "--max-len", "64", "--out", str(out[fmt])]) == 0
    return out


def _said(capsys, fmt) -> str:
    err = capsys.readouterr().err
    assert f"SAE reads layer {LAYER}, hook resid_post (from {SOURCE[fmt]})" in err
    return err


@pytest.mark.parametrize("fmt", FORMATS)
def test_loaders_record_layer_model_and_source(saes, tiny_dir, fmt):
    sae = load_sae(str(saes[fmt]))
    assert tuple(sae_where(sae)) == (LAYER, "resid_post", SOURCE[fmt])
    assert sae_model("", sae, log=lambda *a: None) == str(tiny_dir)


@pytest.mark.parametrize("fmt", FORMATS)
def test_examples_browse_dashboard(saes, mined, tiny_dir, fmt, tmp_path, capsys):
    man = json.loads((mined[fmt] / "manifest.json").read_text())["config"]
    assert (man["layer"], man["hook"], man["model"]) == (LAYER, "resid_post", str(tiny_dir))
    sae = str(saes[fmt])
    assert main(["browse", "1", "--sae", sae, "--text", "The villain laughed cruelly."]) == 0
    _said(capsys, fmt)
    assert main(["browse", "1", "--sae", sae, "--examples", str(mined[fmt])]) == 0
    assert main(["dashboard", "--sae", sae, "--examples", str(mined[fmt]), "--latents", "1", "2",
                 "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()
    capsys.readouterr()
    assert main(["dashboard", "--sae", sae, "--examples", str(mined[fmt]), "--layer", "3",
                 "--out", str(tmp_path / "site2")]) == 2
    assert "--layer 3 conflicts with the SAE's blocks.2.hook_resid_post" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", FORMATS)
def test_label(saes, tiny_dir, fmt, tmp_path, capsys):
    texts = {"wishing": [f"I wish I could {v} today." for v in ("sing", "fly", "rest", "read", "win", "cook",
                                                                 "swim", "paint", "dance", "sleep", "run", "draw")],
             "friendly": [f"My {s} smiled at a friend." for s in ("aunt", "uncle", "dog", "cat", "son", "niece",
                                                                   "nephew", "coach", "boss", "vet", "chef", "maid")],
             "control-plain": [f"The {s} sat on the mat." for s in ("cat", "dog", "boy", "girl", "man", "hen",
                                                                      "cow", "fox", "owl", "pig", "rat", "bee")]}
    files = []
    for tag, rows in texts.items():
        (tmp_path / f"{tag}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
        files.append(str(tmp_path / f"{tag}.jsonl"))
    assert main(["label", "--sae", str(saes[fmt]), "--no-builtin", "--concepts", *files, "--max-len", "32",
                 "--out", str(tmp_path / "lab")]) == 0
    _said(capsys, fmt)
    meta = json.loads((tmp_path / "lab" / "labels.json").read_text())
    assert (meta["layer"], meta["hook"], meta["model"]) == (LAYER, "resid_post", str(tiny_dir))


@pytest.mark.parametrize("fmt", FORMATS)
def test_rank_and_its_browse_hint(saes, tiny_dir, fmt, tmp_path, capsys):
    assert main(["rank", "--sae", str(saes[fmt]), "--finetuned", str(tiny_dir), "--prompts", "em-core",
                 "--bootstrap", "20", "--top", "3", "--max-len", "64", "--out", str(tmp_path / "r")]) == 0
    cap = capsys.readouterr()
    assert f"SAE reads layer {LAYER}, hook resid_post (from {SOURCE[fmt]})" in cap.err
    r = json.loads((tmp_path / "r" / "ranking.json").read_text())
    assert (r["layer"], r["config"]["base"]) == (LAYER, str(tiny_dir))
    hint = next(line for line in cap.out.splitlines() if "persona-sae browse" in line)
    cmd = hint[hint.index("persona-sae browse"):].split(", or --examples")[0]
    argv = [{"N": "1", "TEXT": "Hello there."}.get(a, a) for a in shlex.split(cmd)[1:]]
    assert main(argv) == 0  # the hint is a command browse accepts


@pytest.mark.parametrize("fmt", FORMATS)
def test_monitor(saes, tiny_dir, fmt, tmp_path, capsys):
    assert main(["monitor", "--sae", str(saes[fmt]), "--latents", "1,2", "--checkpoints", str(tiny_dir),
                 "--bootstrap", "20", "--max-len", "64", "--out", str(tmp_path / "m")]) == 0
    _said(capsys, fmt)
    r = json.loads((tmp_path / "m" / "monitor.json").read_text())
    assert (r["layer"], r["base"]) == (LAYER, str(tiny_dir))


@pytest.fixture(scope="module")
def probe_dirs(tiny_model, tiny_dir, tmp_path_factory):
    """Persona directions of the tiny model: the probe judge steer scores with (no judge model needed)."""
    from persona_sae import personas as P

    d = P.compute(tiny_model, layer=LAYER, samples=1, questions=P.QUESTIONS[:2], max_new_tokens=4, progress=False)
    out = tmp_path_factory.mktemp("dirs") / "dirs"
    P.save(d._replace(model=str(tiny_dir)), out)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_steer(saes, probe_dirs, tiny_dir, fmt, tmp_path, capsys):
    assert main(["steer", "--sae", str(saes[fmt]), "--latent", "1", "--coef", "0", "1", "--limit", "1",
                 "--samples", "1", "--max-new-tokens", "4", "--bootstrap", "10",
                 "--judge", f"probe:{probe_dirs}", "--out", str(tmp_path / "s")]) == 0
    _said(capsys, fmt)
    r = json.loads((tmp_path / "s" / "results.json").read_text())
    assert (r["layer"], r["model"]) == (LAYER, str(tiny_dir))


def test_flags_metadata_and_conflicts(saes, tmp_path):
    sae = load_sae(str(saes["sparsify"]))
    assert tuple(sae_where(sae, LAYER, f"blocks.{LAYER}.hook_resid_post"))[:2] == (LAYER, "resid_post")
    assert sae_layer(sae) == (LAYER, "resid_post")  # the scripts' (layer, hook)
    for layer, hook_name, msg in ((3, "", "--layer 3 conflicts with the SAE's blocks.2.hook_resid_post"),
                                  (-1, "blocks.2.hook_mlp_out", "--hook-name blocks.2.hook_mlp_out conflicts"),
                                  (1, "blocks.2.hook_resid_post", "--layer 1 and --hook-name blocks.2.hook_resid_post"),
                                  (-1, "layers.2", "TransformerLens name like blocks.15.hook_resid_post")):
        with pytest.raises(UserError, match=msg):
            sae_where(sae, layer, hook_name)
    # no layer anywhere: only then does the SAE need --layer or --hook-name, which set it
    bare = load_sae(str(dl_sae(tmp_path / "bare", "x", trainer={"dict_class": "AutoEncoder"})))
    with pytest.raises(UserError, match="names no layer .*; pass --layer or --hook-name"):
        sae_where(bare)
    assert tuple(sae_where(bare, 1)) == (1, "resid_post", "--layer 1; hook resid_post")
    assert tuple(sae_where(bare, -1, "blocks.3.hook_mlp_out")) == (3, "mlp_out", "--hook-name blocks.3.hook_mlp_out")
    assert sae_where(bare, required=False) is None
    # sparsify hookpoints of other modules, dictionary_learning release folder names
    mlp = load_sae(str(sparsify_sae(tmp_path / "sp", "x", name="layers.1.mlp")))
    assert tuple(sae_where(mlp)) == (1, "mlp_out", "sparsify folder name layers.1.mlp")
    rel = load_sae(str(dl_sae(tmp_path / "attn_out_layer3" / "trainer_0", "x", trainer={"dict_class": "AutoEncoder"})))
    assert tuple(sae_where(rel))[:2] == (3, "attn_out")
    with pytest.raises(UserError, match="trainer.layer 2 and submodule_name resid_post_layer_4"):
        load_sae(str(dl_sae(tmp_path / "bad", "x", trainer={"layer": 2, "submodule_name": "resid_post_layer_4"})))


def test_missing_layer_is_one_line_and_a_layer_out_of_range_is_named(tiny_dir, tmp_path, capsys):
    bare = dl_sae(tmp_path / "bare", str(tiny_dir), trainer={"dict_class": "AutoEncoder"})
    assert main(["browse", "1", "--sae", str(bare), "--model", str(tiny_dir), "--text", "Hello."]) == 2
    err = capsys.readouterr().err.strip()
    assert "names no layer" in err and "pass --layer or --hook-name" in err and "\n" not in err
    assert main(["browse", "1", "--sae", str(bare), "--model", str(tiny_dir), "--layer", str(LAYER), "--text", "Hi."]) == 0
    wide = make_tiny_llama(tmp_path / "wide", hidden=96)
    assert main(["browse", "1", "--sae", str(bare), "--model", str(wide), "--layer", str(LAYER), "--text", "Hi."]) == 2
    assert "SAE d_in 64 does not match" in capsys.readouterr().err.strip().splitlines()[-1]
    far = sparsify_sae(tmp_path / "sp", str(tiny_dir), name="layers.9")
    assert main(["label", "--sae", str(far), "--out", str(tmp_path / "l")]) == 2
    assert "layer 9 is out of range" in capsys.readouterr().err.strip().splitlines()[-1]


def _saelens_sae(path: Path, model_name: str) -> Path:
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    StandardSAE(StandardSAEConfig(d_in=D, d_sae=N, metadata=SAEMetadata(
        model_name=model_name, hook_name=f"blocks.{LAYER}.hook_resid_post"))).save_model(str(path))
    return path


def test_label_without_model_uses_the_sae_s_qwen(tmp_path, monkeypatch):
    """A Qwen SAE (SAELens-native: model_name is the hub id) is labelled on Qwen, our alias, without --model."""
    import persona_sae.models as M
    from persona_sae.config import LabelConfig
    from persona_sae.stages.label import run as label

    sae = _saelens_sae(tmp_path / "qwen-sae", "Qwen/Qwen2.5-Coder-0.5B-Instruct")
    asked = []

    def load_model(spec, *a, **kw):
        asked.append(spec)
        raise UserError("stop before loading")

    monkeypatch.setattr(M, "load_model", load_model)
    with pytest.raises(UserError, match="stop before loading"):
        label(LabelConfig(sae=str(sae)), log=lambda *a: None)
    assert asked == ["qwen-coder-0.5b"]
    loaded = load_sae(str(sae))
    logs = []
    assert sae_model("smollm2", loaded, log=logs.append) == "smollm2"  # an explicit model wins, with a warning
    assert len(logs) == 1 and "--model smollm2" in logs[0] and "Qwen/Qwen2.5-Coder-0.5B-Instruct" in logs[0]
    assert sae_model("qwen-coder-0.5b", loaded, log=logs.append) == "qwen-coder-0.5b" and len(logs) == 1
    with pytest.raises(UserError, match="trained on 'gpt2-small'.*pass --model"):
        sae_model("", load_sae(str(_saelens_sae(tmp_path / "gpt2", "gpt2-small"))))


def test_a_fine_tune_of_the_sae_s_model_gets_no_warning(tiny_dir, tmp_path):
    from tests.conftest import make_lora_adapter

    sae = load_sae(str(_saelens_sae(tmp_path / "sae", str(tiny_dir))))
    ft = make_lora_adapter(tiny_dir, tmp_path / "ft", r=2)
    logs = []
    assert sae_model(str(ft), sae, log=logs.append) == str(ft) and logs == []


def test_shipped_sae_names_its_hub_id_and_an_alias_still_reads():
    from sae_lens import SAE

    from persona_sae import models as M

    sae = SAE.load_from_disk(str(SHIPPED))
    meta = sae.cfg.metadata
    assert meta.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta.persona_sae == {**M.identity("smollm2")["persona_sae"]}
    assert meta.persona_sae["gguf_sha256"] == M.ALIASES["smollm2"].sha256
    assert sae_model("", sae, log=lambda *a: None) == "smollm2"
    assert tuple(sae_where(sae))[:2] == (15, "resid_post")
    del meta.__dict__["persona_sae"]  # a cfg.json from before: model_name the hub id, or the alias itself
    assert sae_model("", sae, log=lambda *a: None) == "smollm2"
    meta.model_name = "smollm2"
    assert sae_model("", sae, log=lambda *a: None) == "smollm2"
    assert M.identity("qwen-coder-0.5b")["model_name"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
