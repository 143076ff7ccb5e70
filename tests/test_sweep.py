"""Sweeps: the plan, the paired settings, training, shipping, skipping, resuming and refusing."""

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import made_once

from googlenet_utils import ModelConfig, RunDir, UserError
from googlenet_utils import sweep as sweep_module
from googlenet_utils.budget import Costs
from googlenet_utils.design import CHOICES, VARIANTS
from googlenet_utils.provenance import ENVIRONMENT
from googlenet_utils.sweep import GUARD, SHIPPED_FILES, SWEEPS, load_sweep_data, main, run_settings, run_sweep
from googlenet_utils.trainer import NonFiniteLossError, Trainer

ROOT = Path(__file__).resolve().parents[1]

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
    """Two variants x two seeds of the smoke sweep, trained and shipped once for the session."""
    with made_once(tmp_path_factory, "sweep-pair") as (root, made):
        log = root / "sweep.log"  # what the sweep printed, for the processes that did not run it
        if not made:
            lines = []
            sweep_pair(smoke_data, root, lines.append)
            log.write_text("\n".join(lines))
        return root, log.read_text().splitlines()


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


def test_the_tradeoff_sweep_is_one_recipe_at_each_width_and_length(tmp_path):
    sweep = SWEEPS["width-epochs"]
    cpu = sweep.recipe  # the cpu recipe as the table began with it, frozen for all six runs
    plan = sweep.runs()
    assert [run.name for run in plan[:3]] == ["w0.125-e6-seed0", "w0.1875-e6-seed0", "w0.25-e6-seed0"]
    seen = set()
    for run in plan:
        model, train = run_settings(sweep, run, tmp_path)
        seen.add((model.width, train.epochs))
        assert model.dropout == model.aux_dropout == 0.0 and model.aux_logits and model.batch_norm
        assert train.resolutions == cpu.config(epochs=train.epochs).resolutions  # the recipe's plan, scaled
        recipe = cpu.config(epochs=train.epochs).to_dict()
        differ = {k for k, v in train.to_dict().items() if v != recipe[k]}
        assert differ <= {"val_every", "run_dir", "resume", "progress", "device"}, differ
        assert train.seed == 0 and train.time_budget == 0 and train.val_every >= train.epochs
    assert seen == {(w, e) for w in (0.125, 0.1875, 0.25) for e in (6, 12)}
    for shipped in sorted((ROOT / "results" / "sweeps" / "width-epochs").iterdir()):  # what it trained
        run = next(run for run in plan if run.name == shipped.name)
        _, train = run_settings(sweep, run, tmp_path)
        recorded = RunDir(shipped).read_config()["train"]
        assert {k: recorded[k] for k in ("epochs", "resolutions", "lr", "warmup_epochs", "time_budget")} == {
            "epochs": train.epochs, "resolutions": train.resolutions, "lr": train.lr,
            "warmup_epochs": train.warmup_epochs, "time_budget": train.time_budget,
        }  # fmt: skip


@pytest.mark.slow  # trains four runs (the module's sweep)
def test_a_sweep_ships_config_history_and_metrics_of_each_run_and_what_ran_it(shipped):
    root, lines = shipped
    folders = sorted(p.name for p in results(root).iterdir())
    assert folders == ["3x3x2-seed0", "3x3x2-seed1", "baseline-seed0", "baseline-seed1"]
    for name in folders:
        assert sorted(p.name for p in (results(root) / name).iterdir()) == sorted(
            [*SHIPPED_FILES, ENVIRONMENT]
        )
        ran_it = json.loads((results(root) / name / ENVIRONMENT).read_text())
        assert ran_it["device"].startswith("cpu") and ran_it["date"].startswith("20") and ran_it["commit"]
        assert (root / "runs" / name / "best.pt").is_file()  # weights stay in the run directory
    assert len(lines) == 4 and lines[0].startswith("[sweep smoke 1/4] baseline-seed0: test accuracy")
    assert "3 to go" in lines[0] and "to go" not in lines[-1]


@pytest.mark.slow  # reads the four runs the module trains
def test_paired_runs_share_the_data_and_the_split(shipped):
    root, _ = shipped
    records = {p.name: RunDir(p).read_config() for p in results(root).iterdir()}
    for seed in (0, 1):
        baseline, other = records[f"baseline-seed{seed}"], records[f"3x3x2-seed{seed}"]
        assert baseline["data"] == other["data"] and baseline["train"]["seed"] == seed
        assert other["model"]["five_by_five"] == "3x3x2" and baseline["model"]["five_by_five"] == "5x5"
    assert records["baseline-seed0"]["data"]["validation"] != records["baseline-seed1"]["data"]["validation"]


@pytest.mark.slow  # trains the module's four runs and one more
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


@pytest.mark.slow  # reads the four runs the module trains
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


@pytest.mark.slow  # reads the four runs the module trains
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


# --------------------------------------------------------------------------- a budgeted sweep (the GPU pairs)

BUDGET = 40.0  # with the known costs below: one epoch fits (22 s), two do not (42 s)


@pytest.fixture
def budgeted(monkeypatch):
    """The smoke sweep with a run budget, and step costs the trainer 'measures' as known values."""
    monkeypatch.setattr(
        Trainer,
        "measure_costs",
        lambda self: Costs({16: 20.0, 32: 20.0}, 1, validation_seconds=1, test_seconds=1),
    )
    return dataclasses.replace(SMOKE, run_budget=BUDGET)


@pytest.mark.slow  # trains two runs
def test_the_first_runs_budget_sets_every_runs_length(budgeted, smoke_data, tmp_path):
    lines = []
    common = {
        "runs_root": tmp_path / "runs",
        "results_root": tmp_path / "results",
        "seeds": [0],
        "device": "cpu",
    }
    run_sweep(budgeted, smoke_data, variants=["baseline"], log=lines.append, **common)
    assert "baseline-seed0: its budget chose 1 epochs" in lines[0]
    # A later call (another machine, another day) reads the length from what is shipped.
    run_sweep(budgeted, smoke_data, variants=["baseline", "aux-0"], log=lines.append, **common)
    assert lines[2].endswith(", skipped") and "aux-0-seed0: test accuracy" in lines[3]
    first, second = (
        RunDir(tmp_path / "results" / name).read_config()["train"]
        for name in ("baseline-seed0", "aux-0-seed0")
    )
    assert first["epochs"] == second["epochs"] == 1 and first["resolutions"] == second["resolutions"]
    assert first["time_budget"] == BUDGET and second["time_budget"] == 0  # the second one trained the length
    assert second["wall_limit"] == BUDGET * GUARD  # each run still has its guard
    assert SMOKE.recipe.config().epochs == 2  # the budget, not the recipe, shortened them


def test_no_run_starts_that_would_end_after_the_deadline(budgeted, smoke_data, tmp_path):
    lines = []
    where = {"runs_root": tmp_path / "runs", "results_root": tmp_path / "results"}
    soon = time.time() + 10
    shipped = run_sweep(
        budgeted,
        smoke_data,
        **where,
        seeds=[0],
        variants=["baseline"],
        device="cpu",
        deadline=soon,
        log=lines.append,
    )
    assert shipped == [] and not (tmp_path / "runs").exists()
    assert f"a run takes about {BUDGET * GUARD:.0f} s" in lines[0] and "1 run(s) to go" in lines[0]


@pytest.mark.slow  # trains two runs
def test_a_diverging_run_is_reported_and_the_sweep_goes_on(smoke_data, tmp_path, monkeypatch):
    real = sweep_module.train_run

    def diverge_on_baseline(sweep, run, *args, **kwargs):
        if run.variant == "baseline":
            raise NonFiniteLossError("the loss became NaN at step 3\nlower the learning rate")
        return real(sweep, run, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "train_run", diverge_on_baseline)
    lines = []
    shipped = run_sweep(SMOKE, smoke_data, runs_root=tmp_path / "runs", results_root=tmp_path / "results",
                        seeds=[0], variants=PAIR, device="cpu", log=lines.append)  # fmt: skip
    assert lines[0].endswith("baseline-seed0: diverged, not shipped (the loss became NaN at step 3)")
    assert [p.name for p in shipped] == ["3x3x2-seed0"]


@pytest.mark.slow  # reads the four runs the module trains
def test_results_from_another_machine_are_published_with_what_ran_them(shipped, tmp_path, capsys):
    returned = tmp_path / "returned"
    command = [
        "smoke",
        "--variants",
        "baseline",
        "--seeds",
        "0",
        "--device",
        "cpu",
        "--runs",
        str(tmp_path / "runs"),
    ]
    assert main([*command, "--results", str(returned), "--environment", "--commit", "0123456789abcdef"]) == 0
    environment = json.loads((returned / SMOKE.name / "environment.json").read_text())
    assert environment["commit"] == "0123456789abcdef" and environment["device"]
    assert main(["smoke", "--publish", str(returned), "--results", str(tmp_path / "results")]) == 0
    published = tmp_path / "results" / SMOKE.name
    assert sorted(p.name for p in published.iterdir()) == ["README.md", "baseline-seed0", "environment.json"]
    metrics = RunDir(published / "baseline-seed0").read_metrics()
    readme = (published / "README.md").read_text()
    assert "commit `0123456789ab`" in readme and f"| {metrics.test_accuracy:.2%} |" in readme
    assert main(["smoke", "--publish", str(shipped[0] / "results"), "--results", str(tmp_path / "x")]) == 2
    assert "has no environment.json" in capsys.readouterr().err


def test_the_gpu_pairs_fit_the_window_and_pair_the_aux_heads():
    pairs = SWEEPS["gpu-pairs"]
    variants = [v.name for v in pairs.variants]
    assert variants[:2] == ["lrn", "lrn-aux-0"] and variants[2:] == ["baseline", "aux-0"]  # whole pairs
    assert len(pairs.runs()) * pairs.run_budget * GUARD <= 6 * 60  # four guarded runs within 6 minutes
    assert pairs.recipe.width == 1.0 and pairs.recipe.config().compile is False
