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
import sys
import tempfile
from pathlib import Path

import torch

from . import distributed
from .cifar10 import CIFAR10Data, load_cifar10
from .devices import pick_device
from .errors import UserError
from .model import GoogLeNet
from .recipe import RECIPES, TrainConfig, choose_recipe, field_types
from .synthetic import make_synthetic_cifar10
from .trainer import fit


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
    defaults = TrainConfig()
    settings = parser.add_argument_group("training settings (TrainConfig; each overrides the recipe)")
    for f in dataclasses.fields(TrainConfig):
        kind = field_types()[f.name]
        flag = "--out" if f.name == "run_dir" else "--" + f.name.replace("_", "-")
        text = f.metadata["help"]
        if f.name == "run_dir":
            settings.add_argument(
                flag, dest="run_dir", default=None, help=f"{text} (default: runs/googlenet-RECIPE)"
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


def _load_data(args: argparse.Namespace, small: bool, scratch: Path) -> CIFAR10Data:
    if args.synthetic:
        make_synthetic_cifar10(scratch, n_train=1000 if small else 10_000, n_test=500 if small else 2_000)
        return load_cifar10(scratch, verify=False)
    try:
        return load_cifar10(args.data_dir, download=not args.no_download, verify=not args.no_verify)
    except UserError as error:
        hint = " Leave out --no-download to download it," if args.no_download else ""
        raise type(error)(
            f"{error}\nFrom the command line:{hint} --synthetic trains on a synthetic stand-in."
        ) from error


def run(argv: list[str] | None = None) -> None:
    """Parse, choose the recipe, load the data, build the model and train (errors propagate)."""
    args = build_parser().parse_args(argv)
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name) is not None
    }
    context = distributed.start(overrides.get("device", "auto"))
    try:
        device = pick_device(distributed.device_for(context, overrides.get("device", "auto")))
        recipe, why = choose_recipe(args.recipe, device)
        if context is None or context.is_main:
            print(f"{why}: {recipe.summary}")
        overrides.setdefault("run_dir", f"runs/googlenet-{recipe.name}")
        config = recipe.config(**overrides)
        with tempfile.TemporaryDirectory() as scratch:
            data = _load_data(args, recipe.subset is not None, Path(scratch))
        if recipe.subset is not None:
            data = data.subset(*recipe.subset)
        width = args.width if args.width is not None else recipe.width
        torch.manual_seed(config.seed)  # the model's initial weights
        model = GoogLeNet(len(data.classes), variant="cifar", aux_logits=not args.no_aux, width=width)
        try:
            fit(model, data, config, recipe=recipe.name, distributed=context)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(config.run_dir) from None  # main() names the folder to resume
    finally:
        distributed.stop(context)


def main(argv: list[str] | None = None) -> int:
    """Run, and turn every user mistake into one line on stderr and exit status 2."""
    try:
        run(argv)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        where = stop.args[0] if stop.args else "the run directory"
        print(
            f"\ninterrupted: {where} keeps its last finished epoch; "
            "run the same command with --resume to continue.",
            file=sys.stderr,
        )
        return 130
    return 0
