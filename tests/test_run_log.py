"""What a run shows a reader: paths relative to the repository, and its training log replayed from history."""

import shutil
from pathlib import Path

import pytest
from conftest import quick_config, tiny_config, tiny_model

from googlenet_utils import paths
from googlenet_utils.run_report import training_log
from googlenet_utils.trainer import fit


def test_display_path_is_relative_inside_the_repository_and_unchanged_outside(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path)
    assert paths.display_path(tmp_path / "runs" / "a") == str(Path("runs") / "a")
    assert paths.display_path("/elsewhere/runs/a") == "/elsewhere/runs/a"


@pytest.mark.slow  # trains a three-epoch run
def test_the_training_log_replays_the_lines_the_trainer_printed(small, tmp_path, capsys):
    run = fit(tiny_model(), small, quick_config(tmp_path / "run", epochs=3))
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert training_log(run.history, 3).splitlines() == printed and len(printed) == 3


def test_a_resumed_finished_run_names_its_folder_relative_to_the_repository(
    finished_run, synthetic, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(paths, "project_root", lambda: tmp_path)
    copy = tmp_path / "runs" / "copied"
    shutil.copytree(finished_run.run_dir, copy)
    fit(tiny_model(seed=5), synthetic, tiny_config(copy, resume=True))
    out = capsys.readouterr().out
    assert f"resumed {Path('runs') / 'copied'} after epoch 3/3" in out
    assert f"run saved in {Path('runs') / 'copied'}" in out and str(tmp_path) not in out
