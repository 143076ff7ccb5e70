"""Sweeps: named lists of runs, trained one after another, each resumable, results shipped as they finish.

    python -m googlenet_utils.sweep smoke                       # seconds: synthetic data
    python -m googlenet_utils.sweep ablation                    # notebook 06's sweep: about 2 hours, 2 cores
    python -m googlenet_utils.sweep ablation --variants baseline,3x3 --seeds 0 --results runs/my-results
    python -m googlenet_utils.sweep ablation --list             # the plan, and what is shipped already

A run trains in ``runs/sweeps/NAME/<variant>-seed<k>/`` with ``resume=True``, so an interrupted run
continues from its last epoch. When it finishes, its config.json, history.csv and metrics.json
(no weights) are copied to ``results/sweeps/NAME/<variant>-seed<k>/``. A run whose results are
there already is skipped: commit them as they come, and a sweep stopped on one machine continues
on any other from what was committed. Every variant of a seed gets the same seed (initial weights,
validation split, data order, augmentation, dropout) and the same data: the comparisons are paired.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cifar10 import CIFAR10Data, load_cifar10, split_fingerprint
from .design import VARIANTS, Variant, choice_variants
from .errors import ConfigError, UserError
from .model import GoogLeNet, ModelConfig
from .paths import display_path
from .recipe import OPERATIONAL, Recipe, TrainConfig
from .run_record import RunRecord
from .rundir import CONFIG, HISTORY, METRICS, RunDir
from .runspec import describe_run
from .synthetic import make_synthetic_cifar10
from .trainer import fit

SHIPPED_FILES = (CONFIG, HISTORY, METRICS)  # what a sweep commits per run: no weights, no predictions


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
_ALL = tuple(VARIANTS[name] for name in choice_variants())
# One alternative of most choices, so that every code path of notebook 06 runs (two seeds: intervals).
_SMOKE_VARIANTS = tuple(VARIANTS[name] for name in ("baseline", "aux-0", "lrn", "3x3x2", "naive", "fc-head"))
SWEEPS: dict[str, Sweep] = {
    "ablation": Sweep("ablation", "the design choices of notebook 06 on the CIFAR-10 mirror", ABLATION, _ALL),
    # One thread: layers of 4 to 24 channels. Measured on the 2-core machine while other jobs ran, a
    # smoke run took 8.5 s of CPU time with one thread and 52 s with two (their synchronisation).
    "smoke": Sweep(
        "smoke", "six variants in seconds on synthetic data", SMOKE, _SMOKE_VARIANTS, (0, 1), True, threads=1
    ),  # fmt: skip
}


# --------------------------------------------------------------------------- one run


def load_sweep_data(
    sweep: Sweep, data_dir: str | Path, scratch: Path, *, verify: bool = False
) -> CIFAR10Data:
    """The sweep's data, already cut to its recipe's subset: the same object for every run."""
    if sweep.synthetic:
        n_train, n_test = sweep.synthetic_size
        make_synthetic_cifar10(scratch, n_train=n_train, n_test=n_test)
        return cut_to_recipe(sweep, load_cifar10(scratch, verify=False))
    return cut_to_recipe(sweep, load_cifar10(data_dir, verify=verify))


def cut_to_recipe(sweep: Sweep, data: CIFAR10Data) -> CIFAR10Data:
    """The class-balanced subset the sweep's recipe trains and tests on (all of ``data`` without one)."""
    return data.subset(*sweep.recipe.subset) if sweep.recipe.subset else data


def run_settings(
    sweep: Sweep,
    run: RunDescription,
    run_dir: str | Path = "runs/sweep",
    device: str = "auto",
    num_classes: int = 10,
) -> tuple[ModelConfig, TrainConfig]:
    """The network and the training settings of ``run``: the sweep's recipe plus the variant's changes."""
    network = dict(run.model)
    spec = describe_run(
        sweep.recipe,
        width=network.pop("width", None),
        aux_logits=network.pop("aux_logits", True),
        num_classes=num_classes,
        model_changes=network,
        **run.train, seed=run.seed, run_dir=str(run_dir), resume=True, device=device, progress=False,
    )  # fmt: skip
    return spec.model, spec.train


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` CPU threads, then restore PyTorch's setting."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_run(
    sweep: Sweep,
    run: RunDescription,
    data: CIFAR10Data,
    run_dir: Path,
    *,
    device: str = "auto",
    build: Callable[[ModelConfig], nn.Module] | None = None,
    threads: int | None = None,
) -> RunRecord:
    """Train (or resume, or just re-test) one run; ``build`` may replace ``GoogLeNet.from_config``.

    ``threads`` (default: the sweep's) sets PyTorch's CPU threads for the run and restores them.
    """
    model_config, config = run_settings(sweep, run, run_dir, device, len(data.classes))
    with _threads(threads or sweep.threads):
        torch.manual_seed(run.seed)  # the initial weights: one seed for every variant
        model = (build or GoogLeNet.from_config)(model_config)
        if sweep.fuse_1x1 and isinstance(model, GoogLeNet):
            model.fuse_1x1()  # the same function and parameters, one convolution fewer per module
        return fit(model, data, config, recipe=sweep.recipe.name)


# --------------------------------------------------------------------------- shipping results


def is_shipped(folder: Path) -> bool:
    return all((folder / name).is_file() for name in SHIPPED_FILES)


def check_shipped(folder: Path, model: ModelConfig, train: TrainConfig, data: CIFAR10Data) -> None:
    """Refuse shipped results made with other settings or data: a sweep never mixes two designs."""
    record = RunDir(folder).read_config()
    defaults = TrainConfig().to_dict()  # a setting added since the run was shipped has its default
    wanted_train = {k: v for k, v in train.to_dict().items() if k not in OPERATIONAL}
    differ = sorted(k for k, v in wanted_train.items() if record["train"].get(k, defaults[k]) != v)
    saved_model = ModelConfig.from_dict(record["model"]).to_dict()
    differ += sorted(f"model.{k}" for k, v in model.to_dict().items() if saved_model[k] != v)
    if record["data"] != split_fingerprint(data, train.val_size, train.seed):
        differ.append("data")
    if differ:
        raise UserError(
            f"{display_path(folder)} holds results made with other settings ({', '.join(differ)}). "
            "Move it away to re-run it, or ship this sweep to another --results folder."
        )


def ship(run_dir: Path, target: Path) -> Path:
    """Copy a finished run's config (its folder relative to the repository), history and metrics to
    ``target``, all at once (a rename)."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (HISTORY, METRICS):
        shutil.copy2(run_dir / name, staging / name)
    config = RunDir(run_dir).read_config()
    train = {**config["train"], "run_dir": display_path(run_dir)}  # never a machine's folders
    RunDir(staging).write_config({**config, "train": train})
    shutil.rmtree(target, ignore_errors=True)  # only a partial copy can be here: is_shipped was False
    staging.rename(target)
    return target


# --------------------------------------------------------------------------- the whole sweep


def run_sweep(
    sweep: Sweep,
    data: CIFAR10Data,
    *,
    runs_root: str | Path,
    results_root: str | Path,
    seeds: Sequence[int] | None = None,
    variants: Sequence[str] | None = None,
    device: str = "auto",
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Train every run not shipped yet, one after another; return the shipped folders of all runs.

    ``threads`` (default: the sweep's) sets PyTorch's CPU threads for the sweep and restores them.
    """
    plan = sweep.runs(seeds, variants)
    return _run_plan(sweep, plan, data, Path(runs_root), Path(results_root), device, threads, log)


def _run_plan(
    sweep: Sweep,
    plan: list[RunDescription],
    data: CIFAR10Data,
    runs_root: Path,
    results_root: Path,
    device: str,
    threads: int | None,
    log: Callable[[str], None],
) -> list[Path]:
    trained: list[float] = []
    shipped = []
    for index, run in enumerate(plan, 1):
        target = results_root / run.name
        model, train = run_settings(sweep, run, runs_root / run.name, device, len(data.classes))
        prefix = f"[sweep {sweep.name} {index}/{len(plan)}] {run.name}"
        if is_shipped(target):
            check_shipped(target, model, train, data)
            log(f"{prefix}: shipped already in {display_path(target)}, skipped")
            shipped.append(target)
            continue
        start = time.perf_counter()
        result = train_run(sweep, run, data, runs_root / run.name, device=device, threads=threads)
        shipped.append(ship(result.run_dir, target))
        trained.append(time.perf_counter() - start)
        left = sum(not is_shipped(results_root / r.name) for r in plan[index:])
        estimate = f"; {left} to go, about {left * sum(trained) / len(trained) / 60:.0f} min" if left else ""
        log(
            f"{prefix}: test accuracy {result.test_accuracy:.2%} in {trained[-1]:.0f} s, "
            f"shipped to {display_path(target)}{estimate}"
        )
    return shipped


# --------------------------------------------------------------------------- the command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=sorted(SWEEPS), help="the sweep to run")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: the sweep's (0 1 2)")
    parser.add_argument("--variants", default=None, help="comma-separated variant names (default: all)")
    parser.add_argument("--data-dir", default="data/mirror", help="CIFAR-10 folder (default: data/mirror)")
    parser.add_argument(
        "--verify", action="store_true", help="check the official md5 sums (not for a mirror)"
    )
    parser.add_argument("--runs", default="runs/sweeps", help="where runs train (default: runs/sweeps)")
    parser.add_argument(
        "--results", default="results/sweeps", help="where results go (default: results/sweeps)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: the sweep's, else PyTorch's)"
    )
    parser.add_argument(
        "--list", action="store_true", help="print the plan and what is shipped; train nothing"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sweep = SWEEPS[args.name]
    variants = args.variants.split(",") if args.variants else None
    results = Path(args.results) / sweep.name
    try:
        plan = sweep.runs(args.seeds, variants)
        if args.list:
            for run in plan:
                state = "shipped" if is_shipped(results / run.name) else "to run"
                print(f"{run.name:22s} {state:8s} {sweep.variant(run.variant).describe()}")
            return 0
        print(f"sweep {sweep.name}: {len(plan)} runs, recipe {sweep.recipe.name}: {sweep.recipe.summary}")
        with tempfile.TemporaryDirectory() as scratch:
            data = load_sweep_data(sweep, args.data_dir, Path(scratch), verify=args.verify)
        print(f"data: {data.source}")
        run_sweep(sweep, data, runs_root=Path(args.runs) / sweep.name, results_root=results,
                  seeds=args.seeds, variants=variants, device=args.device, threads=args.threads)  # fmt: skip
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished runs are in {display_path(results)}; run the same command to continue "
            "(the interrupted run resumes from its last epoch).",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
