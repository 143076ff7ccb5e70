"""Verdicts: significance and an effect size stated in advance decide together; the claims table."""

import pytest

from googlenet_utils.claims import (
    CONTRADICTED,
    MIN_EFFECT,
    NOISE,
    SUPPORTED,
    TOO_SMALL,
    UNPLACED,
    Measured,
    claims_table,
    markdown_table,
    verdict,
)


@pytest.mark.parametrize(
    ("change", "error", "expected"),
    [
        (0.10, 0.01, SUPPORTED),
        (0.012, 0.0015, TOO_SMALL),  # notebook 05's smoothness difference: certain, but tiny
        (-0.10, 0.01, CONTRADICTED),
        (0.10, 0.06, NOISE),  # large but within two standard errors
        (0.0, 0.0, NOISE),
        (0.08, 0.02, UNPLACED),  # beyond the noise, but 0.04 to 0.12 straddles 0.05
        (-0.032, 0.0132, UNPLACED),  # notebook 05's 3a 5x5 ablation: -5.8 to -0.6 pp against 1 pp
        (0.06, 0.004, SUPPORTED),  # 0.052 to 0.068: all of it beyond 0.05
    ],
)
def test_a_verdict_needs_significance_and_the_stated_effect_size(change, error, expected):
    assert verdict(change, error, 0.05) == expected


def test_a_verdict_refuses_a_meaningless_effect_size():
    with pytest.raises(ValueError, match="effect size"):
        verdict(0.1, 0.01, 0)


def shares_row(module, c1, c3, c5, pool):
    return {
        "module": module,
        "1x1 channels": c1,
        "3x3 channels": c3,
        "5x5 channels": c5,
        "pool proj channels": pool,
    }


def ablation_row(branch, change, error):
    return {"module": "3a", "branch": branch, "change": change, "standard error": error}


def measured(**changes):
    values = {
        "shares": [shares_row("3a", 64, 128, 32, 32), shares_row("5b", 384, 384, 128, 128)],
        "ablation": [ablation_row("1x1", -0.13, 0.02), ablation_row("pool proj", -0.005, 0.001)],
        "smoothness": (0.012, 0.0015),
        "smoothness_untrained": -0.06,
        "gap_head": 10_250,
        "flatten_head": 655_370,
        "final_side": 8,
        "aux": (0.0056, 0.004),
    }
    values.update(changes)
    return Measured(**values)


def test_the_claims_table_applies_the_stated_effect_sizes():
    rows = {row["claim"]: row for row in claims_table(measured())}
    assert len(rows) == 8
    coarse = rows["the larger kernel gives coarser maps (3a: 5x5 smoother than 1x1)"]
    assert coarse["verdict"] == TOO_SMALL and "untrained: -0.060" in coarse["deciding number"]
    branches = rows["every branch of the modules probed carries information the network uses"]
    assert branches["verdict"] == "supported for 1 of 2 branches"  # the pool branch loses only 0.5 pp
    kernels = rows["deeper modules have more 3x3 and 5x5 kernels"]["verdict"]
    assert kernels == "supported for the count; not supported for the share"  # 62.5% -> 50%
    regularise = rows["they regularise: the final network is more accurate"]["verdict"]
    assert regularise.startswith(NOISE)  # +0.56 pp, ± 0.8 pp
    assert rows["pooling instead of flattening cuts the head's parameters"]["verdict"] == SUPPORTED


def test_without_comparable_runs_the_aux_claim_is_not_tested():
    rows = {row["claim"]: row for row in claims_table(measured(aux=None))}
    assert rows["they regularise: the final network is more accurate"]["verdict"] == "not tested by this run"


def test_a_markdown_table_escapes_its_cells():
    text = markdown_table([{"a": "x | y", "b": 1}])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x \\| y | 1 |"]


def test_the_effect_sizes_are_stated_with_their_units():
    assert MIN_EFFECT == {"smoothness": 0.05, "branch loss": 0.01, "aux gain": 0.01, "cam margin": 0.05}


def test_a_branch_counts_as_needed_only_if_every_ablation_given_costs_enough():
    other = [ablation_row("1x1", 0.056, 0.015), ablation_row("pool proj", -0.03, 0.005)]  # 1x1 even gains
    rows = {row["claim"]: row for row in claims_table(measured(ablation_other=other))}
    branches = rows["every branch of the modules probed carries information the network uses"]
    assert branches["verdict"].startswith("not supported")  # 1x1: not under both; pool: not under the mean
    assert "under both the mean and the other-image ablation" in branches["deciding number"]
