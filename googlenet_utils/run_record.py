"""Reading a finished run: ``load_run`` returns the ``RunRecord`` that ``fit`` returns too.

Reading never writes: a stale or damaged ``history.csv`` is read past (``last.pt``'s history is
the truth, and ``--resume`` rewrites the file). ``export_run`` copies a run's results and
inference weights, without optimiser state, to ship it.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError
from .evaluation import Predictions
from .model import ModelConfig
from .run_schema import RunMetrics
from .rundir import (
    BEST,
    CONFIG,
    FORMAT,
    HISTORY,
    LAST,
    METRICS,
    PREDICTIONS,
    README,
    RunDir,
    RunDirError,
    refuse_history_folder,
    same_history,
)


@dataclass
class RunRecord:
    """A finished run: its folder, settings, per-epoch history, test metrics and test predictions."""

    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: RunMetrics
    predictions: Predictions
    classes: list[str]

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig.from_dict(self.config["model"])

    @property
    def train_config(self) -> dict[str, Any]:
        return self.config["train"]

    @property
    def data(self) -> dict[str, Any]:
        """The data fingerprint the run recorded: source, digest, sizes, validation split."""
        return self.config["data"]

    @property
    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split's per-channel mean and std (pixel units) the run normalised with."""
        norm = self.config["normalisation"]
        return torch.tensor(norm["mean"]), torch.tensor(norm["std"])

    @property
    def weights_file(self) -> Path | None:
        """The run's inference weights (``best.pt``), if it kept them."""
        path = self.run_dir / BEST
        return path if path.is_file() else None

    @property
    def test_accuracy(self) -> float:
        return self.metrics.test_accuracy

    @property
    def best_val_accuracy(self) -> float:
        return self.metrics.best_val_accuracy


def load_run(run_dir: str | os.PathLike) -> RunRecord:
    """Read a finished run (config, history, metrics, test predictions), cross-checking its files.

    If ``last.pt`` is there, its history is the truth (a stale ``history.csv`` is read past, with
    a warning); otherwise ``history.csv`` must have as many rows as ``metrics.json`` has epochs.
    """
    folder = RunDir(run_dir)
    refuse_history_folder(folder.file(HISTORY))
    missing = [name for name in (CONFIG, HISTORY, METRICS, PREDICTIONS) if not folder.file(name).is_file()]
    if missing:
        raise RunDirError(
            f"{folder.path} is not a finished run: it lacks {', '.join(missing)}. Train with "
            "googlenet_utils.fit (notebook 04 or `make train`) and let it reach the end."
        )
    config = folder.read_config()
    if config.get("format") != FORMAT:
        raise RunDirError(
            f"{folder.path} was written in another run-directory format ({config.get('format')})"
        )
    metrics = folder.read_metrics()
    history = _checked_history(folder)
    if len(history) != metrics.epochs:
        warnings.warn(
            f"{folder.file(HISTORY)} has {len(history)} epochs but {METRICS} records {metrics.epochs}: "
            "the history is incomplete",
            stacklevel=2,
        )
    predictions, classes = folder.read_predictions()
    return RunRecord(folder.path, config, history, metrics, predictions, classes)


def _checked_history(folder: RunDir) -> list[dict[str, Any]]:
    """history.csv, or last.pt's history (the truth) when the file is stale or damaged."""
    try:
        history, damage = folder.read_history(), None
    except RunDirError as error:
        history, damage = None, error
    if not folder.file(LAST).is_file():
        if damage is not None:
            raise RunDirError(f"{damage}; without {LAST} it cannot be rebuilt: the run is damaged")
        return history
    try:
        truth = folder.load_last()["history"]
    except CheckpointError as error:
        if damage is not None:
            raise RunDirError(f"{damage}, and {error}") from error
        warnings.warn(f"{error}; using {HISTORY} as it is", stacklevel=3)
        return history
    if damage is None and same_history(history, truth):
        return history
    state = "stale" if damage is None else "damaged"
    warnings.warn(
        f"{folder.file(HISTORY)} is {state}; using {LAST}'s history (resuming the run rewrites the file)",
        stacklevel=3,
    )
    return truth


def export_run(
    source: str | os.PathLike, target: str | os.PathLike, readme: str, max_bytes: int = 5_000_000
) -> Path:
    """Copy a finished run's results and inference weights (no optimiser state) to ``target``.

    ``target`` gets config.json (its run folder relative to the repository), history.csv (the
    true history), metrics.json, test_predictions.pt, best.pt (the weights only) and a README.md
    with ``readme``; ``load_run`` reads it like any run.
    """
    record = load_run(source)  # cross-checked; the history is last.pt's if history.csv is stale
    if record.weights_file is None:
        raise RunDirError(f"{record.run_dir} has no {BEST} to ship")
    target = Path(target)
    if target.exists():
        raise RunDirError(f"{target} exists; remove it first so that no two runs mix")
    target.mkdir(parents=True)
    for name in (METRICS, PREDICTIONS, BEST):
        shutil.copy2(record.run_dir / name, target / name)
    shipped = RunDir(target)
    shipped.write_copied_config(record.config, record.run_dir)
    shipped.write_history(record.history)
    too_big = [p.name for p in target.iterdir() if p.stat().st_size > max_bytes]
    if too_big:
        shutil.rmtree(target)
        raise RunDirError(f"{', '.join(too_big)} would exceed {max_bytes:,} bytes; ship a narrower network")
    (target / README).write_text(readme)
    return target
