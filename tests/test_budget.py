"""The time budget's arithmetic: the plan's seconds, the epochs that fit, the wall-clock guard's stop."""

import json

import pytest

from googlenet_utils.budget import (
    MARGIN,
    BudgetChoice,
    Costs,
    choose_epochs,
    replan,
    scale_resolutions,
    stop_now,
    validations,
)
from googlenet_utils.recipe import TrainConfig

# A 32 px step takes 1 s and a 16 px step a quarter of that; 10 steps an epoch.
COSTS = Costs(step_seconds={16: 0.25, 32: 1.0}, steps_per_epoch=10, validation_seconds=2.0, test_seconds=3.0)


def test_a_plan_costs_its_epochs_at_their_sides_its_validations_and_the_test():
    assert COSTS.plan_seconds(5, "16:2", val_every=1) == pytest.approx(2 * 2.5 + 3 * 10 + 5 * 2 + 3)
    assert COSTS.plan_seconds(5, "", val_every=2) == pytest.approx(5 * 10 + 3 * 2 + 3)  # epochs 2, 4, 5
    assert COSTS.epoch_seconds(24) == pytest.approx(10 * (24 / 32) ** 2)  # unmeasured: scaled by pixels


def test_validations_count_every_nth_epoch_and_the_last():
    assert [validations(n, 5) for n in (1, 4, 5, 6, 10, 11)] == [1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize("epochs", range(1, 14))
def test_a_shortened_low_resolution_plan_stays_valid_and_in_proportion(epochs):
    plan = scale_resolutions("16:8,24:3", 13, epochs)
    config = TrainConfig(epochs=epochs, resolutions=plan, warmup_epochs=0.0)  # raises if invalid
    assert config.resolutions == plan
    if epochs == 13:
        assert plan == "16:8,24:3"
    if epochs == 5:
        assert plan == "16:3,24:1"


def test_the_budget_takes_the_most_epochs_that_fit():
    config = TrainConfig(epochs=40, warmup_epochs=2.0, time_budget=200.0)
    choice = choose_epochs(COSTS, config, spent=20.0)
    room = (200 - 20) * (1 - MARGIN)  # 171 s: n epochs cost 12 n + 3
    assert choice.epochs == 14 and COSTS.plan_seconds(14, "", 1) <= room < COSTS.plan_seconds(15, "", 1)
    assert choice.warmup_epochs == 2.0 and choice.estimated_seconds == pytest.approx(12 * 14 + 3)
    assert "14 of at most 40 epochs fit" in choice.reason and "1000.0 ms a step at 32 px" in choice.reason
    assert choice.apply(config).epochs == 14


def test_a_short_budget_scales_the_low_resolution_epochs_and_the_warm_up():
    config = TrainConfig(epochs=13, resolutions="16:8,24:3", warmup_epochs=4.0, time_budget=3.0)
    costs = Costs({16: 0.25, 24: 0.5, 32: 1.0}, steps_per_epoch=1, validation_seconds=0.0, test_seconds=0.0)
    choice = choose_epochs(costs, config, spent=0.0)  # 2.85 s of room: 13 epochs would take 5.5 s
    assert (choice.epochs, choice.resolutions) == (6, "16:4,24:1")  # 1 + 0.5 + 1 s; 7 epochs take 3 s
    assert choice.warmup_epochs == 1.5  # a quarter of the shortened run
    assert choice.apply(config).resolutions == "16:4,24:1"


def test_all_epochs_fit_a_large_budget_and_none_a_spent_one():
    config = TrainConfig(epochs=10, time_budget=1000.0)
    assert choose_epochs(COSTS, config, spent=0.0).epochs == 10
    assert "all 10 epochs fit" in choose_epochs(COSTS, config, spent=0.0).reason
    starved = choose_epochs(COSTS, config, spent=999.0)
    assert starved.epochs == 1 and "not even one epoch fits" in starved.reason


def test_a_choice_survives_json_and_back():
    choice = choose_epochs(COSTS, TrainConfig(epochs=40, time_budget=200.0), spent=20.0)
    assert BudgetChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


def test_the_guard_stops_when_the_next_epoch_and_the_test_would_end_past_the_limit():
    plan = {"epochs": 10, "resolutions": "", "val_every": 1}
    # Going on after epoch 3 costs its validation, epoch 4, a validation after it and the test: 17 s.
    limit = 100.0 / (1 - MARGIN)
    assert not stop_now(COSTS, elapsed=83.0, limit=limit, epoch=2, **plan)
    assert stop_now(COSTS, elapsed=83.5, limit=limit, epoch=2, **plan)
    assert not stop_now(COSTS, elapsed=1e6, limit=limit, epoch=9, **plan)  # the last epoch ends anyway
    unvalidated = {**plan, "val_every": 5}  # epoch 3 does not validate: 2 s less
    assert not stop_now(COSTS, elapsed=85.0, limit=limit, epoch=2, **unvalidated)


def test_real_epoch_timings_replace_the_estimates():
    later = COSTS.updated(32, train_seconds=20.0, validation_seconds=None)
    assert later.epoch_seconds(32) == pytest.approx(20.0) and later.validation_seconds == 2.0
    assert later.updated(16, 5.0, 4.0).step_seconds == {16: 0.5, 32: 2.0}


def test_a_slow_first_epoch_shortens_the_plan_and_a_fast_one_keeps_it():
    config = TrainConfig(epochs=20, resolutions="16:10,24:5", warmup_epochs=1.0, time_budget=400.0)
    costs = Costs({16: 1.0, 24: 2.0, 32: 4.0}, steps_per_epoch=10, validation_seconds=1.0, test_seconds=2.0)
    first = choose_epochs(costs, config, spent=0.0)
    assert (first.epochs, first.resolutions) == (17, "16:8,24:4")  # 80 + 80 + 200 + 17 + 2 = 379 s of 380
    slower = replan(first, costs, config, size=16, epoch_seconds=15.0)  # 1.5x the timed 10 s
    assert slower is not None and slower.epochs < first.epochs
    assert slower.resolutions.startswith("16:") and slower.warmup_epochs == first.warmup_epochs
    scaled = Costs({16: 1.5, 24: 3.0, 32: 6.0}, steps_per_epoch=10, validation_seconds=1.5, test_seconds=3.0)
    assert slower.epochs == choose_epochs(scaled, config, spent=0.0).epochs  # every cost 1.5x
    assert slower.reason.startswith("re-planned after the first epoch, whose 16 px steps took 1.50x")
    assert replan(first, costs, config, size=16, epoch_seconds=9.0) is None  # faster: the plan stands
    assert replan(first, costs, config, size=16, epoch_seconds=10.5).epochs == 16  # 17 left no room for 5%
