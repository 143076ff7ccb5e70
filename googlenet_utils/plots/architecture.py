"""Figures of the architecture: the Inception module, costs, branch shares, gradients (01, 02, 05)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..probes import BRANCH_LABELS
from .common import HEAD_COLOURS, _subplots


def draw_inception_module(reduced: bool = True, channels: Sequence[int] | None = None) -> Figure:
    """The Inception module as a block diagram: naive (the paper's Figure 2a) or with 1x1 reductions (2b).

    ``channels`` (the seven table numbers: in, 1x1, 3x3r, 3x3, 5x5r, 5x5, pool) label each box with
    the channels it outputs, and the concatenation with the module's width. Every arrow runs straight
    up its branch's column, so none crosses or hides under a box.
    """
    c = channels
    fig, ax = _subplots(figsize=(8, 4.2))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.88)
    ax.set_xlim(0, 10)
    ax.set_ylim(0.1, 5.1)
    ax.axis("off")
    xs = (1.25, 3.75, 6.25, 8.75)  # one column per branch
    bottom_y, lower_y, upper_y, top_y = 0.5, 1.9, 3.3, 4.7

    def box(x: float, y: float, text: str, colour: str, width: float = 2.2) -> None:
        corner = (x - width / 2, y - 0.3)
        ax.add_patch(
            FancyBboxPatch(corner, width, 0.6, boxstyle="round,pad=0.05", fc=colour, ec="black", zorder=2)
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=9, zorder=3)

    def arrow(x: float, y_from: float, y_to: float) -> None:
        """Straight up, from the box at ``y_from`` (its top edge) to the box at ``y_to`` (its bottom edge)."""
        start, end = (x, y_from + 0.35), (x, y_to - 0.35)
        style = {"arrowstyle": "-|>", "mutation_scale": 12, "shrinkA": 0, "shrinkB": 0, "color": "black"}
        ax.add_patch(FancyArrowPatch(start, end, zorder=1, **style))

    def label(name: str, index: int) -> str:
        return f"{name}\n({c[index]})" if c else name

    span = xs[-1] - xs[0] + 2.2  # the input and the concatenation span all four columns
    box(5, bottom_y, label("previous layer", 0), "#eeeeee", width=span)
    if c:
        width = c[1] + c[3] + c[5] + (c[6] if reduced else c[0])
        box(5, top_y, f"filter concatenation\n({width})", "#eeeeee", width=span)
    else:
        box(5, top_y, "filter concatenation", "#eeeeee", width=span)
    if reduced:
        # (lower box or None, upper box) per column
        columns = [
            (None, (label("1x1 conv", 1), "#9ecae1")),
            ((label("1x1 conv, reduce", 2), "#c6dbef"), (label("3x3 conv", 3), "#fdae6b")),
            ((label("1x1 conv, reduce", 4), "#c6dbef"), (label("5x5 conv", 5), "#a1d99b")),
            ((label("3x3 max pool", 0), "#d9d9d9"), (label("1x1 conv, projection", 6), "#c6dbef")),
        ]
        for x, (lower, upper) in zip(xs, columns, strict=True):
            box(x, upper_y, *upper)
            if lower is None:
                arrow(x, bottom_y, upper_y)
            else:
                box(x, lower_y, *lower)
                arrow(x, bottom_y, lower_y)
                arrow(x, lower_y, upper_y)
            arrow(x, upper_y, top_y)
    else:
        middle_y = (bottom_y + top_y) / 2
        boxes = [
            (label("1x1 conv", 1), "#9ecae1"),
            (label("3x3 conv", 3), "#fdae6b"),
            (label("5x5 conv", 5), "#a1d99b"),
            (label("3x3 max pool", 0), "#d9d9d9"),
        ]
        for x, (text, colour) in zip(xs, boxes, strict=True):
            box(x, middle_y, text, colour)
            arrow(x, bottom_y, middle_y)
            arrow(x, middle_y, top_y)
    kind = "with 1x1 dimension reductions (Figure 2b)" if reduced else "naive version (Figure 2a)"
    ax.set_title(f"Inception module, {kind}" + ("\noutput channels in brackets" if c else ""), fontsize=11)
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
    ax.set_ylim(0, 1.25 * max(*naive, *reduced))  # headroom, so the legend sits above every bar
    ax.set_xlabel("Inception module")
    ax.set_ylabel(f"{quantity} ({unit})")
    ax.set_title(f"{quantity[:1].upper()}{quantity[1:]}: naive vs dimension-reduced Inception modules")
    ax.legend(loc="upper right", ncols=2)
    fig.tight_layout()
    return fig


def plot_gradient_norms(norms: dict[str, dict[str, Sequence[float]]], layers: Sequence[str]) -> Figure:
    """Gradient norm the main head and the auxiliary heads send to each layer; one panel per case.

    ``norms[case]`` maps ``"main"`` and ``"aux"`` (and, if given, ``"total"``: the gradient of the
    whole training loss, measured as such) to one norm per entry of ``layers`` (input side first).
    All panels share one log-scale axis, so bars compare across panels. A zero (a layer the
    auxiliary heads cannot reach) has no place on a log axis: it is written as "0" instead.
    """
    fig, axes = _subplots(1, len(norms), figsize=(4.3 * len(norms) + 0.7, 3.8), sharey=True, squeeze=False)
    positions = np.arange(len(layers))
    with_total = all("total" in values for values in norms.values())
    width = 0.27 if with_total else 0.4
    heads = {
        "main": ("main head", HEAD_COLOURS["main"]),
        "aux": ("aux heads, 0.3 x their losses", HEAD_COLOURS["aux1"]),
    }
    if with_total:
        heads["total"] = ("all heads together (what SGD follows)", "tab:grey")
    offsets = dict(zip(heads, (np.arange(len(heads)) - (len(heads) - 1) / 2) * width, strict=True))
    for ax, (case, values) in zip(axes[0], norms.items(), strict=True):
        for head, (label, colour) in heads.items():
            offset = offsets[head]
            heights = np.asarray(values[head], dtype=float)
            drawn = heights > 0
            ax.bar(positions[drawn] + offset, heights[drawn], width, label=label, color=colour)
            for position in positions[~drawn]:
                ax.annotate("0", (position + offset, 0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                            textcoords="offset points", ha="center", fontsize=9, color=colour)  # fmt: skip
        ax.set_yscale("log")
        ax.set_xticks(positions, list(layers))
        ax.set_xlim(-0.6, len(layers) - 0.4)
        ax.set_xlabel("layer (input side → output side)")
        ax.set_title(case, fontsize=10)
    drawn = [v for values in norms.values() for head in heads for v in values[head] if v > 0]
    low, high = min(drawn) / 2.5, max(drawn) * 1.6
    ticks = [m * 10.0**e for e in range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
             for m in (1, 2, 5) if low <= m * 10.0**e <= high]  # fmt: skip
    axes[0, 0].set_ylim(low, high)
    axes[0, 0].set_yticks(ticks, [f"{t:g}" for t in ticks])
    axes[0, 0].minorticks_off()
    for ax in axes[0]:
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("gradient norm (log scale)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(heads), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_branch_shares(rows: list[dict[str, Any]]) -> Figure:
    """Stacked shares of output channels and of multiply-adds per branch, for each Inception module.

    ``rows`` as ``analysis.branch_shares`` returns them. Both panels carry their own labelled
    percentage axis (no shared y axis, whose tick labels matplotlib would hide on the right panel).
    """
    modules = [row["module"] for row in rows]
    fig, axes = _subplots(1, 2, figsize=(11, 3.8))
    ticks = np.linspace(0, 1, 6)
    for ax, quantity in zip(axes, ("channels", "MACs"), strict=True):
        what = "output channels" if quantity == "channels" else "multiply-adds"
        totals = np.array([sum(row[f"{b} {quantity}"] for b in BRANCH_LABELS.values()) for row in rows])
        bottom = np.zeros(len(rows))
        for branch in BRANCH_LABELS.values():
            share = np.array([row[f"{branch} {quantity}"] for row in rows]) / totals
            ax.bar(modules, share, bottom=bottom, label=branch)
            bottom += share
        ax.set_ylim(0, 1)
        ax.set_yticks(ticks, [f"{tick:.0%}" for tick in ticks])
        ax.set_xlabel("Inception module")
        ax.set_ylabel(f"share of the module's {what}")
        ax.set_title(f"Share of {what} per branch")
    axes[1].legend(title="branch", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig
