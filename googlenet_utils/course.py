"""The notebooks' settings, read in one place from environment variables, and where runs are found.

=========================  ===============================================  ========================
variable                   meaning                                          default
=========================  ===============================================  ========================
``GOOGLENET_SMOKE``        1: synthetic data, the smoke recipe, the CPU     0 (full mode)
``GOOGLENET_DATA_DIR``     folder with (or for) ``cifar-10-batches-py/``    ``<repo>/data``
``GOOGLENET_VERIFY``       0: skip the md5 check (for the JPEG mirror)      1
``GOOGLENET_RUN_DIR``      folder for training runs                         ``<repo>/runs``
``GOOGLENET_DEVICE``       ``auto``, ``cuda``, ``cuda:N``, ``cpu``, ``mps``  auto (CPU in smoke mode)
=========================  ===============================================  ========================

In Colab the defaults move to ``/content``; notebooks 04 and 05 offer ``USE_DRIVE`` to keep
runs on Google Drive through a disconnect. The recipe, epochs and width of a training run are
plain Python variables in notebook 04, not environment variables.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .cifar10 import BATCH_FOLDER, CIFAR10Data, load_cifar10
from .devices import pick_device
from .errors import ConfigError
from .paths import display_path, project_root  # noqa: F401 - the notebooks import them from here
from .recipe import RECIPES, Recipe, choose_recipe, run_name
from .rundir import CONFIG, METRICS, RunDir
from .runspec import RunSpec, describe_run
from .synthetic import make_synthetic_cifar10

# The reference runs shipped under results/, by the run name `make train` and notebook 04 give the
# same run of a learner's (one naming scheme: recipe.run_name).
REFERENCE_RUNS = {
    run_name("cpu"): "reference-cpu-aux",
    run_name("cpu", aux_logits=False): "reference-cpu-no-aux",
}
# The longer CPU reference (tools/ship_reference_runs.py --long): what notebook 05 analyses while no
# full-width GPU run is shipped, because it has learned more than the pair's narrow 30-minute run.
LONG_REFERENCE = "reference-cpu-90min"


@dataclass(frozen=True)
class CourseSettings:
    """Where data and runs live, on which device, and whether this is a quick smoke run."""

    smoke: bool
    data_dir: Path
    verify: bool
    run_dir: Path
    device: torch.device
    in_colab: bool

    def describe(self) -> str:
        mode = "smoke (synthetic data, the smoke recipe, CPU)" if self.smoke else "full"
        where = "Colab" if self.in_colab else "local"
        data, runs = display_path(self.data_dir), display_path(self.run_dir)
        return f"mode: {mode}; {where}; device: {self.device}; data: {data}; runs: {runs}"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false), got {value!r}")


def _device(smoke: bool) -> torch.device:
    if smoke:
        return torch.device("cpu")
    value = os.environ.get("GOOGLENET_DEVICE")
    if value is None:
        return pick_device("auto")
    if not value.strip():
        raise ConfigError("GOOGLENET_DEVICE is set but empty: unset it, or set it to auto, cpu, cuda or mps")
    try:
        return pick_device(value)
    except ConfigError as error:
        raise ConfigError(f"GOOGLENET_DEVICE={value!r}: {error}") from None


def course_settings() -> CourseSettings:
    """Read the ``GOOGLENET_*`` environment variables (see the module docstring)."""
    in_colab = "google.colab" in sys.modules
    smoke = _flag("GOOGLENET_SMOKE", False)
    base = Path("/content") if in_colab else project_root()
    if smoke:  # never touch real data or runs: everything goes to a fresh temporary folder
        scratch = Path(tempfile.mkdtemp(prefix="googlenet-smoke-"))
        data_dir, run_dir = scratch / "data", scratch / "runs"
    else:  # relative paths mean the repository's folders, wherever the kernel was started
        data_dir = base / (os.environ.get("GOOGLENET_DATA_DIR") or "data")
        run_dir = base / (os.environ.get("GOOGLENET_RUN_DIR") or "runs")
    return CourseSettings(
        smoke=smoke,
        data_dir=data_dir,
        verify=_flag("GOOGLENET_VERIFY", True),
        run_dir=run_dir,
        device=_device(smoke),
        in_colab=in_colab,
    )


def load_course_data(settings: CourseSettings) -> CIFAR10Data:
    """CIFAR-10 (downloaded if needed) in full mode; a small synthetic stand-in in smoke mode."""
    if settings.smoke:
        if not (settings.data_dir / BATCH_FOLDER).is_dir():
            make_synthetic_cifar10(settings.data_dir, n_train=1000, n_test=500)
        return load_cifar10(settings.data_dir, verify=False)
    return load_cifar10(settings.data_dir, download=True, verify=settings.verify)


def course_recipe(settings: CourseSettings, name: str = "auto") -> tuple[Recipe, str]:
    """The recipe a notebook trains with, and why: smoke in smoke mode, else by name or by device."""
    if settings.smoke:
        return RECIPES["smoke"], "recipe 'smoke' (smoke mode: synthetic data, seconds on a CPU)"
    return choose_recipe(name, settings.device)


def course_run(
    settings: CourseSettings,
    recipe: Recipe,
    *,
    name: str | None = None,
    width: float | None = None,
    aux_logits: bool = True,
    **changes: Any,
) -> RunSpec:
    """``recipe``'s run with these changes under ``settings.run_dir``, resumable, on the course's device.

    The folder is the run's name (``recipe.run_name``: what ``make train`` writes and notebook 05
    finds) unless ``name`` gives another, e.g. for a second seed.
    """
    folder = {"run_dir": str(settings.run_dir / name)} if name else {}
    return describe_run(recipe, width=width, aux_logits=aux_logits, runs=settings.run_dir,
                        device=str(settings.device), resume=True, **folder, **changes)  # fmt: skip


@dataclass(frozen=True)
class FoundRun:
    """A finished run to analyse: where it is, whether it is the learner's or a shipped reference,
    and, for a reference, which one and why."""

    path: Path
    whose: str  # "yours" or "reference"
    what: str = ""  # e.g. "the 90-minute CPU reference (no GPU run is shipped)"

    def describe(self) -> str:
        if self.whose == "yours":
            return f"your run: {display_path(self.path)}"
        return f"{self.what or 'the reference run shipped with the course'}: {display_path(self.path)}"


def reference_run(name: str) -> Path:
    """The shipped run of the reference pair that stands in for run ``name``: the same run if shipped,
    else the CPU run with (or, for a ``-no-aux`` name, without) the auxiliary heads."""
    shipped = (
        REFERENCE_RUNS.get(name) or REFERENCE_RUNS[run_name("cpu", aux_logits=not name.endswith("-no-aux"))]
    )
    return project_root() / "results" / shipped


def gpu_runs(results: Path) -> list[Path]:
    """Shipped full-width runs with auxiliary heads trained on a GPU (``make gpu-publish``), by name."""
    found = []
    for config in sorted(results.glob(f"*/{CONFIG}")):
        folder = RunDir(config.parent)
        model = folder.read_config().get("model", {})
        if model.get("width") != 1.0 or not model.get("aux_logits") or not folder.file(METRICS).is_file():
            continue
        if not folder.read_metrics().device.startswith("cpu"):
            found.append(config.parent)
    return found


def analysed_reference(name: str) -> FoundRun:
    """The shipped run notebook 05 analyses when the learner has no run ``name``.

    With auxiliary heads: the first full-width GPU run if one is shipped, else the 90-minute CPU
    reference if shipped, else the reference pair's run. Without them: the pair's run without heads.
    """
    results = project_root() / "results"
    if not name.endswith("-no-aux"):
        gpu = gpu_runs(results)  # a missing folder globs to nothing
        if gpu:
            return FoundRun(
                gpu[0], "reference", "the full-width GoogLeNet trained on a GPU, shipped with the course"
            )
        if (results / LONG_REFERENCE / METRICS).is_file():
            return FoundRun(
                results / LONG_REFERENCE, "reference",
                "the 90-minute CPU reference shipped with the course (no GPU run is shipped yet)",
            )  # fmt: skip
    return FoundRun(reference_run(name), "reference", "the reference run shipped with the course")


def reference_pair(name: str) -> list[Path]:
    """The shipped runs with and without auxiliary heads that notebook 05 compares for run ``name``:
    a full-width GPU run and its ``-no-aux`` twin when both are shipped, else the CPU reference pair."""
    for gpu in gpu_runs(project_root() / "results"):
        twin = gpu.with_name(f"{gpu.name}-no-aux")
        if (twin / METRICS).is_file():
            return [gpu, twin]
    return [reference_run(name), reference_run(f"{name}-no-aux")]


def find_run(settings: CourseSettings, name: str) -> tuple[FoundRun | None, list[Path]]:
    """The learner's finished run ``name``, else the shipped run that stands in for it
    (``analysed_reference``); and every place looked at."""
    reference = analysed_reference(name)
    candidates = [FoundRun(settings.run_dir / name, "yours"), reference]
    for candidate in candidates:
        if (candidate.path / METRICS).is_file():
            return candidate, [c.path for c in candidates]
    return None, [c.path for c in candidates]
