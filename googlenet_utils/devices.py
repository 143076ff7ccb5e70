"""Choosing the device and the numeric precision a run uses."""

from __future__ import annotations

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")


def pick_device(preference: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or ``None``) picks CUDA, then Apple's MPS, then the CPU; anything else is used as given."""
    if preference is None or preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for but CUDA is not available here; use 'auto' or 'cpu'"
        )
    return device


def pick_precision(precision: str, device: torch.device) -> str:
    """Resolve ``"auto"``: bf16 on GPUs that have it, fp16 (gradient-scaled) on older GPUs, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            # Native bf16 arrived with Ampere (compute capability 8); a T4 (7.5) would only emulate it.
            return "bf16" if has_native_bf16(device) else "fp16"
        return "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("precision 'fp16' needs a GPU; on the CPU use 'fp32' or 'bf16'")
    return precision


def has_native_bf16(device: torch.device) -> bool:
    """Whether a CUDA device has bf16 tensor cores (``torch.cuda.is_bf16_supported`` counts emulation too)."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a resolved precision, or ``None`` for plain fp32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
