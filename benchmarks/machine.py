"""The machine a benchmark ran on, recorded beside its numbers: a timing means little without the CPU,
its bf16 support, the threads torch used and how busy the machine was. Also what the benchmark scripts
share: their data from the manifest (``data_file``) and their results file and docs table (``publish``)."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe() -> dict:
    import torch

    from persona_sae.models import bf16_fast

    return {"cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_fast": bf16_fast("cpu"),
            "threads": torch.get_num_threads(), "cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def machine_line(res: dict) -> str:
    """The machine and date of a result, as a docs table's caption ends. A result written before the
    scripts recorded ``describe()`` holds the machine as one string (shown as it is), maybe no date."""
    m = res["machine"]
    date = f", {res['date']}" if res.get("date") else ""
    if isinstance(m, str):
        return m + date
    if res.get("device", "cpu") != "cpu" and m.get("gpu"):
        return f"{m['gpu']} ({res['device']}), {m['cpu']} host{date}"
    return f"{m['cpu']}, {m['cpu_capability']}, {m['cores']} cores, 1-minute load {m['load_1min']} before the runs{date}"


def data_file(name: str, rel: str) -> Path:
    """The installed copy of file ``rel`` of the data manifest's dataset ``name`` (persona_sae.sources).
    When it is not installed: the one-line `persona-sae data fetch NAME` hint and exit 2, as the CLI does."""
    from persona_sae import UserError, sources

    try:
        return sources.file(name, rel)
    except UserError as e:
        sys.stderr.write(f"{Path(sys.argv[0]).name}: error: {e}\n")
        raise SystemExit(2) from None


def device_results(default: Path, device: str) -> Path:
    """A benchmark's results file: ``default`` on the CPU, NAME-DEVICE.json beside it on another device, so
    a GPU run has its own file and docs block instead of replacing the CPU figures."""
    return default if device == "cpu" else default.with_name(f"{default.stem}-{device}.json")


def publish(result: dict, out, default, write_table) -> None:
    """Write a benchmark's JSON to ``out``; the docs table too when ``out`` is the default results file
    (a run written elsewhere is a trial)."""
    from persona_sae import write_json

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    print(f"-> {out}")
    if Path(out) == Path(default):
        write_table(result)
