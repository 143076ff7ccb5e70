"""Turning a training run into numbers: accuracy per head, errors, calibration, and inside the network.

Every function takes plain tensors or a run directory and returns tensors, numbers or rows;
``plots.py`` draws them.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .complexity import layer_costs
from .model import GoogLeNet, InceptionModule
from .train import PREDICTIONS_FILE

BRANCHES = ("branch1x1", "branch3x3", "branch5x5", "branch_pool")
BRANCH_LABELS = {"branch1x1": "1x1", "branch3x3": "3x3", "branch5x5": "5x5", "branch_pool": "pool proj"}


# --------------------------------------------------------------------------- reading a run


@dataclass
class RunRecord:
    """Everything a finished run left in its directory."""

    run_dir: Path
    config: dict[str, Any]
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    predictions: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run_dir.name


def read_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """``history.csv`` as a list of rows with numbers as numbers and empty cells as ``None``."""

    def number(text: str) -> float | int | None:
        if text == "":
            return None
        value = float(text)
        return int(value) if value.is_integer() and "." not in text and "e" not in text else value

    with open(path, newline="") as file:
        return [{key: number(value) for key, value in row.items()} for row in csv.DictReader(file)]


def load_run(run_dir: str | os.PathLike) -> RunRecord:
    """Read a run directory written by ``fit`` (config, history, metrics, test predictions)."""
    run_dir = Path(run_dir)
    needed = ["config.json", "history.csv", "metrics.json", PREDICTIONS_FILE]
    missing = [name for name in needed if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a finished run: it lacks {', '.join(missing)}. Train with "
            "googlenet_utils.fit (notebook 04 or `make train`) and let it reach the end."
        )
    return RunRecord(
        run_dir=run_dir,
        config=json.loads((run_dir / "config.json").read_text()),
        history=read_history(run_dir / "history.csv"),
        metrics=json.loads((run_dir / "metrics.json").read_text()),
        predictions=torch.load(run_dir / PREDICTIONS_FILE, map_location="cpu", weights_only=True),
    )


# --------------------------------------------------------------------------- accuracy and errors


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of rows whose highest logit is the label."""
    return (logits.argmax(1) == labels).float().mean().item()


def tta_logits(predictions: dict[str, Any]) -> Tensor:
    """Flip test-time augmentation: the mean of the logits for each image and for its mirror image."""
    if predictions.get("logits_flipped") is None:
        raise ValueError("these predictions have no flipped logits: the run was made with tta=False")
    return (predictions["logits"] + predictions["logits_flipped"]) / 2


def head_accuracies(predictions: dict[str, Any]) -> dict[str, float]:
    """Test accuracy of the main head (with and without flip TTA) and of each auxiliary head."""
    labels = predictions["labels"]
    result = {"main": accuracy(predictions["logits"], labels)}
    if predictions.get("logits_flipped") is not None:
        result["main + flip TTA"] = accuracy(tta_logits(predictions), labels)
    for head in ("aux1", "aux2"):
        if predictions.get(head) is not None:
            result[head] = accuracy(predictions[head], labels)
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


# --------------------------------------------------------------------------- calibration


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


# --------------------------------------------------------------------------- inside the network


@torch.no_grad()
def branch_feature_maps(module: InceptionModule, inputs: Tensor) -> dict[str, Tensor]:
    """The output of each of an Inception module's four branches for ``inputs`` (its input tensor)."""
    maps: dict[str, Tensor] = {}
    hooks = [
        getattr(module, name).register_forward_hook(
            lambda _m, _i, out, name=name: maps.__setitem__(name, out)
        )
        for name in BRANCHES
    ]
    try:
        module(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return maps


@torch.no_grad()
def module_input(model: GoogLeNet, module_name: str, images: Tensor) -> Tensor:
    """What ``model.<module_name>`` receives when the model sees ``images`` (in eval mode)."""
    captured: list[Tensor] = []
    hook = getattr(model, module_name).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        hook.remove()
        model.train(was_training)
    return captured[0]


def first_layer_filters(model: GoogLeNet) -> Tensor:
    """The first convolution's kernels (out x 3 x k x k), each scaled to [0, 1] for display as RGB."""
    weights = model.stem.conv1.conv.weight.detach().float().cpu()
    low = weights.amin(dim=(1, 2, 3), keepdim=True)
    high = weights.amax(dim=(1, 2, 3), keepdim=True)
    return (weights - low) / (high - low).clamp_min(1e-12)


def grad_cam(
    model: nn.Module, images: Tensor, target_layer: nn.Module, classes: Tensor | None = None
) -> Tensor:
    """Grad-CAM heat maps (N x H x W, in [0, 1]) for ``classes`` (default: the predicted ones).

    The channels of ``target_layer``'s output are weighted by the mean gradient of the class
    score, summed, passed through ReLU and upsampled to the image size (Selvaraju et al., 2017).
    """
    captured: dict[str, Tensor] = {}

    def keep(_module, _inputs, output: Tensor) -> None:
        output.retain_grad()
        captured["features"] = output

    was_training = model.training
    model.eval()
    hook = target_layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(images.detach().requires_grad_(True))
            chosen = logits.argmax(1) if classes is None else classes.to(logits.device)
            logits.gather(1, chosen[:, None]).sum().backward()
    finally:
        hook.remove()
        model.train(was_training)
    features = captured["features"]
    channel_weights = features.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((channel_weights * features).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    peak = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    model.zero_grad(set_to_none=True)
    return (cam / peak).detach()


def branch_shares(model: GoogLeNet, input_size: int) -> list[dict[str, Any]]:
    """Per Inception module: output channels and multiply-adds of each branch (at ``input_size`` px)."""
    costs = layer_costs(model.eval(), (1, 3, input_size, input_size))
    rows = []
    for name, module in model.named_children():
        if not isinstance(module, InceptionModule):
            continue
        row: dict[str, Any] = {"module": name.removeprefix("inception")}
        for branch in BRANCHES:
            prefix = f"{name}.{branch}."
            inside = [c for c in costs if c.name.startswith(prefix)]
            row[f"{BRANCH_LABELS[branch]} channels"] = inside[-1].output_shape[0]
            row[f"{BRANCH_LABELS[branch]} MACs"] = sum(c.macs for c in inside)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- comparing runs


def ablation_table(run_dirs: list[str | os.PathLike]) -> list[dict[str, Any]]:
    """One row per run: accuracy, best epoch, time and parameters in training and at inference."""
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        metrics, predictions = run.metrics, run.predictions
        has_aux = predictions.get("aux1") is not None
        rows.append({
            "run": run.name,
            "aux heads": "yes" if has_aux else "no",
            "test accuracy": metrics["test_accuracy"],
            "test accuracy (no TTA)": metrics["test_accuracy_no_tta"],
            "best val accuracy": metrics["best_val_accuracy"],
            "best epoch": metrics["best_epoch"],
            "epochs": metrics["epochs"],
            "train time (s)": metrics["train_seconds"],
            "params (training)": metrics["parameters"]["train"],
            "params (inference)": metrics["parameters"]["inference"],
            "device": metrics["device"],
            "data": metrics["data"]["source"],
        })  # fmt: skip
    return rows


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
