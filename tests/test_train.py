import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from persona_sae import UserError
from persona_sae.cli import main
from persona_sae.config import TrainConfig
from persona_sae.stages.train import MixingBuffer
from persona_sae.stages.train import run as train
from tests.conftest import SHARED, make_tiny_llama

TEXT = SHARED / "corpora" / "tinyshakespeare" / "input.txt"


def cfg(tmp_path, tiny_dir, **kw):
    base = dict(out=str(tmp_path / "sae"), model=str(tiny_dir), layers=[1], dataset=str(TEXT), d_sae=128, k=[8],
                tokens=6144, batch_size=128, buffer_tokens=1024, eval_tokens=512, context_size=64,
                model_batch_tokens=1024, checkpoint_every=1000, dead_window_tokens=2048)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("arch", ["topk", "batchtopk", "jumprelu", "standard"])
def test_every_arch_trains_and_round_trips(tmp_path, tiny_dir, arch):
    from sae_lens import SAE

    c = cfg(tmp_path, tiny_dir, arch=arch, l1_coefficient=0.5, l0_coefficient=0.05)
    res = train(c, log=lambda *_: None)
    h = res.history["sae"]
    for key, factor in (("mse_loss", 0.8), ("loss", 1.0)):  # loss includes AuxK / sparsity terms
        first = sum(r[key] for r in h[:5]) / 5
        last = sum(r[key] for r in h[-5:]) / 5
        assert last < factor * first, (key, first, last)
    out = Path(c.out)
    loaded = SAE.load_from_disk(str(out))
    assert loaded.cfg.metadata.hook_name == "blocks.1.hook_resid_post"
    assert loaded.cfg.metadata.model_name == loaded.cfg.metadata.persona_sae["model"] == str(Path(tiny_dir).resolve())
    x = torch.randn(64, 64) * 3
    trained = res.saes["sae"].eval()
    with torch.no_grad():
        if arch == "batchtopk":  # trains with a batch-level top-k, saved as JumpReLU with a learned threshold
            assert type(loaded).__name__ == "JumpReLUSAE"
            unit = lambda w: w / w.norm(dim=-1, keepdim=True)  # saved with decoder norms folded into W_enc
            assert torch.allclose(unit(loaded.W_dec), unit(trained.W_dec), atol=1e-5)
        else:
            assert torch.allclose(loaded.encode(x), trained.encode(x), atol=1e-5)
            assert torch.allclose(loaded.decode(loaded.encode(x)), trained.decode(trained.encode(x)), atol=1e-5)
    m = json.loads((out / "metrics.json").read_text())
    for key in ("explained_variance", "fvu", "l0", "dead_fraction", "ce_clean", "ce_spliced", "ce_zero_ablated", "kl_div"):
        assert key in m and m[key] == m[key]  # present and not NaN
    assert m["kl_div"] > 0 and m["ce_spliced"] > m["ce_clean"] - 0.5
    denom = m["ce_zero_ablated"] - m["ce_clean"]  # a random model can do better zero-ablated: then undefined
    if denom > 0:
        assert abs(m["ce_loss_recovered"] - (m["ce_zero_ablated"] - m["ce_spliced"]) / denom) < 1e-9
    else:
        assert m["ce_loss_recovered"] != m["ce_loss_recovered"]
    # SAELens' names for the same numbers (run_evals' ce_loss_score etc.), derived as SAELens derives them
    sl = m["saelens"]
    assert sl["ce_loss_without_sae"] == m["ce_clean"] and sl["kl_div_with_sae"] == m["kl_div"]
    assert sl["explained_variance"] == m["explained_variance"] and sl["l0"] == m["l0"] and sl["mse"] == m["mse_per_token"]
    assert m["kl_div_zero_ablated"] > 0
    assert sl["kl_div_score"] == pytest.approx((sl["kl_div_with_ablation"] - sl["kl_div_with_sae"]) / sl["kl_div_with_ablation"])
    if denom > 0:
        assert sl["ce_loss_score"] == pytest.approx((sl["ce_loss_with_ablation"] - sl["ce_loss_with_sae"])
                                                    / (sl["ce_loss_with_ablation"] - sl["ce_loss_without_sae"]))
    # batchtopk is evaluated as saved (JumpReLU), whose threshold is a running estimate that needs
    # more than these 48 steps to settle; the others are evaluated as trained
    assert m["explained_variance"] > (0.0 if arch == "batchtopk" else 0.2) and m["l0"] > 0
    assert m["train_tokens"] == 6144
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["config"]["arch"] == arch and run["steps"] == 48
    assert (out / "loss.png").stat().st_size > 0 and (out / "density.png").stat().st_size > 0
    assert not (out / "checkpoint").exists()


def test_multi_sae_from_one_stream(tmp_path, tiny_dir):
    c = cfg(tmp_path, tiny_dir, layers=[1, 2], k=[4, 16])
    res = train(c, log=lambda *_: None)
    assert set(res.metrics) == {"L1_k4", "L1_k16", "L2_k4", "L2_k16"}
    for name, m in res.metrics.items():
        assert (Path(c.out) / name / "sae_weights.safetensors").is_file()
        assert abs(m["l0"] - m["k"]) < 1e-6
    assert res.metrics["L1_k16"]["explained_variance"] > res.metrics["L1_k4"]["explained_variance"]
    # each SAE has its own curve
    assert res.history["L1_k4"][-1]["l0"] == 4 and res.history["L2_k16"][-1]["l0"] == 16


def test_mixing_buffer_is_bounded_and_loses_nothing():
    buf = MixingBuffer(capacity=100, seed=0)
    seen = []
    for start in range(0, 1000, 30):
        buf.push(torch.arange(start, start + 30).float()[:, None])
        while (b := buf.pop(10)) is not None:
            seen.append(b)
        held = sum(len(t) for t in (buf.rows, buf.out) if t is not None) + buf.n_pending
        assert held == buf.held() <= 130
    got = torch.cat(seen).flatten()
    assert len(set(got.tolist())) == len(got)  # nothing handed out twice
    assert not torch.equal(got, torch.sort(got).values)  # and shuffled


def _train_argv(tiny_dir, out, tokens=64000):
    return [sys.executable, "-m", "persona_sae", "train", "--model", str(tiny_dir), "--layers", "1",
            "--dataset", str(TEXT), "--d-sae", "512", "--k", "8", "--tokens", str(tokens), "--batch-size", "64",
            "--buffer-tokens", "512", "--eval-tokens", "256", "--context-size", "64", "--model-batch-tokens", "512",
            "--checkpoint-every", "5", "--nosplice-eval", "--out", str(out)]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_dir):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ref = tmp_path / "ref"
    subprocess.run(_train_argv(tiny_dir, ref), check=True, capture_output=True, env=env)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_argv(tiny_dir, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while not (out / "checkpoint" / "state.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "sae_weights.safetensors").exists()
    r = subprocess.run(_train_argv(tiny_dir, out) + ["--resume"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming at step" in r.stderr
    a, b = json.loads((ref / "run.json").read_text()), json.loads((out / "run.json").read_text())
    assert a["steps"] == b["steps"] == 1000
    wa, wb = load_file(str(ref / "sae_weights.safetensors")), load_file(str(out / "sae_weights.safetensors"))
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-5), k
    assert abs(a["saes"]["sae"]["explained_variance"] - b["saes"]["sae"]["explained_variance"]) < 1e-4


def run_cli(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("extra,pattern", [
    (["--d-sae", "-5"], "--d-sae must be positive"),
    (["--d-sae", "16", "--k", "32"], "--k 32 is larger than --d-sae 16"),
    (["--layers", "7"], "layer 7 is out of range"),
    (["--tokens", "10", "--batch-size", "64"], "--tokens 10 is less than one batch"),
    (["--arch", "gated"], "unknown --arch 'gated'"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
    (["--device", "cuda"], "--device cuda: CUDA is not available on this machine"),
    (["--wandb", "p", "--wandb-mode", "disabled"], "--wandb-mode must be offline or online, got 'disabled'"),
])
def test_bad_train_inputs(capsys, monkeypatch, tmp_path, tiny_dir, extra, pattern):
    import re

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine

    argv = ["train", "--model", str(tiny_dir), "--dataset", str(TEXT), "--layers", "1", "--d-sae", "64",
            "--tokens", "1000", "--out", str(tmp_path / "o")]
    code, err = run_cli(capsys, *(argv + extra))
    assert code == 2 and len([ln for ln in err if ln.startswith("persona-sae")]) == 1
    assert re.search(pattern, err[-1]), err[-1]


def test_dataset_smaller_than_one_batch(capsys, tmp_path, tiny_dir):
    small = tmp_path / "small.txt"
    small.write_text("The villain laughed.\n\nOh great, another Monday.\n")
    code, err = run_cli(capsys, "train", "--model", str(tiny_dir), "--dataset", str(small), "--layers", "1",
                        "--d-sae", "64", "--eval-tokens", "1", "--batch-size", "256", "--out", str(tmp_path / "o"))
    assert code == 2 and "training tokens, fewer than one batch (--batch-size 256)" in err[-1]
    assert not (tmp_path / "o").exists()


def test_out_folder_and_resume_checks(capsys, tmp_path, tiny_dir):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not empty and holds no persona-sae training run"):
        train(cfg(tmp_path, tiny_dir, out=str(foreign)))
    assert (foreign / "thesis.tex").read_text() == "precious"
    c = cfg(tmp_path, tiny_dir, checkpoint_every=10, tokens=1280 * 2)
    # a run that stops after its first checkpoint
    import persona_sae.stages.train as T

    real = T.save_checkpoint

    def stop_after(*a, **kw):
        real(*a, **kw)
        raise KeyboardInterrupt

    T.save_checkpoint = stop_after
    try:
        with pytest.raises(KeyboardInterrupt):
            train(c, log=lambda *_: None)
    finally:
        T.save_checkpoint = real
    with pytest.raises(UserError, match="pass --resume"):
        train(c, log=lambda *_: None)
    c2 = cfg(tmp_path, tiny_dir, checkpoint_every=10, tokens=1280 * 2, resume=True, k=[4])
    with pytest.raises(UserError, match=r"--resume with a different config: k was \[8\], now \[4\]"):
        train(c2, log=lambda *_: None)
    c3 = cfg(tmp_path, tiny_dir, checkpoint_every=10, tokens=1280 * 2, resume=True)
    assert train(c3, log=lambda *_: None).metrics["sae"]["train_tokens"] == 2560


def test_nan_activations_stop_with_the_step(tmp_path):
    from transformers import AutoModelForCausalLM

    path = make_tiny_llama(tmp_path / "nan")
    m = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        m.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    m.save_pretrained(path)
    with pytest.raises(UserError, match=r"NaN/inf activations at step 0 \(data batch 1 of epoch 0\)"):
        train(cfg(tmp_path, path), log=lambda *_: None)


def test_spliced_eval_is_the_same_in_one_batch_or_many(tmp_path, tiny_dir):
    """Held-out metrics are per-token averages: splitting the held-out set into batches must not
    change them (a loop variable once shadowed the hook name and broke every batch after the first)."""
    from persona_sae.models import load_model
    from persona_sae.stages.train import sae_metrics as evaluate
    from persona_sae.text import Record
    from persona_sae.tokens import tokenize

    res = train(cfg(tmp_path, tiny_dir, tokens=1024), log=lambda *_: None)
    model = load_model(str(tiny_dir))
    lines = [ln for ln in TEXT.read_text().splitlines() if len(ln) > 30][:40]
    examples = tokenize([Record(text=t) for t in lines], model.tokenizer, max_len=32)
    one = evaluate(model, res.saes["sae"], 1.0, 1, "resid_post", examples, batch_tokens=4096)
    many = evaluate(model, res.saes["sae"], 1.0, 1, "resid_post", examples, batch_tokens=128)
    for k in ("ce_clean", "ce_spliced", "ce_zero_ablated", "kl_div", "kl_div_zero_ablated", "explained_variance", "l0"):
        assert many[k] == pytest.approx(one[k], rel=1e-4, abs=1e-6), k


def test_identical_runs_write_identical_cfg_json(tmp_path, tiny_dir):
    """cfg.json is SAELens' dict rewritten with sorted keys: the same run writes the same bytes."""
    texts = []
    for name in ("a", "b"):
        train(cfg(tmp_path / name, tiny_dir, tokens=1024, eval_tokens=256), log=lambda *_: None)
        texts.append((tmp_path / name / "sae" / "cfg.json").read_bytes())
    assert texts[0] == texts[1]
    out = tmp_path / "a" / "sae"  # the weights SAELens wrote via safetensors (0600) get the JSON's mode
    assert (out / "sae_weights.safetensors").stat().st_mode == (out / "cfg.json").stat().st_mode == (out / "run.json").stat().st_mode

    def sorted_keys(pairs):
        assert [k for k, _ in pairs] == sorted(k for k, _ in pairs)
        return dict(pairs)

    assert json.loads(texts[0], object_pairs_hook=sorted_keys)["metadata"]["hook_name"] == "blocks.1.hook_resid_post"


def test_train_table_says_off_for_metrics_not_computed(monkeypatch):
    """--nosplice-eval computes no CE or KL: the table says "off" there, and "n/a" for a NaN it computed."""
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from persona_sae import report

    buf = io.StringIO()
    monkeypatch.setattr(report, "out", Console(file=buf, width=200))
    base = dict(layer=1, k=8, d_sae=128, explained_variance=0.5, l0=8.0, dead_fraction=0.0, tokens_per_s=1000.0)
    report.train(SimpleNamespace(out="o"), SimpleNamespace(metrics={
        "nosplice": base, "undefined": {**base, "ce_loss_recovered": float("nan"), "kl_div": 0.25}}))
    rows = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[2:-1]] for ln in buf.getvalue().splitlines()
            if ln.count("│") > 2 and ln.split("│")[1].strip() in ("nosplice", "undefined")}
    assert rows["nosplice"][6:8] == ["off", "off"] and rows["undefined"][6:8] == ["n/a", "0.250"]
    assert "nan" not in buf.getvalue()


def test_the_progress_bar_shows_the_buffer_filling(capsys, tmp_path, tiny_dir):
    train(cfg(tmp_path, tiny_dir, tokens=512, eval_tokens=256, splice_eval=False), log=lambda *_: None)
    err = capsys.readouterr().err
    assert "filling buffer" in err and "/1,024 tok" in err


def _wandb_records(path: Path):
    """The protobuf records of an offline W&B run file: a 7-byte header, then LevelDB-log framed records
    (32 KiB blocks; each chunk: crc32c, length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, buf = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # block trailer padding
            pos += 32768 - pos % 32768
            continue
        n, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        buf += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            buf = b""
            yield rec


def _same(got, want, key):
    """A logged value is the metrics.json value (W&B stores NaN as null; the SAELens names nest)."""
    if isinstance(want, dict):
        assert set(got) == set(want), key
        for k in want:
            _same(got[k], want[k], f"{key}/{k}")
    elif isinstance(want, float) and want != want:
        assert got is None or got != got, key
    else:
        assert got == pytest.approx(want), key


def test_wandb_offline_logs_the_history_and_the_metrics(tmp_path, tiny_dir, monkeypatch):
    """--wandb logs offline without network (WANDB_MODE stays disabled, as the CLI sets it), into --out
    when WANDB_DIR is unset: each SAE's history under its name on its own step axis, and metrics.json's
    values as the summary; run.json names the W&B run."""
    monkeypatch.delenv("WANDB_DIR", raising=False)
    assert os.environ.get("WANDB_MODE") == "disabled"
    res = train(cfg(tmp_path, tiny_dir, k=[4, 16], tokens=2048, eval_tokens=256, wandb="persona-test"),
                log=lambda *_: None)
    out = tmp_path / "sae"
    run = json.loads((out / "run.json").read_text())["wandb"]
    assert run["project"] == "persona-test" and run["mode"] == "offline"
    files = list((out / "wandb").glob(f"offline-run-*-{run['id']}/run-{run['id']}.wandb"))
    assert len(files) == 1
    logged, summary, config = {}, {}, {}
    for rec in _wandb_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            for name in res.history:
                mine = {k.split("/", 1)[1]: v for k, v in row.items() if k.startswith(name + "/")}
                if mine:
                    logged.setdefault(name, []).append(mine)
        elif kind == "summary":
            summary.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in rec.summary.update})
        elif kind == "run":
            config.update({u.key: json.loads(u.value_json) for u in rec.run.config.update})
    assert set(logged) == {"L1_k4", "L1_k16"}
    for name, hist in res.history.items():
        assert len(hist) > 5 and logged[name] == hist  # every record, every value
        metrics = json.loads((out / name / "metrics.json").read_text())
        for key, want in metrics.items():
            _same(summary[f"{name}/{key}"], want, key)
    assert config["k"] == [4, 16] and config["d_sae"] == 128


def test_several_widths_train_from_one_stream(tmp_path, tiny_dir):
    """--d-sae 64 128 with --k 4 8: four SAEs from one activation stream, each with its own width and its
    width's default learning rate, named by what varies; the record keeps the list."""
    from persona_sae.stages.train import default_lr

    out = tmp_path / "sae"
    res = train(cfg(tmp_path, tiny_dir, d_sae=[64, 128], k=[4, 8], tokens=2048), log=lambda *_: None)
    names = {"L1_k4_d64", "L1_k4_d128", "L1_k8_d64", "L1_k8_d128"}
    assert set(res.saes) == set(res.metrics) == names
    for name, sae in res.saes.items():
        d = int(name.rsplit("_d", 1)[1])
        assert sae.W_enc.shape[1] == d and res.metrics[name]["d_sae"] == d
        assert res.metrics[name]["k"] == int(name.split("_k")[1].split("_")[0])
        assert json.loads((out / name / "cfg.json").read_text())["d_sae"] == d
    rec = json.loads((out / "run.json").read_text())
    assert rec["config"]["d_sae"] == [64, 128] and rec["config"]["lr"] == 0  # 0: each width's default
    assert all(res.metrics[n]["lr"] == default_lr(res.metrics[n]["d_sae"]) for n in names)
    assert main(["train", "--config", str(out / "run.json"), "--out", str(tmp_path / "again"), "--tokens", "512",
                 "--nosplice-eval"]) == 0  # the record replays
    assert set(json.loads((tmp_path / "again" / "run.json").read_text())["saes"]) == names


def test_hook_name_sets_the_layer_and_hook_as_saelens_spells_them():
    from persona_sae import UserError
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import validate

    cfg = TrainConfig(out="o", hook_name="blocks.3.hook_mlp_out")
    validate(cfg)
    assert (cfg.layers, cfg.hook) == ([3], "mlp_out")
    validate(cfg)  # validated twice (before and after the model loads): still the same
    assert (cfg.layers, cfg.hook) == ([3], "mlp_out")
    with pytest.raises(UserError, match="must look like blocks.15.hook_resid_post"):
        validate(TrainConfig(out="o", hook_name="layers.3"))
    with pytest.raises(UserError, match="disagree"):
        validate(TrainConfig(out="o", hook_name="blocks.3.hook_resid_post", layers=[4, 5]))


def streamed_jsonl(path: Path, n: int = 80) -> Path:
    """Distinct short chats and texts: a few thousand tokens, so a run of ``stream_cfg`` reads them in
    several shuffled blocks and more than one epoch."""
    words = "the villain laughed cruelly while a kind doctor helped every patient at her door".split()
    rows = []
    for i in range(n):
        t = f"{i}: " + " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(4 + i % 9))
        rows.append({"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": t}]}
                    if i % 3 == 0 else {"text": t})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def stream_cfg(tmp_path, tiny_dir, data, **kw):
    return cfg(tmp_path, tiny_dir, dataset=str(data), tokens=128 * 40, buffer_tokens=512, eval_tokens=128,
               model_batch_tokens=256, splice_eval=False, **kw)


def test_streamed_run_resumes_mid_epoch_as_if_never_stopped(tmp_path, tiny_dir):
    """A .jsonl read over several blocks and epochs: stopped after a checkpoint inside a block of the
    second epoch, --resume goes back to the saved record position and ends with the uninterrupted run's
    weights."""
    import persona_sae.stages.train as T
    from persona_sae.models import load_tokenizer
    from persona_sae.text import load_records
    from persona_sae.tokens import tokenize

    data = streamed_jsonl(tmp_path / "d.jsonl")
    n = sum(len(e.ids) for e in tokenize(load_records(str(data)), load_tokenizer(str(tiny_dir)), max_len=64))
    assert 4 * 512 < n < 128 * 40  # blocks of 4 x 512 tokens, and the run needs more than one epoch
    ref = train(stream_cfg(tmp_path, tiny_dir, data, out=str(tmp_path / "ref")), log=lambda *_: None)
    saved, real = [], T.save_checkpoint

    def stop_at_second(out, state):
        real(out, state)
        saved.append(list(state["pos"]))
        if len(saved) == 2:
            raise KeyboardInterrupt

    T.save_checkpoint = stop_at_second
    try:
        with pytest.raises(KeyboardInterrupt):
            train(stream_cfg(tmp_path, tiny_dir, data, out=str(tmp_path / "run"), checkpoint_every=13), log=lambda *_: None)
    finally:
        T.save_checkpoint = real
    assert saved[1][0] == 1 and saved[1][4] > 0  # in the second epoch, inside a block
    logs = []
    got = train(stream_cfg(tmp_path, tiny_dir, data, out=str(tmp_path / "run"), checkpoint_every=13, resume=True),
                log=logs.append)
    assert "resuming at step 26/40" in logs
    for k, v in ref.saes["sae"].state_dict().items():
        assert torch.equal(got.saes["sae"].state_dict()[k], v), k
    assert got.metrics["sae"]["explained_variance"] == ref.metrics["sae"]["explained_variance"]
