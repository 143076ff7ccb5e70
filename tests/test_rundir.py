"""The run directory: what marks it taken, its lock, its files, and reading a run back with cross-checks."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from conftest import comparable

from googlenet_utils.checkpoint import save_checkpoint
from googlenet_utils.run_record import load_run
from googlenet_utils.rundir import RunDir, RunDirError, RunExistsError, RunLockedError


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


@pytest.mark.slow  # starts processes
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


# ---------------------------------------------------------------- hostile, damaged and odd files


def copy_of_run(finished_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run.run_dir, run_dir)
    return run_dir


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"\x00\xff" * 100])
def test_load_run_reads_past_a_damaged_history_without_writing(finished_run, tmp_path, content):
    run_dir = copy_of_run(finished_run, tmp_path)
    (run_dir / "history.csv").write_bytes(content)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.iterdir() if p.is_file()}
    with pytest.warns(UserWarning, match="history.csv is damaged; using last.pt's history"):
        assert comparable(load_run(run_dir).history) == comparable(finished_run.history)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.iterdir() if p.is_file()}
    assert after == before  # reading a run never writes to it


def test_a_damaged_history_without_last_pt_or_a_history_folder_is_named(finished_run, tmp_path):
    run_dir = copy_of_run(finished_run, tmp_path)
    (run_dir / "last.pt").unlink()
    (run_dir / "history.csv").write_bytes(bytes(range(256)))
    with pytest.raises(RunDirError, match=r"history.csv cannot be read as the run's history .*damaged"):
        load_run(run_dir)
    (run_dir / "history.csv").unlink()
    (run_dir / "history.csv").mkdir()
    with pytest.raises(RunDirError, match=r"history.csv is a folder, not the run's history file: move it"):
        load_run(run_dir)
    with pytest.raises(RunDirError, match=r"history.csv is a folder"):
        RunDir(run_dir).sync_history([{"epoch": 1}])


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', "3"])
def test_json_that_is_not_an_object_names_the_file(finished_run, tmp_path, content):
    run_dir = copy_of_run(finished_run, tmp_path)
    (run_dir / "metrics.json").write_text(content)
    with pytest.raises(RunDirError, match=r"metrics.json holds a JSON \w+, not the object a run writes"):
        load_run(run_dir)
    (run_dir / "metrics.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(RunDirError, match=r"metrics.json is not valid JSON"):
        load_run(run_dir)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_test_predictions_with_a_pickle_payload_are_refused_without_running_it(finished_run, tmp_path):
    run_dir = copy_of_run(finished_run, tmp_path)
    marker = tmp_path / "ran"
    torch.save({"logits": Payload(marker)}, run_dir / "test_predictions.pt")
    with pytest.raises(
        RunDirError, match=r"test_predictions.pt cannot be read as the run's test predictions"
    ) as refused:
        load_run(run_dir)
    assert not marker.exists() and "weights_only" not in str(refused.value)  # never advise turning it off
    torch.save([1, 2], run_dir / "test_predictions.pt")
    with pytest.raises(RunDirError, match=r"test_predictions.pt does not hold the test predictions"):
        load_run(run_dir)


def test_a_run_directory_name_too_long_for_the_file_system_is_explained(tmp_path):
    with pytest.raises(RunDirError, match=r"name .*\.\.\. is too long for the file system.*shorter --out"):
        RunDir(tmp_path / ("x" * 300)).prepare()


def test_a_home_folder_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert RunDir("~/runs/x").path == tmp_path / "runs" / "x"


def test_a_lock_file_that_cannot_be_opened_is_explained(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, *args, **kwargs):  # chmod does not stop root, who runs CI containers
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("googlenet_utils.rundir.os.open", refuse)
    with pytest.raises(RunDirError, match=r"cannot open the lock file .*\.lock \(Permission denied\)"):
        with RunDir(tmp_path).lock():
            pass


def test_the_lock_holder_removes_stale_temporary_files_of_its_own_naming_only(tmp_path):
    ours = [".last.pt.k2j3h4g5.tmp", ".best.pt.abc_1234.tmp", ".metrics.json.x.tmp", ".best.pt.pending.q.tmp"]
    theirs = ["notes.tmp", ".last.pt.backup", "last.pt.copy.tmp", ".unrelated.x.tmp"]
    for name in ours + theirs:
        (tmp_path / name).write_bytes(b"x" * 100)
    with RunDir(tmp_path).lock():
        left = {p.name for p in tmp_path.iterdir()}
    assert left == {*theirs, ".lock"}


def weights_of_epoch(epoch: int) -> dict:
    return {"model": {"w": torch.full((3,), float(epoch))}, "epoch": epoch, "val_accuracy": 0.5}


def training_state(epoch: int, best_epoch: int) -> dict:
    return {"model": {}, "epoch": epoch, "history": [], "best": {"epoch": best_epoch, "val_accuracy": 0.5}}


def test_a_pending_best_is_promoted_when_last_pt_records_it(tmp_path):
    run = RunDir(tmp_path)
    save_checkpoint(tmp_path / "best.pt", weights_of_epoch(1), "weights")
    save_checkpoint(tmp_path / "best.pt.pending", weights_of_epoch(2), "weights")
    run.save_last(training_state(epoch=2, best_epoch=2))  # killed after last.pt, before the rename
    with run.lock():
        assert run.load_best()["epoch"] == 2 and not (tmp_path / "best.pt.pending").exists()


@pytest.mark.parametrize("last_epoch", [None, 1])
def test_a_pending_best_that_last_pt_never_recorded_is_dropped(tmp_path, last_epoch):
    run = RunDir(tmp_path)
    save_checkpoint(tmp_path / "best.pt.pending", weights_of_epoch(2), "weights")
    if last_epoch is not None:
        save_checkpoint(tmp_path / "best.pt", weights_of_epoch(1), "weights")
        run.save_last(training_state(epoch=last_epoch, best_epoch=1))  # killed before last.pt of epoch 2
    with run.lock():
        assert not (tmp_path / "best.pt.pending").exists()
    assert run.present() == ([] if last_epoch is None else ["last.pt", "best.pt"])
    if last_epoch is not None:
        assert run.load_best()["epoch"] == 1
