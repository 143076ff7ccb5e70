"""A learner's returned value read as a number: the one rule that exercise checks and answer sheets share."""

from __future__ import annotations

import numbers
from typing import Any

import torch


def as_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number or a one-element tensor, else None.

    A 0-d tensor is a number too (what ``x.sum()`` returns); a bool is not, though Python counts it as one.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.detach().cpu().item()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None
