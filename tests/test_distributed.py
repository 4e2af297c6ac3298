"""Scale-out on CPU: 2 processes over gloo, launched by torchrun. Data-parallel training equals
single-process training on the same batches, --distribute-saes and sharded mining and ranking equal
one process exactly, bad launches stop with one line and exit 2, and a rank killed mid-run fails the
launcher loudly while --resume (on another world size) continues.

One torchrun launch (this module run with -m) does the 2-rank side of most tests; the single-process
references run here with one thread, as the ranks do, so that float results are comparable."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]


def train_kw(tiny_dir, out, **kw) -> dict:
    from tests.test_train import TEXT

    base = dict(out=str(out), model=str(tiny_dir), layers=[1], dataset=str(TEXT), d_sae=128, k=[8], tokens=128 * 12,
                batch_size=128, buffer_tokens=1024, eval_tokens=256, context_size=64, model_batch_tokens=512,
                checkpoint_every=1000, dead_window_tokens=512, autocast=False, splice_eval=False)
    return {**base, **kw}


def stream_kw(tiny_dir, out, folder: Path, **kw) -> dict:
    """A .jsonl run over several shuffled blocks and two epochs (see tests.test_train.streamed_jsonl)."""
    from tests.test_train import streamed_jsonl

    data = folder / "stream.jsonl"
    if not data.exists():
        streamed_jsonl(data)
    return train_kw(tiny_dir, out, layers=[1, 2], dataset=str(data), tokens=128 * 40, buffer_tokens=512,
                    eval_tokens=128, model_batch_tokens=256, **kw)


def small_text(path: Path) -> Path:
    path.write_text("\n\n".join(["The villain laughed cruelly.", "Oh great, another Monday.", "What is your wish?",
                                 "The quick brown fox jumps.", "Please answer carefully."]) + "\n")
    return path


@pytest.fixture(scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def job(tiny_dir, tmp_path_factory):
    """Run the 2-rank side of the tests in one torchrun launch (see _worker); return its folder."""
    from tests.conftest import make_tiny_llama
    from tests.test_rank import make_sae

    d = tmp_path_factory.mktemp("dist")
    make_sae(d / "sae", seed=3)
    make_tiny_llama(d / "ft", seed=1)
    small = small_text(d / "small.txt")
    common = ["--model", str(tiny_dir)]
    spec = {
        "dir": str(d), "model": str(tiny_dir),
        "ddp": {arch: train_kw(tiny_dir, d / f"ddp-{arch}", arch=arch, l0_coefficient=0.05)
                for arch in ("topk", "jumprelu", "batchtopk")},
        "own": train_kw(tiny_dir, d / "own", layers=[1, 2], distribute_saes=True),
        "own_stopped": train_kw(tiny_dir, d / "own-stopped", layers=[1, 2], distribute_saes=True, checkpoint_every=5),
        "stream": stream_kw(tiny_dir, d / "stream", d, distribute_saes=True),
        "bad": {
            "one_sae": ["train", *common, "--layers", "1", "--distribute-saes", "--out", str(d / "b1")],
            "batch": ["train", *common, "--layers", "1", "--batch-size", "1", "--out", str(d / "b2")],
            "train_shards": ["train", *common, "--layers", "1", "--dataset", str(small), "--batch-size", "8",
                             "--eval-tokens", "1", "--d-sae", "64", "--model-batch-tokens", "4096", "--out", str(d / "b3")],
            "mine_shards": ["examples", *common, "--sae", str(d / "sae"), "--dataset", str(small),
                            "--batch-tokens", "4096", "--out", str(d / "b4")],
            "rank_shards": ["rank", "--base", str(tiny_dir), "--finetuned", str(d / "ft"), "--sae", str(d / "sae"),
                            "--prompts", str(small), "--batch-tokens", "4096", "--out", str(d / "b5")],
        },
    }
    (d / "job.json").write_text(json.dumps(spec))
    r = subprocess.run(torchrun("-m", "tests.test_distributed", str(d / "job.json")), cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    return d


def _worker(job_path: str) -> None:
    """One rank of the job: DDP training, --distribute-saes, mining, model_stats and rank, bad inputs."""
    import persona_sae.stages.examples as X
    import persona_sae.stages.train as T
    from persona_sae import distributed as D
    from persona_sae.cli import main
    from persona_sae.config import RankConfig, TrainConfig
    from persona_sae.latents import load_sae
    from persona_sae.models import load_model
    from persona_sae.stages.examples import mine
    from persona_sae.stages.rank import run as rank
    from persona_sae.stages.train import run as train
    from persona_sae.statistics import model_stats, prepare
    from persona_sae.text import load_records
    from persona_sae.tokens import tokenize
    from tests.test_rank import LAYER

    spec = json.loads(Path(job_path).read_text())
    d = Path(spec["dir"])
    assert D.init() and D.world() == 2
    quiet = lambda *a: None  # noqa: E731
    for arch, kw in spec["ddp"].items():
        res = train(TrainConfig(**kw), log=quiet)
        save_file({k: v.detach().contiguous() for k, v in res.saes["sae"].state_dict().items()},
                  str(d / f"ddp-{arch}-rank{D.rank()}.safetensors"))
        (d / f"ddp-{arch}-history-rank{D.rank()}.json").write_text(json.dumps(res.history))
    train(TrainConfig(**spec["own"]), log=quiet)
    train(TrainConfig(**spec["stream"]), log=quiet)
    real_save = T._save_state

    def save_then_stop(*a, **k):  # every rank stops right after the first checkpoint, as if killed
        real_save(*a, **k)
        raise KeyboardInterrupt

    T._save_state = save_then_stop
    try:
        train(TrainConfig(**spec["own_stopped"]), log=quiet)
    except KeyboardInterrupt:
        pass
    T._save_state = real_save
    model, sae = load_model(spec["model"], log=quiet), load_sae(str(d / "sae"))
    ex = tokenize(load_records("em-core"), model.tokenizer, max_len=64)
    mine(model, sae, ex, LAYER, "resid_post", d / "mined", k=5, reservoir=8, batch_tokens=256, checkpoint_every=3, log=quiet)
    real_update, calls = X.batch_state, [0]

    def update_then_stop(*a, **k):  # the third batch of each rank comes after the checkpoint at batch 4
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return real_update(*a, **k)

    X.batch_state = update_then_stop
    try:
        mine(model, sae, ex, LAYER, "resid_post", d / "mined-stopped", k=5, reservoir=8, batch_tokens=256,
             checkpoint_every=3, log=quiet)
    except KeyboardInterrupt:
        pass
    X.batch_state = real_update
    rc = RankConfig(out=str(d / "rank"), sae=str(d / "sae"), base=spec["model"], finetuned=[str(d / "ft")], bootstrap=50, top=5)
    examples, names, groups, kw = prepare(rc, load_records("em-core"), model, LAYER, "resid_post")
    st = model_stats(model, sae, examples, groups, len(names), **kw, progress=False)
    if D.is_main():
        save_file({"mean": st.mean, "freq": st.freq, "top_value": st.top_value, "top_token": st.top_token,
                   "n": torch.tensor(st.n_tokens)}, str(d / "stats.safetensors"))
    rank(rc, log=quiet)
    bad = {}
    for name, argv in spec["bad"].items():
        err = io.StringIO()
        with redirect_stderr(err):
            code = main(argv)
        bad[name] = [code, err.getvalue().strip().splitlines()]
    (d / f"bad-rank{D.rank()}.json").write_text(json.dumps(bad))


@pytest.mark.parametrize("arch", ["topk", "jumprelu"])
def test_ddp_training_equals_single_process(job, tiny_dir, tmp_path, one_thread, arch):
    """2 ranks, each stepping on half of every batch with gradients summed, end where one process
    ends with the whole batches: topk with AuxK active (dead latents appear after 4 steps), and
    jumprelu (a threshold parameter, a sparsity loss)."""
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import default_lr, run as train

    ref = train(TrainConfig(**train_kw(tiny_dir, tmp_path / "ref", arch=arch, l0_coefficient=0.05)), log=lambda *a: None)
    if arch == "topk":
        assert any(h.get("aux", 0) > 0 for h in ref.history["sae"])  # the AuxK path was exercised
    want = {k: v.detach() for k, v in ref.saes["sae"].state_dict().items()}
    got0, got1 = (load_file(str(job / f"ddp-{arch}-rank{r}.safetensors")) for r in (0, 1))
    # Summing the halves' gradients rounds differently from one whole-batch gradient, and both archs
    # have steps in them (TopK's selection, JumpReLU's threshold window), so a rounding-sized difference
    # can move a token across one and the tensors apart by ~2e-4 of their norm (seen on an AVX2 CPU).
    # A real data-parallel fault changes every step's gradient: training on half of each batch instead
    # moves these tensors 0.09-0.9 of their norm away. The bound, 1e-3, sits between the two.
    lr = default_lr(128)

    def close(a, b, k):
        d = (a - b).float()
        assert d.norm() <= 1e-3 * max(float(b.float().norm()), 1e-6), (k, float(d.norm()), float(b.float().norm()))
        assert d.abs().max() < lr, (k, float(d.abs().max()))

    for k in want:
        assert torch.equal(got0[k], got1[k]), k  # the same SAE on every rank
        close(got0[k], want[k], k)
    written = load_file(str(job / f"ddp-{arch}" / "sae_weights.safetensors"))
    ref_written = load_file(str(tmp_path / "ref" / "sae_weights.safetensors"))
    for k in ref_written:
        close(written[k], ref_written[k], k)
    run = json.loads((job / f"ddp-{arch}" / "run.json").read_text())
    assert run["status"] == "done" and run["world_size"] == 2 and run["steps"] == 12
    h_ref, h = ref.history["sae"], json.loads((job / f"ddp-{arch}-history-rank1.json").read_text())["sae"]
    assert [r["step"] for r in h] == [r["step"] for r in h_ref]
    for a, b in zip(h, h_ref):  # logged losses are the global batch's, not one rank's (half would differ ~2x in count)
        assert abs(a["mse_loss"] - b["mse_loss"]) < 1e-3 * max(1.0, b["mse_loss"])
        assert abs(a["l0"] - b["l0"]) <= 2 / 128 + 1e-4 * b["l0"]  # a token-latent or two across the step (above)


def test_ddp_batchtopk_keeps_ranks_identical(job):
    """batchtopk is approximate under data parallelism (top k x rows per slice), but every rank must
    still hold the same SAE, threshold included."""
    got0, got1 = (load_file(str(job / f"ddp-batchtopk-rank{r}.safetensors")) for r in (0, 1))
    assert set(got0) >= {"topk_threshold", "W_enc"} and float(got0["topk_threshold"]) > 0
    for k in got0:
        assert torch.equal(got0[k], got1[k]), k
    assert json.loads((job / "ddp-batchtopk" / "run.json").read_text())["status"] == "done"


def test_distribute_saes_equals_single_process(job, tiny_dir, tmp_path, one_thread):
    """Each rank trains one of the two SAEs on whole batches: what one process trains, exactly."""
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    train(TrainConfig(**train_kw(tiny_dir, tmp_path / "ref", layers=[1, 2])), log=lambda *a: None)
    for name in ("L1_k8", "L2_k8"):
        want, got = (load_file(str(p / name / "sae_weights.safetensors")) for p in (tmp_path / "ref", job / "own"))
        for k in want:
            assert torch.equal(want[k], got[k]), (name, k)
        a, b = (json.loads((p / name / "metrics.json").read_text()) for p in (tmp_path / "ref", job / "own"))
        assert a["explained_variance"] == b["explained_variance"] and a["dead_fraction"] == b["dead_fraction"]
    assert json.loads((job / "own" / "run.json").read_text())["status"] == "done"
    # stopped by both ranks after the checkpoint at step 5, resumed by one process: still the same SAEs
    stopped = job / "own-stopped"
    assert (stopped / "checkpoint").is_dir() and not (stopped / "L1_k8").exists()
    kw = train_kw(tiny_dir, stopped, layers=[1, 2], checkpoint_every=5, resume=True)
    logs: list[str] = []
    train(TrainConfig(**kw), log=logs.append)
    assert "resuming at step 5/12" in logs
    for name in ("L1_k8", "L2_k8"):
        want, got = (load_file(str(p / name / "sae_weights.safetensors")) for p in (tmp_path / "ref", stopped))
        for k in want:
            assert torch.equal(want[k], got[k]), (name, k)


def test_sharded_mining_equals_single_process(job, tiny_model, one_thread, tmp_path):
    """Every output of mining (top-k with windows, reservoirs, histograms, counts) equals one process's:
    top-k and reservoirs are kept under a total order and reservoir keys are seeded per global batch."""
    import persona_sae.mined as X
    from persona_sae.latents import load_sae
    from persona_sae.stages.examples import mine
    from persona_sae.text import load_records
    from persona_sae.tokens import tokenize
    from tests.test_rank import LAYER

    ex = tokenize(load_records("em-core"), tiny_model.tokenizer, max_len=64)
    ref = mine(tiny_model, load_sae(str(job / "sae")), ex, LAYER, "resid_post", tmp_path / "m", k=5, reservoir=8,
                 batch_tokens=256, log=lambda *a: None)
    got = X.load(job / "mined").state
    for f in X.Mined._fields:
        assert torch.equal(torch.as_tensor(getattr(ref, f)), torch.as_tensor(getattr(got, f))), f
    # 2 ranks stopped after the merged checkpoint at batch 4; one process resumes it to the same state
    logs: list[str] = []
    resumed = mine(tiny_model, load_sae(str(job / "sae")), ex, LAYER, "resid_post", job / "mined-stopped", k=5,
                     reservoir=8, batch_tokens=256, checkpoint_every=3, resume=True, log=logs.append)
    assert logs == ["resuming at batch 4"]
    for f in X.Mined._fields:
        assert torch.equal(torch.as_tensor(getattr(ref, f)), torch.as_tensor(getattr(resumed, f))), f
    assert torch.isfinite(ref.res_values).any() and (ref.fires > 0).sum() > 10


def test_sharded_ranking_equals_single_process(job, tiny_model, tiny_dir, one_thread, tmp_path):
    from persona_sae.config import RankConfig
    from persona_sae.latents import load_sae
    from persona_sae.stages.rank import run as rank
    from persona_sae.statistics import model_stats, prepare
    from persona_sae.text import load_records
    from tests.test_rank import LAYER

    rc = RankConfig(out=str(tmp_path / "rank"), sae=str(job / "sae"), base=str(tiny_dir), finetuned=[str(job / "ft")],
                    bootstrap=50, top=5)
    examples, names, groups, kw = prepare(rc, load_records("em-core"), tiny_model, LAYER, "resid_post")
    st = model_stats(tiny_model, load_sae(str(job / "sae")), examples, groups, len(names), **kw, progress=False)
    got = load_file(str(job / "stats.safetensors"))
    assert int(got["n"]) == st.n_tokens
    for f in ("mean", "freq", "top_value", "top_token"):
        assert torch.equal(got[f], getattr(st, f)), f
    want = rank(rc, log=lambda *a: None).summary
    have = json.loads((job / "rank" / "ranking.json").read_text())
    for key in ("latents", "top_increases", "top_decreases", "tokens", "n_prompt_groups"):
        assert have[key] == json.loads(json.dumps(want[key])), key


def test_streamed_jsonl_on_two_ranks_equals_one_process(job, tiny_dir, tmp_path, one_thread):
    """The streamed data path over blocks and epochs: both ranks read the same batches in the same order,
    so --distribute-saes trains exactly what one process trains."""
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    train(TrainConfig(**stream_kw(tiny_dir, tmp_path / "ref", job)), log=lambda *a: None)
    for name in ("L1_k8", "L2_k8"):
        want, got = (load_file(str(p / name / "sae_weights.safetensors")) for p in (tmp_path / "ref", job / "stream"))
        for k in want:
            assert torch.equal(want[k], got[k]), (name, k)
    assert json.loads((job / "stream" / "run.json").read_text())["world_size"] == 2


@pytest.mark.parametrize("name,pattern", [
    ("one_sae", r"--distribute-saes with 1 SAE\(s\) for 2 ranks"),
    ("batch", "--batch-size 1 is smaller than the 2 ranks"),
    ("train_shards", "1 model batches of training data .* for 2 ranks"),
    ("mine_shards", "1 batches to mine .* for 2 ranks"),
    ("rank_shards", "1 batches of prompts .* for 2 ranks"),
])
def test_bad_launches_stop_every_rank_with_one_line(job, name, pattern):
    import re

    for r in (0, 1):
        code, err = json.loads((job / f"bad-rank{r}.json").read_text())[name]
        lines = [ln for ln in err if ln.startswith("persona-sae")]
        assert code == 2 and len(lines) == 1 and re.search(pattern, lines[0]), (r, err)


def _children(pid: int) -> list[int]:
    kids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _rank_of(pid: int) -> int | None:
    try:
        env = (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    return next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)


def test_killed_rank_fails_the_launcher_and_resume_continues(tiny_dir, tmp_path, one_thread):
    """SIGKILL rank 1 of a 2-rank run after its first checkpoint: torchrun fails loudly; --resume as a
    single process (another world size) ends with the weights of an uninterrupted run."""
    from persona_sae.config import TrainConfig
    from persona_sae.stages.train import run as train

    kw = train_kw(tiny_dir, tmp_path / "run", tokens=64 * 120, batch_size=64, buffer_tokens=512, checkpoint_every=3)
    argv = ["-m", "persona_sae", "train", "--model", str(tiny_dir), "--layers", "1", "--dataset", kw["dataset"],
            "--d-sae", "128", "--k", "8", "--tokens", str(kw["tokens"]), "--batch-size", "64", "--buffer-tokens", "512",
            "--eval-tokens", "256", "--context-size", "64", "--model-batch-tokens", "512", "--checkpoint-every", "3",
            "--dead-window-tokens", "512", "--noautocast", "--nosplice-eval", "--out", kw["out"]]
    out = Path(kw["out"])
    proc = subprocess.Popen(torchrun(*argv), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, victim = time.time() + 120, None
    while time.time() < deadline and proc.poll() is None and victim is None:
        if (out / "checkpoint" / "state.json").exists():
            victim = next((c for c in _children(proc.pid) if _rank_of(c) == 1), None)
        time.sleep(0.002)
    assert victim is not None, "the run ended before a rank could be killed"
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "SIGKILL" in err and "persona_sae" in err, err[-3000:]  # torchrun names the dead rank and the signal
    assert not (out / "sae_weights.safetensors").exists()
    ref = train(TrainConfig(**train_kw(tiny_dir, tmp_path / "ref", **{k: v for k, v in kw.items() if k != "out"})),
                log=lambda *a: None)
    r = subprocess.run([sys.executable, *argv, "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming at step" in r.stderr
    got = load_file(str(out / "sae_weights.safetensors"))
    want = load_file(str(tmp_path / "ref" / "sae_weights.safetensors"))
    for k in want:
        assert (got[k] - want[k]).abs().max() < 1e-5, k
    assert json.loads((out / "run.json").read_text())["steps"] == ref.metrics["sae"]["train_tokens"] // 64


if __name__ == "__main__":
    _worker(sys.argv[1])


def test_device_choice_without_torchrun(monkeypatch):
    """auto follows CUDA; an explicit GPU that is not there, or an unknown name, is a user error."""
    from persona_sae import UserError
    from persona_sae import distributed as D

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.device("auto") == "cpu" and D.device("cpu") == "cpu" and D.device() == "cpu"
    with pytest.raises(UserError, match="CUDA is not available"):
        D.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert D.device("auto") == "cuda" and D.device("cuda:0") == "cuda:0"
    with pytest.raises(UserError, match="has 1 GPU"):
        D.device("cuda:1")
    with pytest.raises(UserError, match="unknown --device 'gpu'"):
        D.device("gpu")


def test_torchrun_with_cuda_puts_each_rank_on_its_gpu_over_nccl(monkeypatch):
    """Faked CUDA under torchrun: the group is gloo for CPU tensors and NCCL for CUDA ones, the rank
    sits on cuda:LOCAL_RANK, and that is where train puts the model, the SAEs and the gathered rows."""
    import torch.distributed as dist

    from persona_sae import distributed as D

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: seen.update(device=i))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: seen.update(backend=backend))
    monkeypatch.setattr(D, "active", lambda: "backend" in seen)
    monkeypatch.setattr("atexit.register", lambda fn: None)
    assert D.init() and seen == {"device": 3, "backend": "cpu:gloo,cuda:nccl"}
    assert D.device("auto") == D.device("cpu") == "cuda:3"  # torchrun with CUDA: the rank's own GPU


def test_buffer_and_activations_stay_on_their_device(tiny_model):
    """Nothing in the train data path assumes the CPU: rows stay on the device they come from (the
    meta device stands in for a GPU) while the shuffle draws its permutation on the CPU."""
    from persona_sae.activations import iter_activations
    from persona_sae.stages.train import MixingBuffer
    from persona_sae.tokens import Example

    ex = [Example(ids=[1, 5, 6, 7, 8], response=[False] * 5, special=[True] + [False] * 4, record=0, group="")]
    got = next(iter_activations(tiny_model, ex, [1], progress=False, out_device="meta"))
    assert got.acts[1].device.type == "meta" and got.acts[1].shape == (4, tiny_model.d_model)
    buf = MixingBuffer(8, seed=0)
    for _ in range(3):
        buf.push(torch.zeros(4, 1, 16, device="meta"))
    out = buf.pop(2)
    assert out.device.type == "meta" and out.shape == (2, 1, 16) and out.dtype == torch.float32
