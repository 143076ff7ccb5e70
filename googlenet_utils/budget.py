"""Fitting a run into time: how many epochs a budget allows, and whether the next epoch still fits.

The trainer measures, after compiling and before the clock of the first epoch starts, how long
one training step takes at each image side and how long a validation and the final test take
(``Costs``). ``choose_epochs`` turns that into the run's length, which the learning-rate
schedule needs up front; ``stop_now`` is the wall-clock guard checked at each epoch's end.
Nothing here touches a model: every function is arithmetic on measured seconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .recipe import TrainConfig, parse_resolutions, resolution_at, scale_resolutions

FULL = 32  # the side of a CIFAR image: epochs outside the low-resolution plan train at it
MARGIN = 0.05  # share of the budget kept free: epochs vary by a few per cent (checkpoints, the host)
WARMUP_SHARE = 0.25  # a shortened run keeps its lr warm-up, but at most this share of its epochs


@dataclass(frozen=True)
class Costs:
    """Measured seconds: per training step at each image side, per validation pass, for the test pass."""

    step_seconds: dict[int, float]
    steps_per_epoch: int
    validation_seconds: float
    test_seconds: float

    def epoch_seconds(self, size: int) -> float:
        """One epoch's training at ``size`` pixels (an unmeasured side is scaled by its pixel count)."""
        if size in self.step_seconds:
            per_step = self.step_seconds[size]
        else:
            side, seconds = max(self.step_seconds.items())
            per_step = seconds * (size / side) ** 2  # convolutions cost in proportion to pixels
        return per_step * self.steps_per_epoch

    def plan_seconds(self, epochs: int, resolutions: str, val_every: int) -> float:
        """Training, validation and test of a whole run of ``epochs`` under ``resolutions``."""
        stages = parse_resolutions(resolutions)
        full = epochs - sum(count for _, count in stages)
        training = sum(n * self.epoch_seconds(size) for size, n in [*stages, (FULL, full)])
        return training + validations(epochs, val_every) * self.validation_seconds + self.test_seconds

    def updated(self, size: int, train_seconds: float, validation_seconds: float | None) -> Costs:
        """These costs with a finished epoch's real timings in place of the warm-up's estimates."""
        steps = {**self.step_seconds, size: train_seconds / self.steps_per_epoch}
        validation = self.validation_seconds if validation_seconds is None else validation_seconds
        return dataclasses.replace(self, step_seconds=steps, validation_seconds=validation)


def validations(epochs: int, val_every: int) -> int:
    """How many epochs of a run of ``epochs`` validate: every ``val_every``-th, and always the last."""
    return epochs // val_every + (1 if epochs % val_every else 0)


@dataclass(frozen=True)
class BudgetChoice:
    """The number of epochs a time budget allows, the plan that goes with it, and why."""

    epochs: int
    resolutions: str
    warmup_epochs: float
    budget_seconds: float
    spent_seconds: float  # before the first epoch: loading, compiling, timing
    estimated_seconds: float  # the chosen plan's training, validation and test
    step_seconds: dict[int, float]
    reason: str

    def apply(self, config: TrainConfig) -> TrainConfig:
        """``config`` with this choice's length, low-resolution plan and warm-up."""
        return config.replace(
            epochs=self.epochs, resolutions=self.resolutions, warmup_epochs=self.warmup_epochs
        )

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["step_seconds"] = {str(k): v for k, v in self.step_seconds.items()}  # JSON keys are text
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BudgetChoice:
        steps = {int(k): float(v) for k, v in values["step_seconds"].items()}
        return cls(**{**values, "step_seconds": steps})


def choose_epochs(costs: Costs, config: TrainConfig, spent: float) -> BudgetChoice:
    """The most epochs, at most ``config.epochs``, whose training, validation and test fit the budget.

    ``spent`` seconds of ``config.time_budget`` are gone already. When not even one epoch
    fits, the run still trains one: a run without an epoch has nothing to test.
    """
    room = (config.time_budget - spent) * (1 - MARGIN)
    for epochs in range(config.epochs, 0, -1):  # at most 10,000 candidates of a few additions each
        resolutions = scale_resolutions(config.resolutions, config.epochs, epochs)
        needed = costs.plan_seconds(epochs, resolutions, config.val_every)
        if needed <= room:
            break
    warmup = (
        config.warmup_epochs if epochs == config.epochs else min(config.warmup_epochs, epochs * WARMUP_SHARE)
    )
    return BudgetChoice(
        epochs=epochs,
        resolutions=resolutions,
        warmup_epochs=warmup,
        budget_seconds=config.time_budget,
        spent_seconds=spent,
        estimated_seconds=needed,
        step_seconds=dict(costs.step_seconds),
        reason=_reason(costs, config, epochs, spent, needed, room),
    )


def replan(
    choice: BudgetChoice, measured: Costs, config: TrainConfig, size: int, epoch_seconds: float
) -> BudgetChoice | None:
    """A shorter choice when the first epoch ran slower than its steps were timed; None keeps ``choice``.

    A few timed steps can run faster than a whole epoch (a busy host, a processor that slows under
    sustained load): every measured cost is scaled by the first epoch's real-to-timed ratio and the
    length chosen again from ``config``, the settings before the budget chose. Called while the
    first epoch is all warm-up, whose learning rate does not depend on the run's length, so nothing
    trained so far would have been different. Only shortens, and only keeps a plan whose first
    epoch is the one that was trained.
    """
    ratio = epoch_seconds / measured.epoch_seconds(size)
    if ratio <= 1:
        return None
    scaled = dataclasses.replace(
        measured,
        step_seconds={side: seconds * ratio for side, seconds in measured.step_seconds.items()},
        validation_seconds=measured.validation_seconds * ratio,
        test_seconds=measured.test_seconds * ratio,
    )
    again = choose_epochs(scaled, config, choice.spent_seconds)
    same_start = resolution_at(0, again.resolutions, FULL) == size
    if again.epochs >= choice.epochs or not same_start or again.warmup_epochs != choice.warmup_epochs:
        return None
    reason = (
        f"re-planned after the first epoch, whose {size} px steps took {ratio:.2f}x the timed ones: "
        f"{again.epochs} epochs ({again.resolutions or 'all at 32 px'}) instead of {choice.epochs}; "
        f"{again.reason}"
    )
    return dataclasses.replace(again, reason=reason)


def _reason(costs: Costs, config: TrainConfig, epochs: int, spent: float, needed: float, room: float) -> str:
    speeds = ", ".join(
        f"{s * 1000:.1f} ms a step at {size} px" for size, s in sorted(costs.step_seconds.items())
    )
    base = (
        f"time budget {config.time_budget:.0f} s: {spent:.0f} s spent before the first epoch (loading, "
        f"compiling, timing); {speeds}; a validation {costs.validation_seconds:.1f} s, the test "
        f"{costs.test_seconds:.1f} s"
    )
    if needed > room:
        return f"{base}: not even one epoch fits ({needed:.0f} s needed, {room:.0f} s left); training 1"
    if epochs == config.epochs:
        return f"{base}: all {epochs} epochs fit (about {needed:.0f} s of {room:.0f} s left)"
    return (
        f"{base}: {epochs} of at most {config.epochs} epochs fit (about {needed:.0f} s of {room:.0f} s "
        f"left, {MARGIN:.0%} kept free)"
    )


def stop_now(
    costs: Costs, *, elapsed: float, limit: float, epoch: int, epochs: int, resolutions: str, val_every: int
) -> bool:
    """The wall-clock guard, at the end of training (0-based) ``epoch``: True to make it the last.

    Going on means this epoch's scheduled validation, the next epoch, a validation after it (the
    guard may stop there) and the test; all of that must end by ``limit`` seconds.
    """
    if epoch + 1 >= epochs:
        return False  # the last epoch of the plan ends the run anyway
    validates_now = (epoch + 1) % val_every == 0
    going_on = (
        costs.validation_seconds * (2 if validates_now else 1)
        + costs.epoch_seconds(resolution_at(epoch + 1, resolutions, FULL))
        + costs.test_seconds
    )
    return elapsed + going_on > limit * (1 - MARGIN)
