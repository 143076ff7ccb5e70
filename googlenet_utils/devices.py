"""Choosing the device and the numeric precision a run uses, and naming them in results."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

from .errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICE_CHOICES = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def pick_device(preference: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or ``None``) picks CUDA, then Apple's MPS, then the CPU; anything else must exist here.

    A device that is not here (``"gpu"``, ``"meta"``, ``"mps"`` on Linux, ``"cuda:3"`` on a
    one-GPU machine) raises ``ConfigError`` (a ``ValueError``) naming what is available.
    """
    if preference is None or preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if isinstance(preference, torch.device):
        device = preference
    else:
        try:
            device = torch.device(str(preference).strip())
        except RuntimeError:
            raise ConfigError(
                f"unknown device {preference!r}: use {DEVICE_CHOICES} (here: {available_devices()})"
            ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {str(device)!r} needs CUDA, which is not available here; use 'auto' or 'cpu'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {str(device)!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} GPU(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
            )
    elif device.type == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' needs an Apple-silicon Mac with MPS; use 'auto' or 'cpu'")
    elif device.type != "cpu":
        raise ConfigError(
            f"device {str(device)!r} cannot train a model: use {DEVICE_CHOICES} (here: {available_devices()})"
        )
    return device


def available_devices() -> str:
    """What this machine offers, for error messages."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return ", ".join(found)


def pick_precision(precision: str, device: torch.device) -> str:
    """Resolve ``"auto"``: bf16 where the device computes it natively, fp16 (gradient-scaled) on older
    GPUs, else fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if has_native_bf16(device) else "fp16"
        # Native bf16 ran the cpu recipe's epochs 1.1-1.2x as fast as fp32 (CONTRIBUTING.md).
        return "bf16" if has_native_bf16(device) else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("precision 'fp16' needs a GPU; on the CPU use 'fp32' or 'bf16'")
    return precision


def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: a GPU's tensor cores, or a CPU's AVX-512 BF16 or AMX.

    ``torch.cuda.is_bf16_supported`` counts emulation too, so a GPU is judged by its compute
    capability (bf16 tensor cores arrived with Ampere, 8.0; a T4, 7.5, would only emulate it).
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return _cpu_has_native_bf16()
    return False


def _cpu_has_native_bf16() -> bool:
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence looked up softly
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a resolved precision, or ``None`` for plain fp32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def device_name(device: torch.device) -> str:
    """A device as results should name it: the GPU's model, or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"mps ({platform.machine()})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    """Wait for the device to finish queued work (for honest timings); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def library_versions() -> dict[str, str]:
    """Versions that decide a run's numbers, recorded beside its metrics."""
    import numpy
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "cuda": torch.version.cuda or "none",
    }


def free_memory(device: torch.device) -> int | None:
    """Bytes a run may still allocate on ``device``; ``None`` where that cannot be told (MPS, some OSes)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type != "cpu":
        return None
    try:  # Linux: what can be allocated without swapping, reclaimable caches included
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
