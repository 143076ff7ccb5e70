"""What a run reports: the epoch line, time to accuracy, ``metrics.json``'s values and the last line."""

from __future__ import annotations

import sys
from typing import Any

from .evaluation import Metrics
from .paths import display_path
from .run_schema import RunMetrics

ACCURACY_TARGETS = (0.90, 0.93, 0.94, 0.95)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None  # Jupyter and Colab kernels; not terminal IPython


def want_progress(setting: bool | None) -> bool:
    """Progress bars where someone watches: a terminal or a notebook, not a log or a pipe."""
    return setting if setting is not None else _in_notebook() or sys.stderr.isatty()  # quiet in CI logs


def time_to_accuracy(
    history: list[dict[str, Any]], targets: tuple[float, ...] = ACCURACY_TARGETS
) -> dict[str, float | None]:
    """Seconds of training until the validation accuracy first reached each target (None: never)."""
    return {
        f"{target:.2f}": next(
            (row["elapsed_seconds"] for row in history if (row["val_accuracy"] or 0) >= target), None
        )
        for target in targets
    }


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """One line per epoch, printed under the progress bar."""
    val = "" if row["val_accuracy"] is None else f"  val {row['val_accuracy']:.3f}"
    aux = "".join(
        f" {k[-4:]} {row[k]:.3f}"
        for k in ("val_accuracy_aux1", "val_accuracy_aux2")
        if row.get(k) is not None
    )
    return (
        f"epoch {row['epoch']:3d}/{epochs}  loss {row['train_loss']:.3f}  train {row['train_accuracy']:.3f}"
        f"{val}{aux}  lr {row['lr']:.3g}  {row['images_per_s']:,.0f} img/s  {row['seconds']:.1f} s"
    )


def training_log(history: list[dict[str, Any]], epochs: int | None = None) -> str:
    """The epoch lines a run printed while it trained, replayed from its history (one per row).

    A finished run that is loaded or resumed prints only "resumed ..."; this shows what training
    looked like. ``epochs`` is the run's planned number of epochs (default: the rows it has).
    """
    planned = epochs if epochs is not None else len(history)
    return "\n".join(
        epoch_line(row, planned)
        + (f"  (resumed with {row['resumed_with']})" if row.get("resumed_with") else "")
        for row in history
    )


def run_metrics(
    test: Metrics, history: list[dict[str, Any]], best: dict[str, Any], *, classes: list[str], **facts: Any
) -> RunMetrics:
    """``metrics.json``: the test result of the best epoch, timings, and every fact needed to trust it.

    ``facts`` carries what the trainer knows (tta, compile_seconds, test_seconds, parameters,
    data, recipe, width, device, processes, precision, compiled, versions).
    """
    train_seconds = sum(row["seconds"] for row in history)
    steady = [row["images_per_s"] for row in history[1:]] or [history[-1]["images_per_s"]]
    test_seconds = facts.pop("test_seconds")
    return RunMetrics(
        test_accuracy=test.accuracy,
        test_accuracy_no_tta=test.accuracy_plain,
        tta=facts.pop("tta"),
        test_loss=test.loss,
        test_per_class_accuracy=dict(zip(classes, test.per_class_accuracy, strict=True)),
        test_aux_accuracy=test.aux_accuracy,
        best_val_accuracy=best["val_accuracy"],
        best_epoch=best["epoch"],
        epochs=len(history),
        train_seconds=train_seconds,
        compile_seconds=facts["compile_seconds"],
        wall_seconds=train_seconds + facts.pop("compile_seconds") + test_seconds,
        images_per_s=sorted(steady)[len(steady) // 2],  # the median: the first epoch pays for warm-up
        time_to_val_accuracy=time_to_accuracy(history),
        **facts,
    )


def describe_data(fingerprint: dict[str, Any] | None) -> str:
    """A data fingerprint in words, for messages that compare two of them."""
    if not fingerprint:
        return "no record of its data (written by an older version)"
    split = fingerprint.get("validation", {})
    return (
        f"{fingerprint['source']}; {fingerprint['train']:,} training + {fingerprint['test']:,} test images "
        f"(digest {fingerprint['digest']}); validation {split.get('size')} images, seed {split.get('seed')}"
    )


def final_line(accuracy: float, plain: float, tta: str, epoch: int, path: object) -> str:
    """The last line a run prints: its test accuracy, how it was measured, and where the run is."""
    how = "no test-time augmentation" if tta == "none" else f"{tta} TTA; {plain:.4f} without"
    return f"test accuracy {accuracy:.4f} ({how}) from epoch {epoch}; run saved in {display_path(path)}"
