"""Checkpoints that survive crashes and bit rot: atomic writes, a checksum, kinds, and a background writer.

A checkpoint is an ordinary ``torch.save`` zip file (``torch.load`` reads it), whose zip
comment carries the SHA-256 of everything before it. ``load_checkpoint`` verifies it, so a
single flipped byte is refused instead of silently loaded.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import UserError, is_disk_full
from .model import GoogLeNet, ModelConfig

# What a checkpoint holds: "training" (last.pt: everything to resume) or "weights" (best.pt,
# shipped inference weights: the model only).
KINDS = ("training", "weights")
_CHECKSUM_TAG = b"googlenet_utils sha256 "
_END_OF_ZIP = b"PK\x05\x06"  # the zip format's end-of-central-directory record, 22 bytes + comment


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is unreadable, damaged, of another kind or from another model; nothing was changed."""


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through ``write(file)`` to a uniquely named temporary file, fsync it, rename it over ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one; two
    writers never share a temporary file. A full disk raises ``CheckpointError`` saying so.
    """
    path = Path(path)
    descriptor, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with open(descriptor, mode) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them visible
        tmp.chmod(0o644)  # mkstemp makes files private; a run's files are ordinary readable files
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if is_disk_full(error):
            raise CheckpointError(
                f"disk full while writing {path}: the previous {path.name} (if any) is intact. "
                "Free some space, then resume (--resume)."
            ) from error
        raise


def _with_checksum(payload: bytes) -> bytes:
    """Put the SHA-256 of the zip into its comment field (readers of the zip ignore the comment)."""
    if payload[-22:-18] != _END_OF_ZIP or payload[-2:] != b"\0\0":
        raise RuntimeError("torch.save wrote an unexpected zip ending; cannot add a checksum")
    comment = _CHECKSUM_TAG + hashlib.sha256(payload[:-2]).hexdigest().encode()
    return payload[:-2] + struct.pack("<H", len(comment)) + comment


def _verified_payload(path: Path, raw: bytes) -> bytes:
    comment_start = raw.rfind(_CHECKSUM_TAG)
    if comment_start < 22 or raw[comment_start - 22 : comment_start - 18] != _END_OF_ZIP:
        raise CheckpointError(
            f"{path} carries no googlenet_utils checksum: it is damaged, truncated, or was not written "
            "by googlenet_utils (load it with torch.load yourself if you trust it)."
        )
    expected = raw[comment_start + len(_CHECKSUM_TAG) :].decode("ascii", "replace")
    actual = hashlib.sha256(raw[: comment_start - 2]).hexdigest()
    if actual != expected:
        raise CheckpointError(
            f"{path} is damaged: its checksum does not match its contents (a flipped bit, a partial "
            "copy); nothing was loaded. No older copy is kept: restore the file from a backup, or train "
            "again in a new --out (deleting it does not let a run resume)."
        )
    return raw


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], kind: str) -> None:
    """Save ``state`` (tensors, numbers, strings, lists, dicts) as a checkpoint of ``kind``, atomically."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    buffer = io.BytesIO()
    torch.save({**state, "kind": kind}, buffer)
    data = _with_checksum(buffer.getvalue())
    atomic_write(path, lambda file: file.write(data))


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict[str, Any]:
    """Load and verify a checkpoint on the CPU (``weights_only``: no code runs while loading).

    ``kind`` ("training" or "weights"), when given, must match what the file holds.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({error.strerror or error}): make it readable by your user "
            "(chmod u+r), then run the same command again"
        ) from error
    payload = _verified_payload(path, raw)
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # a foreign pickle, an unsupported object...
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {str(error)[:200]}); it was not "
            "written by googlenet_utils, and nothing in it was run. Put back the file the run wrote, or "
            "train again in a new --out."
        ) from error
    if not isinstance(state, dict) or "model" not in state or state.get("kind") not in KINDS:
        raise CheckpointError(f"{path} is not a googlenet_utils checkpoint (no model or kind entry)")
    if kind is not None and state["kind"] != kind:
        raise CheckpointError(
            f"{path} is a {state['kind']!r} checkpoint, but a {kind!r} checkpoint belongs here "
            f"({_KIND_HINT[kind]}). Was one file copied over the other?"
        )
    return state


_KIND_HINT = {
    "training": "last.pt holds weights, optimiser and history to resume from",
    "weights": "best.pt and shipped weights hold the model's weights only",
}


def model_config_of(state: dict[str, Any], source: str) -> ModelConfig:
    """The ``ModelConfig`` a checkpoint recorded."""
    values = state.get("model_config")
    if not isinstance(values, dict):
        raise CheckpointError(f"{source} does not record its model's configuration; build the model yourself")
    try:
        return ModelConfig.from_dict(values)
    except ValueError as error:
        raise CheckpointError(f"{source} records a model this version cannot build: {error}") from error


def check_compatible(model: nn.Module, state: dict[str, Any], source: str = "checkpoint") -> None:
    """Raise ``CheckpointError`` unless ``state["model"]`` fits ``model`` exactly (nothing is copied)."""
    config = getattr(model, "config", None)
    if isinstance(config, ModelConfig) and state.get("model_config") is not None:
        saved = model_config_of(state, source).to_dict()
        ours = config.to_dict()
        differences = ", ".join(
            f"{key}: {saved[key]!r} in the {source}, {ours[key]!r} in the model"
            for key in ours
            if saved[key] != ours[key]
        )
        if differences:
            raise CheckpointError(f"the {source} was written by a different GoogLeNet ({differences})")
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    saved_shapes = {name: tuple(t.shape) for name, t in state["model"].items()}
    problems = [f"missing {name}" for name in expected.keys() - saved_shapes.keys()]
    problems += [f"unexpected {name}" for name in saved_shapes.keys() - expected.keys()]
    problems += [
        f"{name}: {saved_shapes[name]} in the {source}, {expected[name]} in the model"
        for name in expected.keys() & saved_shapes.keys()
        if saved_shapes[name] != expected[name]
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
    """Rebuild the GoogLeNet a checkpoint (of either kind) was written by, with its weights, in eval mode."""
    state = load_checkpoint(path)
    model = GoogLeNet.from_config(model_config_of(state, f"checkpoint {path}"))
    load_weights(model, state, f"checkpoint {path}")
    return model.to(device).eval()


# --------------------------------------------------------------------------- writing off the training thread


def host_copy(value: Any) -> Any:
    """A copy of ``value`` with every tensor copied to host memory, so training may go on changing it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: host_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(host_copy(item) for item in value)
    return value


class BackgroundWriter:
    """Runs file writes one after another on a worker thread, so the GPU does not wait for the disk.

    ``submit`` waits for the previous job first (at most one in flight, so memory stays bounded);
    ``wait`` re-raises a job's error in the training thread. Leaving the ``with`` block waits for
    the last job, also when training stops with an error or Ctrl-C: what was handed over is written.
    """

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self._done = threading.Event()
        self._done.set()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException as error:  # handed to the training thread by wait()
                self._error = error
            finally:
                self._done.set()

    def submit(self, job: Callable[[], None]) -> None:
        self.wait()
        self._done.clear()
        self._jobs.put(job)

    def wait(self) -> None:
        self._done.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        self._done.wait()
        self._jobs.put(None)
        self._thread.join()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        if exc_info[0] is None:
            self.wait()
