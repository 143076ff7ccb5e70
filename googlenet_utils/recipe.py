"""The training recipe: ``TrainConfig``, the named presets, the learning-rate schedule and the optimiser.

A preset (``fast``, ``best``, ``cpu``, ``smoke``) is a ``TrainConfig`` plus the network's width
and, for ``smoke``, a data subset. Every setting carries a one-line reason, which notebook 04
prints as the recipe table. ``RECIPES[name].expected`` reads measured time and accuracy from
``measured.json``, or says "not measured yet".
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .devices import PRECISIONS
from .errors import ConfigError

SCHEDULES = ("linear", "cosine", "constant")
# Measured time and accuracy per recipe, written by the commands that publish measured runs
# (gpu_report publish, tools/ship_reference_runs.py), never by hand.
MEASURED = Path(__file__).with_name("measured.json")
TTA_MODES = ("none", "flip", "flip+translate")
MAX_SEED = 2**32 - 1  # NumPy's and most tools' limit; the loader's stream derives from it


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; ``config.json`` in the run directory records it.

    The defaults are the ``fast`` recipe. Each field's ``help`` is its one-line reason.
    """

    epochs: int = field(default=40, metadata=_help("passes over the training split"))
    time_budget: float = field(
        default=0.0,
        metadata=_help(
            "seconds the whole run may take, compiling and testing included (0: off): the step speed "
            "is measured after compiling and the run gets as many epochs as fit, at most --epochs"
        ),
    )
    wall_limit: float = field(
        default=0.0,
        metadata=_help(
            "seconds after the start by which the run must end (0: off): it stops at the end of an epoch "
            "when the next would not finish in time, then tests its best epoch as usual"
        ),
    )
    batch_size: int = field(
        default=512, metadata=_help("images per optimiser step, over all processes: keeps a GPU busy")
    )
    lr: float = field(
        default=0.4,
        metadata=_help(
            "peak learning rate: 0.1 per 128 images, the CIFAR ResNet convention, scaled linearly"
        ),
    )
    warmup_epochs: float = field(
        default=2.0,
        metadata=_help("linear warm-up to the peak lr: avoids the early instability of a large lr"),
    )
    schedule: str = field(
        default="linear",
        metadata=_help(f"decay to 0 after warm-up ({', '.join(SCHEDULES)}); linear suits short runs"),
    )
    momentum: float = field(default=0.9, metadata=_help("SGD momentum, the standard for conv nets"))
    nesterov: bool = field(default=True, metadata=_help("Nesterov momentum: a look-ahead gradient"))
    weight_decay: float = field(
        default=5e-4,
        metadata=_help("L2 on conv/linear weights only; norms' scales and biases are not decayed"),
    )
    label_smoothing: float = field(
        default=0.1, metadata=_help("soft targets (0.91 vs 0.01 each): against over-confident logits")
    )
    aux_weight: float = field(default=0.3, metadata=_help("weight of each auxiliary loss (the paper's 0.3)"))
    precision: str = field(
        default="auto",
        metadata=_help(
            f"{', '.join(PRECISIONS)}: auto is bf16 where native (recent GPUs, CPUs with AVX-512 BF16 "
            "or AMX), fp16 + scaling on older GPUs, else fp32"
        ),
    )
    channels_last: bool = field(
        default=True, metadata=_help("NHWC memory layout: what tensor-core convolutions run fastest on")
    )
    compile: bool | None = field(
        default=None,
        metadata=_help("torch.compile training and evaluation (default: on with CUDA, off elsewhere)"),
    )
    ema: bool = field(default=False, metadata=_help("evaluate a moving average of the weights"))
    ema_decay: float = field(
        default=0.999, metadata=_help("EMA decay per step (warmed up from 0, so early steps count)")
    )
    resolutions: str = field(
        default="",
        metadata=_help(
            "lower-resolution epochs first, as SIZE:EPOCHS,... (e.g. 16:8,24:3); the rest at 32 px: "
            "a 16 px epoch costs about a quarter, and global pooling accepts any size"
        ),
    )
    cutout: int = field(default=0, metadata=_help("side of a square zeroed in each training image (0: off)"))
    tta: str = field(
        default="flip+translate",
        metadata=_help(f"test-time augmentation for the test set ({', '.join(TTA_MODES)})"),
    )
    val_tta: str = field(
        default="none", metadata=_help("test-time augmentation for validation: none keeps it cheap")
    )
    val_every: int = field(default=1, metadata=_help("validate every N epochs (and always after the last)"))
    seed: int = field(
        default=0,
        metadata=_help("seed of the validation split, data order, augmentation and dropout"),
    )
    val_size: int = field(
        default=5000,
        metadata=_help("training images held out to choose the epoch; the test set is used once"),
    )
    eval_batch_size: int = field(default=1024, metadata=_help("images per evaluation batch"))
    sync_batch_norm: bool = field(
        default=False,
        metadata=_help("share batch-norm statistics across GPUs: on when each GPU's batch is small (< 32)"),
    )
    device: str = field(
        default="auto", metadata=_help("auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps")
    )
    run_dir: str = field(
        default="runs/googlenet", metadata=_help("where checkpoints, history and metrics go")
    )
    resume: bool = field(default=False, metadata=_help("continue from run_dir/last.pt if it exists"))
    progress: bool | None = field(
        default=None, metadata=_help("progress bars (default: in terminals and notebooks)")
    )

    def __post_init__(self) -> None:
        _check_types(self)
        ranges = {
            "epochs": (1, 10_000),
            "time_budget": (0.0, 1e7),
            "wall_limit": (0.0, 1e7),
            "batch_size": (1, 65_536),
            "lr": (1e-6, 10.0),
            "warmup_epochs": (0.0, float(self.epochs)),
            "momentum": (0.0, 0.999),
            "weight_decay": (0.0, 0.1),
            "label_smoothing": (0.0, 0.5),
            "aux_weight": (0.0, 10.0),
            "ema_decay": (0.5, 0.99999),
            "cutout": (0, 32),
            "val_every": (1, 10_000),
            "seed": (0, MAX_SEED),
            "val_size": (1, 10_000_000),
            "eval_batch_size": (1, 65_536),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ConfigError(f"{_name(name)} must be between {low} and {high}, got {value!r}")
        choices = {"schedule": SCHEDULES, "precision": PRECISIONS, "tta": TTA_MODES, "val_tta": TTA_MODES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"{_name(name)} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        plan = parse_resolutions(self.resolutions)  # raises ConfigError with the reason
        if sum(epochs for _, epochs in plan) >= self.epochs:
            raise ConfigError(
                f"{_name('resolutions')} {self.resolutions!r} covers {sum(e for _, e in plan)} of "
                f"{self.epochs} epochs; leave at least the last epoch at full resolution"
            )
        if self.nesterov and self.momentum == 0:
            raise ConfigError(f"{_name('nesterov')} needs momentum > 0 (or pass --no-nesterov)")
        if not self.run_dir.strip():
            raise ConfigError(f"{_name('run_dir')} must name a folder, got an empty string")

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


MIN_RESOLUTION = 12  # the cifar network's auxiliary heads need stage 4 to be at least 5x5 (9 px); margin


def parse_resolutions(text: str) -> list[tuple[int, int]]:
    """``"16:8,24:3"`` -> ``[(16, 8), (24, 3)]``: image side and number of epochs, in order."""
    plan = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            size, epochs = (int(v) for v in part.split(":"))
        except ValueError:
            raise ConfigError(
                f"{_name('resolutions')}: {part!r} is not SIZE:EPOCHS (e.g. 16:8,24:3)"
            ) from None
        if not (MIN_RESOLUTION <= size <= 32 and epochs >= 1):
            raise ConfigError(
                f"{_name('resolutions')}: {part!r} needs a size between {MIN_RESOLUTION} and 32 "
                "and at least one epoch"
            )
        plan.append((size, epochs))
    return plan


def scale_resolutions(resolutions: str, epochs: int, new_epochs: int) -> str:
    """The low-resolution plan of an ``epochs`` run for a run of ``new_epochs``, in proportion.

    ``"16:8,24:3"`` of 13 epochs becomes ``"16:3,24:1"`` of 5; at least the last epoch stays at
    full resolution, as ``TrainConfig`` requires.
    """
    plan = parse_resolutions(resolutions)
    if new_epochs >= epochs or not plan:
        return resolutions
    scaled = [[size, round(count * new_epochs / epochs)] for size, count in plan]
    while sum(count for _, count in scaled) >= new_epochs:
        max(scaled, key=lambda entry: entry[1])[1] -= 1  # trim the longest stage first
    return ",".join(f"{size}:{count}" for size, count in scaled if count > 0)


def resolution_at(epoch: int, resolutions: str, full: int = 32) -> int:
    """The image side a (0-based) epoch trains at under ``resolutions``."""
    start = 0
    for size, epochs in parse_resolutions(resolutions):
        if epoch < start + epochs:
            return size
        start += epochs
    return full


def _name(field_name: str) -> str:
    """A field as both audiences know it: ``TrainConfig.lr (--lr)``."""
    flag = "--out" if field_name == "run_dir" else "--" + field_name.replace("_", "-")
    return f"TrainConfig.{field_name} ({flag})"


def field_types() -> dict[str, Any]:
    """Each ``TrainConfig`` field's type, resolved from its annotation (``int``, ``bool | None``...)."""
    return typing.get_type_hints(TrainConfig)


def _accepts(kind: Any, value: Any) -> bool:
    if isinstance(value, bool):  # bool is an int in Python; a flag is not a number here
        return kind is bool or (typing.get_origin(kind) is types.UnionType and bool in typing.get_args(kind))
    if kind is float:
        return isinstance(value, int | float)
    if typing.get_origin(kind) is types.UnionType:
        return any(
            value is None if option is type(None) else _accepts(option, value)
            for option in typing.get_args(kind)
        )
    return isinstance(value, kind)


def _check_types(config: TrainConfig) -> None:
    for name, kind in field_types().items():
        value = getattr(config, name)
        if not _accepts(kind, value):
            shown = getattr(kind, "__name__", str(kind))
            raise ConfigError(f"{_name(name)} must be {shown}, got {value!r}")


# --------------------------------------------------------------------------- named recipes


@dataclass(frozen=True)
class Recipe:
    """A named preset: training settings, the network's width and (optionally) a data subset."""

    name: str
    summary: str
    changes: dict[str, Any]  # fields of TrainConfig that differ from its defaults
    width: float = 1.0
    subset: tuple[int, int] | None = None  # (training, test) images, class-balanced
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields that differ from the paper's

    @property
    def expected(self) -> str:
        """Measured time and accuracy of this recipe, or "not measured yet"."""
        measured = json.loads(MEASURED.read_text()) if MEASURED.is_file() else {}
        return measured.get(self.name, "not measured yet")

    def config(self, **overrides: Any) -> TrainConfig:
        """This recipe's ``TrainConfig`` with ``overrides`` applied (validated).

        A shorter ``epochs`` without its own ``resolutions`` keeps the recipe's low-resolution
        plan in proportion (``16:10,24:5`` of 20 epochs is ``16:1`` of 2).
        """
        settings = {**self.changes, **overrides}
        if "epochs" in overrides and "resolutions" not in overrides and settings.get("resolutions"):
            epochs = self.changes.get("epochs", TrainConfig.epochs)
            settings["resolutions"] = scale_resolutions(settings["resolutions"], epochs, overrides["epochs"])
        return TrainConfig(**settings)


RECIPES: dict[str, Recipe] = {
    "fast": Recipe(
        "fast",
        "least GPU time to 94%: 40 epochs, linear one-cycle decay, bf16, compiled, flip+translate TTA",
        changes={},
    ),
    "best": Recipe(
        "best",
        "highest accuracy in one 10-minute GPU call: as many epochs as fit 8 minutes (at most 180), "
        "cosine, Cutout 16, EMA, flip+translate TTA",
        changes={
            "epochs": 180,  # an upper bound: the time budget sets the length
            "time_budget": 480.0,  # 8 minutes, compiling included: one call, with room to start and test
            "warmup_epochs": 5.0,
            "schedule": "cosine",
            "cutout": 16,  # DeVries & Taylor (2017): 16 px suits CIFAR-10
            "ema": True,
            "ema_decay": 0.999,
            "val_every": 5,  # 36 validations are enough to pick an epoch of a 180-epoch run
        },
    ),
    "cpu": Recipe(
        "cpu",
        "a real result on a CPU in 30 minutes, everything included: a quarter-width GoogLeNet without "
        "dropout, as many epochs as fit (at most 14), most of them at 16 and 24 px",
        changes={
            "epochs": 14,  # an upper bound: the time budget sets the length on each machine
            "time_budget": 1800.0,  # 30 minutes for the whole run, loading and the test included
            "wall_limit": 1800.0,  # and the guard that keeps that promise should the machine slow down
            "resolutions": "16:8,24:4",  # at width 1/4, 16 px steps ran 3.4x, 24 px 1.7x as fast as 32 px
            "batch_size": 128,
            "lr": 0.1,  # 0.1 per 128 images
            "warmup_epochs": 1.0,
            # Flip and 2-pixel shifts: +0.16 to +0.50 points over flip alone on the validation split of
            # three shipped CPU runs, for about 20 s more at the test (tools/compare_tta.py).
            "tta": "flip+translate",
            "val_every": 2,  # 7 validations pick the epoch; the time saved pays for the larger test
            "eval_batch_size": 500,
        },
        # Width 1/4 for 12 epochs scored 3.5 points more than 1/8 for 12 (results/sweeps/width-epochs), and
        # in bf16 its steps run 0.55 to 0.63x as fast as 1/8's (bench train --width): 12 or more fit.
        width=0.25,
        # The narrow network underfits at these lengths: without dropout the 30-minute run scored
        # +1.42 pp (results/timed-cpu-30min-no-dropout against results/timed-cpu-30min).
        model={"dropout": 0.0, "aux_dropout": 0.0},
    ),
    "smoke": Recipe(
        "smoke",
        "seconds on a CPU: an eighth-width GoogLeNet, 3 epochs on 640 images; checks wiring, not accuracy",
        changes={
            "epochs": 3,
            "batch_size": 64,
            "lr": 0.05,
            "warmup_epochs": 0.5,
            "val_size": 128,
            "eval_batch_size": 256,
            "tta": "flip",
            "precision": "fp32",  # the same arithmetic on every processor: CI's checks must not depend on it
        },
        width=0.125,
        subset=(640, 256),
    ),
}
DEFAULT_RECIPE = "fast"


def run_name(recipe: str, *, aux_logits: bool = True, width: float | None = None) -> str:
    """The one name of a run, shared by the command line and the notebooks.

    ``googlenet-<recipe>``, then ``-w<width>`` when the width is not the recipe's and ``-no-aux``
    without the auxiliary heads: ``make train`` on a CPU writes ``runs/googlenet-cpu``, which is
    what notebooks 04 and 05 look for.
    """
    name = f"googlenet-{recipe}"
    if width is not None and recipe in RECIPES and width != RECIPES[recipe].width:
        name += f"-w{width:g}"
    return name if aux_logits else f"{name}-no-aux"


def choose_recipe(name: str | None, device: torch.device) -> tuple[Recipe, str]:
    """The recipe to run and why: ``name`` if given, else ``fast`` on a GPU and ``cpu`` on a CPU."""
    if name not in (None, "", "auto"):
        if name not in RECIPES:
            raise ConfigError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
        return RECIPES[name], f"recipe '{name}' (asked for)"
    if device.type in ("cuda", "mps"):
        return RECIPES[
            "fast"
        ], f"recipe 'fast' (chosen because a GPU, {device.type}, is here; --recipe overrides)"
    return RECIPES["cpu"], (
        "recipe 'cpu' (chosen because no GPU is here: the full-width network trains for hours on a CPU; "
        "--recipe fast overrides)"
    )


# --------------------------------------------------------------------------- schedule and optimiser


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warm-up, then the chosen decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - progress
    return 1.0


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device | None = None, *, fused: bool | None = None
) -> torch.optim.SGD:
    """SGD with weight decay on conv and linear weights only (not on batch-norm scales and biases).

    He et al., *Bag of Tricks* (2019) apply no decay to biases and batch-norm parameters as a
    heuristic for large-batch training; the fused CUDA kernel updates all parameters in one launch.
    ``fused`` defaults to on with CUDA (elsewhere the multi-tensor ``foreach`` kernels).
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if fused is None:
        fused = device is not None and device.type == "cuda"
    speed = {"fused": True} if fused else {"foreach": True}
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov, **speed)
