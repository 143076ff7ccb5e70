"""Figures for the course. Each function returns a matplotlib ``Figure`` with labelled axes.

None of them calls ``plt.show()`` or touches pyplot's global state: a notebook displays the
returned figure (once), a script saves it with ``fig.savefig``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .analysis import BRANCH_LABELS, Reliability

HEAD_COLOURS = {"main": "tab:blue", "aux1": "tab:orange", "aux2": "tab:green"}


def _image(pixels: Tensor) -> np.ndarray:
    """A C x H x W image (uint8, or float in [0, 1]) as H x W x C for ``imshow``."""
    array = pixels.detach().cpu()
    array = array.float() / 255 if array.dtype == torch.uint8 else array.float().clamp(0, 1)
    return array.permute(1, 2, 0).numpy()


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """Like ``plt.subplots`` but outside pyplot, so notebooks show the returned figure exactly once."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _grid(n: int, columns: int, size: float = 1.6) -> tuple[Figure, np.ndarray]:
    rows = max(1, -(-n // columns))
    fig, axes = _subplots(rows, columns, figsize=(columns * size, rows * size + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


# --------------------------------------------------------------------------- data


def plot_image_grid(
    images: Tensor, labels: Tensor, classes: Sequence[str], per_class: int = 8, title: str = ""
) -> Figure:
    """``per_class`` images of every class, one class per row, labelled with the class name."""
    fig, axes = _grid(len(classes) * per_class, per_class, size=1.1)
    for row, name in enumerate(classes):
        members = torch.nonzero(labels == row).flatten()[:per_class]
        for col, index in enumerate(members.tolist()):
            ax = axes[row, col]
            ax.imshow(_image(images[index]))
            if col == 0:
                ax.set_title(name, fontsize=8, loc="left")
    fig.suptitle(title or f"{per_class} images per class")
    fig.tight_layout()
    return fig


def plot_class_counts(counts: dict[str, Sequence[int]], classes: Sequence[str]) -> Figure:
    """Images per class for each named split (e.g. train, validation, test)."""
    fig, ax = _subplots(figsize=(9, 3.5))
    width = 0.8 / len(counts)
    positions = np.arange(len(classes))
    for k, (split, values) in enumerate(counts.items()):
        ax.bar(positions + k * width, values, width, label=split)
    ax.set_xticks(positions + width * (len(counts) - 1) / 2, classes, rotation=30, ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.legend()
    ax.set_title("Class balance")
    fig.tight_layout()
    return fig


def plot_augmentations(originals: Tensor, augmented: Sequence[Tensor], titles: Sequence[str] = ()) -> Figure:
    """Each original image followed by several augmented versions of it (rows = images)."""
    columns = 1 + len(augmented)
    fig, axes = _grid(len(originals) * columns, columns, size=1.4)
    for row in range(len(originals)):
        axes[row, 0].imshow(_image(originals[row]))
        axes[row, 0].set_title("original" if row == 0 else "", fontsize=8)
        for col, batch in enumerate(augmented, start=1):
            axes[row, col].imshow(_image(batch[row]))
            if row == 0:
                axes[row, col].set_title(titles[col - 1] if titles else f"augmented {col}", fontsize=8)
    fig.suptitle("Random crop (4-pixel reflect padding) and horizontal flip")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- architecture


def draw_inception_module(reduced: bool = True, channels: Sequence[int] | None = None) -> Figure:
    """The Inception module as a block diagram: naive (left figure of the paper) or with 1x1 reductions.

    ``channels`` (the seven table numbers: in, 1x1, 3x3r, 3x3, 5x5r, 5x5, pool) label each box.
    """
    c = channels
    fig, ax = _subplots(figsize=(7.5, 4.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6.2)
    ax.axis("off")

    def box(x: float, y: float, text: str, colour: str) -> tuple[float, float]:
        ax.add_patch(
            FancyBboxPatch((x - 1.0, y - 0.3), 2.0, 0.6, boxstyle="round,pad=0.05", fc=colour, ec="black")
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=8)
        return x, y

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        ax.add_patch(FancyArrowPatch((start[0], start[1] + 0.35), (end[0], end[1] - 0.35), arrowstyle="->",
                                     mutation_scale=10))  # fmt: skip

    def label(name: str, value: int | None) -> str:
        return f"{name}\n({value})" if value is not None else name

    previous = box(5, 0.5, label("previous layer", c[0] if c else None), "#eeeeee")
    concat = box(5, 5.6, "filter concatenation", "#eeeeee")
    xs = (1.4, 3.8, 6.2, 8.6)
    if reduced:
        tops = [
            box(xs[0], 3.0, label("1x1 conv", c[1] if c else None), "#9ecae1"),
            box(xs[1], 3.0, label("3x3 conv", c[3] if c else None), "#fdae6b"),
            box(xs[2], 3.0, label("5x5 conv", c[5] if c else None), "#a1d99b"),
            box(xs[3], 3.0, label("1x1 conv", c[6] if c else None), "#9ecae1"),
        ]
        bottoms = [
            None,
            box(xs[1], 1.75, label("1x1 conv", c[2] if c else None), "#9ecae1"),
            box(xs[2], 1.75, label("1x1 conv", c[4] if c else None), "#9ecae1"),
            box(xs[3], 1.75, "3x3 max pool", "#d9d9d9"),
        ]
    else:
        tops = [
            box(xs[0], 3.0, label("1x1 conv", c[1] if c else None), "#9ecae1"),
            box(xs[1], 3.0, label("3x3 conv", c[3] if c else None), "#fdae6b"),
            box(xs[2], 3.0, label("5x5 conv", c[5] if c else None), "#a1d99b"),
            box(xs[3], 3.0, label("3x3 max pool", c[0] if c else None), "#d9d9d9"),
        ]
        bottoms = [None] * 4
    for top, bottom in zip(tops, bottoms, strict=True):
        if bottom is not None:
            arrow(previous, bottom)
            arrow(bottom, top)
        else:
            arrow(previous, top)
        arrow(top, concat)
    kind = "with 1x1 dimension reductions" if reduced else "naive version"
    ax.set_title(f"Inception module, {kind}" + (" (output channels in brackets)" if c else ""))
    return fig


def plot_cost_comparison(
    names: Sequence[str], naive: Sequence[float], reduced: Sequence[float], quantity: str, unit: str
) -> Figure:
    """Side-by-side bars of a cost (parameters or multiply-adds) for naive and reduced modules."""
    fig, ax = _subplots(figsize=(9, 3.5))
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, naive, 0.4, label="naive", color="tab:red")
    ax.bar(positions + 0.2, reduced, 0.4, label="with 1x1 reductions", color="tab:blue")
    ax.set_xticks(positions, names)
    ax.set_xlabel("Inception module")
    ax.set_ylabel(f"{quantity} ({unit})")
    ax.set_title(f"{quantity}: naive vs dimension-reduced Inception modules")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_branch_shares(rows: list[dict[str, Any]]) -> Figure:
    """Stacked shares of output channels and of multiply-adds per branch, for each Inception module."""
    modules = [row["module"] for row in rows]
    fig, axes = _subplots(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, quantity in zip(axes, ("channels", "MACs"), strict=True):
        totals = np.array(
            [sum(row[f"{b} {quantity}"] for b in BRANCH_LABELS.values()) for row in rows], float
        )
        bottom = np.zeros(len(rows))
        for branch in BRANCH_LABELS.values():
            share = np.array([row[f"{branch} {quantity}"] for row in rows]) / totals
            ax.bar(modules, share, bottom=bottom, label=branch)
            bottom += share
        ax.set_xlabel("Inception module")
        ax.set_ylabel(
            f"share of {'output channels' if quantity == 'channels' else 'multiply-adds'} (fraction)"
        )
        ax.set_title(f"Share of {'output channels' if quantity == 'channels' else 'compute'} per branch")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- training


def plot_learning_curves(history: list[dict[str, Any]]) -> Figure:
    """Loss per head, accuracy per head and split, and the learning rate, against the epoch."""
    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, acc_ax, lr_ax) = _subplots(1, 3, figsize=(14, 3.8))

    def series(key: str) -> list[float] | None:
        values = [row.get(key) for row in history]
        return None if any(v is None for v in values) else values

    for head, colour in HEAD_COLOURS.items():
        if (values := series(f"train_loss_{head}")) is not None:
            loss_ax.plot(epochs, values, color=colour, label=f"train, {head} head")
    loss_ax.plot(epochs, series("val_loss"), "k--", label="validation, main head")
    loss_ax.set_title("Loss (cross-entropy, with label smoothing in training)")
    acc_ax.plot(
        epochs, series("train_accuracy"), color="tab:blue", alpha=0.5, label="train (augmented), main"
    )
    acc_ax.plot(epochs, series("val_accuracy"), color="tab:blue", label="validation, main")
    for head in ("aux1", "aux2"):
        if (values := series(f"val_accuracy_{head}")) is not None:
            acc_ax.plot(epochs, values, color=HEAD_COLOURS[head], label=f"validation, {head}")
    acc_ax.set_title("Accuracy")
    lr_ax.plot(epochs, series("lr"), color="tab:purple")
    lr_ax.set_title("Learning rate at the end of each epoch")
    for ax, unit in ((loss_ax, "loss (nats)"), (acc_ax, "accuracy (fraction)"), (lr_ax, "learning rate")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
    loss_ax.legend(fontsize=8)
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- results


def plot_confusion(confusion: Tensor, classes: Sequence[str], normalised: bool = True) -> Figure:
    """The confusion matrix as a heat map, row-normalised (share of each true class) or as counts."""
    values = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp_min(1) if normalised else confusion
    fig, ax = _subplots(figsize=(7, 6))
    image = ax.imshow(values.numpy(), cmap="Blues")
    for (i, j), value in np.ndenumerate(values.numpy()):
        text = f"{value:.2f}" if normalised else f"{int(value)}"
        ax.text(
            j,
            i,
            text,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if value > values.max() / 2 else "black",
        )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (" (each row sums to 1)" if normalised else " (image counts)"))
    colourbar = fig.colorbar(image, ax=ax)
    colourbar.set_label("share of the true class" if normalised else "images")
    fig.tight_layout()
    return fig


def plot_precision_recall(precision: Tensor, recall: Tensor, classes: Sequence[str]) -> Figure:
    """Per-class precision and recall as paired bars."""
    fig, ax = _subplots(figsize=(9, 3.5))
    positions = np.arange(len(classes))
    ax.bar(positions - 0.2, precision.numpy(), 0.4, label="precision")
    ax.bar(positions + 0.2, recall.numpy(), 0.4, label="recall")
    ax.set_xticks(positions, classes, rotation=30, ha="right")
    ax.set_ylim(min(0.5, float(min(precision.min(), recall.min())) - 0.05), 1.0)
    ax.set_xlabel("class")
    ax.set_ylabel("fraction")
    ax.set_title("Per-class precision and recall (test set)")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_reliability(result: Reliability) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, with the bin counts below."""
    centres = ((result.edges[:-1] + result.edges[1:]) / 2).numpy()
    width = float(result.edges[1] - result.edges[0])
    used = result.counts > 0
    fig, (ax, count_ax) = _subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centres[used], result.accuracy[used].numpy(), width, edgecolor="black", label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlabel("confidence of the predicted class (probability)")
    ax.set_ylabel("accuracy (fraction)")
    ax.set_title(f"Reliability diagram, ECE = {result.ece:.3f}")
    ax.legend(loc="upper left")
    count_ax.bar(centres, result.counts.numpy(), width, color="grey")
    count_ax.set_xlabel("confidence of the predicted class (probability)")
    count_ax.set_ylabel("images")
    fig.tight_layout()
    return fig


def plot_mistakes(
    images: Tensor, mistakes: list[tuple[int, int, int, float]], classes: Sequence[str], columns: int = 8
) -> Figure:
    """A gallery of mistakes: each image with its true class, the prediction and its confidence."""
    fig, axes = _grid(len(mistakes), columns, size=1.6)
    for ax, (index, true, predicted, confidence) in zip(axes.flat, mistakes, strict=False):
        ax.imshow(_image(images[index]))
        ax.set_title(f"{classes[true]}\n-> {classes[predicted]} {confidence:.0%}", fontsize=7)
    fig.suptitle("Most confident mistakes (true class -> predicted, confidence)")
    fig.tight_layout()
    return fig


def plot_head_accuracies(accuracies: dict[str, float]) -> Figure:
    """Test accuracy of each head as bars, with the value written on each."""
    fig, ax = _subplots(figsize=(6, 3.2))
    names, values = list(accuracies), list(accuracies.values())
    bars = ax.bar(names, values, color=["tab:blue", "tab:cyan", "tab:orange", "tab:green"][: len(names)])
    ax.bar_label(bars, labels=[f"{v:.2%}" for v in values])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("head")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("What each classifier head gets right")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- inside the network


def plot_feature_maps(maps: dict[str, Tensor], image: Tensor | None = None, channels: int = 8) -> Figure:
    """The first ``channels`` feature maps of each Inception branch (one row per branch) for one image."""
    columns = channels + (1 if image is not None else 0)
    fig, axes = _grid(len(maps) * columns, columns, size=1.25)
    for row, (branch, tensor) in enumerate(maps.items()):
        offset = 0
        if image is not None:
            axes[row, 0].imshow(_image(image))
            axes[row, 0].set_title("input" if row == 0 else "", fontsize=8)
            offset = 1
        for k in range(min(channels, tensor.shape[1])):
            axes[row, k + offset].imshow(tensor[0, k].detach().float().cpu().numpy(), cmap="viridis")
            axes[row, k + offset].set_title(f"{BRANCH_LABELS.get(branch, branch)} #{k}", fontsize=7)
    fig.suptitle("Feature maps of the four branches (brighter = stronger activation)")
    fig.tight_layout()
    return fig


def plot_filters(filters: Tensor, columns: int = 16) -> Figure:
    """First-layer kernels as small RGB images (each kernel scaled to its own range)."""
    fig, axes = _grid(len(filters), columns, size=0.7)
    for k, (ax, kernel) in enumerate(zip(axes.flat, filters, strict=False)):
        ax.imshow(_image(kernel), interpolation="nearest")
        ax.set_title(f"{k}", fontsize=6)
    fig.suptitle(f"The {len(filters)} first-layer filters ({filters.shape[-1]}x{filters.shape[-1]} px, RGB)")
    fig.tight_layout()
    return fig


def plot_grad_cam(images: Tensor, heatmaps: Tensor, titles: Sequence[str]) -> Figure:
    """Each image beside its Grad-CAM heat map overlaid on it."""
    fig, axes = _grid(2 * len(images), 2 * min(4, len(images)), size=1.7)
    for k, (image, heat, title) in enumerate(zip(images, heatmaps, titles, strict=True)):
        plain, overlay = axes.flat[2 * k], axes.flat[2 * k + 1]
        plain.imshow(_image(image))
        plain.set_title(title, fontsize=7)
        overlay.imshow(_image(image))
        overlay.imshow(heat.cpu().numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
        overlay.set_title("Grad-CAM", fontsize=7)
    fig.suptitle("Where the last Inception stage looks (Grad-CAM, red = most evidence)")
    fig.tight_layout()
    return fig
