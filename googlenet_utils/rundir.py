"""The run directory: the only module that knows its files (``run_schema`` knows their keys).

    config.json          settings, model configuration, data fingerprint, normalisation statistics
    history.csv          one row per epoch (derived from last.pt's history, which is the truth)
    metrics.json         the final test metrics, written once at the end
    test_predictions.pt  test-set logits of every head (plain, mirrored, TTA) and the labels
    last.pt              everything to resume (a "training" checkpoint)
    best.pt              the best validation epoch's weights (a "weights" checkpoint)
    best.pt.pending      an improved epoch's weights until last.pt records them (see save_epoch)
    .lock                held by the process writing the run

Trainers write through ``RunDir``; analysis reads through ``run_record.load_run``. The keys
inside metrics.json and test_predictions.pt are ``run_schema``'s.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, atomic_write, load_checkpoint, save_checkpoint
from .errors import UserError
from .evaluation import Predictions
from .paths import display_path
from .run_schema import RunFileError, RunMetrics, predictions_from_file, predictions_to_file

CONFIG, HISTORY, METRICS, PREDICTIONS = "config.json", "history.csv", "metrics.json", "test_predictions.pt"
LAST, BEST, LOCK, README = "last.pt", "best.pt", ".lock", "README.md"
PENDING_BEST = "best.pt.pending"
RUN_FILES = (CONFIG, HISTORY, METRICS, PREDICTIONS, LAST, BEST)  # any of them marks a folder as taken
RESULT_FILES = (HISTORY, METRICS, PREDICTIONS, BEST)  # what a run produced, never overwritten
FORMAT = 2  # config.json's layout version


class RunDirError(UserError):
    """The run directory cannot be used as asked; the message says why and what to do."""


class RunExistsError(RunDirError):
    """The folder already holds (part of) a run, and starting over would overwrite it."""


class RunLockedError(RunDirError):
    """Another process is writing this run directory."""


def _number(text: str) -> Any:
    """A CSV cell back as int, float, None (empty) or text."""
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


class RunDir:
    """A folder holding one training run."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(os.path.expanduser(path))  # "~/runs/x" is the home folder's, never a folder "~"

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def present(self, names: tuple[str, ...] = RUN_FILES) -> list[str]:
        """Which of ``names`` exist here."""
        return [name for name in names if (self.path / name).exists()]

    # ---- making sure it can be written

    def prepare(self) -> None:
        """Create the folder, or explain why it cannot be (a file in the way, no permission, a long name)."""
        try:
            if self.path.exists() and not self.path.is_dir():
                raise RunDirError(f"the run directory {self.path} is a file; choose a folder with --out")
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                shown = f"{str(self.path)[:60]}..."
                raise RunDirError(
                    f"the run directory name {shown} is too long for the file system (at most 255 bytes "
                    "per folder name); choose a shorter --out"
                ) from error
            raise RunDirError(
                f"cannot write to the run directory {self.path} ({error.strerror or error}); "
                "choose a writable folder with --out"
            ) from error

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock for the run's lifetime.

        The lock is an operating-system file lock (``flock``): the kernel releases it when its
        process ends in any way, SIGKILL included, so a crashed run never leaves a stale lock.
        The file itself stays behind and records the last holder; it means nothing when unlocked.
        """
        path = self.path / LOCK
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunDirError(
                f"cannot open the lock file {path} ({error.strerror or error}): every run holds it while "
                "it writes. Make it writable by your user (or delete it: it holds no data), or choose "
                "another --out"
            ) from error
        try:
            if not _try_lock(descriptor):
                holder = path.read_text(errors="replace").strip() or "another process"
                raise RunLockedError(
                    f"{self.path} is being written by {holder}. Wait for that run to finish (or stop "
                    "it), or give this run another --out; two runs in one folder would mix their files."
                )
            os.ftruncate(descriptor, 0)
            os.write(
                descriptor, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n".encode()
            )
            self._tidy()
            yield
        finally:
            os.close(descriptor)  # closing drops the lock

    def _tidy(self) -> None:
        """What a kill left behind, put right by the lock's new holder (the only writer of these files)."""
        for name in (*RUN_FILES, PENDING_BEST):
            for stale in self.path.glob(f".{name}.*.tmp"):  # atomic_write's temporary files
                if stale.is_file():
                    stale.unlink(missing_ok=True)
        self._settle_pending_best()

    def _settle_pending_best(self) -> None:
        """Promote best.pt.pending if last.pt records its epoch as the best, else drop it (``save_epoch``)."""
        pending = self.path / PENDING_BEST
        if not pending.is_file():
            return
        try:
            recorded = self.load_last()["best"]["epoch"] if (self.path / LAST).is_file() else None
            promote = recorded == load_checkpoint(pending, "weights")["epoch"]
        except CheckpointError:
            return  # resuming names the damaged file; the pending weights stay until it is put right
        if promote:
            os.replace(pending, self.path / BEST)
        else:
            pending.unlink()

    # ---- files written once per run

    def write_config(self, record: dict[str, Any]) -> None:
        self._write_json(CONFIG, {"format": FORMAT, **record})

    def read_config(self) -> dict[str, Any]:
        return self._read_json(CONFIG)

    def write_copied_config(self, config: dict[str, Any], trained_in: str | os.PathLike) -> None:
        """Write a run's ``config`` into this copy of it, its run folder relative to the repository."""
        train = {**config["train"], "run_dir": display_path(trained_in)}  # never a machine's folders
        self.write_config({**config, "train": train})

    def write_metrics(self, metrics: RunMetrics) -> None:
        self._write_json(METRICS, metrics.to_dict())

    def read_metrics(self) -> RunMetrics:
        path = self.path / METRICS
        try:
            return RunMetrics.from_dict(self._read_json(METRICS), path)
        except RunFileError as error:
            raise RunDirError(f"{error}; the run is damaged") from error

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """``history.csv`` from the history rows (all rows share the first row's columns)."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path / HISTORY, lambda file: file.write(buffer.getvalue()), "w")

    def read_history(self) -> list[dict[str, Any]]:
        """``history.csv``'s rows; ``RunDirError`` naming the file when it is not a readable CSV file."""
        path = self.path / HISTORY
        try:
            with open(path, newline="") as file:
                return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(file)]
        except (OSError, UnicodeDecodeError, csv.Error, TypeError, ValueError) as error:
            raise RunDirError(
                f"{path} cannot be read as the run's history ({type(error).__name__}: {error})"
            ) from error

    def write_predictions(self, predictions: Predictions, classes: list[str]) -> None:
        content = predictions_to_file(predictions, classes)
        atomic_write(self.path / PREDICTIONS, lambda file: torch.save(content, file))

    def read_predictions(self) -> tuple[Predictions, list[str]]:
        """``test_predictions.pt``'s logits and class names (``weights_only``: no code in it ever runs)."""
        path = self.path / PREDICTIONS
        try:
            content = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a foreign pickle, a damaged zip, an unreadable file
            # Only the error's kind: torch's own text advises turning weights_only off, the one
            # thing never to do with a file that failed this check.
            raise RunDirError(
                f"{path} cannot be read as the run's test predictions ({type(error).__name__}); "
                "nothing in it was run. The run is damaged: train it again."
            ) from error
        try:
            return predictions_from_file(content, path)
        except RunFileError as error:
            raise RunDirError(str(error)) from error

    def save_last(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.path / LAST, state, "training")

    def load_last(self) -> dict[str, Any]:
        return load_checkpoint(self.path / LAST, "training")

    def save_best(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.path / BEST, state, "weights")

    def load_best(self) -> dict[str, Any]:
        return load_checkpoint(self.path / BEST, "weights")

    def save_epoch(self, state: dict[str, Any], best: dict[str, Any] | None) -> None:
        """One epoch's files, in the order that keeps them consistent if a kill strikes between two.

        An improved epoch's weights go to best.pt.pending, then last.pt (which records that epoch as
        the best), then the pending file becomes best.pt; history.csv, derived, comes last. Killed
        before last.pt, the run resumes from the previous last.pt (and the pending file is dropped);
        killed after it, the next start promotes the pending file (``lock``).
        """
        if best is not None:
            save_checkpoint(self.path / PENDING_BEST, best, "weights")
        self.save_last(state)
        if best is not None:
            os.replace(self.path / PENDING_BEST, self.path / BEST)
        self.write_history(state["history"])

    def _write_json(self, name: str, value: dict[str, Any]) -> None:
        atomic_write(self.path / name, lambda file: json.dump(value, file, indent=2), "w")

    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError) as error:  # ValueError: invalid JSON, or bytes that are not UTF-8
            raise RunDirError(f"{path} is not valid JSON ({error}); the run is damaged") from error
        if not isinstance(value, dict):
            raise RunDirError(
                f"{path} holds a JSON {type(value).__name__}, not the object a run writes; the run is damaged"
            )
        return value

    # ---- deciding what a new start may do here

    def plan_start(self, resume: bool) -> str:
        """``"fresh"`` or ``"resume"``; raises when starting would overwrite or resume is impossible."""
        present = self.present()
        if not present:
            return "fresh"
        if not resume:
            raise RunExistsError(
                f"{self.path} already holds a run ({', '.join(present)}). Pass --resume (resume=True) "
                "to continue it, or choose another --out so nothing is overwritten."
            )
        if LAST in present:
            return "resume"
        results = [name for name in RESULT_FILES if name in present]
        if results:
            raise RunExistsError(
                f"{self.path} holds results ({', '.join(results)}) but no {LAST} to resume from; "
                "resuming would overwrite them. Nothing was changed: choose another --out."
            )
        return "fresh"  # only config.json: a run that stopped before its first checkpoint

    def sync_history(self, history: list[dict[str, Any]]) -> bool:
        """Rewrite ``history.csv`` from the checkpoint's history if it differs or is damaged; True if so."""
        path = self.path / HISTORY
        refuse_history_folder(path)
        try:
            if path.is_file() and same_history(self.read_history(), history):
                return False
        except RunDirError:
            pass  # unreadable (random bytes): rewritten from the checkpoint like a stale one
        self.write_history(history)
        return True


def refuse_history_folder(path: Path) -> None:
    if path.is_dir():
        raise RunDirError(
            f"{path} is a folder, not the run's history file: move it away, and --resume "
            f"rewrites the history from {LAST}"
        )


def _try_lock(descriptor: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def same_history(written: list[dict[str, Any]], truth: list[dict[str, Any]]) -> bool:
    if len(written) != len(truth):
        return False
    return all(
        a.get("epoch") == b.get("epoch") and a.get("val_accuracy") == b.get("val_accuracy")
        for a, b in zip(written, truth, strict=True)
    )
