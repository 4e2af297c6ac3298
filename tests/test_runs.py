"""runs: the --out rules every resumable command shares (claim), and the modes of the files written."""

import json

import pytest

from persona_sae import UserError
from persona_sae.runs import claim


def test_claim_rules(tmp_path):
    out = tmp_path / "run"
    assert claim(out, "run.json", "training run", resume=False) is None  # missing: a fresh start
    out.mkdir()
    assert claim(out, "run.json", "training run", resume=True) is None  # empty: a fresh start
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        claim(tmp_path / "file", "run.json", "training run", resume=False)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty and holds no training run"):
        claim(out, "run.json", "training run", resume=True)
    (out / "run.json").write_text(json.dumps({"status": "running", "config": {"k": 8, "seed": 0}}))
    with pytest.raises(UserError, match="already holds a training run: pass --resume"):
        claim(out, "run.json", "training run", resume=False)
    with pytest.raises(UserError, match=r"differs in: k\)$"):
        claim(out, "run.json", "training run", resume=True, config={"k": 4, "seed": 0})
    assert claim(out, "run.json", "training run", resume=True, config={"k": 8, "seed": 0})["status"] == "running"
    (out / "run.json").write_text(json.dumps({"status": "done", "config": {}}))
    with pytest.raises(UserError, match="already holds a finished training run"):
        claim(out, "run.json", "training run", resume=True)
    assert claim(out, "run.json", "training run", resume=True, rerun_done=True)["status"] == "done"
    with pytest.raises(UserError, match="holds an activation cache: pass --resume"):
        claim(out, "run.json", "activation cache", resume=False, rerun_done=True)


def test_a_checkpoint_without_its_record_is_ours(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    with pytest.raises(UserError, match="pass --resume"):
        claim(tmp_path, "run.json", "training run", resume=False, also_ours=("checkpoint",))
    assert claim(tmp_path, "run.json", "training run", resume=True, also_ours=("checkpoint",)) == {}


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_written_files_get_the_umask_mode(tmp_path, mask):
    """safetensors writes through a private 0600 temporary file; what we write gets open()'s mode."""
    import os
    import stat

    import torch
    from safetensors.torch import save_file

    from persona_sae import replacing, umask, write_json
    from persona_sae.runs import save_checkpoint

    old = os.umask(mask)
    try:
        assert umask() == mask
        with replacing(tmp_path / "w.safetensors") as tmp:
            save_file({"w": torch.zeros(3)}, str(tmp))
        write_json(tmp_path / "w.json", {"a": 1})
        save_checkpoint(tmp_path, {"x": torch.ones(2), "step": 1})
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in
             (tmp_path / "w.safetensors", tmp_path / "w.json", tmp_path / "checkpoint" / "state.safetensors")}
    assert set(modes.values()) == {0o666 & ~mask}, {k: oct(v) for k, v in modes.items()}
