"""Sweeps: the plan, the paired settings, training, shipping, skipping, resuming and refusing."""

import json
import shutil
import subprocess
import sys

import pytest

from googlenet_utils import ModelConfig, RunDir, UserError
from googlenet_utils.design import CHOICES, VARIANTS
from googlenet_utils.sweep import SHIPPED_FILES, SWEEPS, load_sweep_data, main, run_settings, run_sweep

SMOKE = SWEEPS["smoke"]
PAIR = ("baseline", "3x3x2")


def results(root):
    return root / "results" / SMOKE.name  # where the command puts them: --results, then the sweep's name


def sweep_pair(data, root, log=print):
    run_sweep(
        SMOKE, data, runs_root=root / "runs", results_root=results(root), variants=PAIR, device="cpu", log=log
    )


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return load_sweep_data(SMOKE, "unused", tmp_path_factory.mktemp("smoke-data"))


@pytest.fixture(scope="module")
def shipped(smoke_data, tmp_path_factory):
    """Two variants x two seeds of the smoke sweep, trained and shipped once for this module."""
    root = tmp_path_factory.mktemp("sweep")
    lines = []
    sweep_pair(smoke_data, root, lines.append)
    return root, lines


def copy_of(shipped_root, tmp_path):
    shutil.copytree(shipped_root, tmp_path / "copy")
    return tmp_path / "copy"


def test_the_plan_runs_every_variant_seed_by_seed():
    plan = SWEEPS["ablation"].runs()
    needed = {name for choice in CHOICES for name in choice.variants}
    assert len(plan) == len(needed) * 3 and len({run.name for run in plan}) == len(plan)
    assert [run.seed for run in plan] == sorted(run.seed for run in plan)  # all of seed 0 first
    assert {run.variant for run in plan[: len(needed)]} == needed
    assert [r.name for r in SMOKE.runs([1], PAIR)] == ["baseline-seed1", "3x3x2-seed1"]
    with pytest.raises(UserError, match="no variant 'pool'"):
        SMOKE.runs(variants=["pool"])


def test_each_variant_changes_only_what_it_says(tmp_path):
    sweep = SWEEPS["ablation"]
    base_model, base_train = run_settings(sweep, sweep.runs([0], ["baseline"])[0], tmp_path)
    assert base_model == ModelConfig(num_classes=10, variant="cifar", width=sweep.recipe.width)
    for run in sweep.runs([0]):
        model, train = run_settings(sweep, run, tmp_path)
        changed = {k for k, v in model.to_dict().items() if v != base_model.to_dict()[k]} - {"batch_norm"}
        assert changed == set(VARIANTS[run.variant].model), run.variant
        changed = {k for k, v in train.to_dict().items() if v != base_train.to_dict()[k]}
        assert changed == set(VARIANTS[run.variant].train), run.variant
        assert train.resume and train.seed == 0 and train.time_budget == 0  # fixed length: paired epochs


def test_a_sweep_ships_config_history_and_metrics_of_each_run(shipped):
    root, lines = shipped
    folders = sorted(p.name for p in results(root).iterdir())
    assert folders == ["3x3x2-seed0", "3x3x2-seed1", "baseline-seed0", "baseline-seed1"]
    for name in folders:
        assert sorted(p.name for p in (results(root) / name).iterdir()) == sorted(SHIPPED_FILES)
        assert (root / "runs" / name / "best.pt").is_file()  # weights stay in the run directory
    assert len(lines) == 4 and lines[0].startswith("[sweep smoke 1/4] baseline-seed0: test accuracy")
    assert "3 to go" in lines[0] and "to go" not in lines[-1]


def test_paired_runs_share_the_data_and_the_split(shipped):
    root, _ = shipped
    records = {p.name: RunDir(p).read_config() for p in results(root).iterdir()}
    for seed in (0, 1):
        baseline, other = records[f"baseline-seed{seed}"], records[f"3x3x2-seed{seed}"]
        assert baseline["data"] == other["data"] and baseline["train"]["seed"] == seed
        assert other["model"]["five_by_five"] == "3x3x2" and baseline["model"]["five_by_five"] == "5x5"
    assert records["baseline-seed0"]["data"]["validation"] != records["baseline-seed1"]["data"]["validation"]


def test_shipped_runs_are_skipped_and_a_lost_one_is_reshipped_from_its_run(shipped, smoke_data, tmp_path):
    root = copy_of(shipped[0], tmp_path)
    before = (results(root) / "3x3x2-seed1" / "history.csv").read_text()
    shutil.rmtree(results(root) / "3x3x2-seed1")
    (results(root) / ".3x3x2-seed1.partial").mkdir()  # a copy interrupted half-way
    lines = []
    sweep_pair(smoke_data, root, lines.append)
    assert (
        sum(line.endswith(", skipped") for line in lines) == 3 and "3x3x2-seed1: test accuracy" in lines[-1]
    )
    assert (results(root) / "3x3x2-seed1" / "history.csv").read_text() == before  # re-tested only
    assert not (results(root) / ".3x3x2-seed1.partial").exists()


def test_results_made_with_other_settings_are_refused(shipped, smoke_data, tmp_path):
    root = copy_of(shipped[0], tmp_path)
    path = results(root) / "baseline-seed0" / "config.json"
    record = json.loads(path.read_text())
    record["train"]["lr"] = 0.5
    record["model"]["dropout"] = 0.0
    path.write_text(json.dumps(record))
    with pytest.raises(
        UserError, match=r"baseline-seed0 holds results made with other settings \(lr, model.dropout\)"
    ):
        sweep_pair(smoke_data, root, lambda _: None)


def test_the_command_lists_the_plan_without_training(shipped, capsys):
    root, _ = shipped
    assert main(["smoke", "--results", str(root / "results"), "--list", "--seeds", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SMOKE.variants)
    assert "shipped" in next(line for line in lines if line.startswith("3x3x2-seed0"))
    assert "to run" in next(line for line in lines if line.startswith("naive-seed0"))
    assert "reduce=False" in next(line for line in lines if line.startswith("naive-seed0"))


@pytest.mark.slow
def test_the_command_runs_a_pair_and_continues_after_a_stop(tmp_path):
    command = [sys.executable, "-m", "googlenet_utils.sweep", "smoke", "--variants", "baseline,fc-head"]
    command += ["--seeds", "0", "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "[sweep smoke 2/2] fc-head-seed0: test accuracy" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("skipped") == 2
