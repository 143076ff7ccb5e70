"""Checks for the end-of-notebook exercises that have one right answer (a number or a function).

A notebook's last code cell holds an answer sheet, ``{question: None}``; the learner fills in
what they computed and runs ``check_answers``. Each right value is computed here by the package's
own counters and layers, never typed in, and a wrong one gets a hint, not the value. Exercises
whose answer is an explanation or a measurement of the learner's own run have no sheet entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from .complexity import count_parameters, grouped_costs, layer_costs, total_macs
from .learner_values import as_number
from .model import INCEPTION_TABLE, GoogLeNet, InceptionModule, NaiveInceptionModule
from .recipe import lr_factor

NOT_ANSWERED = "not answered yet"


@dataclass(frozen=True)
class Answer:
    """One question of an answer sheet: how to judge a value, and a hint for a wrong one."""

    judge: Callable[[Any], str | None]  # None when right, else what is wrong (without the answer)
    hint: str


def _number_is(truth: Callable[[], float], relative: float = 0.0) -> Callable[[Any], str | None]:
    """A judge of numbers: within ``relative`` of ``truth()`` (exact for counts)."""

    def judge(value: Any) -> str | None:
        number = as_number(value)
        if number is None:
            return f"give a number, not {type(value).__name__}"
        right = truth()
        if math.isclose(number, right, rel_tol=relative, abs_tol=1e-9):
            return None
        return "too large" if number > right else "too small"

    return judge


# --------------------------------------------------------------------------- notebook 01


def _branch_macs(module: nn.Module, channels: int, side: int, branch: str) -> int:
    costs = layer_costs(module, (1, channels, side, side))
    return grouped_costs(costs, [branch])[branch][1]


def _five_by_five_macs(reduce: bool) -> int:
    """Module 3b's 5x5 branch at 28x28, with or without its 1x1 reduction (the package's module)."""
    module = InceptionModule(*INCEPTION_TABLE["3b"], reduce=reduce)
    return _branch_macs(module, INCEPTION_TABLE["3b"][0], 28, "branch5x5")


def _factorised_saving() -> int:
    """Parameters module 3a saves when its 5x5 kernel becomes two stacked 3x3 (Inception-v2)."""
    table = INCEPTION_TABLE["3a"]
    return count_parameters(InceptionModule(*table)) - count_parameters(
        InceptionModule(*table, five_by_five="3x3x2")
    )


def _factorised_field() -> int:
    """The receptive field of the factorised branch: 1 plus (kernel - 1) for each stride-1 convolution."""
    branch = InceptionModule(*INCEPTION_TABLE["3a"], five_by_five="3x3x2").branch5x5
    return 1 + sum(m.kernel_size[0] - 1 for m in branch.modules() if isinstance(m, nn.Conv2d))


def _naive_stack(modules: int = 3, in_channels: int = 192) -> tuple[int, int]:
    """Channels leaving, and multiply-adds of the last of, ``modules`` naive 3a modules (paper Fig. 2a:
    1x1, 3x3 and 5x5 over every input channel, the pooled input passed through)."""
    _, c1, _, c3, _, c5, _ = INCEPTION_TABLE["3a"]
    channels, macs = in_channels, 0
    for _ in range(modules):
        module = NaiveInceptionModule(channels, c1, c3, c5)
        macs = total_macs(module, (1, channels, 28, 28))
        channels = module.out_channels  # the pool branch passes its input through
    return channels, macs


# --------------------------------------------------------------------------- notebook 02


def _conv2_macs() -> int:
    """The ImageNet stem's conv2 (1x1 then 3x3 to 192 channels) on its 56x56 map, counted on the network."""
    costs = layer_costs(GoogLeNet(1000, variant="imagenet").eval(), (1, 3, 224, 224))
    return sum(c.macs for c in costs if c.name.startswith(("stem.conv2_reduce.", "stem.conv2.")))


def _fc_head_share() -> float:
    """How many parameters a flatten + FC head adds to the cifar variant, as a share of the rest."""
    pooled = count_parameters(GoogLeNet(10, variant="cifar"), inference=True)
    flat = count_parameters(GoogLeNet(10, variant="cifar", head="fc"), inference=True)
    return (flat - pooled) / pooled


# --------------------------------------------------------------------------- notebook 04


def _judge_cosine(schedule: Any) -> str | None:
    if not callable(schedule):
        return "give your function itself, cosine_schedule (without calling it)"
    total, warmup = 100, 10
    for step in (0, 5, 9, 10, 30, 55, 80, 99):
        try:
            value = schedule(step, total, warmup)
        except Exception as error:  # noqa: BLE001 - the learner's own error, said in words
            return f"at step {step} your function raised {type(error).__name__}: {error}"
        number = as_number(value)
        right = lr_factor(step, total_steps=total, warmup_steps=warmup, schedule="cosine")
        if number is None or not math.isclose(number, right, abs_tol=1e-6):
            part = "warm-up" if step < warmup else "cosine decay"
            return f"at step {step} of {total} (the {part}, warmup_steps={warmup}) it gives {value!r}"
    return None


SHEETS: dict[str, dict[str, Answer]] = {
    "01": {
        "1: 3b's 5x5 branch, multiply-adds with the 1x1 reduction": Answer(
            _number_is(lambda: _five_by_five_macs(True)),
            "the 1x1 reduction (256 -> 32) plus the 5x5 (32 -> 96), each pixels x inputs x outputs x k x k",
        ),
        "1: 3b's 5x5 branch, multiply-adds without it": Answer(
            _number_is(lambda: _five_by_five_macs(False)),
            "one 5x5 convolution from all 256 input channels to 96, at 28 x 28 pixels",
        ),
        "2: receptive field of two stacked 3x3 convolutions": Answer(
            _number_is(_factorised_field), "each stride-1 k x k convolution widens the field by k - 1"
        ),
        "2: parameters module 3a saves with them": Answer(
            _number_is(_factorised_saving),
            "one 5x5 (16 -> 32) against a 3x3 (16 -> 16) and a 3x3 (16 -> 32); count biases too",
        ),
        "3: channels leaving the third naive module": Answer(
            _number_is(lambda: _naive_stack()[0]), "each module adds 64 + 128 + 32 to what it receives"
        ),
        "3: multiply-adds of the third naive module": Answer(
            _number_is(lambda: _naive_stack()[1]),
            "the third module reads the second's output; its three convolutions read every input channel",
        ),
    },
    "02": {
        "1: conv2's multiply-adds (the 1x1 and the 3x3)": Answer(
            _number_is(_conv2_macs), "56 x 56 pixels x (64 x 64 x 1 + 64 x 192 x 9)"
        ),
        "3: parameters a flatten + FC head adds, as a share of the network's": Answer(
            _number_is(_fc_head_share, relative=0.01),
            "the last map has 1024 channels of 8 x 8 pixels; count the linear layer with and without pooling",
        ),
    },
    "04": {
        "2: cosine_schedule(step, total_steps, warmup_steps)": Answer(
            _judge_cosine,
            "the same warm-up as lr_factor; then 0.5 * (1 + cos(pi * progress)) with progress 0 -> 1",
        ),
    },
}


def answer_sheet(notebook: str) -> dict[str, None]:
    """The questions of ``notebook``'s exercises that have one right answer, each still ``None``."""
    return dict.fromkeys(_sheet(notebook))


def check_answers(notebook: str, answers: dict[str, Any]) -> dict[str, str]:
    """Judge each filled-in answer; print and return ``{question: "right" | "not yet: ..." | ...}``."""
    sheet = _sheet(notebook)
    unknown = sorted(set(answers) - set(sheet))
    if unknown:
        raise KeyError(
            f"not questions of notebook {notebook}'s sheet: {unknown}; use answer_sheet({notebook!r})"
        )
    verdicts = {}
    for question, answer in sheet.items():
        value = answers.get(question)
        if value is None:
            verdicts[question] = NOT_ANSWERED
        else:
            wrong = answer.judge(value)
            verdicts[question] = "right" if wrong is None else f"not yet: {wrong} (hint: {answer.hint})"
        print(f"exercise {question}: {verdicts[question]}")
    return verdicts


def _sheet(notebook: str) -> dict[str, Answer]:
    if notebook not in SHEETS:
        raise KeyError(f"no answer sheet for notebook {notebook!r}; there are sheets for {', '.join(SHEETS)}")
    return SHEETS[notebook]
