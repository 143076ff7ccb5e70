"""The training loop: a real (tiny) fit, exact resume after SIGKILL, safe resume rules, clear failures."""

import csv
import json
import math
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import comparable, quick_config, tiny_config, tiny_model, wait_until

from googlenet_utils import checkpoint as checkpoint_module
from googlenet_utils import load_run, make_synthetic_cifar10
from googlenet_utils.checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from googlenet_utils.rundir import RunDir, RunDirError, RunExistsError, RunLockedError
from googlenet_utils.trainer import NonFiniteLossError, Trainer, fit

RUN_FILES = {"config.json", "history.csv", "metrics.json", "last.pt", "best.pt", "test_predictions.pt"}


def copy_run(run, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(run.run_dir, target)
    return target


# ---------------------------------------------------------------- a real run


def test_a_tiny_fit_beats_chance_and_writes_the_run_directory(finished_run):
    run_dir = finished_run.run_dir
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    assert finished_run.test_accuracy > 0.3  # ten balanced classes: chance is 0.1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "test_accuracy_no_tta", "best_val_accuracy", "wall_seconds", "images_per_s"):
        assert isinstance(metrics[key], float)
    assert (
        metrics["device"].startswith("cpu") and metrics["precision"] == "fp32" and metrics["processes"] == 1
    )
    assert {"torch", "torchvision", "python"} <= metrics["versions"].keys()
    assert metrics["data"]["source"].startswith("synthetic stand-in")
    assert (metrics["data"]["train"], metrics["data"]["val"], metrics["data"]["test"]) == (500, 100, 200)
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
    shapes = {predictions[k].shape for k in ("logits", "logits_flipped", "logits_tta", "aux1", "aux2")}
    assert shapes == {(200, 10)} and predictions["labels"].shape == (200,)
    flip_averaged = (predictions["logits"] + predictions["logits_flipped"]) / 2
    accuracy = (flip_averaged.argmax(1) == predictions["labels"]).float().mean().item()
    assert accuracy == pytest.approx(metrics["test_accuracy"])


def test_the_run_records_its_model_data_and_normalisation(finished_run, synthetic):
    record = load_run(finished_run.run_dir)
    assert record.model_config.width == 0.0625 and record.model_config.aux_logits
    assert record.config["data"]["digest"] == synthetic.fingerprint()["digest"]
    assert record.config["data"]["validation"]["size"] == 100
    mean, std = record.stats
    assert mean.shape == std.shape == (3,) and (std > 10).all()


def test_total_loss_weights_each_aux_loss(finished_run):
    for row in finished_run.history:
        combined = row["train_loss_main"] + 0.3 * (row["train_loss_aux1"] + row["train_loss_aux2"])
        assert row["train_loss"] == pytest.approx(combined, rel=1e-5)


def test_best_checkpoint_is_the_best_validation_epoch(finished_run):
    best = load_checkpoint(finished_run.run_dir / "best.pt", "weights")
    best_row = max(finished_run.history, key=lambda row: row["val_accuracy"])
    assert best["epoch"] == best_row["epoch"] == finished_run.metrics.best_epoch
    model = model_from_checkpoint(finished_run.run_dir / "best.pt")
    assert not model.training and model.config.width == 0.0625


def test_zero_aux_weight_sends_no_gradient_to_aux_heads(synthetic, tmp_path):
    trainer = Trainer(tiny_model(), synthetic, tiny_config(tmp_path, aux_weight=0.0, weight_decay=0.0))
    images, labels = next(iter(trainer.train_loader))
    trainer.train_step(images, labels)
    assert trainer.model.aux1.fc2.weight.grad.abs().sum() == 0
    assert trainer.model.fc.weight.grad.abs().sum() > 0


@pytest.mark.slow  # trains a four-epoch run
def test_validation_only_as_often_as_the_recipe_asks(small, tmp_path):
    run = fit(tiny_model(), small, quick_config(tmp_path / "run", epochs=4, val_every=3))
    assert [row["val_accuracy"] is not None for row in run.history] == [False, False, True, True]
    assert run.metrics.best_epoch in (3, 4)


# ---------------------------------------------------------------- never lose a run

WORKER = """
import sys, torch
from googlenet_utils import GoogLeNet, TrainConfig, load_cifar10
from googlenet_utils.trainer import fit
data = load_cifar10(sys.argv[1], verify=False)
torch.manual_seed(0)
model = GoogLeNet(10, variant="cifar", width=0.0625)
fit(model, data, TrainConfig(epochs=3, batch_size=64, lr=0.05, warmup_epochs=0.5, val_size=100, tta="flip",
    eval_batch_size=256, run_dir=sys.argv[2], progress=False, ema=True, resume=True, precision="fp32"))
"""


@pytest.mark.slow  # starts processes
def test_a_killed_run_resumes_to_exactly_the_same_result(synthetic, synthetic_root, tmp_path):
    killed_dir = tmp_path / "killed"
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(synthetic_root), str(killed_dir)])
    try:
        wait_until((killed_dir / "last.pt").exists, worker, "its first checkpoint")  # first epoch done
        time.sleep(0.5)  # now in the middle of epoch 2
    finally:
        worker.send_signal(signal.SIGKILL)  # its lock on the run directory dies with it
        worker.wait()
    assert load_checkpoint(killed_dir / "last.pt")["epoch"] < 3, "the worker finished before it was killed"

    resumed = fit(tiny_model(seed=123), synthetic, tiny_config(killed_dir, ema=True, resume=True))
    straight = fit(tiny_model(), synthetic, tiny_config(tmp_path / "straight", ema=True))
    assert comparable(resumed.history) == comparable(straight.history)
    final_resumed, final_straight = (
        load_checkpoint(killed_dir / "last.pt"),
        load_checkpoint(tmp_path / "straight" / "last.pt"),
    )
    for name, tensor in final_straight["model"].items():
        assert torch.equal(final_resumed["model"][name], tensor), f"model.{name}"
    momentum = [state["momentum_buffer"] for state in final_straight["optimizer"]["state"].values()]
    resumed_momentum = [state["momentum_buffer"] for state in final_resumed["optimizer"]["state"].values()]
    assert all(map(torch.equal, momentum, resumed_momentum)) and len(momentum) == len(resumed_momentum)
    for name, tensor in final_straight["ema"]["module"].items():
        assert torch.equal(final_resumed["ema"]["module"][name], tensor), f"ema.{name}"
    assert resumed.test_accuracy == straight.test_accuracy


@pytest.mark.parametrize("resume", [False, True])
def test_a_finished_run_without_last_pt_is_never_overwritten(finished_run, synthetic, tmp_path, resume):
    run_dir = copy_run(finished_run, tmp_path)
    (run_dir / "last.pt").unlink()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != ".lock"}
    with pytest.raises(RunExistsError, match="already holds a run|holds results .* but no last.pt"):
        fit(tiny_model(), synthetic, tiny_config(run_dir, resume=resume))
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != ".lock"} == before


def test_an_existing_run_needs_resume(finished_run, synthetic, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    with pytest.raises(RunExistsError, match=r"already holds a run .*--resume"):
        fit(tiny_model(), synthetic, tiny_config(run_dir))


def test_resume_refuses_changed_settings(finished_run, synthetic, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    with pytest.raises(CheckpointError, match=r"other settings \(epochs: 3 -> 4\).*only a lower --lr"):
        fit(tiny_model(), synthetic, tiny_config(run_dir, epochs=4, resume=True))
    with pytest.raises(CheckpointError, match=r"other settings \(lr: 0.05 -> 0.1\)"):
        fit(tiny_model(), synthetic, tiny_config(run_dir, lr=0.1, resume=True))


def test_resume_refuses_other_data_and_names_both(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    make_synthetic_cifar10(tmp_path / "other", n_train=600, n_test=200, seed=9)
    from googlenet_utils import load_cifar10

    other = load_cifar10(tmp_path / "other", verify=False)
    with pytest.raises(
        CheckpointError, match=r"other data or another validation split(.|\n)*the run: (.|\n)*now: "
    ) as error:
        fit(tiny_model(), other, tiny_config(run_dir, resume=True))
    assert str(error.value).count("synthetic stand-in") == 2


def test_the_same_images_under_a_reworded_label_stay_resumable(finished_run, synthetic, tmp_path):
    import dataclasses

    run_dir = copy_run(finished_run, tmp_path)
    relabelled = dataclasses.replace(synthetic, source=synthetic.source + " (label reworded)")
    run = fit(tiny_model(), relabelled, tiny_config(run_dir, resume=True))  # the digest decides
    assert run.test_accuracy == finished_run.test_accuracy


def test_resume_of_a_finished_run_only_re_tests(finished_run, synthetic, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    again = fit(tiny_model(seed=5), synthetic, tiny_config(run_dir, resume=True))
    assert comparable(again.history) == comparable(finished_run.history)
    assert again.test_accuracy == finished_run.test_accuracy


def test_a_kill_before_history_csv_is_repaired_from_the_checkpoint(finished_run, synthetic, tmp_path):
    run_dir = copy_run(finished_run, tmp_path)
    rows = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(rows[:-1]) + "\n")  # the last epoch's row is lost
    with pytest.warns(UserWarning, match="stale; using last.pt's history"):
        record = load_run(run_dir)
    assert len(record.history) == 3
    fit(tiny_model(), synthetic, tiny_config(run_dir, resume=True))
    assert (run_dir / "history.csv").read_text().splitlines() == rows


def test_a_second_process_on_the_same_run_directory_is_refused(synthetic, tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.prepare()
    with run_dir.lock():  # another run holds the directory
        with pytest.raises(RunLockedError, match=r"is being written by pid \d+ .*another --out"):
            fit(tiny_model(), synthetic, tiny_config(run_dir.path))
    assert not (run_dir.path / "config.json").exists()  # nothing was written under the other run's lock


class Killed(BaseException):
    """Stands for SIGKILL at one chosen point: nothing after it runs."""


@pytest.mark.slow  # trains three runs
def test_a_kill_between_best_and_last_pt_of_the_first_epoch_loses_nothing(small, tmp_path, monkeypatch):
    def killed(self, state):
        raise Killed  # the improved epoch's weights are written, its last.pt is not

    run_dir, one_epoch = tmp_path / "run", {"epochs": 1}
    monkeypatch.setattr(RunDir, "save_last", killed)
    with pytest.raises(Killed):
        fit(tiny_model(), small, quick_config(run_dir, **one_epoch))
    monkeypatch.undo()
    litter = [run_dir / ".last.pt.a1b2c3d4.tmp", run_dir / ".metrics.json.e5f6g7h8.tmp"]
    for path in litter:  # what a kill during those writes leaves
        path.write_bytes(b"x" * 1000)
    run = fit(tiny_model(), small, quick_config(run_dir, resume=True, **one_epoch))
    straight = fit(tiny_model(), small, quick_config(tmp_path / "straight", **one_epoch))
    assert comparable(run.history) == comparable(straight.history)
    assert run.test_accuracy == straight.test_accuracy
    assert not any(path.exists() for path in litter) and not (run_dir / "best.pt.pending").exists()


@pytest.mark.slow  # trains two runs
def test_after_a_full_disk_in_the_first_epoch_the_advised_resume_works(small, tmp_path, monkeypatch):
    real_save = checkpoint_module.save_checkpoint

    def full_for_last_pt(path, state, kind):
        if path.name == "last.pt":

            def full(file):
                raise OSError(28, "No space left on device")

            checkpoint_module.atomic_write(path, full)
        real_save(path, state, kind)

    monkeypatch.setattr("googlenet_utils.rundir.save_checkpoint", full_for_last_pt)
    with pytest.raises(CheckpointError, match="disk full while writing .*last.pt.*then resume"):
        fit(tiny_model(), small, quick_config(tmp_path, epochs=1))
    monkeypatch.undo()
    run = fit(tiny_model(), small, quick_config(tmp_path, epochs=1, resume=True))
    assert [row["epoch"] for row in run.history] == [1]


@pytest.mark.parametrize("damage", ["bytes", "folder"])
def test_a_damaged_history_is_rewritten_on_resume_or_named(finished_run, synthetic, tmp_path, damage, capsys):
    run_dir = copy_run(finished_run, tmp_path)
    good = (run_dir / "history.csv").read_text()
    (run_dir / "history.csv").unlink()
    if damage == "folder":
        (run_dir / "history.csv").mkdir()
        with pytest.raises(RunDirError, match=r"history.csv is a folder, not the run's history file"):
            fit(tiny_model(), synthetic, tiny_config(run_dir, resume=True))
        assert "resumed" not in capsys.readouterr().out  # refused before claiming to resume
        return
    (run_dir / "history.csv").write_bytes(bytes(range(256)) * 8)
    fit(tiny_model(), synthetic, tiny_config(run_dir, resume=True))
    assert "behind or damaged" in capsys.readouterr().out and (run_dir / "history.csv").read_text() == good


# ---------------------------------------------------------------- divergence


def poisoned(after_steps: int):
    model = tiny_model()
    calls = {"n": 0}

    def poison(_module, _inputs, output):
        if model.training:
            calls["n"] += 1
            if calls["n"] > after_steps:
                return output * float("nan")
        return output

    model.fc.register_forward_hook(poison)
    return model


@pytest.mark.slow  # trains two runs
def test_non_finite_loss_in_a_later_epoch_gives_followable_advice(small, tmp_path):
    steps_per_epoch = 128 // 64  # small's 192 images less 64 held out for validation
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite at epoch 2, step 2 \(learning rate 0\.0\d+\)"
    ) as error:
        fit(poisoned(steps_per_epoch + 1), small, quick_config(tmp_path, epochs=3))
    assert "holds epoch 1" in str(error.value) and "--resume and --lr 0.025" in str(error.value)
    assert "--precision fp32" not in str(error.value)  # the run is fp32 already (a CPU)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    # The advice works: a lower learning rate is accepted on resume and recorded in the history.
    run = fit(tiny_model(), small, quick_config(tmp_path, epochs=3, lr=0.025, resume=True))
    assert run.history[1]["resumed_with"] == "lr 0.05 -> 0.025" and run.history[0].get("resumed_with") is None
    assert [row["epoch"] for row in run.history] == [1, 2, 3]


@pytest.mark.slow  # trains two runs
def test_non_finite_loss_in_the_first_epoch_claims_no_checkpoint(small, tmp_path):
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written yet.*--resume .*--lr 0.025"):
        fit(poisoned(1), small, quick_config(tmp_path))
    assert not (tmp_path / "last.pt").exists()
    run = fit(tiny_model(), small, quick_config(tmp_path, lr=0.025, resume=True))  # the advice works
    assert len(run.history) == 2


def test_disk_full_during_a_checkpoint_stops_the_run_and_keeps_the_last_good_one(
    small, tmp_path, monkeypatch
):
    real_save, saves = checkpoint_module.save_checkpoint, {"n": 0}

    def fill_up(path, state, kind):
        saves["n"] += 1
        if saves["n"] > 2:  # best.pt and last.pt of epoch 1 fit; the disk fills up in epoch 2

            def full(file):
                raise OSError(28, "No space left on device")

            checkpoint_module.atomic_write(path, full)
        real_save(path, state, kind)

    monkeypatch.setattr("googlenet_utils.rundir.save_checkpoint", fill_up)
    with pytest.raises(CheckpointError, match="disk full while writing"):
        fit(tiny_model(), small, quick_config(tmp_path))
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 1


# ---------------------------------------------------------------- compile


@pytest.mark.slow  # compiles (dynamo traces the network and its backward even with the eager backend)
def test_compile_warms_up_before_training_and_leaves_no_trace(synthetic, tmp_path, monkeypatch):
    # Inductor's C++ build takes minutes on a CPU; the eager backend checks the wiring in seconds.
    compiled, real_compile = [], torch.compile

    def eager_compile(target, **kwargs):
        compiled.append(target)
        return real_compile(target, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    trainer = Trainer(tiny_model(), synthetic, tiny_config(tmp_path, compile=True))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.warm_up_compiled()
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())  # BN stats too
    assert compiled[0] is trainer.model and trainer.step_model is not trainer.model and trainer.compile
    _, losses, loss = trainer.train_step(*next(iter(trainer.train_loader)))
    assert math.isfinite(loss.item()) and set(losses) == {"main", "aux1", "aux2"}


def test_a_failing_compiler_falls_back_with_a_message(small, tmp_path, monkeypatch, capsys):
    def broken(target, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    run = fit(tiny_model(), small, quick_config(tmp_path, compile=True, epochs=1, warmup_epochs=0.0))
    assert (
        "torch.compile failed (RuntimeError: no C++ compiler); training without it."
        in capsys.readouterr().out
    )
    assert run.metrics.compiled is False
