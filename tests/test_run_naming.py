"""One naming scheme: the run `make train` writes is the run notebooks 04 and 05 look for."""

import pytest
import torch
from conftest import smaller

from googlenet_utils import course
from googlenet_utils.cli import main
from googlenet_utils.course import REFERENCE_RUNS, course_recipe, course_settings, find_run
from googlenet_utils.recipe import RECIPES, run_name
from googlenet_utils.run_report import final_line
from googlenet_utils.runspec import describe_run


def test_run_names_follow_recipe_width_and_heads():
    assert run_name("cpu") == "googlenet-cpu"
    assert run_name("cpu", aux_logits=False) == "googlenet-cpu-no-aux"
    assert run_name("cpu", width=RECIPES["cpu"].width) == "googlenet-cpu"  # the recipe's own width
    assert run_name("cpu", width=0.5, aux_logits=False) == "googlenet-cpu-w0.5-no-aux"


def test_the_reference_runs_are_named_like_the_cpu_runs_make_train_writes():
    assert set(REFERENCE_RUNS) == {run_name("cpu"), run_name("cpu", aux_logits=False)}


def test_a_command_line_run_is_the_run_find_run_returns(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the command line writes runs/<name> under the working folder
    monkeypatch.delenv("GOOGLENET_SMOKE", raising=False)
    monkeypatch.setenv("GOOGLENET_RUN_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GOOGLENET_DEVICE", "cpu")
    monkeypatch.setattr(course, "project_root", lambda: tmp_path)  # no shipped run to fall back on
    monkeypatch.setitem(
        RECIPES, "smoke", smaller(RECIPES["smoke"])
    )  # the naming, not the training, is tested
    assert main(["--synthetic", "--recipe", "smoke", "--no-progress", "--epochs", "1"]) == 0
    settings = course_settings()
    found, _ = find_run(settings, run_name("smoke"))
    assert found is not None and found.whose == "yours"
    assert found.path.resolve() == (tmp_path / "runs" / "googlenet-smoke").resolve()
    printed = capsys.readouterr().out
    assert "overrides in effect: epochs 1 (recipe: 3)" in printed


def test_the_cpu_default_of_make_train_is_the_name_notebook_05_looks_for(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLENET_SMOKE", raising=False)
    monkeypatch.setenv("GOOGLENET_DEVICE", "cpu")
    monkeypatch.setenv("GOOGLENET_RUN_DIR", str(tmp_path))
    recipe, _ = course_recipe(course_settings())
    assert run_name(recipe.name) in REFERENCE_RUNS  # find_run falls back to the shipped run of that name


def test_overrides_are_listed_against_the_recipe_and_the_paper():
    cpu = RECIPES["cpu"]
    spec = describe_run(
        cpu,
        width=0.5,
        model_changes={"dropout": 0.4, "head": "fc"},
        epochs=1,
        run_dir="x",
        lr=cpu.config().lr,
    )
    training = f"epochs 1 (recipe: {cpu.config().epochs}), width 0.5 (recipe: {cpu.width:g})"
    # Against the recipe where it sets the value (dropout), else against the paper; not the folder,
    # not an unchanged lr.
    assert spec.overrides == f"{training}, dropout 0.4 (recipe: 0.0), head 'fc' (paper: 'gap')"
    assert describe_run(cpu, width=cpu.width, device="cpu", model_changes={"dropout": 0.0}).overrides == ""


@pytest.mark.parametrize(
    ("tta", "expected"),
    [("none", "(no test-time augmentation)"), ("flip", "(flip TTA; 0.5000 without)")],
)
def test_the_last_line_reads_well_for_every_tta_mode(tta, expected):
    line = final_line(torch.tensor(0.6).item(), 0.5, tta, 3, "runs/x")
    assert line == f"test accuracy 0.6000 {expected} from epoch 3; run saved in runs/x"


def test_a_run_of_any_recipe_falls_back_to_the_shipped_cpu_run_with_the_same_heads():
    assert course.reference_run(run_name("fast")).name == REFERENCE_RUNS[run_name("cpu")]
    no_aux = REFERENCE_RUNS[run_name("cpu", aux_logits=False)]
    assert course.reference_run(run_name("fast", aux_logits=False)).name == no_aux
