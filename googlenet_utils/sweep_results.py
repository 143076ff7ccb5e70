"""A sweep's shipped results, summarised: accuracy per variant, paired differences with t intervals, costs.

Reading never trains and never writes. For a choice, each seed gives one paired difference
(alternative minus the paper's choice, same seed, same data); their mean comes with a 95%
interval from Student's t distribution with (seeds - 1) degrees of freedom, and a verdict in words
that the interval supports, against the effect size fixed beforehand (``design.MATTERS_PP``).
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .complexity import count_parameters, total_macs
from .design import MATTERS_PP, Choice
from .errors import UserError
from .model import GoogLeNet, ModelConfig
from .provenance import recorded_processor
from .rundir import METRICS, RunDir

# --------------------------------------------------------------------------- Student's t


def _t_density(x: float, df: int) -> float:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


def _t_cdf(x: float, df: int) -> float:
    """P(T <= x) for x >= 0: 1/2 plus the density integrated from 0 (Simpson's rule, 200 panels)."""
    n, h = 200, x / 200  # already within 1e-5 of the printed tables for df >= 1
    inner = sum((4 if i % 2 else 2) * _t_density(i * h, df) for i in range(1, n))
    return 0.5 + h / 3 * (_t_density(0.0, df) + inner + _t_density(x, df))


@functools.lru_cache(maxsize=64)  # a notebook asks for the same few quantiles many times
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` degrees of freedom, by bisection."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"need 0.5 < p < 1 and df >= 1, got p={p!r}, df={df!r}")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(45):  # 45 halvings: far below the printed precision
        middle = (low + high) / 2
        low, high = (middle, high) if _t_cdf(middle, df) < p else (low, middle)
    return (low + high) / 2


@dataclass(frozen=True)
class Interval:
    """A mean over seeds and its 95% t interval (``None`` bounds with fewer than two values)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.low is None else (self.high - self.low) / 2


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``values`` with its two-sided t interval."""
    if not values:
        raise ValueError("no values to average")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean, None, None, len(values))
    half = (
        t_quantile(0.5 + confidence / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    )
    return Interval(mean, mean - half, mean + half, len(values))


def verdict(interval: Interval, matters: float = MATTERS_PP) -> str:
    """What a 95% interval of a difference (percentage points, alternative minus paper) supports."""
    if interval.low is None:
        return "not measured yet: fewer than two paired seeds"
    low, high = interval.low, interval.high
    if -matters < low and high < matters:
        return f"no difference at this budget: the interval lies within ±{matters:g} pp"
    if low >= matters:
        return f"matters: the alternative is better by at least {matters:g} pp"
    if high <= -matters:
        return f"matters: the paper's choice is better by at least {matters:g} pp"
    if low > 0:
        return f"the alternative is better, by an amount the interval cannot place against {matters:g} pp"
    if high < 0:
        return f"the paper's choice is better, by an amount the interval cannot place against {matters:g} pp"
    return "undecided at this budget: the interval includes 0 and differences that would matter"


# --------------------------------------------------------------------------- reading a sweep


@dataclass(frozen=True)
class SweepRun:
    """One shipped run of a sweep."""

    variant: str
    seed: int
    test_accuracy: float
    train_seconds: float
    model: ModelConfig
    data_digest: str
    path: Path
    source: str  # the data, in words
    device: str  # what trained it
    epochs: int
    processor: str = "not recorded"  # two "2 threads" machines can differ 2x: minutes compare within one

    @property
    def name(self) -> str:
        return self.path.name


def read_sweep(root: str | Path) -> list[SweepRun]:
    """Every finished run under ``root`` (folders ``<variant>-seed<k>`` with metrics.json)."""
    runs = []
    for folder in sorted(Path(root).glob("*-seed*")):
        if folder.name.startswith(".") or not (folder / METRICS).is_file():
            continue  # a partial copy (hidden) or a folder without results
        variant, _, seed = folder.name.rpartition("-seed")
        rundir = RunDir(folder)
        config, metrics = rundir.read_config(), rundir.read_metrics()
        runs.append(
            SweepRun(
                variant,
                int(seed),
                metrics.test_accuracy,
                metrics.train_seconds,
                ModelConfig.from_dict(config["model"]),
                config["data"]["digest"],
                folder,
                config["data"].get("source", "unknown data"),
                metrics.device,
                metrics.epochs,
                recorded_processor(folder),
            )
        )
    return runs


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True)
class VariantSummary:
    """A variant's accuracy over its seeds, and its cost."""

    name: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]  # test accuracy in percent, per seed
    accuracy: Interval  # their mean and 95% t interval
    parameters: int  # at inference (the auxiliary heads are dropped)
    macs: int  # multiply-adds per 32x32 image at inference
    train_minutes: float  # the fastest seed's, on the machine that ran it: other work only slows a run


def variant_costs(config: ModelConfig, size: int = 32) -> tuple[int, int]:
    """Parameters and multiply-adds at inference, counted on the network itself."""
    model = GoogLeNet.from_config(config).eval()
    return count_parameters(model, inference=True), total_macs(model, (1, 3, size, size))


def summarise(runs: Sequence[SweepRun]) -> dict[str, VariantSummary]:
    """One summary per variant present in ``runs``."""
    summaries = {}
    for name in dict.fromkeys(run.variant for run in runs):
        mine = sorted((r for r in runs if r.variant == name), key=lambda r: r.seed)
        if len({r.model for r in mine}) != 1:
            raise UserError(
                f"the runs of variant {name!r} record different networks: {[str(r.path) for r in mine]}"
            )
        parameters, macs = variant_costs(mine[0].model)
        summaries[name] = VariantSummary(
            name,
            tuple(r.seed for r in mine),
            tuple(100 * r.test_accuracy for r in mine),
            mean_interval([100 * r.test_accuracy for r in mine]),
            parameters,
            macs,
            min(r.train_seconds for r in mine) / 60,
        )
    return summaries


@dataclass(frozen=True)
class Comparison:
    """An alternative against the paper's choice, seed by seed."""

    choice: str
    variant: str
    reference: str
    seeds: tuple[int, ...]  # seeds both variants have
    differences: tuple[float, ...]  # percentage points, alternative minus reference, per seed
    interval: Interval | None  # None when no seed is shared
    verdict: str


def compare(runs: Sequence[SweepRun], choice: Choice, matters: float = MATTERS_PP) -> list[Comparison]:
    """Paired differences of each alternative of ``choice`` to its reference, over the shared seeds."""
    by_key = {(r.variant, r.seed): r for r in runs}
    comparisons = []
    for variant in choice.alternatives:
        seeds = tuple(sorted(s for v, s in by_key if v == variant and (choice.reference, s) in by_key))
        pairs = [(by_key[(variant, s)], by_key[(choice.reference, s)]) for s in seeds]
        for alternative, reference in pairs:
            if alternative.data_digest != reference.data_digest:
                raise UserError(f"{alternative.path} and {reference.path} were tested on different data")
        differences = tuple(100 * (a.test_accuracy - r.test_accuracy) for a, r in pairs)
        interval = mean_interval(differences) if differences else None
        text = verdict(interval, matters) if interval else "not measured yet: no paired seed"
        comparisons.append(
            Comparison(choice.name, variant, choice.reference, seeds, differences, interval, text)
        )
    return comparisons


def format_interval(interval: Interval | None, unit: str = "pp", signed: bool = True) -> str:
    """``"+0.42 pp [-1.10, +1.94]"`` (a difference) or ``"61.20% [59.93, 62.47]"``; ``"n/a"`` without one."""
    if interval is None:
        return "n/a"
    number = "{:+.2f}" if signed else "{:.2f}"
    mean = number.format(interval.mean) + ("%" if unit == "%" else f" {unit}")
    if interval.low is None:
        return f"{mean} (one seed)"
    return f"{mean} [{number.format(interval.low)}, {number.format(interval.high)}]"


def choice_table(
    choice: Choice,
    summaries: dict[str, VariantSummary],
    comparisons: Sequence[Comparison],
    costs: dict[str, tuple[int, int]] | None = None,
) -> list[dict[str, str]]:
    """One row per variant of ``choice``: its cost, its accuracy over seeds and its difference to the
    paper's choice. ``costs`` (parameters, multiply-adds by variant) covers variants not run yet."""
    differences = {c.variant: c for c in comparisons}
    rows = []
    for name in choice.variants:
        summary = summaries.get(name)
        cost = (summary.parameters, summary.macs) if summary else (costs or {}).get(name)
        compared = differences.get(name)
        if name == choice.reference:
            difference = ""
        elif compared is None or not compared.seeds:
            difference = "not measured yet"
        else:
            difference = format_interval(compared.interval)
        rows.append(
            {
                "variant": name + (" (paper)" if name == choice.reference else ""),
                "parameters": f"{cost[0]:,}" if cost else "",
                "multiply-adds": f"{cost[1] / 1e6:.1f} M" if cost else "",
                "seeds": str(len(summary.seeds)) if summary else "0",
                "test accuracy, mean [95% interval]": (
                    format_interval(summary.accuracy, "%", signed=False) if summary else "not run yet"
                ),
                "minus the paper's [95% interval]": difference,
                "train min (fastest seed)": f"{summary.train_minutes:.1f}" if summary else "",
            }
        )
    return rows


def budget_rows(
    runs: Sequence[SweepRun], choices: Sequence[Choice], matters: float = MATTERS_PP
) -> list[dict[str, str]]:
    """The paired differences of one sweep, labelled with its width and device, for a table that
    joins sweeps run at different budgets (the CPU sweep and the GPU pairs). Only measured pairs."""
    if not runs:
        return []
    widths = sorted({f"{run.model.width:g}" for run in runs})
    label = f"width {', '.join(widths)} on {', '.join(sorted({run.device for run in runs}))}"
    rows = []
    for choice in choices:
        for comparison in compare(runs, choice, matters):
            if comparison.seeds:
                rows.append(
                    {
                        "sweep": label,
                        "choice": choice.name,
                        "alternative": comparison.variant,
                        "seeds": str(len(comparison.seeds)),
                        "minus the paper's [95% interval]": format_interval(comparison.interval),
                        "verdict": comparison.verdict,
                    }
                )
    return rows


def tradeoff_rows(runs: Sequence[SweepRun]) -> list[dict[str, str]]:
    """Notebook 04's table of width against epochs: test accuracy against training time, one row per
    run, by width and then epochs; each row names the device and processor whose minutes it reports."""
    rows = []
    for run in sorted(runs, key=lambda r: (r.model.width, r.epochs)):
        rows.append(
            {
                "width": f"{run.model.width:g}",
                "epochs": str(run.epochs),
                "training (min)": f"{run.train_seconds / 60:.1f}",
                "test accuracy": f"{100 * run.test_accuracy:.2f}%",
                "device": run.device,
                "processor": run.processor,
            }
        )
    return rows
