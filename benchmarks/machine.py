"""The machine a benchmark ran on, recorded beside its numbers: a timing means little without the CPU,
its bf16 support, the threads torch used and how busy the machine was."""

from __future__ import annotations

import os
import platform
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
            "python": platform.python_version(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}
