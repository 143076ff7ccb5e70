"""Reading a sweep and summarising it: t quantiles, intervals, verdicts, costs, and the figure."""

import math
import re

import pytest
from conftest import assert_labelled, make_metrics
from matplotlib.collections import LineCollection

from googlenet_utils import ModelConfig, RunDir, UserError
from googlenet_utils.design import CHOICES, VARIANTS, Choice
from googlenet_utils.plots import plot_design_choice
from googlenet_utils.sweep_results import (
    Comparison,
    Interval,
    VariantSummary,
    budget_rows,
    choice_table,
    compare,
    mean_interval,
    read_sweep,
    summarise,
    t_quantile,
    tradeoff_rows,
    variant_costs,
    verdict,
)

# Student's t, 97.5% quantiles, from printed tables (and 95% for df 5).
T_TABLE = {
    (0.975, 1): 12.7062,
    (0.975, 2): 4.3027,
    (0.975, 4): 2.7764,
    (0.975, 10): 2.2281,
    (0.95, 5): 2.0150,
}
MODELS = {
    "baseline": {},
    "3x3": {"five_by_five": "3x3"},
    "naive": {"reduce": False},
}
# Test accuracies by variant and seed (seed 2 of "naive" is missing: an interrupted sweep).
ACCURACY = {
    "baseline": {0: 0.60, 1: 0.62, 2: 0.61},
    "3x3": {0: 0.59, 1: 0.615, 2: 0.60},
    "naive": {0: 0.64, 1: 0.66},
}


def write_run(root, variant, seed, accuracy, digest="abc"):
    folder = RunDir(root / f"{variant}-seed{seed}")
    folder.prepare()
    model = ModelConfig(num_classes=10, variant="cifar", width=0.0625, **MODELS[variant])
    folder.write_config({"train": {"seed": seed}, "model": model.to_dict(), "data": {"digest": digest}})
    folder.write_metrics(make_metrics(test_accuracy=accuracy, train_seconds=60.0 * (seed + 1)))


@pytest.fixture
def sweep_root(tmp_path):
    for variant, seeds in ACCURACY.items():
        for seed, accuracy in seeds.items():
            write_run(tmp_path, variant, seed, accuracy)
    (tmp_path / "3x3-seed9").mkdir()  # no metrics: not a finished run
    return tmp_path


@pytest.mark.parametrize(("p", "df"), list(T_TABLE))
def test_t_quantiles_match_the_printed_tables(p, df):
    assert t_quantile(p, df) == pytest.approx(T_TABLE[(p, df)], abs=2e-4)


def test_t_quantiles_refuse_what_they_cannot_compute():
    with pytest.raises(ValueError):
        t_quantile(0.4, 3)
    with pytest.raises(ValueError):
        t_quantile(0.975, 0)


def test_a_mean_interval_by_hand():
    interval = mean_interval([1.0, 2.0, 3.0])  # mean 2, standard deviation 1
    half = 4.3027 / math.sqrt(3)
    assert interval.mean == 2 and interval.n == 3
    assert interval.low == pytest.approx(2 - half, abs=1e-3) and interval.high == pytest.approx(
        2 + half, abs=1e-3
    )
    assert mean_interval([5.0]) == Interval(5.0, None, None, 1)


@pytest.mark.parametrize(
    ("low", "high", "start"),
    [
        (-0.5, 0.8, "no difference at this budget"),
        (1.2, 3.0, "matters: the alternative is better"),
        (-3.0, -1.0, "matters: the paper's choice is better"),
        (0.2, 2.0, "the alternative is better, by an amount"),
        (-2.0, -0.1, "the paper's choice is better, by an amount"),
        (-2.0, 0.5, "undecided at this budget"),
        (-0.5, 1.5, "undecided at this budget"),
    ],
)
def test_each_verdict_says_what_its_interval_supports(low, high, start):
    assert verdict(Interval((low + high) / 2, low, high, 3), matters=1.0).startswith(start)


def test_a_single_seed_gets_no_verdict():
    assert verdict(Interval(2.0, None, None, 1)).startswith("not measured yet")


def test_reading_a_sweep_skips_unfinished_folders(sweep_root):
    runs = read_sweep(sweep_root)
    assert sorted((r.variant, r.seed) for r in runs) == sorted((v, s) for v in ACCURACY for s in ACCURACY[v])
    assert next(r for r in runs if r.variant == "naive").model.reduce is False


def test_summaries_average_over_seeds_and_count_the_costs(sweep_root):
    summaries = summarise(read_sweep(sweep_root))
    baseline = summaries["baseline"]
    assert baseline.seeds == (0, 1, 2) and baseline.accuracies == pytest.approx((60, 62, 61))
    assert baseline.accuracy.mean == pytest.approx(61) and baseline.train_minutes == pytest.approx(
        1.0
    )  # seed 0's 60 s: the fastest
    assert baseline.accuracy.high - baseline.accuracy.mean == pytest.approx(4.3027 / math.sqrt(3), abs=1e-3)
    config = ModelConfig(num_classes=10, variant="cifar", width=0.0625, reduce=False)
    assert (summaries["naive"].parameters, summaries["naive"].macs) == variant_costs(config)
    assert summaries["naive"].macs > 2 * summaries["baseline"].macs


def test_differences_are_paired_by_seed_over_the_shared_seeds(sweep_root):
    choice = Choice("test", "?", "baseline", ("3x3", "naive"), "claim")
    three, naive = compare(read_sweep(sweep_root), choice)
    assert three.seeds == (0, 1, 2) and three.differences == pytest.approx((-1.0, -0.5, -1.0))
    assert three.interval.mean == pytest.approx(-2.5 / 3)
    assert naive.seeds == (0, 1) and naive.differences == pytest.approx((4.0, 4.0))
    assert naive.verdict.startswith(
        "matters: the alternative is better"
    )  # a zero spread: a zero-width interval


def test_a_variant_without_a_paired_seed_is_not_measured_yet(sweep_root):
    choice = Choice("test", "?", "3x3", ("dropout-0",), "claim")
    (comparison,) = compare(read_sweep(sweep_root), choice)
    assert comparison.interval is None and comparison.verdict.startswith("not measured yet")


def test_a_choice_table_shows_cost_accuracy_and_difference_per_variant(sweep_root):
    runs = read_sweep(sweep_root)
    choice = Choice("test", "?", "baseline", ("3x3", "dropout-0"), "claim")
    costs = {"dropout-0": (123, 4_500_000)}
    base, three, dropout = choice_table(choice, summarise(runs), compare(runs, choice), costs)
    assert base["variant"] == "baseline (paper)" and base["minus the paper's [95% interval]"] == ""
    assert base["test accuracy, mean [95% interval]"].startswith("61.00% [")
    summary = summarise(runs)["3x3"]
    assert three["parameters"] == f"{summary.parameters:,}" and three["seeds"] == "3"
    assert three["minus the paper's [95% interval]"].startswith("-0.83 pp [")
    assert dropout["test accuracy, mean [95% interval]"] == "not run yet"
    assert (dropout["parameters"], dropout["multiply-adds"]) == ("123", "4.5 M")  # counted, not run
    assert dropout["minus the paper's [95% interval]"] == "not measured yet"


def test_budget_rows_label_each_sweep_and_keep_only_measured_pairs(sweep_root, tmp_path):
    choices = [Choice("test", "?", "baseline", ("3x3", "dropout-0"), "claim")]
    (row,) = budget_rows(read_sweep(sweep_root), choices)  # dropout-0 has no run: no row
    assert (
        row["sweep"] == "width 0.0625 on cpu (x86_64, 2 threads)"
        and row["alternative"] == "3x3"
        and row["seeds"] == "3"
    )
    assert row["minus the paper's [95% interval]"].startswith("-0.83 pp [")
    one_seed = tmp_path / "one-seed"
    write_run(one_seed, "baseline", 0, 0.70)
    write_run(one_seed, "3x3", 0, 0.72)
    (single,) = budget_rows(read_sweep(one_seed), choices)
    assert single["minus the paper's [95% interval]"] == "+2.00 pp (one seed)"
    assert single["verdict"].startswith("not measured yet: fewer than two paired seeds")
    assert budget_rows([], choices) == []


def test_runs_tested_on_other_data_are_not_paired(sweep_root):
    write_run(sweep_root, "3x3", 1, 0.6, digest="other")
    with pytest.raises(UserError, match="tested on different data"):
        compare(read_sweep(sweep_root), Choice("test", "?", "baseline", ("3x3",), "claim"))


def test_every_choice_names_known_variants_and_cites_the_paper():
    for choice in CHOICES:
        assert choice.reference not in choice.alternatives
        assert set(choice.variants) <= set(VARIANTS), choice.name
        assert re.search(r"Szegedy et al\. 2015, (Section|Figure) \d", choice.claim), choice.name


def test_the_figure_plots_each_variant_at_its_cost_and_each_difference(sweep_root):
    runs = read_sweep(sweep_root)
    summaries = summarise(runs)
    comparisons = compare(runs, Choice("test", "?", "baseline", ("3x3", "naive"), "claim"))
    fig = plot_design_choice(summaries, comparisons, title="test", matters=1.0)
    assert_labelled(fig)
    cost_ax, diff_ax = fig.axes
    for container, name in zip(cost_ax.containers, ("baseline", "3x3", "naive"), strict=True):
        summary = summaries[name]
        line, _, (bars,) = container.lines[0], container.lines[1], container.lines[2]
        assert line.get_xdata()[0] == pytest.approx(summary.macs / 1e6)
        assert line.get_ydata()[0] == pytest.approx(summary.accuracy.mean)
        assert isinstance(bars, LineCollection)
        (segment,) = bars.get_segments()
        assert segment[:, 1] == pytest.approx([summary.accuracy.low, summary.accuracy.high])
    assert cost_ax.get_xscale() == "log"  # the naive module costs over three times as much
    rows = [container.lines[0].get_xdata()[0] for container in diff_ax.containers]
    assert rows == pytest.approx([c.interval.mean for c in comparisons])
    band = diff_ax.patches[0]
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((-1.0, 1.0))
    rows = {tick.get_text(): tick.get_position()[1] for tick in diff_ax.get_yticklabels()}
    assert rows["3x3 − baseline"] > rows["naive − baseline"]  # the first comparison on top


def test_the_tradeoff_table_has_one_row_per_run_by_width_then_epochs(tmp_path):
    for width, epochs, accuracy, seconds in [
        (0.25, 6, 0.71, 600.0),
        (0.125, 12, 0.74, 900.0),
        (0.125, 6, 0.66, 300.0),
    ]:
        folder = RunDir(tmp_path / f"w{width:g}-e{epochs}-seed0")
        folder.prepare()
        model = ModelConfig(num_classes=10, variant="cifar", width=width, dropout=0.0)
        folder.write_config({"train": {"seed": 0}, "model": model.to_dict(), "data": {"digest": "abc"}})
        folder.write_metrics(make_metrics(test_accuracy=accuracy, train_seconds=seconds, epochs=epochs))
    rows = tradeoff_rows(read_sweep(tmp_path))
    assert [(r["width"], r["epochs"], r["training (min)"], r["test accuracy"]) for r in rows] == [
        ("0.125", "6", "5.0", "66.00%"),
        ("0.125", "12", "15.0", "74.00%"),
        ("0.25", "6", "10.0", "71.00%"),
    ]
    assert {r["device"] for r in rows} == {make_metrics().device}
    assert {r["processor"] for r in rows} == {"not recorded"}  # runs shipped before it was recorded
    (tmp_path / "w0.25-e6-seed0" / "environment.json").write_text('{"processor": "AMD EPYC"}')
    processors = [r["processor"] for r in tradeoff_rows(read_sweep(tmp_path))]
    assert processors == ["not recorded"] * 2 + ["AMD EPYC"]


def test_many_variants_over_a_wide_cost_range_get_a_column_each_and_bars_stop_at_zero():
    costs = {"baseline": 24.6e6, "aux-0": 24.6e6, "3x3": 22.0e6, "fc-head": 25.0e6, "naive": 82.6e6}
    accuracies = {"baseline": (50, 51, 49), "aux-0": (50, 52, 48), "3x3": (49, 50, 51),
                  "fc-head": (2, 30, 40), "naive": (58, 57, 59)}  # fmt: skip
    summaries = {
        name: VariantSummary(name, (0, 1, 2), values, mean_interval(values), 1, int(costs[name]), 1.0)
        for name, values in accuracies.items()
    }
    comparisons = [
        Comparison("c", name, "baseline", (0, 1, 2), (0.0, 0.1, -0.1), mean_interval([0.0, 0.1, -0.1]), "x")
        for name in costs
        if name != "baseline"
    ]
    assert summaries["fc-head"].accuracy.low < 0  # three seeds this far apart reach below 0%
    fig = plot_design_choice(summaries, comparisons, title="all", matters=1.0)
    assert_labelled(fig)
    cost_ax = fig.axes[0]
    columns = {c.get_label().split(" (")[0]: c.lines[0].get_xdata()[0] for c in cost_ax.containers}
    assert columns == {"3x3": 0, "baseline": 1, "aux-0": 2, "fc-head": 3, "naive": 4}  # ordered by cost
    ticks = [tick.get_text() for tick in cost_ax.get_xticklabels()]
    assert ticks[0] == "3x3 (22.0 M)" and ticks[-1] == "naive (82.6 M)"
    assert cost_ax.get_ylim()[0] == 0.0 and "cut at 0 and 100%" in cost_ax.get_title()
    assert "ordered by multiply-adds" in cost_ax.get_xlabel()
