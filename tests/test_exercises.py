"""The "your turn" checks: each common mistake gets its own plain-words message, right answers pass."""

import IPython
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from googlenet_utils import exercises
from googlenet_utils.analysis import expected_calibration_error
from googlenet_utils.exercises import (
    ExerciseError,
    check_aux_head,
    check_channel_stats,
    check_ece,
    check_lr_schedule,
    check_naive_module,
    unfilled,
)
from googlenet_utils.loader import channel_stats
from googlenet_utils.recipe import lr_factor

# ---------------------------------------------------------------- notebook 01: the naive module


def naive(*, padding=True, pool=None, relu_pool=False, relu=(True, True, True), order=(0, 1, 2, 3),
          swap=False, softmax=False):  # fmt: skip
    """A learner's NaiveInception, right by default, with one mistake switched on."""

    class Naive(nn.Module):
        def __init__(self, in_channels, c1, c3, c5):
            super().__init__()
            k3, k5 = (5, 3) if swap else (3, 5)
            self.conv1x1 = nn.Conv2d(in_channels, c1, 1)
            self.conv3x3 = nn.Conv2d(in_channels, c3, k3, padding=k3 // 2 if padding else 0)
            self.conv5x5 = nn.Conv2d(in_channels, c5, k5, padding=k5 // 2 if padding else 0)
            self.pool = pool if pool is not None else nn.MaxPool2d(3, stride=1, padding=1)

        def forward(self, x):
            convs = (self.conv1x1, self.conv3x3, self.conv5x5)
            parts = [F.relu(conv(x)) if on else conv(x) for conv, on in zip(convs, relu, strict=True)]
            pooled = self.pool(x)
            parts.append(F.relu(pooled) if relu_pool else pooled)
            out = torch.cat([parts[i] for i in order], dim=1)
            return out.softmax(dim=1) if softmax else out

    return Naive


def naive_message(**mistake) -> str:
    with pytest.raises(ExerciseError) as failed:
        check_naive_module(naive(**mistake))
    return str(failed.value)


def test_the_right_naive_module_passes(capsys):
    check_naive_module(naive())
    assert capsys.readouterr().out.startswith("correct: 416 output channels")


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ({"padding": False}, "pad each kernel by k // 2"),
        ({"pool": nn.MaxPool2d(3, stride=2, padding=1)}, "stride 2"),
        ({"relu_pool": True}, "ReLU to the pool branch"),
        ({"relu": (True, False, True)}, "3x3 branch has no ReLU"),
        ({"order": (3, 0, 1, 2)}, "concatenated in the order pool, 1x1, 3x3, 5x5"),
        ({"swap": True}, "swap the two kernel sizes"),
        ({"pool": nn.AvgPool2d(3, stride=1, padding=1)}, "takes the maximum"),
        ({"softmax": True}, "softmax"),
    ],
)
def test_each_naive_mistake_has_its_own_message(mistake, words):
    message = naive_message(**mistake)
    assert words in message
    assert "right shapes and parameters, different values" not in message  # not the catch-all


def test_the_naive_messages_differ_from_each_other():
    mistakes = [
        {"relu_pool": True},
        {"relu": (False, True, True)},
        {"order": (1, 0, 2, 3)},
        {"softmax": True},
    ]
    assert len({naive_message(**m) for m in mistakes}) == len(mistakes)


def test_an_error_in_the_learners_code_is_caught_and_explained():
    class Broken(nn.Module):
        def __init__(self, in_channels, c1, c3, c5):
            super().__init__()
            self.conv1x1 = nn.Conv2d(in_channels, c1, 1)

        def forward(self, x):
            return self.conv3x3(x)  # forgot to create it

    with pytest.raises(ExerciseError, match=r"running your module .* failed \(AttributeError"):
        check_naive_module(Broken)


def test_unfilled_is_true_only_for_the_skeleton_and_never_raises():
    def skeleton():
        raise NotImplementedError

    def buggy():  # a learner's module whose branches do not line up
        return torch.cat([torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 3, 3)], dim=1)

    assert unfilled(skeleton) is True
    assert unfilled(buggy) is False  # the check cell after it explains the error
    assert unfilled(lambda: 1) is False
    with pytest.raises(ExerciseError, match=r"failed \(RuntimeError"):
        check_ece(lambda probabilities, labels, n_bins: buggy())


def test_an_unfilled_skeleton_says_to_replace_the_raise():
    class Skeleton(nn.Module):
        def __init__(self, *args):
            raise NotImplementedError("create the layers")

    with pytest.raises(ExerciseError, match="still raises NotImplementedError"):
        check_naive_module(Skeleton)


# ---------------------------------------------------------------- notebook 02: the auxiliary head


def aux_head(*, pool=None, flatten=True, dropout_after_conv=False, softmax=False):
    def make(in_channels, num_classes):
        layers = [pool or nn.AvgPool2d(5, stride=3), nn.Conv2d(in_channels, 128, 1), nn.ReLU()]
        if dropout_after_conv:
            layers.append(nn.Dropout(0.7))
        layers += [nn.Flatten()] if flatten else []
        layers += [nn.Linear(2048, 1024), nn.ReLU()]
        layers += [] if dropout_after_conv else [nn.Dropout(0.7)]
        layers += [nn.Linear(1024, num_classes)] + ([nn.Softmax(dim=1)] if softmax else [])
        return nn.Sequential(*layers)

    return make


def test_the_right_aux_head_passes_in_both_modes(capsys):
    check_aux_head(aux_head())
    assert "in evaluation and in training mode" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ({"flatten": False}, "add nn.Flatten()"),
        ({"pool": nn.AvgPool2d(5)}, "nn.AvgPool2d(5, stride=3)"),
        ({"dropout_after_conv": True}, "dropout sits in another place"),
        ({"softmax": True}, "softmax lives in the loss"),
    ],
)
def test_each_aux_mistake_has_its_own_message(mistake, words):
    with pytest.raises(ExerciseError, match=None) as failed:
        check_aux_head(aux_head(**mistake))
    assert words in str(failed.value)


def test_a_dropout_in_the_wrong_place_fails_in_training_mode():
    class Head(nn.Module):  # layers registered in the paper's order, dropout applied to the conv's maps
        def __init__(self, in_channels, num_classes):
            super().__init__()
            self.pool, self.conv = nn.AvgPool2d(5, stride=3), nn.Conv2d(in_channels, 128, 1)
            self.fc1, self.drop, self.fc2 = (
                nn.Linear(2048, 1024),
                nn.Dropout(0.7),
                nn.Linear(1024, num_classes),
            )

        def forward(self, x):
            x = self.drop(F.relu(self.conv(self.pool(x))))
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    with pytest.raises(ExerciseError, match="in training mode it differs"):
        check_aux_head(Head)


# ---------------------------------------------------------------- notebook 03: channel statistics


def test_the_channel_statistics_check(capsys):
    check_channel_stats(channel_stats)
    check_channel_stats(
        lambda images: (images.float().mean(dim=(0, 2, 3)), images.float().std(dim=(0, 2, 3)))
    )
    assert capsys.readouterr().out.count("correct") == 2
    with pytest.raises(ExerciseError, match="convert the uint8 images to floats"):
        check_channel_stats(lambda images: (images.mean(dim=(0, 2, 3)), images.std(dim=(0, 2, 3))))
    with pytest.raises(ExerciseError, match="average over the images too"):
        check_channel_stats(lambda images: (images.float().mean(dim=(2, 3)), images.float().std(dim=(2, 3))))
    with pytest.raises(ExerciseError, match="units of 0-1"):
        check_channel_stats(lambda images: tuple(s / 255 for s in channel_stats(images)))


# ---------------------------------------------------------------- notebook 04: the schedule


def right_schedule(step, total, warmup):
    return lr_factor(step, total_steps=total, warmup_steps=warmup, schedule="linear")


def test_the_schedule_check_accepts_numbers_of_every_kind(capsys):
    check_lr_schedule(right_schedule)
    check_lr_schedule(lambda s, t, w: torch.tensor(right_schedule(s, t, w)))  # a 0-d tensor
    check_lr_schedule(lambda s, t, w: torch.tensor([right_schedule(s, t, w)], dtype=torch.float64))
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (lambda s, t, w: s / w if s < w else right_schedule(s, t, w), "at step 0 of 100 (warm-up"),
        (lambda s, t, w: (s + 1) / w if s < w else 1 - (s - w) / t, "decay falls too slowly"),
        (lambda s, t, w: (s + 1) / w if s < w else 1 - (s - w) / (t - w - 30), "decay falls too fast"),
        (lambda s, t, w: "0.5", "return a number"),
    ],
)
def test_a_wrong_schedule_says_what_is_wrong_at_which_step_without_the_solution(schedule, words):
    with pytest.raises(ExerciseError) as failed:
        check_lr_schedule(schedule)
    message = str(failed.value)
    assert words in message
    assert "(step + 1) / warmup_steps" not in message and "1 - (step" not in message  # no formula given away


def test_a_warm_up_one_step_behind_is_named():
    with pytest.raises(ExerciseError, match="one step behind"):
        check_lr_schedule(
            lambda s, t, w: max(s, 1e-3) / w if 0 < s < w else (0.1 if s == 0 else 1 - (s - w) / (t - w))
        )


def test_a_schedule_that_raises_is_caught():
    with pytest.raises(ExerciseError, match=r"your schedule at step 0 failed \(ZeroDivisionError"):
        check_lr_schedule(lambda s, t, w: 1 / 0)


# ---------------------------------------------------------------- notebook 05: the calibration error


def test_the_ece_check(capsys):
    check_ece(expected_calibration_error)
    check_ece(lambda p, y, n: torch.tensor(expected_calibration_error(p, y, n)))  # a 0-d tensor is a number
    assert capsys.readouterr().out.count("correct") == 2

    def per_bin(p, y, n):
        confidence, predicted = p.max(1)
        bins = (
            torch.bucketize(confidence.double(), torch.linspace(0, 1, n + 1, dtype=torch.float64)) - 1
        ).clamp(0, n - 1)
        gaps = [
            ((predicted[bins == b] == y[bins == b]).double().mean() - confidence[bins == b].double().mean())
            for b in range(n)
            if (bins == b).any()
        ]
        return gaps, bins

    def unweighted(p, y, n):
        gaps, _ = per_bin(p, y, n)
        return float(sum(g.abs() for g in gaps) / len(gaps))

    def overall(p, y, n):
        confidence, predicted = p.max(1)
        return float(((predicted == y).double().mean() - confidence.double().mean()).abs())

    with pytest.raises(ExerciseError, match="weight each bin"):
        check_ece(unweighted)
    with pytest.raises(ExerciseError, match="within each bin"):
        check_ece(overall)


# ---------------------------------------------------------------- in a notebook: the message alone


def test_in_a_notebook_a_failed_check_shows_its_message_without_the_checks_source(monkeypatch):
    class Shell:
        custom_exceptions = ()

        def set_custom_exc(self, kinds, handler):
            self.kinds, self.handler = kinds, handler

    shell = Shell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    with pytest.raises(ExerciseError) as failed:
        check_naive_module(naive(relu_pool=True))
    assert shell.kinds == (ExerciseError,)
    shown = shell.handler(shell, ExerciseError, failed.value, failed.value.__traceback__)
    assert len(shown) == 1 and "ReLU to the pool branch" in shown[0]
    assert "exercises.py" not in "".join(shown) and "_fail" not in "".join(shown)
    assert exercises._show_only_the_message is shell.handler


# ---------------------------------------------------------------- notebook 06: a variant without the max-pool


def without_max_pool(*, modules=None, stages=False, projection=True, returns=True):
    """A learner's `without_max_pool`, right by default, with one mistake switched on."""

    def modify(model):
        for name, module in model.named_modules():
            if isinstance(module, exercises.InceptionModule) and (modules is None or name in modules):
                if projection:
                    module.branch_pool[0] = nn.Identity()
                else:
                    module.branch_pool = nn.Identity()
        if stages:
            model.pool3 = model.pool4 = nn.Identity()
        return model if returns else None

    return modify


def test_the_right_variant_without_max_pool_passes(capsys):
    exercises.check_without_max_pool(without_max_pool())
    assert "correct: no max-pool in any of the 9 modules" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mistake", "words"),
    [
        ({"modules": ("inception3a",)}, "still max-pools inside inception3b"),
        ({"stages": True}, "lost the max-pools between the stages"),
        ({"projection": False}, "parameters differ from the paper's"),
        ({"returns": False}, "returns NoneType"),
    ],
)
def test_each_max_pool_mistake_has_its_own_message(mistake, words):
    with pytest.raises(ExerciseError, match=words):
        exercises.check_without_max_pool(without_max_pool(**mistake))
