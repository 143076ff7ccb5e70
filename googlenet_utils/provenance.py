"""What ran a result: the device, its driver, the libraries, the date and the code's commit.

Written first by every command that brings results back from another machine (the GPU report,
a GPU sweep), so that what comes back says where it came from even if the command was killed.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from .checkpoint import atomic_write
from .devices import device_name

ENVIRONMENT = "environment.json"


def _driver() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def processor(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (``AMD EPYC``...): two machines' "2 threads" can differ 2x in speed."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:  # not Linux: the platform's own word, often empty on Linux itself
        pass
    return platform.processor() or platform.machine() or "unknown"


def recorded_processor(folder: Path) -> str:
    """The processor a result's ``environment.json`` names; results from before 2026-12-02 have none."""
    ran_it = Path(folder) / ENVIRONMENT
    if not ran_it.is_file():
        return "not recorded"
    return json.loads(ran_it.read_text()).get("processor", "not recorded")


def commit(given: str | None = None) -> str:
    """``given`` (a machine without git is told it), else the checkout's commit, else "unknown"."""
    if given:
        return given
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        return found.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: torch.device, commit_id: str | None = None) -> dict[str, Any]:
    """The device, its driver, the libraries, the date and the code's commit."""
    import torchvision  # imported here: reading a result's provenance needs no torchvision

    return {
        "device": device_name(device),
        "driver": _driver() if device.type == "cuda" else "none",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if device.type == "cuda" else "none",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": processor(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(commit_id),
    }


def write_environment(folder: Path, device: torch.device, commit_id: str | None = None) -> dict[str, Any]:
    """Write ``environment.json`` into ``folder`` (atomically) and return what it holds."""
    env = environment(device, commit_id)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / ENVIRONMENT, lambda file: json.dump(env, file, indent=2), "w")
    return env
