"""Reading a learner's value as a number: the rule shared by exercise checks and answer sheets."""

import numpy as np
import pytest
import torch

from googlenet_utils.learner_values import as_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, 3.0), (2.5, 2.5), (np.int64(7), 7.0), (np.float32(0.5), 0.5), (torch.tensor(4.0), 4.0),
     (torch.tensor([1.5]), 1.5), (torch.tensor(6, dtype=torch.int64), 6.0)],
)  # fmt: skip
def test_numbers_and_one_element_tensors_are_numbers(value, expected):
    number = as_number(value)
    assert isinstance(number, float) and number == expected


@pytest.mark.parametrize(
    "value", [True, torch.tensor(True), "3", None, [1.0], torch.tensor([1.0, 2.0]), torch.zeros(0)]
)
def test_anything_else_is_not_a_number(value):
    assert as_number(value) is None
