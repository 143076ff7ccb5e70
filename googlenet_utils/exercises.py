"""Checks for the notebooks' "your turn" cells: each compares the learner's code with the package's.

A check raises ``ExerciseError`` with a plain-words reason when something is wrong, and
prints what passed otherwise. ``unfilled(obj)`` tells whether a skeleton still raises
``NotImplementedError``, so a notebook's solution cell never overwrites a learner's work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .model import AuxClassifier
from .recipe import lr_factor


class ExerciseError(AssertionError):
    """The learner's code does not do what the exercise asks; the message says what differs."""


def unfilled(build: Callable[[], Any]) -> bool:
    """True while calling ``build()`` (which makes and uses the learner's object) hits NotImplementedError."""
    try:
        build()
    except NotImplementedError:
        return True
    return False


def _fail(message: str) -> None:
    raise ExerciseError(message)


def _call(what: str, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except NotImplementedError:
        _fail(
            f"{what} still raises NotImplementedError: "
            "replace the `raise NotImplementedError` lines with your code"
        )
    except Exception as error:  # the learner's code failed; say how, in their terms
        _fail(f"{what} failed with {type(error).__name__}: {error}")


# --------------------------------------------------------------------------- notebook 01


def naive_parameters(in_channels: int, c1: int, c3: int, c5: int) -> int:
    """Weights and biases of the naive module (paper Figure 2a): 1x1, 3x3, 5x5 convs over all inputs."""
    return sum(k * k * in_channels * c + c for k, c in ((1, c1), (3, c3), (5, c5)))


def check_naive_module(make: Callable[[int, int, int, int], nn.Module]) -> None:
    """``make(in_channels, c1, c3, c5)`` must build the naive module: right channels, size and parameters."""
    in_channels, c1, c3, c5 = 192, 64, 128, 32  # module 3a's widths
    module = _call("building your module", lambda: make(in_channels, c1, c3, c5))
    x = torch.randn(2, in_channels, 28, 28)
    out = _call("running your module on a 2 x 192 x 28 x 28 batch", lambda: module(x))
    expected_channels = c1 + c3 + c5 + in_channels
    if out.shape[1] != expected_channels:
        _fail(
            f"your module returns {out.shape[1]} channels; the naive module concatenates {c1} + {c3} + {c5} "
            f"convolution channels and the {in_channels} max-pooled input channels = {expected_channels}"
        )
    if out.shape[-2:] != x.shape[-2:]:
        _fail(f"your module turns 28 x 28 maps into {tuple(out.shape[-2:])}: pad each kernel k by k // 2")
    expected = naive_parameters(in_channels, c1, c3, c5)
    found = sum(p.numel() for p in module.parameters())
    if found != expected:
        _fail(
            f"your module has {found:,} parameters, the naive module {expected:,} (1x1, 3x3 and 5x5 kernels "
            "over all input channels, with biases; pooling has none)"
        )
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if sorted(m.kernel_size[0] for m in convs) != [1, 3, 5]:
        _fail(
            f"your module's convolutions have kernels {[m.kernel_size for m in convs]}; "
            "expected 1x1, 3x3 and 5x5"
        )
    with torch.no_grad():
        branches = [F.relu(conv(x)) for conv in sorted(convs, key=lambda m: m.kernel_size[0])]
        expected_out = torch.cat([*branches, F.max_pool2d(x, 3, stride=1, padding=1)], dim=1)
    if not torch.allclose(out, expected_out, atol=1e-5):
        _fail(
            "right shapes, wrong values: apply a ReLU after each convolution (not after the pool), and "
            "concatenate in the order 1x1, 3x3, 5x5, pool"
        )
    print(f"correct: {expected_channels} output channels at 28 x 28, {found:,} parameters, the same values")


# --------------------------------------------------------------------------- notebook 02


def check_aux_head(make: Callable[[int, int], nn.Module]) -> None:
    """``make(in_channels, num_classes)`` must be the paper's auxiliary head, layer for layer.

    Weights are copied from the package's ``AuxClassifier`` by position, so equal outputs prove
    the same computation, not just the same shapes.
    """
    ours = AuxClassifier(512, 10).eval()
    theirs = _call("building your head", lambda: make(512, 10))
    mine = [p for p in ours.parameters()]
    yours = [p for p in theirs.parameters()]
    if [tuple(p.shape) for p in yours] != [tuple(p.shape) for p in mine]:
        _fail(
            "your head's parameter shapes are "
            f"{[tuple(p.shape) for p in yours]}; the paper's are {[tuple(p.shape) for p in mine]} "
            "(1x1 conv to 128 channels, FC 2048 -> 1024, FC 1024 -> classes)"
        )
    with torch.no_grad():
        for target, source in zip(yours, mine, strict=True):
            target.copy_(source)
    theirs.eval()
    x = torch.randn(3, 512, 14, 14)
    out = _call("running your head on a 3 x 512 x 14 x 14 map", lambda: theirs(x))
    if tuple(out.shape) != (3, 10):
        _fail(f"your head returns shape {tuple(out.shape)}; expected (3, 10): one logit per class")
    with torch.no_grad():
        expected = ours(x)
    if not torch.allclose(out, expected, atol=1e-5):
        _fail(
            "same weights, different outputs: check the order (5x5 average pool with stride 3, 1x1 conv, "
            "ReLU, flatten, FC, ReLU, dropout, FC) and the pooling window"
        )
    dropouts = [m.p for m in theirs.modules() if isinstance(m, nn.Dropout)]
    if dropouts != [0.7]:
        _fail(
            f"your head's dropout probabilities are {dropouts}; the paper's head has one, of 70%, "
            "before the last FC"
        )
    print("correct: same parameters and, with the same weights, the same logits as AuxClassifier")


# --------------------------------------------------------------------------- notebook 04


def check_lr_schedule(schedule: Callable[[int, int, int], float]) -> None:
    """``schedule(step, total_steps, warmup_steps)``: linear warm-up to 1, then linear decay to 0."""
    total, warmup = 100, 10
    for step in (0, 4, 9, 10, 40, 70, 99):
        value = _call(f"your schedule at step {step}", lambda s=step: schedule(s, total, warmup))
        expected = lr_factor(step, total_steps=total, warmup_steps=warmup, schedule="linear")
        if not isinstance(value, int | float) or not math.isclose(value, expected, abs_tol=1e-6):
            phase = "warm-up" if step < warmup else "decay"
            _fail(
                f"at step {step} of {total} ({phase}) your factor is {value!r}; expected {expected:.4f}. "
                "Warm-up: (step + 1) / warmup_steps. "
                "Decay: 1 - (step - warmup_steps) / (total_steps - warmup_steps)"
            )
    print("correct: the warm-up and the linear decay match the recipe's schedule at every step checked")
