"""The GPU report runs end to end on a CPU in smoke mode, so it works the first time a GPU appears."""

import argparse
import json
import subprocess

import pytest
import torch
from conftest import one_torch_thread, smaller

from googlenet_utils import (
    gpu_report,
    load_checkpoint,
    load_run,
    make_synthetic_cifar10,
    model_from_checkpoint,
    recipe,
)

RUN_FILES = {"config.json", "history.csv", "metrics.json", "test_predictions.pt", "best.pt"}


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as patch, one_torch_thread():
        patch.setitem(gpu_report.RECIPES, "smoke", smaller(gpu_report.RECIPES["smoke"]))
        command = ["run", "--smoke", "--epochs", "2", "--out", str(out), "--commit", "abc1234"]
        budget = ["--budget", "3000", "--wall-limit", "3000"]  # files are tested here, not the clock
        assert gpu_report.main([*command, *budget]) == 0
    return out


@pytest.mark.slow  # trains a report (the module's)
def test_the_report_is_a_run_directory_with_environment_progress_and_summary(report_dir):
    # No bench.json: the eager and plain-DataLoader baselines run only with --bench.
    assert {p.name for p in report_dir.iterdir()} == {
        "environment.json",
        "progress.json",
        "report.json",
        *RUN_FILES,
    }
    env = json.loads((report_dir / "environment.json").read_text())
    assert env["commit"] == "abc1234" and env["device"].startswith("cpu") and env["torch"]
    report = json.loads((report_dir / "report.json").read_text())
    assert report["bench"] is None
    assert set(report["time_to_val_accuracy"]) == {"0.90", "0.93", "0.94", "0.95"}
    assert 0 <= report["test_accuracy_no_tta"] <= 1 and report["recipe"] == "smoke"
    assert report["images_per_s"] > 0 and report["train_gflop_per_image"] > 0
    assert report["model_flop_utilisation"] is None  # no GPU, no peak to divide by
    assert report["epochs"] == 2 and report["time_budget"]["epochs"] == 2
    record = load_run(report_dir)
    assert len(record.history) == 2 and record.metrics.test_accuracy == report["test_accuracy"]


@pytest.mark.slow  # reads the report the module trains
def test_the_shipped_weights_are_half_precision_and_rebuild_a_float_network(report_dir):
    state = load_checkpoint(report_dir / "best.pt", "weights")
    floats = [t for t in state["model"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float16 for t in floats)
    model = model_from_checkpoint(report_dir / "best.pt")
    assert next(model.parameters()).dtype == torch.float32 and model.config.width == 0.0625


@pytest.mark.slow  # reads the report the module trains
def test_publish_copies_the_report_and_regenerates_the_table(report_dir, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{gpu_report.TABLE_START}\nold\n{gpu_report.TABLE_END}\n\nafter\n")
    measured = tmp_path / "measured.json"
    monkeypatch.setattr(recipe, "MEASURED", measured)
    (report_dir / ".history.csv.abc.tmp").write_text("half")  # what a kill during a write leaves
    target = gpu_report.publish(report_dir, "cpu-smoke", tmp_path / "results", readme, measured)
    (report_dir / ".history.csv.abc.tmp").unlink()
    assert not list(target.glob(".*.tmp"))
    assert (target / "README.md").read_text().startswith("# smoke") and "commit: abc1234" in (
        target / "README.md"
    ).read_text()
    text = readme.read_text()
    report = json.loads((report_dir / "report.json").read_text())
    assert "old" not in text and text.endswith("after\n")
    assert (
        f"{report['test_accuracy']:.2%} / {report['test_accuracy_no_tta']:.2%}" in text
        and "peak unknown" in text
    )
    assert recipe.RECIPES["smoke"].expected.startswith(f"{report['test_accuracy']:.2%} test accuracy")
    assert recipe.RECIPES["fast"].expected == "not measured yet"
    assert len(load_run(target).history) == 2  # the published folder is a run notebook 05 can read
    with pytest.raises(SystemExit, match="exists"):
        gpu_report.publish(report_dir, "cpu-smoke", tmp_path / "results", readme, measured)


@pytest.mark.slow
def test_the_baselines_run_in_a_process_of_their_own_without_compiling(tmp_path, monkeypatch):
    make_synthetic_cifar10(tmp_path / "data", n_train=300, n_test=50)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the benchmark's process: no threads spinning on 2 cores
    args = argparse.Namespace(smoke=True, device="cpu")
    bench = gpu_report.run_bench(args, recipe.RECIPES["smoke"], str(tmp_path / "data"), False, tmp_path)
    assert bench == json.loads((tmp_path / "bench.json").read_text())
    assert bench["eager_images_per_s"] > 0 and bench["plain_images_per_s"] > 0 and bench["ratio"] > 0
    assert bench["compiled_images_per_s"] is None  # the real run measures the compiled step
    assert bench["data"].startswith("synthetic stand-in")


def test_a_failing_benchmark_costs_the_report_nothing(tmp_path, monkeypatch, capsys):
    def hung(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], gpu_report.BENCH_TIMEOUT_SECONDS)

    monkeypatch.setattr(gpu_report.subprocess, "run", hung)
    args = argparse.Namespace(smoke=True, device="cpu")
    assert gpu_report.run_bench(args, recipe.RECIPES["smoke"], str(tmp_path), False, tmp_path) is None
    assert "bench skipped (TimeoutExpired" in capsys.readouterr().out


def test_the_limits_handed_to_training_are_what_is_left_of_the_command(monkeypatch):
    monkeypatch.setattr(gpu_report.time, "time", lambda: 1000.0)
    left = gpu_report.limits(450.0, 530.0, started=900.0)  # 100 s gone on the mirror and start-up
    assert left == {"time_budget": 450 - 100 - gpu_report.AFTER_FIT_SECONDS, "wall_limit": 420.0}
    assert gpu_report.limits(450.0, 530.0, started=0.0) == {"time_budget": 1.0, "wall_limit": 1.0}


def test_steady_speed_comes_from_full_resolution_epochs_after_the_first():
    history = [
        {"epoch": 1, "resolution": 16, "images_per_s": 900.0},
        {"epoch": 2, "resolution": 32, "images_per_s": 150.0},
        {"epoch": 3, "resolution": 32, "images_per_s": 300.0},
        {"epoch": 4, "resolution": 32, "images_per_s": 310.0},
    ]
    assert gpu_report.steady_images_per_s(history) == 300.0
    assert gpu_report.steady_images_per_s(history[:1]) is None
