"""Figures from inside a trained network: feature maps, filters, Grad-CAM, branch activity (05)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from ..probes import BRANCH_LABELS
from .common import _image, _row_label, _subplots


def plot_feature_maps(maps: dict[str, Tensor], image: Tensor | None = None, channels: int = 8) -> Figure:
    """The first ``channels`` feature maps of each Inception branch (one row per branch) for one image.

    All maps share one colour scale (0 to the largest activation shown), so brightness compares
    across branches and channels; the colour bar gives the values.
    """
    shown = {branch: tensor[0, :channels].detach().float().cpu() for branch, tensor in maps.items()}
    top = max(float(tensor.max()) for tensor in shown.values()) or 1.0
    offset = 1 if image is not None else 0
    columns = channels + offset
    fig = Figure(figsize=(1.1 * columns + 1.3, 1.15 * len(shown) + 0.9), layout="constrained")
    axes = fig.subplots(len(shown), columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    picture, titled = None, set()
    for row, (branch, tensor) in enumerate(shown.items()):
        for k in range(channels):
            ax = axes[row, k + offset]
            if k >= len(tensor):
                continue
            picture = ax.imshow(tensor[k].numpy(), cmap="viridis", vmin=0, vmax=top)
            if k not in titled:  # each column's heading sits on its top map (branches differ in width)
                ax.set_title(f"channel {k}", fontsize=9)
                titled.add(k)
        _row_label(axes[row, offset], f"{BRANCH_LABELS.get(branch, branch)} branch")
    if image is not None:
        axes[0, 0].imshow(_image(image))
        axes[0, 0].set_title("input image", fontsize=9)
    if picture is not None:
        colourbar = fig.colorbar(picture, ax=axes, shrink=0.8)
        colourbar.set_label("activation after ReLU (one scale for all maps)")
    most = max(len(tensor) for tensor in shown.values())  # a branch may have fewer than asked for
    fig.suptitle(f"Up to the first {most} channels of each branch (brighter = stronger activation)")
    return fig


def plot_filters(
    filters: Tensor,
    columns: int | None = None,
    notes: Sequence[str] | None = None,
    one_scale: bool = True,
    title: str = "",
) -> Figure:
    """First-layer kernels as enlarged RGB images in a near-square grid.

    ``filters`` in [0, 1], as ``probes.first_layer_filters`` returns them: with ``one_scale`` (its
    default) grey is a zero weight and the strongest weight of all kernels is fully saturated, so a
    faint kernel looks faint. ``notes`` (one short text per kernel) replaces the kernel number.
    """
    count, size = len(filters), filters.shape[-1]
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = -(-count // columns)
    cell = 1.45 if notes is not None else (1.05 if count <= 16 else 0.8)
    fig = Figure(figsize=(columns * cell + 0.4, rows * (cell + 0.35) + 1.0), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (ax, kernel) in enumerate(zip(axes.flat, filters, strict=False)):
        ax.imshow(_image(kernel), interpolation="nearest")  # nearest: each weight stays one square
        ax.set_title(notes[k] if notes is not None else f"#{k}", fontsize=9)
    scale = (
        "one scale for all: grey = 0, the strongest weight of any filter saturated"
        if one_scale
        else "each stretched from its smallest weight, black, to its largest, white"
    )
    heading = title or f"The {count} first-layer filters"
    fig.suptitle(f"{heading} ({size}x{size} weights per colour, as RGB;\n{scale})", fontsize=10)
    return fig


def plot_grad_cam(
    images: Tensor,
    heatmaps: Tensor,
    titles: Sequence[str],
    boxes: Sequence[tuple[int, int, int, int]] | None = None,
    columns: int = 4,
) -> Figure:
    """Each image (top) above its Grad-CAM heat map overlaid on it (bottom), with a colour bar.

    ``boxes`` (left, top, right, bottom in pixels, right and bottom excluded) are drawn on both.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    count = len(images)
    columns = max(1, min(columns, count))
    blocks = -(-count // columns)
    lines = max((title.count("\n") + 1 for title in titles), default=1)
    width = max(2.2 * columns + 1.3, 4.6)
    fig = Figure(figsize=(width, (4.0 + 0.3 * lines) * blocks + 0.6), layout="constrained")
    axes = fig.subplots(2 * blocks, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k in range(count):
        block, col = divmod(k, columns)
        plain, overlay = axes[2 * block, col], axes[2 * block + 1, col]
        plain.imshow(_image(images[k]))
        plain.set_title(titles[k], fontsize=9)
        overlay.imshow(_image(images[k]))
        overlay.imshow(heatmaps[k].cpu().numpy(), cmap="jet", alpha=0.5, vmin=0, vmax=1)
        if boxes is not None:
            left, top, right, bottom = boxes[k]
            for ax in (plain, overlay):  # pixel i spans i - 0.5 to i + 0.5
                ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                                       edgecolor="magenta", linewidth=1.3))  # fmt: skip
    for block in range(blocks):
        _row_label(axes[2 * block, 0], "image")
        _row_label(axes[2 * block + 1, 0], "Grad-CAM")
    scale = ScalarMappable(Normalize(0, 1), cmap="jet")  # the colours at full strength, not blended
    colourbar = fig.colorbar(scale, ax=axes, shrink=0.8)
    colourbar.set_label("evidence for the class (1 = the map's peak)")
    extra = "; magenta: the object's box" if boxes is not None else ""
    joint = "\n" if columns <= 2 else " "  # a narrow figure wraps its title instead of cutting it
    fig.suptitle(
        f"Where the last Inception module finds evidence{joint}(Grad-CAM, red = most){extra}", fontsize=11
    )
    return fig


def plot_branch_energy(
    shares: dict[str, Tensor],
    classes: Sequence[str],
    channel_shares: dict[str, Sequence[float]] | None = None,
) -> Figure:
    """Per module, how far each class's share of the activation energy is from the branch's mean share.

    ``shares[module]`` is classes x 4 (branches in ``BRANCH_LABELS`` order). Each cell prints, and
    its colour encodes, the same number: the class's share minus the branch's mean over classes, in
    percentage points. Under each column: the branch's mean share and, if ``channel_shares`` is
    given, its share of the module's channels (what it would carry if every channel were as strong).
    """
    branches = list(BRANCH_LABELS.values())
    deviations = {
        module: 100 * (share - share.nanmean(dim=0, keepdim=True)) for module, share in shares.items()
    }
    limit = max(float(d.nan_to_num().abs().max()) for d in deviations.values()) or 1.0
    fig = Figure(figsize=(5.6 * len(shares) + 1.8, 0.42 * len(classes) + 3.2), layout="constrained")
    axes = fig.subplots(1, len(shares), squeeze=False)[0]
    picture = None
    for ax, (module, share) in zip(axes, shares.items(), strict=True):
        picture = ax.imshow(
            deviations[module].numpy(), cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto"
        )
        for (i, j), value in np.ndenumerate(deviations[module].numpy()):
            strong = abs(value) > 0.6 * limit  # white on the darkest cells, black elsewhere
            ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=9,
                    color="white" if strong else "black")  # fmt: skip
        labels = []
        for j, branch in enumerate(branches):
            label = f"{branch}\nmean {float(share[:, j].nanmean()):.1%}"
            if channel_shares is not None:
                label += f"\nchannels {channel_shares[module][j]:.1%}"
            labels.append(label)
        ax.set_xticks(range(len(branches)), labels, fontsize=9)
        ax.set_yticks(range(len(classes)), classes, fontsize=9)
        ax.set_xlabel("branch (its mean share of the energy; its share of the channels)")
        ax.set_title(f"module {module}")
    axes[0].set_ylabel("true class")
    colourbar = fig.colorbar(picture, ax=axes, shrink=0.9)
    colourbar.set_label("class's share minus the branch's mean\n(percentage points; printed in each cell)")
    heading = (
        "How much more (red) or less (blue) of the module's activation energy a branch carries, by class"
    )
    fig.suptitle(heading, fontsize=11)
    return fig


def plot_branch_ablation(rows: list[dict[str, Any]], title: str = "") -> Figure:
    """Change in accuracy when each branch is replaced by its mean output (rows of ``branch_ablation``).

    Error bars span two paired standard errors either side: a bar whose error bar crosses zero is
    within the noise of the images used.
    """
    modules = list(dict.fromkeys(row["module"] for row in rows))
    colours = [f"C{modules.index(row['module'])}" for row in rows]
    changes = np.array([100 * row["change"] for row in rows])
    errors = np.array([200 * row["standard error"] for row in rows])
    fig, ax = _subplots(figsize=(7.5, 0.38 * len(rows) + 1.7))
    positions = np.arange(len(rows))[::-1]
    ax.barh(positions, changes, xerr=errors, color=colours, capsize=3, error_kw={"linewidth": 1})
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(positions, [f"{row['module']}: {row['branch']}" for row in rows])
    reach = max(float(np.max(np.abs(changes) + errors)) if len(rows) else 0.0, 1.0)  # at least 1 pp
    ax.set_xlim(-1.1 * reach, max(0.25 * reach, float(np.max(changes + errors)) * 1.1))
    ax.set_xlabel("change in accuracy (percentage points; bars: ± 2 standard errors)")
    ax.set_ylabel("module: branch replaced by its mean")
    ax.set_title(title or "Accuracy lost when one branch carries no information about the image")
    fig.tight_layout()
    return fig


def plot_filter_structure(measures: dict[str, dict[str, Tensor]], chance: dict[str, float]) -> Figure:
    """Per-filter values of ``analysis.filter_structure`` for several networks, one panel per measure.

    ``measures`` maps a network's name (e.g. "trained", "untrained") to ``filter_structure``'s
    result; ``chance`` maps each measure to its average for random weights (a dashed line). Dots
    are filters (spread vertically so they do not hide each other); the black bar is their mean.
    """
    explain = {
        "edge fit": "edge fit: share of the grey pattern\nthat is a straight ramp (an edge)",
        "colour share": "colour share: share of the kernel\nin differences between R, G and B",
    }
    spread = np.random.default_rng(0)
    fig, axes = _subplots(
        1, len(chance), figsize=(5.0 * len(chance), 0.8 * len(measures) + 2.0), squeeze=False
    )
    for ax, quantity in zip(axes[0], chance, strict=True):
        for row, result in enumerate(measures.values()):
            values = result[quantity].numpy()
            values = values[~np.isnan(values)]
            ax.plot(values, row + spread.uniform(-0.2, 0.2, len(values)), "o", markersize=4, alpha=0.6,
                    color=f"C{row}")  # fmt: skip
            if len(values):
                ax.plot([values.mean()] * 2, [row - 0.32, row + 0.32], color="black", linewidth=2.5)
                ax.annotate(f"mean {values.mean():.2f}", (values.mean(), row + 0.34), ha="center", fontsize=9)
        ax.axvline(chance[quantity], color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"random weights: {chance[quantity]:.2f} on average", (chance[quantity], -0.55),
                    xytext=(4, 0), textcoords="offset points", fontsize=9, color="dimgrey")  # fmt: skip
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.65, len(measures) - 0.3)
        ax.set_yticks(range(len(measures)), list(measures))
        ax.set_xlabel(explain.get(quantity, quantity))
        ax.set_ylabel("network")
    fig.suptitle("What the first-layer filters are made of (one dot per filter)", fontsize=11)
    fig.tight_layout()
    return fig
