"""One description of a run, built once: the recipe, the network, the training settings, the data.

The command line, the notebooks (through ``course``), the GPU report, ``bench`` and the sweep all
call ``describe_run``; nobody else writes out recipe -> width -> model -> config by hand:

    spec = describe_run(RECIPES["cpu"], aux_logits=False, epochs=3)
    spec.name                     # 'googlenet-cpu-no-aux', the folder notebooks 04 and 05 look for
    data = spec.data(data)        # the recipe's class-balanced subset (all of it for most recipes)
    run = spec.fit(data)          # the seeded model, trained with the run's settings
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cifar10 import NUM_CLASSES, CIFAR10Data
from .model import GoogLeNet, ModelConfig
from .recipe import Recipe, TrainConfig, run_name
from .resume import OPERATIONAL
from .run_record import RunRecord
from .trainer import fit


@dataclass(frozen=True)
class RunSpec:
    """What a run is: ``recipe`` plus the overrides in effect, as a network and its training settings."""

    recipe: Recipe
    model: ModelConfig
    train: TrainConfig
    name: str  # recipe.run_name's: also the run's folder under runs/ unless run_dir says otherwise
    overrides: str = ""  # the overrides in words ("epochs 1 (recipe: 13)"), "" for none

    def data(self, data: CIFAR10Data) -> CIFAR10Data:
        """The part of ``data`` this run trains and tests on: the recipe's class-balanced subset, or all."""
        return data.subset(*self.recipe.subset) if self.recipe.subset is not None else data

    def build_model(self) -> GoogLeNet:
        """The network with the run's initial weights (seeded by the training seed, as every run is)."""
        torch.manual_seed(self.train.seed)
        return GoogLeNet.from_config(self.model)

    def fit(self, data: CIFAR10Data, model: GoogLeNet | None = None, **options: Any) -> RunRecord:
        """Train (or resume) this run on ``data`` (already ``self.data(...)``); ``options`` go to ``fit``."""
        if len(data.classes) != self.model.num_classes:
            raise ValueError(
                f"the run's network has {self.model.num_classes} classes, the data {len(data.classes)}: "
                "describe the run with num_classes=len(data.classes)"
            )
        return fit(model or self.build_model(), data, self.train, recipe=self.recipe.name, **options)


def describe_run(
    recipe: Recipe,
    *,
    width: float | None = None,
    aux_logits: bool = True,
    num_classes: int = NUM_CLASSES,
    model_changes: dict[str, Any] | None = None,
    runs: str | Path = "runs",
    **train_changes: Any,
) -> RunSpec:
    """``recipe`` with these overrides as one ``RunSpec``; every value is validated here, before any data.

    ``width`` and ``aux_logits`` (and ``model_changes``: other ``ModelConfig`` fields) describe the
    network, ``train_changes`` any ``TrainConfig`` field. Without a ``run_dir`` the run goes to
    ``runs/<name>``, where the notebooks find it.
    """
    chosen_width = recipe.width if width is None else width
    name = run_name(recipe.name, aux_logits=aux_logits, width=width)
    if train_changes.get("run_dir") is None:
        train_changes["run_dir"] = str(Path(runs) / name)
    train = recipe.config(**train_changes)  # the training settings are checked first, then the network
    network = {**recipe.model, **(model_changes or {})}  # the recipe's network settings, then the caller's
    model = ModelConfig(num_classes, "cifar", chosen_width, aux_logits, **network)
    overrides = describe_overrides(recipe, train_changes, model, model_changes or {})
    return RunSpec(recipe, model, train, name, overrides)


def trained_length(run: RunRecord) -> dict[str, Any]:
    """How long ``run`` trained (its budget's choice, if it had one), as ``describe_run`` overrides.

    A run given these trains exactly as many epochs, at the same image sides, without a budget of
    its own: a comparison that must differ in one thing only (the auxiliary heads) uses them.
    """
    train = run.train_config
    return {"epochs": train["epochs"], "resolutions": train["resolutions"], "time_budget": 0.0}


def describe_overrides(
    recipe: Recipe, train_changes: dict[str, Any], model: ModelConfig, model_changes: dict[str, Any]
) -> str:
    """``"epochs 1 (recipe: 13), width 0.25 (recipe: 0.125), dropout 0.0 (paper: 0.4)"``, or ``""``.

    Training settings and the width are worded against the recipe, other network settings against
    the paper's network; run folders, devices and other operational settings are not overrides.
    """
    base = recipe.config()
    words = [
        f"{name.replace('_', ' ')} {value!r} (recipe: {getattr(base, name)!r})"
        for name, value in train_changes.items()
        if name not in OPERATIONAL and value != getattr(base, name)
    ]
    if model.width != recipe.width:
        words.append(f"width {model.width:g} (recipe: {recipe.width:g})")
    paper = ModelConfig(model.num_classes, model.variant)  # the paper's choices, at this stem
    for name in model_changes:
        value, baseline = getattr(model, name), recipe.model.get(name, getattr(paper, name))
        if value != baseline:
            against = "recipe" if name in recipe.model else "paper"
            words.append(f"{name.replace('_', ' ')} {value!r} ({against}: {baseline!r})")
    return ", ".join(words)
