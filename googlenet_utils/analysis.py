"""Turning a finished run into numbers: accuracy per head, errors, calibration, comparisons.

Every function takes plain tensors or run directories and returns tensors, numbers or rows;
``plots`` draws them. What happens inside the network is measured in ``probes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .cifar10 import CIFAR10Data
from .evaluation import Predictions, accuracy
from .probes import paired_difference
from .recipe import TrainConfig
from .run_record import RunRecord, load_run


def flip_logits(predictions: Predictions) -> Tensor:
    """Flip test-time augmentation: the mean of the logits for each image and for its mirror image."""
    if predictions.flipped is None:
        raise ValueError("these predictions have no flipped logits: the run was made with tta='none'")
    return (predictions.logits + predictions.flipped) / 2


def head_accuracies(predictions: Predictions, tta: str | None = None) -> dict[str, float]:
    """Test accuracy of the main head (plain, flip TTA, the run's TTA) and of each auxiliary head."""
    labels = predictions.labels
    result = {"main": accuracy(predictions.logits, labels)}
    if predictions.flipped is not None:
        result["main + flip TTA"] = accuracy(flip_logits(predictions), labels)
    if tta not in (None, "none", "flip") and predictions.tta is not None:
        result[f"main + {tta} TTA"] = accuracy(predictions.tta, labels)
    for head, logits in predictions.aux.items():
        result[head] = accuracy(logits, labels)
    return result


def confusion_matrix(labels: Tensor, predicted: Tensor, num_classes: int) -> Tensor:
    """Counts: row = true class, column = predicted class."""
    flat = labels.long() * num_classes + predicted.long()
    return torch.bincount(flat, minlength=num_classes**2).view(num_classes, num_classes)


def row_normalised(confusion: Tensor) -> Tensor:
    """Each row divided by its total: the share of a true class given each prediction."""
    return confusion.double() / confusion.sum(dim=1, keepdim=True).clamp_min(1)


def precision_recall(confusion: Tensor) -> tuple[Tensor, Tensor]:
    """Per-class precision (right among predicted) and recall (found among true); 0 where undefined."""
    hits = confusion.diagonal().double()
    precision = hits / confusion.sum(dim=0).double().clamp_min(1)
    recall = hits / confusion.sum(dim=1).double().clamp_min(1)
    return precision, recall


def most_confused_pairs(confusion: Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as (true class, predicted class, count)."""
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(-1)
    counts, flat = off_diagonal.flatten().topk(k)
    n = confusion.shape[0]
    return [(int(i) // n, int(i) % n, int(c)) for c, i in zip(counts, flat, strict=True) if c > 0]


def confident_mistakes(
    probabilities: Tensor, labels: Tensor, k: int = 16
) -> list[tuple[int, int, int, float]]:
    """The ``k`` wrong predictions made with the highest confidence: (index, true, predicted, confidence)."""
    confidence, predicted = probabilities.max(dim=1)
    wrong = torch.nonzero(predicted != labels).flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:k]
    return [(int(i), int(labels[i]), int(predicted[i]), float(confidence[i])) for i in order]


@dataclass
class Reliability:
    """Predictions grouped by confidence: mean confidence, accuracy and count per bin."""

    edges: Tensor
    confidence: Tensor
    accuracy: Tensor
    counts: Tensor

    @property
    def ece(self) -> float:
        """Expected calibration error: the count-weighted mean gap between confidence and accuracy."""
        weights = self.counts.double() / self.counts.sum()
        return float((weights * (self.accuracy - self.confidence).abs()).sum())


def reliability(probabilities: Tensor, labels: Tensor, n_bins: int = 15) -> Reliability:
    """Bin the top-class confidence into ``n_bins`` equal-width bins over (0, 1]."""
    confidence, predicted = probabilities.double().max(dim=1)
    correct = (predicted == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # Bin b holds confidences in (edges[b], edges[b+1]]; a confidence of exactly 0 cannot occur.
    bins = (torch.bucketize(confidence, edges, right=False) - 1).clamp(0, n_bins - 1)
    counts = torch.bincount(bins, minlength=n_bins)
    safe = counts.clamp_min(1).double()
    return Reliability(
        edges=edges,
        confidence=torch.bincount(bins, weights=confidence, minlength=n_bins) / safe,
        accuracy=torch.bincount(bins, weights=correct, minlength=n_bins) / safe,
        counts=counts,
    )


def expected_calibration_error(probabilities: Tensor, labels: Tensor, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al., 2017)."""
    return reliability(probabilities, labels, n_bins).ece


def ablation_table(run_dirs: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """One row per run: accuracy, best epoch, time and parameters in training and at inference."""
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        metrics = run.metrics
        rows.append({
            "run": run.name,
            "aux heads": "yes" if run.predictions.aux else "no",
            "test accuracy": metrics.test_accuracy,
            "test accuracy (no TTA)": metrics.test_accuracy_no_tta,
            "best val accuracy": metrics.best_val_accuracy,
            "best epoch": metrics.best_epoch,
            "epochs": metrics.epochs,
            "train time (s)": metrics.train_seconds,
            "params (training)": metrics.parameters["train"],
            "params (inference)": metrics.parameters["inference"],
            "device": metrics.device,
            "data": metrics.data_source,
        })  # fmt: skip
    return rows


# Where and how a run ran, not what it trained: never a difference between two runs' settings.
OPERATIONAL_SETTINGS = ("train.run_dir", "train.resume", "train.progress", "train.device")


def differing_settings(a: RunRecord, b: RunRecord) -> list[str]:
    """The model and training settings (``"model.width"``, ``"train.lr"``, ...) in which two runs differ.

    A setting an older run did not record counts as its default (what that run had).
    """

    def flat(record: RunRecord) -> dict[str, Any]:
        model = record.model_config.to_dict()  # fills in what an older record left out
        train = {**TrainConfig().to_dict(), **record.train_config}
        return {**{f"model.{k}": v for k, v in model.items()}, **{f"train.{k}": v for k, v in train.items()}}

    first, second = flat(a), flat(b)
    return [name for name in first if name not in OPERATIONAL_SETTINGS and first[name] != second[name]]


def paired_run_change(baseline: RunRecord, other: RunRecord) -> tuple[float, float] | None:
    """``other``'s test accuracy (with its TTA) minus ``baseline``'s, paired image by image, and its
    standard error; ``None`` when the two were not tested on the same images."""
    same_data = baseline.data.get("digest") == other.data.get("digest")
    labels = baseline.predictions.labels
    if not same_data or not torch.equal(labels, other.predictions.labels):
        return None
    right = [record.predictions.combined().argmax(1) == labels for record in (baseline, other)]
    return paired_difference(*right)


def format_table(rows: list[dict[str, Any]], floats: str = "{:.4f}") -> str:
    """A plain-text table of ``rows`` (dicts with the same keys), for printing in notebooks."""
    if not rows:
        return "(no rows)"
    headers = list(rows[0])

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return floats.format(value)
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    table = [headers] + [[cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    lines = ["  ".join(text.rjust(width) for text, width in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def run_test_data(data: CIFAR10Data, recorded: dict[str, Any]) -> CIFAR10Data | None:
    """The loaded data, or its class-balanced subset, whose digest is the one a run recorded; else None.

    ``recorded`` is the run's ``config["data"]`` (source, train and test sizes, digest). A run of a
    recipe with a data subset (``smoke``) recorded the subset's digest, so the subset of the
    recorded sizes is tried too. ``None`` means the stored predictions belong to other images.
    """
    if data.fingerprint()["digest"] == recorded["digest"]:
        return data
    sizes = (recorded.get("train"), recorded.get("test"))
    if None not in sizes and sizes != (len(data.train_labels), len(data.test_labels)):
        subset = data.subset(*sizes)
        if subset.fingerprint()["digest"] == recorded["digest"]:
            return subset
    return None


def stage_summary(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per stretch of epochs at one image side (the low-resolution plan): where each ends.

    Accuracies are those recorded after the stage's last epoch (validation only if it validated).
    """
    stages: list[list[dict[str, Any]]] = []
    for row in history:
        if stages and stages[-1][-1].get("resolution") == row.get("resolution"):
            stages[-1].append(row)
        else:
            stages.append([row])
    summary = []
    for rows in stages:
        last = rows[-1]
        val = last.get("val_accuracy")
        summary.append(
            {
                "image side": f"{last.get('resolution', 32)} px",
                "epochs": f"{rows[0]['epoch']}-{last['epoch']}" if len(rows) > 1 else str(last["epoch"]),
                "train accuracy": last["train_accuracy"],
                "val accuracy (main)": val,
                "aux1": last.get("val_accuracy_aux1"),
                "aux2": last.get("val_accuracy_aux2"),
                "train - val": None if val is None else last["train_accuracy"] - val,
            }
        )
    return summary
