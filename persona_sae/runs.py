"""Run folders: the --out/--resume rules and checkpoints every long command shares.

A checkpoint is tensors in safetensors and everything else in JSON, swapped in atomically as a
folder, so a run killed at any moment resumes from the last complete one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from persona_sae import UserError, normal_modes

RUNNING, DONE = "running", "done"  # the one status vocabulary of run.json / manifest.json
CHECKPOINTS = ("checkpoint", "checkpoint.old")  # the folders save_checkpoint writes


def replaceable(out, marker: str, what: str, force: bool = False) -> Path:
    """Check an --out folder that a command replaces whole: missing, empty, or an earlier output of the
    same command (it holds ``marker``). Anything else is refused, so that a user's own files are never
    deleted; ``force`` allows a foreign folder. The current folder and its parents are always refused."""
    out = Path(out)
    here = Path.cwd().resolve()
    if out.resolve() == here or out.resolve() in here.parents:
        raise UserError(f"--out {out} is the current folder or above it: name a new folder")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file() and not force:
        raise UserError(f"--out {out} holds files that are not {what} (no {marker}); "
                        f"choose another folder, or pass --force to replace it")
    return out


def output_file(out) -> Path:
    """Check a single-file --out before any work: its folder must exist and it must not be a folder."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; name a file")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    return out


def tidy_refused(out, existed: bool) -> None:
    """After a refused command: remove the --out folder it created when it holds nothing of value (no
    files, or only a run.json that never finished and no checkpoint), so a refusal leaves nothing behind.
    A folder that existed before, or that holds a checkpoint or results, is kept."""
    out = Path(out) if out else None
    if existed or out is None or not out.is_dir():
        return
    files = [p for p in out.rglob("*") if p.is_file()]
    if any(p.name != "run.json" or p.parent != out for p in files):
        return
    if files:
        try:
            if is_done(json.loads(files[0].read_text())):
                return
        except (OSError, ValueError):
            return
    shutil.rmtree(out, ignore_errors=True)


def is_done(meta: dict) -> bool:
    """A run record that says its run finished ("complete" is what older training runs wrote)."""
    return meta.get("status") in (DONE, "complete")


def claim(out: Path, record: str, what: str, resume: bool, config: dict | None = None,
          also_ours: tuple[str, ...] = (), rerun_done: bool = False) -> dict | None:
    """The --out rules of every resumable command, so they read and fail alike. Returns the earlier
    run's record (``out/record``) when it is to be continued, None for a fresh start:

    - ``out`` is a file: refused; missing or empty: a fresh start;
    - a folder holding neither ``record`` nor one of ``also_ours``: refused (a user's own files are never
      written over);
    - a finished run: refused, unless ``rerun_done`` (a rerun that finds every part done does nothing);
    - an unfinished one: needs ``resume``, and the same ``config`` (the differing fields are named)."""
    out, a = Path(out), "an" if what[0] in "aeiou" else "a"
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    path = out / record
    if not path.is_file():
        if any((out / o).exists() for o in also_ours):
            if not resume:
                raise UserError(f"{out} already holds {a} {what}: pass --resume to continue it, or choose another --out")
            return {}
        raise UserError(f"output folder {out} is not empty and holds no {what}")
    prev = json.loads(path.read_text())
    if is_done(prev) and not rerun_done:
        raise UserError(f"{out} already holds a finished {what}; choose another --out")
    if not resume:
        raise UserError(f"{out} already holds {a} {what}: pass --resume to continue it, or choose another --out")
    if config is not None:
        diff = [k for k in config if prev.get("config", {}).get(k) != config[k]]
        if diff:
            raise UserError(f"--resume with a different config (differs in: {', '.join(diff)})")
    return prev


def _flatten(obj, prefix: str, tensors: dict) -> object:
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _unflatten(obj, tensors: dict):
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(out: Path, state: dict) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta = _flatten(state, "s", tensors)
    new, cur, old = out / "checkpoint.new", out / "checkpoint", out / "checkpoint.old"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    save_file(tensors, str(new / "state.safetensors"))
    normal_modes(new / "state.safetensors")
    (new / "state.json").write_text(json.dumps(meta))
    if cur.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(cur, old)
    os.replace(new, cur)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(out: Path) -> dict | None:
    for d in (out / "checkpoint", out / "checkpoint.old"):  # .old: killed between the two renames
        if (d / "state.json").is_file() and (d / "state.safetensors").is_file():
            return _unflatten(json.loads((d / "state.json").read_text()), load_file(str(d / "state.safetensors")))
    return None
