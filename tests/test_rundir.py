"""The run directory: what marks it taken, its lock, its files, and reading a run back with cross-checks."""

import json
import shutil
import subprocess
import sys

import pytest

from googlenet_utils.rundir import (
    RunDir,
    RunDirError,
    RunExistsError,
    RunLockedError,
    load_run,
)


def test_an_empty_or_new_folder_starts_fresh(tmp_path):
    assert RunDir(tmp_path / "new").plan_start(resume=False) == "fresh"
    assert RunDir(tmp_path).plan_start(resume=True) == "fresh"


@pytest.mark.parametrize(
    "name", ["config.json", "history.csv", "metrics.json", "test_predictions.pt", "best.pt"]
)
def test_any_run_file_marks_the_folder_as_taken(tmp_path, name):
    (tmp_path / name).write_text("x")
    with pytest.raises(RunExistsError, match=rf"already holds a run \({name}\)"):
        RunDir(tmp_path).plan_start(resume=False)


def test_resume_needs_last_pt_once_results_exist(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert RunDir(tmp_path).plan_start(resume=True) == "fresh"  # stopped before its first checkpoint
    (tmp_path / "best.pt").write_text("x")
    with pytest.raises(RunExistsError, match=r"holds results \(best.pt\) but no last.pt"):
        RunDir(tmp_path).plan_start(resume=True)
    (tmp_path / "last.pt").write_text("x")
    assert RunDir(tmp_path).plan_start(resume=True) == "resume"


def test_out_that_is_a_file_or_unwritable_is_explained(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file; choose a folder with --out"):
        RunDir(tmp_path / "file").prepare()

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pathlib.Path.write_bytes", refuse)
    with pytest.raises(RunDirError, match="cannot write to the run directory .*Permission denied.*--out"):
        RunDir(tmp_path / "run").prepare()


HOLDER = """
import sys, time
from googlenet_utils.rundir import RunDir
with RunDir(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(60)
"""


def test_the_lock_excludes_other_processes_and_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"being written by pid {holder.pid} on "):
            with RunDir(tmp_path).lock():
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up runs in the holder
        holder.wait()
    with RunDir(tmp_path).lock():  # the kernel released the lock with the process: nothing stale
        pass
    assert (tmp_path / ".lock").exists()  # the file stays; it means nothing when unlocked


def test_history_round_trip_keeps_numbers_text_and_gaps(tmp_path):
    rows = [
        {"epoch": 1, "lr": 0.1, "val_accuracy": None, "train_loss": 2.5},
        {"epoch": 2, "lr": 0.05, "val_accuracy": 0.5, "train_loss": 1.5e-3, "resumed_with": "lr 0.4 -> 0.2"},
    ]
    run = RunDir(tmp_path)
    run.write_history(rows)
    back = run.read_history()
    assert back[0] == {"epoch": 1, "lr": 0.1, "val_accuracy": None, "train_loss": 2.5, "resumed_with": None}
    assert back[1]["resumed_with"] == "lr 0.4 -> 0.2" and back[1]["train_loss"] == pytest.approx(1.5e-3)
    assert isinstance(back[1]["epoch"], int)
    assert not run.sync_history(back) and run.sync_history(back[:1])


def test_load_run_names_missing_files_and_damaged_json(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run_dir)
    (run_dir / "metrics.json").write_text("{ not json")
    with pytest.raises(RunDirError, match="metrics.json is not valid JSON"):
        load_run(run_dir)
    (run_dir / "metrics.json").unlink()
    with pytest.raises(RunDirError, match="not a finished run: it lacks metrics.json"):
        load_run(run_dir)


def test_a_shipped_run_without_last_pt_is_cross_checked_against_its_metrics(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run_dir)
    (run_dir / "last.pt").unlink()
    assert len(load_run(run_dir).history) == 3
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["epochs"] = 4
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with pytest.warns(UserWarning, match="has 3 epochs but metrics.json records 4"):
        load_run(run_dir)
