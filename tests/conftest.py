"""Shared fixtures: a synthetic dataset, a tiny GoogLeNet and its recipe, and one finished tiny run."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import nn

from googlenet_utils import GoogLeNet, TrainConfig, load_cifar10, load_run, make_synthetic_cifar10
from googlenet_utils.model import InceptionModule
from googlenet_utils.run_schema import RunMetrics
from googlenet_utils.trainer import fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))  # notebook_rules, shared with the notebook-output tool

TIMING_COLUMNS = {"train_seconds", "images_per_s", "seconds", "elapsed_seconds"}


def tiny_config(run_dir: Path, **changes) -> TrainConfig:
    """Three epochs of batch 64 on 500 images: a few seconds on a CPU."""
    settings = {"epochs": 3, "batch_size": 64, "lr": 0.05, "warmup_epochs": 0.5, "val_size": 100}
    # fp32 pinned: "auto" would be bf16 on a CPU with native bf16, and these runs compare exact numbers
    settings.update(eval_batch_size=256, tta="flip", run_dir=str(run_dir), progress=False, precision="fp32")
    settings.update(changes)
    return TrainConfig(**settings)


def quick_config(run_dir, **changes) -> TrainConfig:
    """Two steps of 64 images an epoch on the ``small`` set; validation and test one batch of 64 each."""
    settings = {"epochs": 2, "batch_size": 64, "lr": 0.05, "warmup_epochs": 0.5, "val_size": 64}
    settings.update(eval_batch_size=64, tta="flip", run_dir=str(run_dir), progress=False, precision="fp32")
    return TrainConfig(**{**settings, **changes})


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: on a busy 2-core machine two spin against each other and run 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_thread():
    """For a module's tests (``pytestmark = pytest.mark.usefixtures("one_thread")``): one torch thread."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """192 training and 64 test images of the synthetic set: ``quick_config``'s two steps an epoch."""
    root = tmp_path_factory.mktemp("small")
    make_synthetic_cifar10(root, n_train=192, n_test=64, seed=0)
    return load_cifar10(root, verify=False)


def smaller(smoke):
    """Three steps an epoch on a sixteenth-width network, evaluation in batches of 128."""
    changes = {**smoke.changes, "eval_batch_size": 128}
    return replace(smoke, subset=(320, 128), width=0.0625, changes=changes)


def tiny_model(seed: int = 0, **changes) -> GoogLeNet:
    torch.manual_seed(seed)
    return GoogLeNet(10, variant="cifar", width=changes.pop("width", 0.0625), **changes)


def make_metrics(**changes) -> RunMetrics:
    """A complete ``RunMetrics`` of a made-up run; ``changes`` set the fields a test is about."""
    values = dict(
        test_accuracy=0.5, test_accuracy_no_tta=0.49, tta="flip", test_loss=1.5,
        test_per_class_accuracy={}, test_aux_accuracy={}, best_val_accuracy=0.51, best_epoch=1,
        epochs=1, train_seconds=60.0, compile_seconds=0.0, wall_seconds=61.0, images_per_s=100.0,
        time_to_val_accuracy={}, parameters={"train": 2, "inference": 1}, data={"source": "made up"},
        recipe="cpu", width=1.0, device="cpu (x86_64, 2 threads)", processes=1, precision="fp32",
        compiled=False, versions={},
    )  # fmt: skip
    return RunMetrics(**{**values, **changes})


def stop_after(epochs: int):
    """An end-of-epoch hook for ``fit`` that interrupts the run, as Ctrl-C would, after ``epochs`` epochs."""

    def hook(progress: dict) -> None:
        if progress["epochs_done"] >= epochs:
            raise KeyboardInterrupt

    return hook


def wait_until(
    ready: Callable[[], bool], process: subprocess.Popen, what: str, timeout: float = 300.0
) -> None:
    """Poll ``ready`` while ``process`` runs; fail, naming ``what``, if it ends or ``timeout`` s pass."""
    deadline = time.time() + timeout
    while not ready():
        if process.poll() is not None:
            output = process.stderr.read()[-3000:] if process.stderr else ""
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}\n{output}")
        assert time.time() < deadline, f"no {what} after {timeout:.0f} s"
        time.sleep(0.02)


def comparable(history: list[dict]) -> list[dict]:
    """History rows without their timing columns (which differ between any two runs)."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in history]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_cifar10(root, n_train=600, n_test=200, seed=0)
    return root


@pytest.fixture(scope="session")
def synthetic(synthetic_root):
    return load_cifar10(synthetic_root, verify=False)


@contextmanager
def made_once(tmp_path_factory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder shared by this session's test processes, and whether another made it already.

    The first process to get here makes what the folder holds while the others wait on a file lock
    (pytest-xdist starts one process per worker: without this, each would train the same run).
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # one folder per session
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        yield folder, done.is_file()
        done.touch()  # only once the maker's block ended without an error


@pytest.fixture(scope="session")
def finished_run(synthetic, tmp_path_factory):
    """One tiny run, trained once for the whole session: tests read it, never change it."""
    with made_once(tmp_path_factory, "finished-run") as (folder, made):
        return load_run(folder) if made else fit(tiny_model(), synthetic, tiny_config(folder))


def assert_labelled(fig: Figure) -> None:
    """Plots label both axes (colour bars at least one); image panels sit under a title; every text
    a reader sees is at least 9 pt."""
    assert isinstance(fig, Figure)
    small = [t.get_text() for t in fig.findobj(Text) if t.get_text().strip() and t.get_fontsize() < 9]
    assert not small, f"text under 9 pt: {small[:5]}"
    for ax in fig.axes:
        if not ax.axison:
            assert fig.get_suptitle() or ax.get_title(), "an image panel with no title anywhere"
        elif ax.get_label() == "<colorbar>":
            assert ax.get_xlabel() or ax.get_ylabel(), "unlabelled colour bar"
        else:
            assert ax.get_xlabel() and ax.get_ylabel(), f"axes {ax.get_title()!r} lack a label"


class Tiny(nn.Module):
    """One Inception module (1 channel per branch) with hand-set weights, and a two-class read-out.

    Branch outputs: 1x1 = relu(x), 3x3 = 2, 5x5 = 3, pool proj = 0 everywhere. The logits are
    (0, 2 * mean(1x1 output) - 1): class 1 when the image's mean is above 1/2.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inception3a = InceptionModule(1, 1, 1, 1, 1, 1, 1)
        for parameter in self.inception3a.parameters():
            nn.init.zeros_(parameter)
        with torch.no_grad():
            self.inception3a.branch1x1.conv.weight.fill_(1.0)
            self.inception3a.branch3x3[1].conv.bias.fill_(2.0)
            self.inception3a.branch5x5[1].conv.bias.fill_(3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = self.inception3a(x)[:, 0].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(evidence), 2 * evidence - 1], dim=1)
