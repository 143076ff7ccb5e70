"""The training engine: a real (tiny) fit, resuming after SIGKILL, atomic checkpoints, clear failures."""

import csv
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from googlenet_utils import GoogLeNet, TrainConfig, fit, load_cifar10, make_synthetic_cifar10
from googlenet_utils import checkpoint as checkpoint_module
from googlenet_utils import data as data_module
from googlenet_utils.checkpoint import CheckpointError, load_checkpoint, load_weights, model_from_checkpoint
from googlenet_utils.devices import pick_precision
from googlenet_utils.train import (
    NonFiniteLossError,
    RunExistsError,
    Trainer,
    evaluate,
    lr_factor,
    main,
    make_optimizer,
)

TIMING_COLUMNS = {"train_seconds", "images_per_s", "seconds", "elapsed_seconds"}
RUN_FILES = {"config.json", "history.csv", "metrics.json", "last.pt", "best.pt", "test_predictions.pt"}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_synthetic_cifar10(root, n_train=600, n_test=200, seed=0)
    return load_cifar10(root, verify=False)


def tiny_config(run_dir: Path, **changes) -> TrainConfig:
    settings = {"epochs": 3, "batch_size": 64, "lr": 0.05, "warmup_epochs": 0.5, "val_size": 100}
    settings.update(eval_batch_size=256, run_dir=str(run_dir), progress=False, **changes)
    return TrainConfig(**settings)


def tiny_model(seed: int = 0, **changes) -> GoogLeNet:
    torch.manual_seed(seed)
    return GoogLeNet(10, variant="cifar", width=changes.pop("width", 0.125), **changes)


# ---------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def finished_run(synthetic, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    return fit(tiny_model(), synthetic, tiny_config(run_dir))


def test_smoke_fit_beats_chance_and_writes_the_run_directory(finished_run):
    run_dir = finished_run.run_dir
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert finished_run.test_accuracy > 0.3  # ten balanced classes: chance is 0.1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "test_accuracy_no_tta", "best_val_accuracy", "wall_seconds", "images_per_s"):
        assert isinstance(metrics[key], float)
    assert metrics["device"].startswith("cpu") and metrics["precision"] == "fp32"
    assert {"torch", "torchvision", "python"} <= metrics["versions"].keys()
    assert metrics["data"] == {
        "source": "synthetic stand-in (not CIFAR-10 images)",
        "train": 500,
        "val": 100,
        "test": 200,
    }
    assert metrics["parameters"]["train"] > metrics["parameters"]["inference"]
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for column in (
        "train_loss_main",
        "train_loss_aux1",
        "train_loss_aux2",
        "val_accuracy_aux1",
        "lr",
        "images_per_s",
    ):
        assert all(r[column] for r in rows), column
    predictions = torch.load(run_dir / "test_predictions.pt", weights_only=True)
    assert (
        predictions["logits"].shape
        == predictions["logits_flipped"].shape
        == predictions["aux1"].shape
        == (200, 10)
    )
    assert predictions["labels"].shape == (200,)
    flip_averaged = (predictions["logits"] + predictions["logits_flipped"]) / 2
    accuracy = (flip_averaged.argmax(1) == predictions["labels"]).float().mean().item()
    assert accuracy == pytest.approx(metrics["test_accuracy"])


def test_total_loss_weights_each_aux_loss(finished_run):
    for row in finished_run.history:
        combined = row["train_loss_main"] + 0.3 * (row["train_loss_aux1"] + row["train_loss_aux2"])
        assert row["train_loss"] == pytest.approx(combined, rel=1e-5)


def test_best_checkpoint_is_the_best_validation_epoch(finished_run):
    best = load_checkpoint(finished_run.run_dir / "best.pt")
    best_row = max(finished_run.history, key=lambda row: row["val_accuracy"])
    assert best["epoch"] == best_row["epoch"] == finished_run.metrics["best_epoch"]
    model = model_from_checkpoint(finished_run.run_dir / "best.pt")
    assert isinstance(model, GoogLeNet) and not model.training


def test_zero_aux_weight_sends_no_gradient_to_aux_heads(synthetic, tmp_path):
    trainer = Trainer(tiny_model(), synthetic, tiny_config(tmp_path, aux_weight=0.0, weight_decay=0.0))
    images, labels = next(iter(trainer.train_loader))
    trainer.train_step(images, labels)
    assert trainer.model.aux1.fc2.weight.grad.abs().sum() == 0
    assert trainer.model.fc.weight.grad.abs().sum() > 0


def test_no_weight_decay_on_norms_and_biases():
    model = tiny_model()
    decay, no_decay = make_optimizer(model, TrainConfig()).param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    bn_weight = model.stem.conv1.bn.weight
    assert any(p is bn_weight for p in no_decay["params"]) and any(
        p is model.fc.bias for p in no_decay["params"]
    )
    assert any(p is model.fc.weight for p in decay["params"])


def test_learning_rate_warms_up_then_decays_to_zero():
    factors = [lr_factor(step, total_steps=100, warmup_steps=10, schedule="cosine") for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert factors[-1] < 0.001
    assert lr_factor(55, total_steps=100, warmup_steps=10, schedule="linear") == pytest.approx(0.5)


# ---------------------------------------------------------------- never lose a run

WORKER = """
import sys, torch
from googlenet_utils import GoogLeNet, TrainConfig, fit, load_cifar10
data = load_cifar10(sys.argv[1], verify=False)
torch.manual_seed(0)
model = GoogLeNet(10, variant="cifar", width=0.125)
fit(model, data, TrainConfig(epochs=3, batch_size=64, lr=0.05, warmup_epochs=0.5, val_size=100,
    eval_batch_size=256, run_dir=sys.argv[2], progress=False, ema=True, resume=True))
"""


def comparable(history):
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in history]


def test_a_killed_run_resumes_to_exactly_the_same_result(synthetic, tmp_path):
    data_root = tmp_path / "data"
    make_synthetic_cifar10(data_root, n_train=600, n_test=200, seed=0)
    killed_dir = tmp_path / "killed"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(data_root), str(killed_dir)])
    deadline = time.time() + 120
    while not (killed_dir / "last.pt").exists():  # first epoch done
        assert worker.poll() is None and time.time() < deadline, "worker ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.7)  # now in the middle of epoch 2
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    interrupted = load_checkpoint(killed_dir / "last.pt")
    assert interrupted["epoch"] < 3, "the worker finished before it was killed"

    resumed = fit(tiny_model(seed=123), synthetic, tiny_config(killed_dir, ema=True, resume=True))
    straight = fit(tiny_model(), synthetic, tiny_config(tmp_path / "straight", ema=True))
    assert comparable(resumed.history) == comparable(straight.history)
    final_resumed = load_checkpoint(killed_dir / "last.pt")
    final_straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    for key in ("model", "ema"):
        for name, tensor in final_straight[key].items():
            assert torch.equal(final_resumed[key][name], tensor), f"{key}.{name}"
    assert resumed.test_accuracy == straight.test_accuracy


def test_an_existing_run_is_never_overwritten(finished_run, synthetic):
    before = (finished_run.run_dir / "last.pt").read_bytes()
    with pytest.raises(RunExistsError, match="already holds a run .*resume=True"):
        fit(tiny_model(), synthetic, tiny_config(finished_run.run_dir))
    assert (finished_run.run_dir / "last.pt").read_bytes() == before


def test_resume_refuses_changed_settings(finished_run, synthetic):
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0.05 -> 0.1\)"):
        fit(tiny_model(), synthetic, tiny_config(finished_run.run_dir, lr=0.1, resume=True))


def test_resume_of_a_finished_run_only_re_tests(finished_run, synthetic):
    again = fit(tiny_model(seed=5), synthetic, tiny_config(finished_run.run_dir, resume=True))
    assert comparable(again.history) == comparable(finished_run.history)
    assert again.test_accuracy == finished_run.test_accuracy


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint_module.save_checkpoint(path, {"model": {"w": torch.ones(3)}, "epoch": 1})

    def crash_half_way(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        checkpoint_module.save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "epoch": 2})
    monkeypatch.undo()
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_non_finite_loss_stops_with_epoch_step_and_lr(synthetic, tmp_path):
    model = tiny_model()
    calls = {"n": 0}
    batches_per_epoch = 500 // 64

    def poison_after_first_epoch(_module, _inputs, output):
        if model.training:
            calls["n"] += 1
            if calls["n"] > batches_per_epoch + 2:  # the 3rd step of epoch 2
                return output * float("nan")
        return output

    model.fc.register_forward_hook(poison_after_first_epoch)
    with pytest.raises(NonFiniteLossError, match=r"non-finite at epoch 2, step 3 \(learning rate 0\.0\d+\)"):
        fit(model, synthetic, tiny_config(tmp_path))
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_wrong_or_unreadable_checkpoints_are_refused(finished_run, synthetic, tmp_path):
    wider = tiny_model(width=0.25)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    state = load_checkpoint(finished_run.run_dir / "last.pt")
    with pytest.raises(CheckpointError, match=r"different GoogLeNet \(width: 0.125 in the checkpoint, 0.25"):
        load_weights(wider, state)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())  # untouched
    plain = nn.Sequential(nn.Linear(3, 3))
    with pytest.raises(CheckpointError, match="does not fit this model: missing 0.bias"):
        load_weights(plain, state)
    with pytest.raises(CheckpointError, match="different GoogLeNet"):
        fit(wider, synthetic, tiny_config(finished_run.run_dir, resume=True))

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*garbage.pt"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


# ---------------------------------------------------------------- evaluation, config, precision


class FixedLogits(nn.Module):
    """Predicts class 0 for images whose first pixel is negative, class 1 otherwise."""

    def forward(self, x):
        positive = (x[:, 0, 0, 0] > 0).float()
        return torch.stack([1 - positive, positive, torch.zeros_like(positive)], dim=1) * 5


def test_evaluate_counts_accuracy_per_class():
    from googlenet_utils.data import CIFARLoader

    images = torch.zeros(6, 3, 32, 32, dtype=torch.uint8)
    images[3:, :, 0, 0] = 255  # these three become positive after normalisation
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    stats = (torch.full((3,), 100.0), torch.full((3,), 50.0))
    loader = CIFARLoader(images, labels, 4, train=False, device="cpu", stats=stats)
    result = evaluate(FixedLogits(), loader)
    # predictions: 0, 0, 0, 1, 1, 1 -> right on items 0, 1, 3, 4
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.per_class_accuracy == pytest.approx([1.0, 2 / 3, 0.0])
    logits = FixedLogits()(torch.cat([x for x, _ in loader]))
    assert result.loss == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("lr", 0.0),
        ("momentum", -0.1),
        ("weight_decay", -1e-4),
        ("label_smoothing", 1.0),
        ("aux_weight", -0.3),
        ("schedule", "step"),
        ("precision", "fp8"),
        ("ema_decay", 1.0),
        ("warmup_epochs", 100),
        ("val_size", 0),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})


def test_precision_choice(monkeypatch):
    assert pick_precision("auto", torch.device("cpu")) == "fp32"
    for capability, expected in (((9, 0), "bf16"), ((8, 0), "bf16"), ((7, 5), "fp16")):  # H100, A100, T4
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device, c=capability: c)
        assert pick_precision("auto", torch.device("cuda")) == expected
    assert pick_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ValueError, match="'fp16' needs a GPU"):
        pick_precision("fp16", torch.device("cpu"))


def test_compile_option_trains_through_torch_compile(synthetic, tmp_path, monkeypatch):
    # Inductor's C++ build takes minutes on a CPU; the eager backend checks the wiring in seconds.
    compiled, real_compile = [], torch.compile

    def eager_compile(model, **kwargs):
        compiled.append(model)
        return real_compile(model, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    trainer = Trainer(tiny_model(), synthetic, tiny_config(tmp_path, compile=True))
    images, labels = next(iter(trainer.train_loader))
    _, losses, loss = trainer.train_step(images, labels)
    assert compiled == [trainer.model] and trainer.step_model is not trainer.model
    assert math.isfinite(loss.item()) and set(losses) == {"main", "aux1", "aux2"}


# ---------------------------------------------------------------- command line


def test_cli_smoke_run(tmp_path, capsys):
    assert main(["--synthetic", "--smoke", "--out", str(tmp_path / "run")]) == 0
    assert RUN_FILES <= {p.name for p in (tmp_path / "run").iterdir()}
    assert "test accuracy" in capsys.readouterr().out


def test_cli_without_data_or_network_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data_module, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    assert main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    message = capsys.readouterr().err
    assert "could not download CIFAR-10" in message and "--synthetic" in message
    assert main(["--data-dir", str(tmp_path), "--no-download"]) == 2
    assert "download=True" in capsys.readouterr().err


def test_cli_rejects_bad_values(capsys):
    assert main(["--synthetic", "--smoke", "--lr", "-1"]) == 2
    assert "TrainConfig.lr must be > 0" in capsys.readouterr().err
