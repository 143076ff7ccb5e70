"""The tool that trains and ships the CPU reference runs: what it asks the trainer for, what it writes."""

import sys
from pathlib import Path

import pytest

from googlenet_utils.recipe import RECIPES

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import ship_reference_runs as tool  # noqa: E402


def test_the_run_without_heads_trains_the_length_the_budget_chose_for_its_partner(finished_run):
    with_heads, without_heads = tool.PAIR
    assert with_heads.flags == () and without_heads.flags == ("--no-aux",)  # the recipe as a learner runs it
    sized = tool.same_length_as(without_heads, finished_run, with_heads.folder)
    chosen = finished_run.train_config
    length = ("--epochs", str(chosen["epochs"]), "--resolutions", chosen["resolutions"])
    assert sized.flags == ("--no-aux", "--time-budget", "0", *length)
    assert with_heads.folder in sized.why and f"{chosen['epochs']} epochs" in sized.why
    assert (sized.folder, sized.run) == (without_heads.folder, without_heads.run)


def test_a_shipped_readme_names_the_processor_when_told_it(finished_run):
    text = tool.readme("reference-cpu-aux", finished_run, "abc123", cpu="AMD EPYC")
    device_line = next(line for line in text.splitlines() if line.startswith("- device: "))
    assert device_line.endswith("; processor: AMD EPYC") and "\n- commit: abc123\n" in text
    assert "processor" not in tool.readme("reference-cpu-aux", finished_run, "abc123")


def test_the_long_reference_is_guarded_by_its_own_budget_not_the_recipes_30_minutes():
    flags = tool.LONG.flags
    budget, guard = (flags[flags.index(name) + 1] for name in ("--time-budget", "--wall-limit"))
    assert float(budget) == float(guard) == 5400 > RECIPES["cpu"].config().wall_limit


def test_a_trial_is_the_recipe_plus_its_flags_shipped_beside_the_earlier_timed_runs(monkeypatch, tmp_path):
    run = tool.trial("b256", "--batch-size 256 --lr 0.2")
    assert run.flags == ("--batch-size", "256", "--lr", "0.2") and run.group == "trial"
    assert run.folder == "timed-cpu-30min-b256"
    assert run.source == ROOT / "runs" / "trial" / "googlenet-cpu-b256"
    assert "`--batch-size 256 --lr 0.2`" in run.why and "its time budget" in run.why
    (tmp_path / "results" / run.folder).mkdir(parents=True)
    (tmp_path / "results" / "reference-cpu-aux").mkdir()
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert [path.name for path in tool.earlier()] == [run.folder]  # the README's table lists it


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--trial-flags", "--lr 0.2"], "need --trial NAME"),
        (["--trial-processes", "2"], "need --trial NAME"),
        (["--trial", "x", "--trial-processes", "0"], "must be at least 1, got 0"),
        (["--trial", "x", "--trial-flags=--ema", "--trial-processes", "-1"], "must be at least 1, got -1"),
    ],
)
def test_a_trial_needs_its_name_and_at_least_one_process(monkeypatch, capsys, argv, message):
    monkeypatch.setattr(sys, "argv", ["ship_reference_runs.py", *argv])
    with pytest.raises(SystemExit) as stop:
        tool.main()
    assert stop.value.code == 2  # refused before anything trains
    assert message in capsys.readouterr().err


def test_a_trial_without_changes_is_the_recipe_as_a_same_machine_baseline():
    run = tool.trial("baseline-xeon")
    assert run.flags == () and run.processes == 1 and run.folder == "timed-cpu-30min-baseline-xeon"
    assert "recipe unchanged" in run.why and "same machine" in run.why
    command, _ = tool.train_command(run, "cpu", Path("data/mirror"))
    assert command[1:5] == ["-m", "googlenet_utils.train", "--recipe", "cpu"] and command[-1] == "--resume"


def test_a_trial_with_processes_runs_under_torchrun_sharing_out_the_cores(monkeypatch):
    monkeypatch.setattr(tool.os, "sched_getaffinity", lambda pid: {0, 1})  # a 2-core machine
    run = tool.trial("two-processes", processes=2)
    assert run.flags == () and run.processes == 2
    assert "`torchrun --standalone --nproc_per_node=2` (2 processes of 1 thread each" in run.why
    command, env = tool.train_command(run, "cpu", Path("data/mirror"))
    assert command[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert (
        command[5:9] == ["-m", "googlenet_utils.train", "--recipe", "cpu"] and env["OMP_NUM_THREADS"] == "1"
    )
    single, env = tool.train_command(tool.trial("ema", "--ema"), "cpu", Path("data/mirror"))
    assert single[1:3] == ["-m", "googlenet_utils.train"] and single[-1] == "--ema"
    assert env.get("OMP_NUM_THREADS") == tool.os.environ.get("OMP_NUM_THREADS")  # left as it was
