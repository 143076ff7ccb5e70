"""Figures of a sweep: accuracy against cost, and paired differences to the paper's choice (notebook 06)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..design import MATTERS_PP, VARIANTS
from ..sweep_results import Comparison, VariantSummary
from .common import _subplots


def _bar(mean: float, low: float | None, high: float | None) -> list[list[float]] | None:
    return None if low is None else [[mean - low], [high - mean]]


DODGE = 0.004  # relative shift between variants of equal cost, so that none hides another
CATEGORICAL_FROM = 4  # more variants than this over a 3x range of cost: one column each


def _colour(name: str) -> Any:
    """One colour per variant in every figure of notebook 06: tab20's strong colours first, then pale."""
    names = list(VARIANTS)
    index = names.index(name) if name in names else len(names) + sum(map(ord, name)) % 8
    return colormaps["tab20"]((2 * index) % 20 + (index // 10) % 2)


def plot_design_choice(
    summaries: dict[str, VariantSummary],
    comparisons: Sequence[Comparison],
    *,
    title: str,
    matters: float = MATTERS_PP,
) -> Figure:
    """Left: each variant's mean test accuracy against its multiply-adds, with the 95% t interval over
    seeds and each seed as a dot (the paper's choice as a star; variants of equal cost are drawn a
    fraction of a percent apart; more than four variants over a 3x range of cost get a column each,
    ordered by cost; bars are cut at 0 and 100%, and the title says so). Right: each alternative minus the
    paper's choice, paired by seed, with its 95% interval, each seed's difference (x), and the grey
    band of differences too small to matter.

    Variants without results are left out of the left panel; comparisons without a shared seed
    keep their row on the right, marked "not measured yet".
    """
    fig, (cost_ax, diff_ax) = _subplots(1, 2, figsize=(13, 3.4 + 0.28 * len(comparisons)))
    names = list(dict.fromkeys(name for c in comparisons for name in (c.reference, c.variant)))
    shown = [summaries[name] for name in names if name in summaries]
    references = {c.reference for c in comparisons}
    same_cost: dict[int, list[str]] = {}
    for summary in shown:  # variants of equal cost (e.g. the dropout or aux-weight ones) side by side
        same_cost.setdefault(summary.macs, []).append(summary.name)
    spread = max((s.macs for s in shown), default=1) / min((s.macs for s in shown), default=1)
    # Many variants over a wide range of costs would pile up in one column of a log axis: then each
    # variant gets its own column, ordered by cost, and its tick label says the cost.
    by_cost = sorted(shown, key=lambda s: s.macs) if len(shown) > CATEGORICAL_FROM and spread > 3 else []
    column = {summary.name: index for index, summary in enumerate(by_cost)}
    for summary in shown:
        group = same_cost[summary.macs]
        dodge = 1 + DODGE * (group.index(summary.name) - (len(group) - 1) / 2)
        x = column[summary.name] if by_cost else summary.macs / 1e6 * dodge
        interval, colour = summary.accuracy, _colour(summary.name)
        star = summary.name in references
        style = {"marker": "*" if star else "o", "markersize": 12 if star else 7, "capsize": 4}
        label = f"{summary.name} (n={interval.n})"
        cost_ax.errorbar([x], [interval.mean], yerr=_bar(interval.mean, interval.low, interval.high),
                         color=colour, linestyle="none", label=label, **style)  # fmt: skip
        cost_ax.plot([x] * len(summary.accuracies), summary.accuracies, ".", color=colour, alpha=0.6)
    if by_cost:
        labels = [f"{s.name} ({s.macs / 1e6:.1f} M)" for s in by_cost]
        cost_ax.set_xticks(range(len(by_cost)), labels, rotation=40, ha="right", fontsize=9)
        cost_ax.set_xlim(-0.6, len(by_cost) - 0.4)
        cost_ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), title="variant (seeds)")
    elif shown:
        low, high = min(s.macs for s in shown) / 1e6, max(s.macs for s in shown) / 1e6
        if high / low <= 3:  # a linear axis at least +-10% wide: the dodge must not look like a cost
            pad = max(0.1 * high, 0.15 * (high - low))
            cost_ax.set_xlim(low - pad, high + pad)
        else:
            cost_ax.set_xscale("log")  # the naive module costs several times the reduced one
            plain = FuncFormatter(lambda value, _: f"{value:g}")  # 20, not 2 x 10^1
            cost_ax.xaxis.set_major_formatter(plain)
            cost_ax.xaxis.set_minor_formatter(plain)
        cost_ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5), title="variant (seeds)")
    cost = "multiply-adds per 32x32 image, inference (millions)"
    cost_ax.set_xlabel(f"variant, ordered by {cost}" if by_cost else cost)
    cost_ax.set_ylabel("test accuracy (%)")
    bottom, top = cost_ax.get_ylim()
    cut = bottom < 0 or top > 100  # a t interval of three seeds can reach past what accuracy can be
    cost_ax.set_ylim(max(bottom, 0.0), min(top, 100.0))
    bars = "95% t interval" + (", cut at 0 and 100%" if cut else "")
    against = "by variant" if by_cost else "against cost"
    cost_ax.set_title(f"accuracy {against}\n(bars: {bars}; dots: seeds)", fontsize=10)

    rows = list(range(len(comparisons)))[::-1]  # first comparison at the top
    diff_ax.axvspan(-matters, matters, color="tab:gray", alpha=0.2, lw=0)
    diff_ax.axvline(0, color="black", lw=0.8)
    for row, comparison in zip(rows, comparisons, strict=True):
        if not comparison.differences:
            diff_ax.text(0, row, " not measured yet", va="center", ha="left", fontsize=9, color="tab:gray")
            continue
        interval, colour = comparison.interval, _colour(comparison.variant)
        diff_ax.errorbar([interval.mean], [row], xerr=_bar(interval.mean, interval.low, interval.high),
                         fmt="o", color=colour, capsize=4)  # fmt: skip
        diff_ax.plot(comparison.differences, [row] * len(comparison.differences), "x", color="black", ms=5)
    diff_ax.set_yticks(rows, [f"{c.variant} − {c.reference}" for c in comparisons])
    diff_ax.set_ylim(-0.7, len(comparisons) - 0.3)
    diff_ax.set_xlabel("test accuracy difference (percentage points)")
    diff_ax.set_ylabel("alternative − paper's choice")
    band = f"grey: within ±{matters:g} pp, does not matter"
    diff_ax.set_title(f"paired by seed\n(x: one seed; {band})", fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
