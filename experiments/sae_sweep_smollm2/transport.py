"""Carry trained SAE folders back from a GPU machine whose return trip holds 64 MiB in <= 16 MiB files.

    python transport.py pack RUNS_DIR OUT_DIR      # on the GPU machine: float16 weights, tar, 15 MiB parts
    python transport.py unpack PARTS_DIR DEST      # here: join, untar, weights back to float32

The weights are rounded to float16 for the trip (half the bytes; relative error <= 2^-11, far below
what any metric reads) and written back as float32 safetensors, so every tool loads them as usual;
`transport.json` beside each SAE says so. Training checkpoints are left behind (resume data only).
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file
from safetensors.torch import save as save_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from persona_sae import replacing  # noqa: E402

PART = 15 << 20
NOTE = {"weights": "trained on a GPU, rounded to float16 for the transfer back, stored again as float32"}


def pack(runs: Path, out: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        for f in sorted(runs.rglob("*")):
            if not f.is_file() or any(p.startswith("checkpoint") for p in f.relative_to(runs).parts):
                continue
            name = str(f.relative_to(runs))
            if f.name == "sae_weights.safetensors":
                w = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(f)).items()}
                data = save_bytes(w)
                info = tarfile.TarInfo(name.replace(".safetensors", ".fp16.safetensors"))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.add(f, arcname=name)
    blob = buf.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    for i in range(0, len(blob), PART):
        (out / f"runs.tgz.part{i // PART:02d}").write_bytes(blob[i:i + PART])
    print(f"packed {len(blob) / 2**20:.1f} MiB into {-(-len(blob) // PART)} part(s) in {out}")


def unpack(parts: Path, dest: Path) -> None:
    blob = b"".join(p.read_bytes() for p in sorted(parts.glob("runs.tgz.part*")))
    if not blob:
        raise SystemExit(f"transport: no runs.tgz.part* in {parts}")
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")
    for f in sorted(dest.rglob("sae_weights.fp16.safetensors")):
        w = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(f)).items()}
        with replacing(f.with_name("sae_weights.safetensors")) as tmp:
            save_file(w, str(tmp))
        f.unlink()
        (f.parent / "transport.json").write_text(json.dumps(NOTE, indent=2) + "\n")
        print(f"unpacked {f.parent}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        raise SystemExit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(Path(sys.argv[2]), Path(sys.argv[3]))
