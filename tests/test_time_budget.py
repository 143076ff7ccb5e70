"""The time budget and the wall-clock guard in the trainer and the GPU report, on the CPU.

Where a test needs the trainer's decision to be exact, the measured costs are replaced by known
ones (the arithmetic itself is in test_budget.py); the last tests run on the real clock.
"""

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import comparable, quick_config, smaller, stop_after, tiny_model, wait_until

from googlenet_utils import gpu_report, load_run
from googlenet_utils.budget import Costs
from googlenet_utils.recipe import TrainConfig, lr_factor
from googlenet_utils.trainer import Trainer, fit

STEPS = 2  # training steps per epoch of quick_config on the small set


pytestmark = pytest.mark.usefixtures("one_thread")


def known_costs(epoch_seconds: float, validation: float = 1.0, test: float = 1.0) -> Costs:
    return Costs({32: epoch_seconds / STEPS}, STEPS, validation_seconds=validation, test_seconds=test)


def without_notes(history):
    return [{k: v for k, v in row.items() if k != "note"} for row in comparable(history)]


@pytest.fixture(scope="module")
def plain_two(small, tmp_path_factory):
    """The run a budget that allows two epochs must reproduce: two epochs asked for."""
    return fit(tiny_model(), small, quick_config(tmp_path_factory.mktemp("plain") / "run"))


@pytest.mark.slow  # times and trains runs
def test_the_budget_sets_the_length_up_front_and_the_run_records_why(small, plain_two, tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "measure_costs", lambda self: known_costs(40.0))
    run = fit(tiny_model(), small, quick_config(tmp_path / "run", epochs=50, time_budget=100.0))
    # 41 s an epoch with its validation and 1 s the test: 2 epochs fit the 95 s left, 3 do not.
    assert len(run.history) == 2 and run.metrics.planned_epochs == 2
    assert run.metrics.time_budget["epochs"] == 2
    assert "2 of at most 50 epochs fit" in run.metrics.time_budget["reason"]
    assert run.history[0]["note"] == "2 epochs chosen by a 100 s budget"
    record = load_run(tmp_path / "run")
    assert record.train_config["epochs"] == 2 and record.config["time_budget"]["epochs"] == 2
    # The schedule knew its length: the same learning rates, losses and result as asking for 2 epochs.
    assert without_notes(run.history) == comparable(plain_two.history)
    assert run.test_accuracy == plain_two.test_accuracy


def test_a_first_epoch_slower_than_its_timed_steps_shortens_the_run_before_the_decay(
    small, tmp_path, monkeypatch
):
    monkeypatch.setattr(Trainer, "measure_costs", lambda self: known_costs(40.0))
    real_epoch = Trainer._train_epoch

    def twice_as_slow(self, epoch):  # the epoch's clock, not its training, is what the test controls
        return {**real_epoch(self, epoch), "train_seconds": 80.0}

    monkeypatch.setattr(Trainer, "_train_epoch", twice_as_slow)
    config = quick_config(tmp_path / "run", epochs=50, time_budget=500.0, warmup_epochs=1.0)
    run = fit(tiny_model(), small, config)
    # Timed: 41 s an epoch with its validation, 11 epochs fit the 474 s left. The first took 80 s
    # (2x): every cost doubles, and 5 epochs fit (412 s), 6 do not (494 s).
    assert len(run.history) == run.metrics.planned_epochs == run.metrics.time_budget["epochs"] == 5
    reason = run.metrics.time_budget["reason"]
    assert (
        reason.startswith("re-planned after the first epoch")
        and "2.00x" in reason
        and "instead of 11" in reason
    )
    assert load_run(tmp_path / "run").train_config["epochs"] == 5
    # The warm-up's rate does not depend on the length, and the decay was laid out for 5 epochs.
    expected = [
        config.lr * lr_factor((epoch + 1) * STEPS - 1, total_steps=5 * STEPS, warmup_steps=STEPS,
                              schedule=config.schedule)
        for epoch in range(5)
    ]  # fmt: skip
    assert [row["lr"] for row in run.history] == pytest.approx(expected)


@pytest.mark.slow  # times and trains runs
def test_a_resumed_budget_run_keeps_the_length_it_chose(small, plain_two, tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "measure_costs", lambda self: known_costs(40.0))
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_model(), small, quick_config(tmp_path, epochs=50, time_budget=100.0), on_epoch=stop_after(1))
    monkeypatch.setattr(Trainer, "measure_costs", lambda self: known_costs(1.0))  # would now allow 50
    resumed = fit(
        tiny_model(seed=7), small, quick_config(tmp_path, epochs=50, time_budget=100.0, resume=True)
    )
    assert len(resumed.history) == 2 and resumed.metrics.time_budget["epochs"] == 2
    assert without_notes(resumed.history) == comparable(plain_two.history)


def test_the_wall_clock_guard_stops_at_an_epoch_boundary_and_still_tests(
    small, tmp_path, monkeypatch, capsys
):
    # A validation is believed to take 1000 s: after epoch 1 the next epoch cannot end by 500 s.
    monkeypatch.setattr(Trainer, "measure_costs", lambda self: known_costs(0.1, validation=1000.0))
    run = fit(tiny_model(), small, quick_config(tmp_path, epochs=50, val_every=3, wall_limit=500.0))
    assert len(run.history) == 1 and run.history[0]["val_accuracy"] is not None  # validated though not due
    assert run.history[0]["note"] == "stopped by the 500 s wall-clock guard"
    stopped = run.metrics.stopped_early
    assert (stopped["by"], stopped["after_epoch"], stopped["planned_epochs"]) == ("wall_limit", 1, 50)
    assert run.metrics.best_epoch == 1 and 0 <= run.test_accuracy <= 1
    assert (
        "wall-clock guard: epoch 2 and the test would end past the limit of 500 s" in capsys.readouterr().out
    )
    assert load_run(tmp_path).metrics.stopped_early["after_epoch"] == 1


@pytest.mark.slow  # times the steps and trains a run
def test_timing_the_steps_leaves_no_trace(small, tmp_path):
    trainer = Trainer(tiny_model(), small, quick_config(tmp_path, resolutions="16:1", ema=True))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    costs = trainer.measure_costs()
    assert set(costs.step_seconds) == {16, 32} and all(s > 0 for s in costs.step_seconds.values())
    assert costs.validation_seconds > 0 and costs.test_seconds == pytest.approx(2 * costs.validation_seconds)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())  # BN stats too
    assert not trainer.optimizer.state and trainer.ema.updates == 0  # no momentum, no EMA step


# ---------------------------------------------------------------- on the real clock


@pytest.fixture
def smaller_smoke(monkeypatch):
    # The smoke recipe on fewer images: the budget, not this machine's speed, should decide the length.
    monkeypatch.setitem(gpu_report.RECIPES, "smoke", smaller(gpu_report.RECIPES["smoke"]))


@pytest.mark.slow
def test_a_report_with_a_budget_of_seconds_stops_in_time_with_its_files(smaller_smoke, tmp_path):
    out = tmp_path / "out"
    # From the start of the command, 10 s of each kept for the end: on an idle 2-core machine dozens
    # of epochs fit, on a busy one (where a step of this network can take 3 s) one or two.
    budget, limit = 40.0, 50.0
    command = ["run", "--smoke", "--out", str(out), "--epochs", "400", "--budget", str(budget)]
    assert gpu_report.main([*command, "--wall-limit", str(limit), "--commit", "abc"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["wall_seconds"] <= limit and 1 <= report["epochs"] < 400
    assert report["time_budget"]["budget_seconds"] < budget  # what was left when training started
    record = load_run(out)  # the output folder is a complete run directory
    assert len(record.history) == report["epochs"] == record.metrics.epochs
    progress = json.loads((out / "progress.json").read_text())
    assert progress["epochs_done"] == report["epochs"] and progress["images_per_s"] > 0
    assert {p.name for p in out.iterdir()} == {
        *("environment.json", "config.json", "history.csv", "progress.json"),
        *("metrics.json", "test_predictions.pt", "best.pt", "report.json"),
    }


KILLED = """
import sys
from googlenet_utils import gpu_report
from conftest import smaller
gpu_report.RECIPES["smoke"] = smaller(gpu_report.RECIPES["smoke"])
gpu_report.main(["run", "--smoke", "--out", sys.argv[1], "--epochs", "200", "--budget", "3000"])
"""


FIRST_FILES = ("progress.json", "history.csv")  # written after the first epoch, the progress last


@pytest.mark.slow
def test_a_report_killed_mid_run_has_left_its_history_and_metrics_so_far(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    worker = subprocess.Popen([sys.executable, "-c", KILLED, str(out)], env=env)
    try:
        first_epoch_written = lambda: all((out / name).is_file() for name in FIRST_FILES)  # noqa: E731
        wait_until(first_epoch_written, worker, "its first epoch", timeout=240)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert json.loads((out / "environment.json").read_text())["device"].startswith("cpu")
    rows = list(csv.DictReader((out / "history.csv").open()))
    progress = json.loads((out / "progress.json").read_text())  # written just after the history
    assert len(rows) >= 1 and progress["epochs_done"] in (len(rows) - 1, len(rows))
    assert json.loads((out / "config.json").read_text())["train"]["epochs"] == progress["planned_epochs"]
    # What is visible parsed above; a kill during a write leaves at most a hidden temporary file.
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible == {"environment.json", "config.json", "history.csv", "progress.json"}


def test_the_command_line_takes_a_budget_and_a_limit_in_seconds():
    from googlenet_utils.cli import build_parser

    args = build_parser().parse_args(["--time-budget", "1200", "--wall-limit", "1300.5"])
    assert (args.time_budget, args.wall_limit) == (1200.0, 1300.5)
    with pytest.raises(ValueError, match=r"TrainConfig.time_budget \(--time-budget\) must be between"):
        TrainConfig(time_budget=-1.0)
