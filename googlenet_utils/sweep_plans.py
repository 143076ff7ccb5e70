"""The named sweeps: which variants, seeds, recipe and data each one trains (``sweep.py`` runs them).

A ``Sweep`` is a list of ``RunDescription``s, every variant with every seed, on one recipe, width
and data subset. ``ablation`` is notebook 06's CPU sweep, ``gpu-pairs`` the GPU window's aux-head
pairs at full width, ``width-epochs`` notebook 04's trade-off table, ``smoke`` the seconds-long one
that CI and the notebook's smoke mode run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .design import VARIANTS, Variant, choice_variants
from .errors import ConfigError
from .recipe import Recipe


@dataclass(frozen=True)
class RunDescription:
    """One run of a sweep: a variant's settings and a seed."""

    variant: str
    model: dict[str, Any]  # ModelConfig fields that differ from the course's network
    train: dict[str, Any]  # TrainConfig fields that differ from the sweep's recipe
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}-seed{self.seed}"


@dataclass(frozen=True)
class Sweep:
    """A named list of runs: every variant with every seed, on one recipe, width and data subset."""

    name: str
    summary: str
    recipe: Recipe
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    synthetic: bool = False  # True: the synthetic stand-in (n_train, n_test below); else CIFAR-10
    synthetic_size: tuple[int, int] = (1000, 500)
    fuse_1x1: bool = False  # run each module's three input 1x1 convolutions as one
    threads: int | None = None  # CPU threads for the sweep's runs (None: PyTorch's default)
    # Seconds a run may take, compiling included: the first run's time budget chooses the length
    # (epochs, resolutions, warm-up) and every later run trains that same length, so runs stay paired.
    run_budget: float | None = None

    def variant(self, name: str) -> Variant:
        known = {v.name: v for v in self.variants}
        if name not in known:
            raise ConfigError(f"sweep {self.name!r} has no variant {name!r}; it has {', '.join(known)}")
        return known[name]

    def runs(
        self, seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None
    ) -> list[RunDescription]:
        """The plan, seed by seed: all variants of seed 0 first, so an early stop leaves whole pairs."""
        chosen = self.variants if variants is None else tuple(self.variant(n) for n in variants)
        return [
            RunDescription(v.name, dict(v.model), dict(v.train), seed)
            for seed in (self.seeds if seeds is None else seeds)
            for v in chosen
        ]


# Sized for about 2 hours for all 36 runs on the 2-core build machine, run alone: the cpu recipe's
# measured step speeds (width 0.125, batch 128: 653 images/s at 16 px, 167 at 32 px) give 6 x 8,960
# images at 16 px plus 8,960 at 32 px = 136 s of training, and the validation and test passes (6,000
# images at 32 px, about 280 images/s) about 21 s, so about 160 s a run. Per-step CPU time measured
# for every variant (one thread, on a busy machine: rough) puts the naive module at 1.6x the
# baseline and the others within 1.0-1.3x: 36 runs, about 13 baseline runs' time per seed, 105 min.
ABLATION = Recipe(
    "ablation",
    "notebook 06's budget: an eighth-width GoogLeNet, 7 epochs (the first 6 at 16 px) on 10,000 images",
    changes={
        "epochs": 7,
        "resolutions": "16:6",  # a 16 px step costs about a quarter of a 32 px one on this CPU
        "batch_size": 128,
        "lr": 0.1,  # 0.1 per 128 images, as the cpu recipe
        "warmup_epochs": 1.0,
        "val_size": 1000,
        "val_every": 7,  # validate once, after the last epoch: the linear decay ends there
        "tta": "none",  # half the test time; every variant is tested the same way
        "eval_batch_size": 500,
    },
    width=0.125,
    subset=(10_000, 5_000),  # 9,000 training + 1,000 validation images; all 5,000 test images
)
SMOKE = Recipe(
    "sweep-smoke",
    "seconds: a sixteenth-width GoogLeNet, 2 epochs (one at 16 px) on 256 synthetic images",
    changes={
        "epochs": 2,
        "resolutions": "16:1",
        "batch_size": 64,
        "lr": 0.05,
        "warmup_epochs": 0.5,
        "val_size": 64,
        "val_every": 2,
        "tta": "none",
        "eval_batch_size": 256,
    },
    width=0.0625,
    subset=(256, 128),
)
# The GPU window's pairs: the network at full width on all 50,000 training images, the fast recipe
# without compiling (each variant would compile its own graphs: about a minute of a run's share)
# and validated once, after the last epoch. The length is whatever the first run's budget allows.
GPU_PAIRS = Recipe(
    "gpu-pairs",
    "full width on a GPU: the fast recipe, eager, as many epochs as a 60-second share allows",
    changes={
        "compile": False,
        "val_every": 10_000,  # validate after the last epoch only: the linear decay ends there
        "val_size": 1000,
        "tta": "flip",  # two views: a fifth of flip+translate's test time
    },
)
# Notebook 04's trade-off table: width against epochs on all 50,000 training images, the cpu recipe
# as it was when the table began (2026-12-01: 13 epochs, 16:8,24:3, no time budget; frozen here so
# that all six runs share one recipe, its low-resolution plan scaled to each length) without dropout,
# which the 30-minute pair measured better for this underfitting network; validated once, after the
# last epoch, where the linear decay ends. One seed. The times are the table's other axis: run it
# alone. About 5 hours on 2 cores in all (width 0.25 for 12 epochs about 90 minutes): each run is
# committed as it finishes, and the next session continues. The cheaper half (6 epochs) comes first.
TRADEOFF = Recipe(
    "width-epochs",
    "notebook 04's trade-off: the cpu recipe at widths 1/8 to 1/4, 6 or 12 epochs, on all the data",
    changes={
        "epochs": 13,
        "resolutions": "16:8,24:3",
        "batch_size": 128,
        "lr": 0.1,
        "warmup_epochs": 1.0,
        "tta": "flip",
        "eval_batch_size": 500,
        "val_every": 10_000,
    },
    width=0.125,
)
TRADEOFF_WIDTHS, TRADEOFF_EPOCHS = (0.125, 0.1875, 0.25), (6, 12)
_TRADEOFF_VARIANTS = tuple(
    Variant(
        f"w{width:g}-e{epochs}",
        f"width {width:g}, {epochs} epochs",
        {"width": width, "dropout": 0.0, "aux_dropout": 0.0},
        {"epochs": epochs},
    )
    for epochs in TRADEOFF_EPOCHS
    for width in TRADEOFF_WIDTHS
)
_ALL = tuple(VARIANTS[name] for name in choice_variants())
# One alternative of most choices, so that every code path of notebook 06 runs (two seeds: intervals).
_SMOKE_VARIANTS = tuple(VARIANTS[name] for name in ("baseline", "aux-0", "lrn", "3x3x2", "naive", "fc-head"))
SWEEPS: dict[str, Sweep] = {
    "ablation": Sweep("ablation", "the design choices of notebook 06 on the CIFAR-10 mirror", ABLATION, _ALL),
    # The question a 1/8-width CPU network answers least well: do the auxiliary heads help at full
    # width, without batch norm (the paper's case, first: a deadline cuts the last pair) and with it?
    # Four runs of 60 s: within 6 minutes with the data.
    "gpu-pairs": Sweep(
        "gpu-pairs",
        "the auxiliary heads at full width on a GPU, without and with batch norm, one seed",
        GPU_PAIRS,
        tuple(VARIANTS[name] for name in ("lrn", "lrn-aux-0", "baseline", "aux-0")),
        seeds=(0,),
        run_budget=60.0,
    ),
    "width-epochs": Sweep(
        "width-epochs",
        "width against epochs for the cpu recipe: accuracy and training time on 2 cores",
        TRADEOFF,
        _TRADEOFF_VARIANTS,
        seeds=(0,),
    ),
    # One thread: layers of 4 to 24 channels. Measured on the 2-core machine while other jobs ran, a
    # smoke run took 8.5 s of CPU time with one thread and 52 s with two (their synchronisation).
    "smoke": Sweep(
        "smoke", "six variants in seconds on synthetic data", SMOKE, _SMOKE_VARIANTS, (0, 1), True, threads=1
    ),  # fmt: skip
}
