"""The notebooks' settings, read in one place from environment variables.

=========================  ===============================================  ========================
variable                   meaning                                          default
=========================  ===============================================  ========================
``GOOGLENET_SMOKE``        1: synthetic data, a narrow model, a few steps   0 (full mode)
``GOOGLENET_DATA_DIR``     folder with (or for) ``cifar-10-batches-py/``    ``<repo>/data``
``GOOGLENET_VERIFY``       0: skip the md5 check (for a mirror)             1
``GOOGLENET_RUN_DIR``      folder for training runs                         ``<repo>/runs``
``GOOGLENET_DEVICE``       ``auto``, ``cuda``, ``cpu``, ``mps``             auto (CPU in smoke mode)
``GOOGLENET_EPOCHS``       training epochs                                  the recipe's (80)
=========================  ===============================================  ========================

In Colab the defaults move to ``/content`` (point ``GOOGLENET_RUN_DIR`` at Google Drive to keep
checkpoints through a disconnect).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .data import CIFAR10Data, load_cifar10, make_synthetic_cifar10
from .devices import pick_device
from .train import SMOKE, TrainConfig

SMOKE_WIDTH = 0.125  # an eighth of the channels: the whole model runs in seconds on a CPU


@dataclass(frozen=True)
class CourseSettings:
    """Where data and runs live, on which device, and whether this is a quick smoke run."""

    smoke: bool
    data_dir: Path
    verify: bool
    run_dir: Path
    device: torch.device
    epochs: int | None
    in_colab: bool

    @property
    def width(self) -> float:
        """GoogLeNet width for training notebooks: the paper's network, or a narrow one in smoke mode."""
        return SMOKE_WIDTH if self.smoke else 1.0

    def describe(self) -> str:
        mode = "smoke (synthetic data, narrow model, CPU)" if self.smoke else "full"
        where = "Colab" if self.in_colab else "local"
        return f"mode: {mode}; {where}; device: {self.device}; data: {self.data_dir}; runs: {self.run_dir}"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false), got {value!r}")


def _project_root() -> Path:
    """The repository checkout when the package is installed from it (editable), else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir() else Path.cwd()


def course_settings() -> CourseSettings:
    """Read the ``GOOGLENET_*`` environment variables (see the module docstring)."""
    in_colab = "google.colab" in sys.modules
    smoke = _flag("GOOGLENET_SMOKE", False)
    base = Path("/content") if in_colab else _project_root()
    if smoke:  # never touch real data or runs: everything goes to a fresh temporary folder
        scratch = Path(tempfile.mkdtemp(prefix="googlenet-smoke-"))
        data_dir, run_dir = scratch / "data", scratch / "runs"
    else:
        data_dir = Path(os.environ.get("GOOGLENET_DATA_DIR") or base / "data")
        run_dir = Path(os.environ.get("GOOGLENET_RUN_DIR") or base / "runs")
    epochs_text = os.environ.get("GOOGLENET_EPOCHS")
    if epochs_text is not None and not epochs_text.isdigit():
        raise ValueError(f"GOOGLENET_EPOCHS must be a whole number, got {epochs_text!r}")
    return CourseSettings(
        smoke=smoke,
        data_dir=data_dir,
        verify=_flag("GOOGLENET_VERIFY", True),
        run_dir=run_dir,
        device=pick_device("cpu" if smoke else os.environ.get("GOOGLENET_DEVICE", "auto")),
        epochs=int(epochs_text) if epochs_text else None,
        in_colab=in_colab,
    )


def load_course_data(settings: CourseSettings) -> CIFAR10Data:
    """CIFAR-10 (downloaded if needed) in full mode; a small synthetic stand-in in smoke mode."""
    if settings.smoke:
        if not (settings.data_dir / "cifar-10-batches-py").is_dir():
            make_synthetic_cifar10(settings.data_dir, n_train=1000, n_test=500)
        return load_cifar10(settings.data_dir, verify=False)
    return load_cifar10(settings.data_dir, download=True, verify=settings.verify)


def course_train_config(settings: CourseSettings, name: str, **changes) -> TrainConfig:
    """The training recipe for run ``name`` under ``settings.run_dir`` (shrunk in smoke mode)."""
    values = dict(SMOKE) if settings.smoke else {}
    if settings.epochs is not None:
        values["epochs"] = settings.epochs
    values.update(run_dir=str(settings.run_dir / name), device=str(settings.device), resume=True)
    values.update(changes)
    return dataclasses.replace(TrainConfig(), **values)


def find_run(settings: CourseSettings, name: str) -> Path | None:
    """The finished run ``name`` from notebook 04, else a reference run shipped under ``results/``.

    Smoke mode looks only at its own temporary runs: a reference run's predictions belong to
    the real test set, not to the synthetic one.
    """
    candidates = [settings.run_dir / name]
    if not settings.smoke:
        candidates.append(_project_root() / "results" / name)
    return next((path for path in candidates if (path / "metrics.json").is_file()), None)
