"""The GPU path rehearsed on the CPU: compiling once, bf16, fp16 with a gradient scaler and fused SGD,
and the whole ``make gpu-prepare``, ``make gpu-report``, ``make gpu-publish`` plumbing.

Compiling uses ``aot_eager`` (the real graph capture and autograd tracing, no C++ build), or the
dynamo-only ``eager`` backend where only the capture's guards matter; recompiling after the
warm-up is made an error, as it must not happen on the GPU once the clock runs.
"""

import io
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, comparable, quick_config, stop_after, tiny_model
from PIL import Image

from googlenet_utils import (
    load_checkpoint,
    load_cifar10,
    load_run,
    make_synthetic_cifar10,
    model_from_checkpoint,
)
from googlenet_utils import trainer as trainer_module
from googlenet_utils.evaluation import predict
from googlenet_utils.recipe import TTA_MODES, make_optimizer
from googlenet_utils.trainer import Trainer, fit

MIRROR_TOOL = ROOT.parent / "shared" / "tools" / "cifar10_mirror.py"


pytestmark = pytest.mark.usefixtures("one_thread")


def graphs_compiled() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.fixture
def compile_once(monkeypatch):
    """``backend`` for torch.compile; after the warm-up any recompilation (or new graph) is an error."""
    seen = {}

    def use(backend: str) -> None:
        monkeypatch.setattr(trainer_module, "COMPILE_BACKEND", backend)
        warm_up = Trainer.warm_up_compiled

        def then_no_more(self):
            warm_up(self)
            assert self.compile, "the compiler failed and the run fell back to eager"
            torch.compiler.set_stance("fail_on_recompile")  # public since torch 2.6
            seen["graphs"] = graphs_compiled()

        monkeypatch.setattr(Trainer, "warm_up_compiled", then_no_more)

    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()  # reset() keeps the counts of earlier tests' graphs
    yield use, seen
    torch.compiler.set_stance("default")
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_training_and_every_test_time_view_compile_before_the_clock(small, tmp_path, compile_once):
    use, seen = compile_once
    use("aot_eager")
    config = quick_config(tmp_path, compile=True, val_tta="flip", tta="flip+translate")
    trainer = Trainer(tiny_model(), small, config)
    run = trainer.run()  # training, validation with flip, and the test's six flip+translate views
    assert run.metrics.compiled is True and run.metrics.tta == "flip+translate"
    for mode in TTA_MODES:  # every mode's views have the batch's shape and layout: the same graph
        predict(trainer.eval_model, trainer.test_loader, tta=mode, forward=trainer.eval_forward)
    # One training graph and one evaluation graph for all six views (shifted views with the padded
    # tensor's strides would need a third), all before the clock; none after it.
    assert seen["graphs"] == 2 and graphs_compiled() == seen["graphs"]


@pytest.mark.slow
def test_each_low_resolution_side_is_compiled_in_the_warm_up(small, tmp_path, compile_once):
    use, seen = compile_once
    use("eager")  # the graph capture and its guards, which decide recompiling, without autograd tracing
    run = fit(tiny_model(), small, quick_config(tmp_path, compile=True, resolutions="16:1", tta="none"))
    assert [row["resolution"] for row in run.history] == [16, 32] and run.metrics.compiled is True
    assert seen["graphs"] == 3 and graphs_compiled() == seen["graphs"]  # 16 px, 32 px, evaluation


@pytest.mark.slow
def test_bf16_autocast_trains_and_evaluates_on_the_cpu(small, tmp_path):
    dtypes = set()
    model = tiny_model()
    model.fc.register_forward_hook(lambda module, inputs, output: dtypes.add((module.training, output.dtype)))
    run = fit(model, small, quick_config(tmp_path, precision="bf16", epochs=1, warmup_epochs=0.0))
    assert dtypes == {(True, torch.bfloat16), (False, torch.bfloat16)}  # training and evaluation
    assert run.metrics.precision == "bf16" and math.isfinite(run.history[0]["train_loss"])
    assert (
        load_run(tmp_path).predictions.logits.dtype == torch.float32
    )  # stored in full precision whatever ran


@pytest.fixture
def t4_path(monkeypatch):
    """A T4's settings on the CPU: fp16 autocast with an enabled gradient scaler, and fused SGD."""
    monkeypatch.setattr(trainer_module, "pick_precision", lambda precision, device: "fp16")

    def fused(model, config, device=None):
        return make_optimizer(model, config, device, fused=True)

    monkeypatch.setattr(trainer_module, "make_optimizer", fused)


@pytest.mark.slow
def test_fp16_with_a_gradient_scaler_and_fused_sgd_resume_exactly(small, tmp_path, t4_path, monkeypatch):
    straight = fit(tiny_model(), small, quick_config(tmp_path / "straight"))
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), small, quick_config(tmp_path / "resumed"), on_epoch=stop_after(1))
    saved = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert saved["epoch"] == 1 and saved["scaler"]["scale"] > 0  # an enabled scaler's state was saved
    assert saved["optimizer"]["param_groups"][0]["fused"] is True and saved["optimizer"]["state"]
    resumed = fit(tiny_model(seed=3), small, quick_config(tmp_path / "resumed", resume=True))
    assert resumed.metrics.precision == "fp16"
    assert comparable(resumed.history) == comparable(straight.history)
    ends = [load_checkpoint(tmp_path / name / "last.pt") for name in ("straight", "resumed")]
    assert ends[0]["scaler"] == ends[1]["scaler"]
    for name, tensor in ends[0]["model"].items():
        assert torch.equal(ends[1]["model"][name], tensor), name
    for index, state in ends[0]["optimizer"]["state"].items():
        assert torch.equal(ends[1]["optimizer"]["state"][index]["momentum_buffer"], state["momentum_buffer"])


# ---------------------------------------------------------------- the make targets, as on the device


def packed(data, images: torch.Tensor, labels: torch.Tensor) -> dict[str, np.ndarray]:
    """Images in the shared folder's packed layout: JPEG bytes end to end, offsets, labels, classes."""
    blobs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buffer, format="JPEG", quality=75)
        blobs.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return {"jpeg": np.concatenate(blobs), "offsets": offsets, "labels": labels.numpy(),
            "classes": np.array(data.classes)}  # fmt: skip


def shared_folder(root: Path, scratch: Path) -> Path:
    """A stand-in for ../shared: the real mirror tool, and 700 training and 300 test images packed."""
    make_synthetic_cifar10(scratch, n_train=700, n_test=300, seed=1)
    data = load_cifar10(scratch, verify=False)
    (root / "data").mkdir(parents=True)
    (root / "tools").mkdir()
    shutil.copy(MIRROR_TOOL, root / "tools")
    np.savez(root / "data" / "cifar10-jpeg-train.npz", **packed(data, data.train_images, data.train_labels))
    np.savez(root / "data" / "cifar10-jpeg-test.npz", **packed(data, data.test_images, data.test_labels))
    return root


def checkout(root: Path) -> Path:
    """A folder that looks like the checkout on the device: the package, Makefile, README, the venv."""
    root.mkdir()
    for name in ("Makefile", "pyproject.toml", "googlenet_utils", ".venv"):
        (root / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "README.md", root / "README.md")  # the published table is written into the copy
    (root / "results").mkdir()
    (root / ".gpu" / "wheels").mkdir(parents=True)
    (root / ".gpu" / "wheels" / "tqdm-0.0.0-py3-none-any.whl").write_bytes(b"")  # no download in tests
    return root


def make(work: Path, *arguments: str) -> None:
    env = {**os.environ, "GIT_DIR": str(ROOT / ".git"), "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", *arguments]  # never reinstall
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.skipif(not MIRROR_TOOL.is_file(), reason="needs the shared folder's mirror tool")
def test_make_prepare_report_and_publish_give_a_run_load_run_reads(tmp_path):
    shared = shared_folder(tmp_path / "shared", tmp_path / "synthetic")
    work = checkout(tmp_path / "checkout")
    make(work, "gpu-prepare", f"SHARED={shared}")
    gpu = {p.name for p in (work / ".gpu").iterdir()}
    assert gpu == {"cifar10-jpeg-train.npz", "cifar10-jpeg-test.npz", "cifar10_mirror.py", "wheels", "commit"}
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    assert (work / ".gpu" / "commit").read_text() == head

    smoke = "--recipe smoke --device cpu --epochs 1"
    make(work, "gpu-report", "GPU_PYTHON=.venv/bin/python", "OUT=out", f"REPORT_ARGS={smoke}")
    mirror = load_cifar10(work / "data" / "mirror", verify=False)  # the official split of the packed files
    assert (len(mirror.train_labels), len(mirror.test_labels)) == (700, 300)
    report = json.loads((work / "out" / "report.json").read_text())
    assert report["environment"]["commit"] == head.strip() and report["epochs"] == 1
    assert 0 < report["wall_seconds"] < report["wall_limit_seconds"]

    measured = tmp_path / "measured.json"
    make(work, "gpu-publish", "REPORT=out", "NAME=cpu-smoke", f"PUBLISH_ARGS=--measured {measured}")
    record = load_run(work / "results" / "cpu-smoke")
    assert len(record.history) == 1 and record.metrics.data["source"] == mirror.subset(640, 256).source
    assert model_from_checkpoint(record.weights_file).config.width == record.model_config.width
    assert "[cpu-smoke](cpu-smoke/)" in (work / "README.md").read_text()
    assert json.loads(measured.read_text())["smoke"].startswith(f"{report['test_accuracy']:.2%}")
