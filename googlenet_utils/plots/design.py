"""Figures of a sweep: accuracy against cost, and paired differences to the paper's choice (notebook 06)."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ..design import MATTERS_PP
from ..sweep_results import Comparison, VariantSummary
from .common import _subplots


def _bar(mean: float, low: float | None, high: float | None) -> list[list[float]] | None:
    return None if low is None else [[mean - low], [high - mean]]


def plot_design_choice(
    summaries: dict[str, VariantSummary],
    comparisons: Sequence[Comparison],
    *,
    title: str,
    matters: float = MATTERS_PP,
) -> Figure:
    """Left: each variant's mean test accuracy against its multiply-adds, with the 95% t interval over
    seeds and each seed as a dot. Right: each alternative minus the paper's choice (paired by seed),
    with its 95% interval, each seed's difference, and the band of differences too small to matter.

    Variants without results are left out of the left panel; comparisons without a shared seed
    are listed on the right without a point.
    """
    fig, (cost_ax, diff_ax) = _subplots(1, 2, figsize=(12, 3.2 + 0.25 * len(comparisons)))
    names = list(dict.fromkeys(name for c in comparisons for name in (c.reference, c.variant)))
    shown = [summaries[name] for name in names if name in summaries]
    for index, summary in enumerate(shown):
        x, interval = summary.macs / 1e6, summary.accuracy
        reference = any(summary.name == c.reference for c in comparisons)
        style = {"marker": "*" if reference else "o", "markersize": 11 if reference else 7, "capsize": 4}
        colour = f"C{index}"
        cost_ax.errorbar([x], [interval.mean], yerr=_bar(interval.mean, interval.low, interval.high),
                         color=colour, linestyle="none", label=summary.name, **style)  # fmt: skip
        cost_ax.plot([x] * len(summary.accuracies), summary.accuracies, ".", color=colour, alpha=0.5)
        cost_ax.annotate(f"{summary.name} (n={interval.n})", (x, interval.mean), textcoords="offset points",
                         xytext=(6, 4), fontsize=8, color=colour)  # fmt: skip
    if shown:
        spread = max(s.macs for s in shown) / min(s.macs for s in shown)
        if spread > 3:
            cost_ax.set_xscale("log")  # the naive module costs several times the reduced one
    cost_ax.set_xlabel("multiply-adds per 32x32 image, inference (millions)")
    cost_ax.set_ylabel("test accuracy (%), mean over seeds")
    cost_ax.set_title("accuracy against cost (bars: 95% t interval)")
    if shown:
        cost_ax.legend(fontsize=8, loc="lower right")

    rows = list(range(len(comparisons)))[::-1]  # first comparison at the top
    diff_ax.axvspan(-matters, matters, color="tab:gray", alpha=0.15, lw=0,
                    label=f"|difference| < {matters:g} pp: does not matter")  # fmt: skip
    diff_ax.axvline(0, color="black", lw=0.8)
    for row, comparison in zip(rows, comparisons, strict=True):
        if comparison.differences:
            interval = comparison.interval
            diff_ax.errorbar([interval.mean], [row], xerr=_bar(interval.mean, interval.low, interval.high),
                             fmt="o", color="tab:blue", capsize=4)  # fmt: skip
            diff_ax.plot(comparison.differences, [row] * len(comparison.differences), "x", color="tab:orange")
    if any(c.differences for c in comparisons):
        diff_ax.plot([], [], "x", color="tab:orange", label="one seed")
    diff_ax.set_yticks(rows, [f"{c.variant} − {c.reference}" for c in comparisons])
    diff_ax.set_ylim(-0.7, len(comparisons) - 0.3)
    diff_ax.set_xlabel("test accuracy difference (percentage points)")
    diff_ax.set_ylabel("alternative − paper's choice")
    diff_ax.set_title("paired by seed (bars: 95% t interval)")
    diff_ax.legend(fontsize=8, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
