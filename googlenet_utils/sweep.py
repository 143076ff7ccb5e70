"""Sweeps: named lists of runs, trained one after another, each resumable, results shipped as they finish.

    python -m googlenet_utils.sweep smoke                       # seconds: synthetic data
    python -m googlenet_utils.sweep ablation                    # notebook 06's sweep: about 2 hours, 2 cores
    python -m googlenet_utils.sweep ablation --variants baseline,3x3 --seeds 0 --results runs/my-results
    python -m googlenet_utils.sweep ablation --list             # the plan, and what is shipped already

A run trains in ``runs/sweeps/NAME/<variant>-seed<k>/`` with ``resume=True``, so an interrupted run
continues from its last epoch. When it finishes, its config.json, history.csv and metrics.json
(no weights) are copied to ``results/sweeps/NAME/<variant>-seed<k>/`` with environment.json (the
device, libraries, date and commit that ran it). A run whose results are
there already is skipped: commit them as they come, and a sweep stopped on one machine continues
on any other from what was committed. Every variant of a seed gets the same seed (initial weights,
validation split, data order, augmentation, dropout) and the same data: the comparisons are paired.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cifar10 import CIFAR10Data, load_cifar10, split_fingerprint
from .devices import pick_device
from .errors import UserError
from .model import GoogLeNet, ModelConfig
from .paths import display_path
from .provenance import ENVIRONMENT, write_environment
from .recipe import TrainConfig
from .resume import OPERATIONAL
from .run_record import RunRecord
from .rundir import CONFIG, HISTORY, METRICS, RunDir
from .runspec import describe_run
from .sweep_plans import SWEEPS, RunDescription, Sweep
from .synthetic import make_synthetic_cifar10
from .trainer import NonFiniteLossError, fit

SHIPPED_FILES = (CONFIG, HISTORY, METRICS)  # what a sweep commits per run: no weights, no predictions
LENGTH_FIELDS = ("epochs", "resolutions", "warmup_epochs")  # what a time budget chooses (BudgetChoice.apply)
GUARD = 1.3  # a budgeted sweep's wall-clock guard per run: a later variant may run this much slower


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
    length: dict[str, Any] | None = None,
) -> tuple[ModelConfig, TrainConfig]:
    """The network and the training settings of ``run``: the sweep's recipe plus the variant's changes.

    ``length`` is what a budgeted sweep fixes at run time (``run_length``).
    """
    network = dict(run.model)
    spec = describe_run(
        sweep.recipe,
        width=network.pop("width", None),
        aux_logits=network.pop("aux_logits", True),
        num_classes=num_classes,
        model_changes=network,
        **{**run.train, **(length or {})},
        seed=run.seed, run_dir=str(run_dir), resume=True, device=device, progress=False,
    )  # fmt: skip
    return spec.model, spec.train


def run_length(sweep: Sweep, chosen: dict[str, Any] | None) -> dict[str, Any]:
    """A budgeted sweep's run-time settings: the first run's time budget, then the length it ``chosen``."""
    if sweep.run_budget is None:
        return {}
    guard = {"wall_limit": sweep.run_budget * GUARD}
    return {**chosen, **guard} if chosen else {"time_budget": sweep.run_budget, **guard}


def shipped_length(sweep: Sweep, results_root: Path) -> dict[str, Any] | None:
    """The length a budgeted sweep's runs share, from any run shipped already (None: none is)."""
    if sweep.run_budget is None:
        return None
    for run in sweep.runs():
        if is_shipped(results_root / run.name):
            train = RunDir(results_root / run.name).read_config()["train"]
            return {name: train[name] for name in LENGTH_FIELDS}
    return None


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
    length: dict[str, Any] | None = None,
) -> RunRecord:
    """Train (or resume, or just re-test) one run; ``build`` may replace ``GoogLeNet.from_config``.

    ``threads`` (default: the sweep's) sets PyTorch's CPU threads for the run and restores them;
    ``length`` is a budgeted sweep's run-time settings (``run_length``).
    """
    model_config, config = run_settings(sweep, run, run_dir, device, len(data.classes), length)
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


@contextmanager
def _replacing(target: Path) -> Iterator[Path]:
    """A staging folder beside ``target`` to fill; on success it replaces ``target`` in one rename,
    so a reader (or a kill) never meets a half-copied run."""
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    yield staging
    shutil.rmtree(target, ignore_errors=True)  # only an older or partial copy can be here
    staging.rename(target)


def ship(run_dir: Path, target: Path, device: torch.device | None = None) -> Path:
    """Copy a finished run's config (its folder relative to the repository), history and metrics to
    ``target``, all at once (a rename); with ``device``, also what ran it (``environment.json``:
    the device, the libraries, the date and the commit)."""
    with _replacing(target) as staging:
        staging.mkdir()
        for name in (HISTORY, METRICS):
            shutil.copy2(run_dir / name, staging / name)
        RunDir(staging).write_copied_config(RunDir(run_dir).read_config(), run_dir)
        if device is not None:
            write_environment(staging, device)
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
    deadline: float | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Train every run not shipped yet, one after another; return the shipped folders.

    ``threads`` (default: the sweep's) sets PyTorch's CPU threads for the sweep and restores them.
    ``deadline`` (a ``time.time()`` value): no run starts that would not end by then; the runs left
    are trained by the same call later. A run whose loss diverges is reported and left unshipped.
    """
    plan = sweep.runs(seeds, variants)
    runs_root, results_root = Path(runs_root), Path(results_root)
    chosen = shipped_length(sweep, results_root)  # a budgeted sweep's shared length, once known
    trained: list[float] = []
    shipped = []
    for index, run in enumerate(plan, 1):
        target = results_root / run.name
        length = run_length(sweep, chosen)
        model, train = run_settings(sweep, run, runs_root / run.name, device, len(data.classes), length)
        prefix = f"[sweep {sweep.name} {index}/{len(plan)}] {run.name}"
        if is_shipped(target):
            check_shipped(target, model, train, data)
            log(f"{prefix}: shipped already in {display_path(target)}, skipped")
            shipped.append(target)
            continue
        need = _expected_seconds(sweep, trained)
        if deadline is not None and need is not None and time.time() + need > deadline:
            left = sum(not is_shipped(results_root / r.name) for r in plan[index - 1 :])
            room = max(0.0, deadline - time.time())
            log(f"{prefix}: not started: a run takes about {need:.0f} s and {room:.0f} s are left; "
                f"{left} run(s) to go: run the same command again to continue")  # fmt: skip
            break
        start = time.perf_counter()
        try:
            result = train_run(sweep, run, data, runs_root / run.name, device=device, threads=threads,
                               length=length)  # fmt: skip
        except NonFiniteLossError as error:
            log(f"{prefix}: diverged, not shipped ({str(error).splitlines()[0]})")
            continue
        if chosen is None and sweep.run_budget is not None:  # the first run's budget chose the length
            chosen = {name: result.train_config[name] for name in LENGTH_FIELDS}
            log(f"{prefix}: its budget chose {describe_length(chosen)}: every run of the sweep trains that")
        shipped.append(ship(result.run_dir, target, pick_device(device)))
        trained.append(time.perf_counter() - start)
        left = sum(not is_shipped(results_root / r.name) for r in plan[index:])
        estimate = f"; {left} to go, about {left * sum(trained) / len(trained) / 60:.0f} min" if left else ""
        log(
            f"{prefix}: test accuracy {result.test_accuracy:.2%} in {trained[-1]:.0f} s, "
            f"shipped to {display_path(target)}{estimate}"
        )
    return shipped


def _expected_seconds(sweep: Sweep, trained: Sequence[float]) -> float | None:
    """How long the next run should take: the slowest so far, else the budget's guard, else unknown."""
    if trained:
        return max(trained)
    return sweep.run_budget * GUARD if sweep.run_budget is not None else None


def describe_length(length: dict[str, Any]) -> str:
    """``"12 epochs (16:3 as SIZE:EPOCHS), 0.6 warm-up epochs"``."""
    low = f" ({length['resolutions']} as SIZE:EPOCHS)" if length.get("resolutions") else ""
    return f"{length['epochs']} epochs{low}, {length['warmup_epochs']:g} warm-up epochs"


# --------------------------------------------------------------------------- results from elsewhere


def publish(sweep: Sweep, source: Path, results: Path) -> str:
    """Copy the finished runs a sweep brought back from another machine into ``results``, with a README.

    ``source`` is the folder the machine returned (holding ``<sweep name>/``) or that folder itself;
    it must hold the ``environment.json`` that ``--environment`` wrote, so the README can say what ran it.
    """
    folder = source / sweep.name if (source / sweep.name).is_dir() else source
    if not (folder / ENVIRONMENT).is_file():
        raise UserError(
            f"{display_path(folder)} has no {ENVIRONMENT}: publish the folder a sweep run with "
            "--environment wrote (make gpu-ablation does)"
        )
    runs = [run for run in sweep.runs() if is_shipped(folder / run.name)]
    if not runs:
        raise UserError(f"{display_path(folder)} holds no finished run of sweep {sweep.name!r}")
    results.mkdir(parents=True, exist_ok=True)
    shutil.copy2(folder / ENVIRONMENT, results / ENVIRONMENT)
    for run in runs:
        with _replacing(results / run.name) as staging:
            shutil.copytree(folder / run.name, staging)
    env = json.loads((results / ENVIRONMENT).read_text())
    (results / "README.md").write_text(sweep_readme(sweep, results, env))
    return f"published {len(runs)} run(s) of sweep {sweep.name} to {display_path(results)}"


def sweep_readme(sweep: Sweep, results: Path, env: dict[str, Any]) -> str:
    """A published sweep's README: what ran it, on what data, and each run's result, read from its files."""
    lines = [
        f"# Sweep `{sweep.name}`: {sweep.summary}",
        "",
        f"Trained on {env['device']} (driver {env['driver']}, PyTorch {env['torch']}), {env['date']}, "
        f"commit `{env['commit'][:12]}`, by `python -m googlenet_utils.sweep {sweep.name}`; "
        f"recipe `{sweep.recipe.name}`: {sweep.recipe.summary}.",
        "",
        "| run | data | epochs | test accuracy | training s |",
        "|---|---|---|---|---|",
    ]
    for run in sweep.runs():
        if is_shipped(results / run.name):
            metrics = RunDir(results / run.name).read_metrics()
            lines.append(f"| {run.name} | {metrics.data_source} | {metrics.epochs} | "
                         f"{metrics.test_accuracy:.2%} | {metrics.train_seconds:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


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
    parser.add_argument(
        "--deadline", type=float, default=None,
        help="seconds after --started by which the last run must end: no run starts that would not",
    )  # fmt: skip
    parser.add_argument(
        "--started", type=float, default=None,
        help="when the command's clock started, in seconds since 1970 (default: now)",
    )  # fmt: skip
    parser.add_argument(
        "--environment", action="store_true",
        help=f"first write {ENVIRONMENT} (device, driver, versions, date, commit) into the results folder",
    )  # fmt: skip
    parser.add_argument("--commit", default=None, help="the code's commit, for --environment without git")
    parser.add_argument(
        "--publish", metavar="FOLDER", default=None,
        help="copy results brought back from another machine (FOLDER/NAME) into --results; train nothing",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sweep = SWEEPS[args.name]
    variants = args.variants.split(",") if args.variants else None
    results = Path(args.results) / sweep.name
    try:
        if args.publish:
            print(publish(sweep, Path(args.publish), results))
            return 0
        plan = sweep.runs(args.seeds, variants)
        if args.list:
            for run in plan:
                state = "shipped" if is_shipped(results / run.name) else "to run"
                print(f"{run.name:22s} {state:8s} {sweep.variant(run.variant).describe()}")
            return 0
        started = time.time() if args.started is None else args.started
        deadline = started + args.deadline if args.deadline is not None else None
        if args.environment:  # first, so that a killed command still says what ran it
            write_environment(results, pick_device(args.device), args.commit)
        print(f"sweep {sweep.name}: {len(plan)} runs, recipe {sweep.recipe.name}: {sweep.recipe.summary}")
        with tempfile.TemporaryDirectory() as scratch:
            data = load_sweep_data(sweep, args.data_dir, Path(scratch), verify=args.verify)
        print(f"data: {data.source}")
        run_sweep(sweep, data, runs_root=Path(args.runs) / sweep.name, results_root=results,
                  seeds=args.seeds, variants=variants, device=args.device, threads=args.threads,
                  deadline=deadline)  # fmt: skip
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
