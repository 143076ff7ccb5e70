"""Figures of the data: image grids, class shares, pixel statistics, augmentations (notebook 03)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .common import _grid, _image, _subplots


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
                ax.set_title(name, fontsize=9, loc="left")
    fig.suptitle(title or f"{per_class} images per class")
    fig.tight_layout()
    return fig


def plot_class_counts(
    counts: dict[str, Sequence[int]], classes: Sequence[str], random_size: int | None = None
) -> Figure:
    """Each split's share of every class, drawn as its deviation from an equal share.

    Equal counts make a bar of height zero: the legend gives each split's largest deviation,
    so a balanced split and a skewed one are told apart at a glance. ``random_size`` draws the
    band where a class's share in a random split of that many images falls 95% of the time
    (two binomial standard deviations; drawing without replacement narrows it a little), so a
    random split's drift can be read against chance.
    """
    fig, ax = _subplots(figsize=(9, 4))
    width = 0.8 / len(counts)
    positions = np.arange(len(classes))
    equal = 100 / len(classes)
    largest = 0.0
    for k, (split, values) in enumerate(counts.items()):
        values = np.asarray(values, dtype=float)
        deviation = 100 * values / values.sum() - equal  # percentage points
        worst = float(np.abs(deviation).max())
        largest = max(largest, worst)
        offset = positions + (k - (len(counts) - 1) / 2) * width
        bars = ax.bar(offset, deviation, width, label=f"{split}: largest {worst:.2f} pp")
        ax.plot(offset, deviation, "o", markersize=3, color=bars.patches[0].get_facecolor())  # zero shows too
    ax.axhline(0, color="black", linewidth=0.8, zorder=0)
    if random_size:
        share = 1 / len(classes)
        spread = 200 * float(np.sqrt(share * (1 - share) / random_size))  # two standard deviations, in pp
        ax.axhspan(-spread, spread, color="grey", alpha=0.15, lw=0, zorder=0,
                   label=f"a random split of {random_size:,}: 95% of shares (± {spread:.2f} pp)")  # fmt: skip
        largest = max(largest, spread)
    limit = max(1.2 * largest, 0.1)
    ax.set_ylim(-limit, limit)
    ax.set_xticks(positions, classes, rotation=30, ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel(f"share minus {equal:g}% (percentage points)")
    ax.set_title(f"Distance of each class's share from an equal {equal:g}%")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, title="split", title_fontsize=9)
    fig.tight_layout()
    return fig


def plot_channel_histograms(images: Tensor, title: str = "") -> Figure:
    """Histograms of the pixel values (0-255) of uint8 N x 3 x H x W images, one line per colour channel.

    A dashed line marks each channel's mean.
    """
    fig, ax = _subplots(figsize=(8, 3.4))
    for channel, colour in enumerate(("red", "green", "blue")):
        values = images[:, channel].flatten().numpy()
        weights = np.full(len(values), 100 / len(values))  # bar heights in % of the pixels
        style = {"color": f"tab:{colour}", "label": f"{colour} (mean {values.mean():.1f})"}
        ax.hist(values, bins=64, range=(0, 256), weights=weights, histtype="step", **style)
        ax.axvline(values.mean(), color=style["color"], linestyle="--", linewidth=1)
    ax.set_xlim(0, 256)
    ax.set_xlabel("pixel value (0-255, bins of 4)")
    ax.set_ylabel("share of pixels (%)")
    ax.set_title(title or f"Pixel values per colour channel ({len(images):,} images)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    fig.tight_layout()
    return fig


def plot_augmentations(
    originals: Tensor, augmented: Sequence[Tensor], titles: Sequence[str] = (), title: str = ""
) -> Figure:
    """Each original image followed by several augmented versions of it (rows = images)."""
    columns = 1 + len(augmented)
    fig, axes = _grid(len(originals) * columns, columns, size=1.4)
    for row in range(len(originals)):
        axes[row, 0].imshow(_image(originals[row]))
        axes[row, 0].set_title("original" if row == 0 else "", fontsize=9)
        for col, batch in enumerate(augmented, start=1):
            axes[row, col].imshow(_image(batch[row]))
            if row == 0:
                axes[row, col].set_title(titles[col - 1] if titles else f"augmented {col}", fontsize=9)
    fig.suptitle(title or "Random crop (4-pixel reflect padding) and horizontal flip")
    fig.tight_layout()
    return fig
