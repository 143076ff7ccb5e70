"""The end-of-notebook answer sheets: right values pass, wrong ones get a hint and never the value."""

import math

import pytest
import torch

from googlenet_utils.answers import NOT_ANSWERED, SHEETS, answer_sheet, check_answers
from googlenet_utils.model import INCEPTION_TABLE
from googlenet_utils.recipe import lr_factor

# Worked by hand from the paper's Table 1 widths (the package computes them on its own layers).
BY_HAND = {
    "01": {
        "1: 3b's 5x5 branch, multiply-adds with the 1x1 reduction": 28 * 28 * (256 * 32 + 32 * 96 * 25),
        "1: 3b's 5x5 branch, multiply-adds without it": 28 * 28 * 256 * 96 * 25,
        "2: receptive field of two stacked 3x3 convolutions": 5,
        "2: parameters module 3a saves with them": (16 * 32 * 25 + 32)
        - (16 * 16 * 9 + 16 + 16 * 32 * 9 + 32),
        "3: channels leaving the third naive module": 192 + 3 * (64 + 128 + 32),
        "3: multiply-adds of the third naive module": 28 * 28 * 640 * (64 + 128 * 9 + 32 * 25),
    },
    "02": {"1: conv2's multiply-adds (the 1x1 and the 3x3)": 56 * 56 * (64 * 64 + 64 * 192 * 9)},
}


def cosine(step, total_steps, warmup_steps):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def test_hand_worked_answers_are_right(capsys):
    for notebook, answers in BY_HAND.items():
        verdicts = check_answers(notebook, answers)
        assert all(verdicts[q] == "right" for q in answers), verdicts
    assert "exercise 1: conv2's multiply-adds (the 1x1 and the 3x3): right" in capsys.readouterr().out
    assert INCEPTION_TABLE["3b"][0] == 256 and INCEPTION_TABLE["3a"][4:6] == (16, 32)  # the widths used above


def test_a_wrong_number_gets_a_direction_and_a_hint_but_not_the_answer():
    question = "1: 3b's 5x5 branch, multiply-adds without it"
    right = BY_HAND["01"][question]
    verdict = check_answers("01", {question: right + 1})[question]
    assert verdict.startswith("not yet: too large (hint: one 5x5 convolution") and str(right) not in verdict
    assert check_answers("01", {question: torch.tensor(float(right))})[question] == "right"  # a 0-d tensor
    assert check_answers("01", {question: "481689600"})[question].startswith(
        "not yet: give a number, not str"
    )


def test_unanswered_questions_say_so_and_unknown_ones_are_refused():
    sheet = answer_sheet("02")
    assert set(sheet) == set(SHEETS["02"]) and all(v is None for v in sheet.values())
    assert set(check_answers("02", sheet).values()) == {NOT_ANSWERED}
    with pytest.raises(KeyError, match="not questions of notebook 02"):
        check_answers("02", {"4: the seed spread": 0.1})
    with pytest.raises(KeyError, match="no answer sheet for notebook '07'"):
        answer_sheet("07")


def test_the_fc_head_share_accepts_a_rounded_answer():
    question = "3: parameters a flatten + FC head adds, as a share of the network's"
    share = (
        1024 * 8 * 8 * 10 - 1024 * 10
    ) / 5_977_530  # the cifar variant's inference parameters, notebook 02
    assert check_answers("02", {question: round(share, 3)})[question] == "right"
    assert check_answers("02", {question: 0.5})[question].startswith("not yet: too large")


def test_the_cosine_schedule_is_judged_step_by_step():
    question = "2: cosine_schedule(step, total_steps, warmup_steps)"
    assert check_answers("04", {question: cosine})[question] == "right"
    assert all(
        math.isclose(cosine(s, 100, 10), lr_factor(s, total_steps=100, warmup_steps=10, schedule="cosine"))
        for s in range(100)
    )
    late = check_answers("04", {question: lambda s, t, w: cosine(s, t, 0)})[question]
    assert late.startswith("not yet: at step 0 of 100 (the warm-up, warmup_steps=10)")
    called = check_answers("04", {question: cosine(0, 100, 10)})[question]
    assert called.startswith("not yet: give your function itself")
    broken = check_answers("04", {question: lambda s, t, w: 1 / 0})[question]
    assert "raised ZeroDivisionError" in broken
