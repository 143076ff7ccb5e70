"""Checkpoints that survive crashes: atomic writes, safe loading, clear errors on mismatch."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .model import GoogLeNet


class CheckpointError(RuntimeError):
    """A checkpoint is unreadable or belongs to a different model; nothing was changed."""


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through ``write(file)`` to a temporary file, then rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, mode) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) atomically."""
    atomic_write(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint on the CPU with ``weights_only=True`` (no code runs while loading)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, foreign pickle, unsupported object...
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {error}); it is truncated, "
            "corrupted or not a checkpoint written by googlenet_utils. Delete it or use another."
        ) from error
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a googlenet_utils checkpoint (no 'model' entry)")
    return state


def check_compatible(model: nn.Module, state: dict[str, Any], source: str = "checkpoint") -> None:
    """Raise ``CheckpointError`` unless ``state["model"]`` fits ``model`` exactly (nothing is copied)."""
    saved_config, config = state.get("model_config"), getattr(model, "config", None)
    if saved_config is not None and config is not None and saved_config != config:
        differences = ", ".join(
            f"{key}: {saved_config.get(key)!r} in the {source}, {config.get(key)!r} in the model"
            for key in sorted(set(saved_config) | set(config))
            if saved_config.get(key) != config.get(key)
        )
        raise CheckpointError(f"the {source} was written by a different GoogLeNet ({differences})")
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    saved = {name: tuple(t.shape) for name, t in state["model"].items()}
    problems = [f"missing {name}" for name in expected.keys() - saved.keys()]
    problems += [f"unexpected {name}" for name in saved.keys() - expected.keys()]
    problems += [
        f"{name}: {saved[name]} in the {source}, {expected[name]} in the model"
        for name in expected.keys() & saved.keys()
        if saved[name] != expected[name]
    ]
    if problems:
        shown = "; ".join(sorted(problems)[:5]) + (
            f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(f"the {source} does not fit this model: {shown}")


def load_weights(model: nn.Module, state: dict[str, Any], source: str = "checkpoint") -> None:
    """Copy ``state["model"]`` into ``model`` after checking it fits; on error the model is untouched."""
    check_compatible(model, state, source)
    model.load_state_dict(state["model"])


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> GoogLeNet:
    """Rebuild the GoogLeNet a checkpoint was written by and load its weights (in eval mode)."""
    state = load_checkpoint(path)
    if not state.get("model_config"):
        raise CheckpointError(f"{path} does not record its model's configuration; build the model yourself")
    model = GoogLeNet(**state["model_config"])
    load_weights(model, state, f"checkpoint {path}")
    return model.to(device).eval()


def rng_state() -> dict[str, Any]:
    """Every random generator a training run touches (torch CPU and CUDA, Python, NumPy)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - user code may use it
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put every generator back where ``rng_state`` found it."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    kind, keys, position, has_gauss, cached = state["numpy"]
    legacy = (kind, keys.numpy().astype(np.uint32), position, has_gauss, cached)
    np.random.set_state(legacy)  # noqa: NPY002
