"""The command line: ``python -m googlenet_utils.train`` (or under ``torchrun``), and nothing else.

    python -m googlenet_utils.train                      # recipe by device: fast on a GPU, cpu on a CPU
    python -m googlenet_utils.train --recipe best --out runs/best
    python -m googlenet_utils.train --synthetic --recipe smoke --out /tmp/smoke   # seconds, offline
    torchrun --nproc_per_node=4 -m googlenet_utils.train --recipe fast           # one model, 4 GPUs

Every mistake a user can make (bad values, missing data, a taken run directory, a damaged
checkpoint, a full disk) ends here as one message and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import typing
from pathlib import Path

import torch

from . import distributed
from .cifar10 import CIFAR10Data, DatasetError, DatasetMissingError, load_cifar10
from .complexity import training_memory
from .devices import free_memory, pick_device, pick_precision
from .errors import ConfigError, UserError
from .model import GoogLeNet, ModelConfig
from .recipe import RECIPES, TrainConfig, choose_recipe, field_types
from .rundir import CONFIG, LAST, RunDir
from .runspec import describe_run
from .synthetic import make_synthetic_cifar10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        default="auto",
        help=f"a named preset: {', '.join(RECIPES)}, or auto (fast with a GPU, cpu without). Default: auto",
    )
    data = parser.add_argument_group("data and model")
    data.add_argument(
        "--data-dir", default="data", help="folder holding cifar-10-batches-py/ (default: data)"
    )
    data.add_argument("--no-download", action="store_true", help="never try to download CIFAR-10")
    data.add_argument("--no-verify", action="store_true", help="skip the md5 check (for the JPEG mirror)")
    data.add_argument(
        "--synthetic", action="store_true", help="train on the synthetic stand-in (no dataset needed)"
    )
    data.add_argument(
        "--no-aux", action="store_true", help="build GoogLeNet without the auxiliary classifiers"
    )
    data.add_argument("--width", type=float, default=None, help="channel multiplier (default: the recipe's)")
    model_types = typing.get_type_hints(ModelConfig)  # resolved once: the annotations are strings
    for f in model_flag_fields():  # ModelConfig's flags, generated as the TrainConfig ones below
        flag, kind = "--" + f.name.replace("_", "-"), model_types[f.name]
        if kind is bool:
            data.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None,
                              help=f.metadata["help"])  # fmt: skip
        else:
            data.add_argument(flag, dest=f.name, type=str if kind == (str | None) else kind, default=None,
                              help=f.metadata["help"])  # fmt: skip
    defaults = TrainConfig()
    settings = parser.add_argument_group("training settings (TrainConfig; each overrides the recipe)")
    train_types = field_types()
    for f in dataclasses.fields(TrainConfig):
        kind = train_types[f.name]
        flag = "--out" if f.name == "run_dir" else "--" + f.name.replace("_", "-")
        text = f.metadata["help"]
        if f.name == "run_dir":
            settings.add_argument(
                flag,
                dest="run_dir",
                default=None,
                help=f"{text} (default: runs/googlenet-RECIPE[-wWIDTH][-no-aux])",
            )
        elif kind is bool or kind == (bool | None):
            settings.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            settings.add_argument(
                flag, dest=f.name, type=kind, default=None, help=f"{text} (fast: {getattr(defaults, f.name)})"
            )
    return parser


def model_flag_fields() -> list[dataclasses.Field]:
    """The ``ModelConfig`` fields the command line offers as flags: those with a ``help`` text.

    The others come from elsewhere: ``--width`` and ``--no-aux``, the data's class count, the CIFAR stem.
    """
    return [f for f in dataclasses.fields(ModelConfig) if "help" in f.metadata]


def _load_data(args: argparse.Namespace, small: bool, scratch: Path) -> CIFAR10Data:
    if args.synthetic:
        try:
            make_synthetic_cifar10(scratch, n_train=1000 if small else 10_000, n_test=500 if small else 2_000)
        except DatasetError as error:
            raise DatasetError(
                f"{error}\nFrom the command line: the stand-in goes to a temporary folder; point the TMPDIR "
                "environment variable at a folder with space."
            ) from error
        return load_cifar10(scratch, verify=False)
    try:
        return load_cifar10(args.data_dir, download=not args.no_download, verify=not args.no_verify)
    except UserError as error:
        missing = isinstance(error, DatasetMissingError) and args.no_download  # a download would help
        hint = " Leave out --no-download to download it," if missing else ""
        raise type(error)(
            f"{error}\nFrom the command line:{hint} --synthetic trains on a synthetic stand-in."
        ) from error


def run(argv: list[str] | None = None) -> None:
    """Parse, choose the recipe, load the data, build the model and train (errors propagate)."""
    args = build_parser().parse_args(argv)
    args.data_dir = os.path.expanduser(args.data_dir)  # --data-dir=~/x reaches no shell to expand it
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name) is not None
    }
    if "run_dir" in overrides:
        overrides["run_dir"] = os.path.expanduser(overrides["run_dir"])
    context = distributed.start(overrides.get("device", "auto"))
    try:
        device = pick_device(distributed.device_for(context, overrides.get("device", "auto")))
        recipe, why = choose_recipe(args.recipe, device)
        model_changes = {
            f.name: getattr(args, f.name) for f in model_flag_fields() if getattr(args, f.name) is not None
        }
        spec = describe_run(
            recipe, width=args.width, aux_logits=not args.no_aux, model_changes=model_changes, **overrides
        )
        if context is None or context.is_main:
            print(f"{why}: {recipe.summary}")
            if spec.overrides:
                print(f"overrides in effect: {spec.overrides}")
        try:
            with tempfile.TemporaryDirectory() as scratch:
                data = _load_data(args, recipe.subset is not None, Path(scratch))
            model = spec.build_model()
            check_memory(model, spec.train, device, context)
            spec.fit(spec.data(data), model, distributed=context, device=device)  # resolved once, above
        except KeyboardInterrupt:
            raise KeyboardInterrupt(spec.train.run_dir) from None  # main() says what the folder holds
    finally:
        distributed.stop(context)


def check_memory(
    model: GoogLeNet, config: TrainConfig, device: torch.device, context: distributed.Distributed | None
) -> None:
    """Refuse a run whose estimated memory exceeds what ``device`` has free, naming both and the fix."""
    available = free_memory(device)
    if available is None:
        return
    processes = context.world_size if context else 1
    # CPU processes of one node share its memory; each GPU process has a GPU of its own.
    sharing = int(os.environ.get("LOCAL_WORLD_SIZE", processes)) if device.type == "cpu" else 1
    per_process = max(1, config.batch_size // processes)
    precision = pick_precision(config.precision, device)
    need = sharing * training_memory(
        model, per_process, device_type=device.type, precision=precision, ema=config.ema
    )
    if need > available:
        width, batch = model.config.width, config.batch_size
        raise ConfigError(
            f"width {width:g} with batches of {batch} needs about {need / 1e9:.1f} GB to train on {device} "
            f"(an estimate), but {available / 1e9:.1f} GB is free: choose a smaller --batch-size or --width "
            "(1.0 is the paper's network)"
        )


def main(argv: list[str] | None = None) -> int:
    """Run, and turn every user mistake into one line on stderr and exit status 2."""
    try:
        run(argv)
    except UserError as error:
        if _first_process_of_its_node():
            print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"\n{interrupted(stop.args[0] if stop.args else None)}", file=sys.stderr)
        return 130
    return 0


def _first_process_of_its_node() -> bool:
    # Under torchrun every process meets the same mistake: one message per node, not one per process.
    return os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) == "0"


def interrupted(run_dir: str | os.PathLike | None) -> str:
    """What Ctrl-C left: a checkpoint to resume, a started run without one, or nothing written yet."""
    try:
        present = RunDir(run_dir).present() if run_dir is not None else []
    except OSError:  # a name the file system refused: nothing was written there
        present = []
    has_checkpoint, started = LAST in present, present == [CONFIG]  # config.json: the first epoch began
    if has_checkpoint:
        return (
            f"interrupted: {run_dir} keeps its last finished epoch; run the same command with --resume "
            "to continue."
        )
    if started:
        return (
            f"interrupted before the first epoch finished: {run_dir} holds no checkpoint yet; run the "
            "same command with --resume to start from the first epoch."
        )
    return "interrupted before training started: nothing was written."
