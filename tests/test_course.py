"""Notebook settings: environment variables read in one place, and where runs are looked for."""

import json

import pytest
import torch

from googlenet_utils import course
from googlenet_utils.course import FoundRun, course_recipe, course_run, course_settings, find_run


def test_smoke_mode_stays_in_a_temporary_folder_on_the_cpu(monkeypatch):
    monkeypatch.setenv("GOOGLENET_SMOKE", "1")
    settings = course_settings()
    assert (
        settings.smoke
        and settings.device == torch.device("cpu")
        and "googlenet-smoke-" in str(settings.run_dir)
    )
    recipe, why = course_recipe(settings)
    assert recipe.name == "smoke" and "smoke mode" in why


def test_full_mode_on_a_cpu_chooses_the_cpu_recipe(monkeypatch, tmp_path):
    monkeypatch.delenv("GOOGLENET_SMOKE", raising=False)
    monkeypatch.setenv("GOOGLENET_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("GOOGLENET_DEVICE", "cpu")
    settings = course_settings()
    recipe, why = course_recipe(settings)
    assert recipe.name == "cpu" and "no GPU" in why
    spec = course_run(settings, recipe, epochs=2)
    config = spec.train
    assert config.run_dir == str(tmp_path / "googlenet-cpu") and config.resume and config.epochs == 2
    assert spec.name == "googlenet-cpu" and spec.model.width == recipe.width and config.device == "cpu"
    assert spec.overrides == f"epochs 2 (recipe: {recipe.config().epochs})"
    assert course_run(settings, recipe, name="seed-1", seed=1).train.run_dir == str(tmp_path / "seed-1")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("gpu", "unknown device 'gpu'"),
        ("meta", "cannot train"),
        ("", "set but empty"),
        ("mps", "Apple-silicon"),
    ],
)
def test_googlenet_device_that_is_not_here(monkeypatch, value, fragment):
    monkeypatch.setenv("GOOGLENET_DEVICE", value)
    with pytest.raises(ValueError, match=f"GOOGLENET_DEVICE.*{fragment}"):
        course_settings()


def test_flags_must_be_yes_or_no(monkeypatch):
    monkeypatch.setenv("GOOGLENET_VERIFY", "maybe")
    with pytest.raises(ValueError, match="GOOGLENET_VERIFY must be 1 or 0"):
        course_settings()


def test_find_run_prefers_the_learners_run_and_names_every_place(monkeypatch, tmp_path):
    monkeypatch.setattr(course, "project_root", lambda: tmp_path / "repo")
    settings = course.CourseSettings(
        False, tmp_path / "data", True, tmp_path / "runs", torch.device("cpu"), False
    )
    found, looked = find_run(settings, "googlenet-aux")
    assert found is None and looked == [
        tmp_path / "runs" / "googlenet-aux",
        tmp_path / "repo" / "results" / "reference-cpu-aux",
    ]
    reference = tmp_path / "repo" / "results" / "reference-cpu-aux"
    reference.mkdir(parents=True)
    (reference / "metrics.json").write_text("{}")
    found = find_run(settings, "googlenet-aux")[0]
    assert (found.path, found.whose) == (reference, "reference")
    mine = tmp_path / "runs" / "googlenet-aux"
    mine.mkdir(parents=True)
    (mine / "metrics.json").write_text("{}")
    found = find_run(settings, "googlenet-aux")[0]
    assert found == FoundRun(mine, "yours") and found.describe().startswith("your run")


def _shipped(folder, *, width, aux, device):
    """A shipped run folder with just what ``gpu_runs`` reads: the model in config.json, the device."""
    folder.mkdir(parents=True)
    model = {"width": width, "aux_logits": aux}
    (folder / "config.json").write_text(json.dumps({"model": model}))
    return folder, device


def test_notebook_05_analyses_the_best_shipped_run_and_says_which(monkeypatch, tmp_path):
    monkeypatch.setattr(course, "project_root", lambda: tmp_path)
    results = tmp_path / "results"
    devices = {}
    monkeypatch.setattr(
        course.RunDir, "read_metrics", lambda self: type("M", (), {"device": devices[self.path.name]})
    )
    for name in ("reference-cpu-aux", "reference-cpu-no-aux"):
        (results / name).mkdir(parents=True)
        (results / name / "metrics.json").write_text("{}")
    pair = [results / "reference-cpu-aux", results / "reference-cpu-no-aux"]
    assert course.analysed_reference("googlenet-cpu").path == pair[0]
    assert course.reference_pair("googlenet-cpu") == pair

    long = results / course.LONG_REFERENCE
    long.mkdir()
    (long / "metrics.json").write_text("{}")
    chosen = course.analysed_reference("googlenet-cpu")
    assert chosen.path == long and "90-minute CPU reference" in chosen.describe()
    assert course.analysed_reference("googlenet-cpu-no-aux").path == pair[1]  # the pair's twin
    assert course.reference_pair("googlenet-cpu") == pair  # the aux comparison stays paired

    for name, width, aux, device in [
        ("cpu-wide", 1.0, True, "cpu (x86_64, 2 threads)"),  # full width, but not a GPU run
        ("h100-narrow", 0.5, True, "NVIDIA H100"),
        ("h100-fast", 1.0, True, "NVIDIA H100"),
        ("h100-fast-no-aux", 1.0, False, "NVIDIA H100"),
    ]:
        folder, devices[name] = _shipped(results / name, width=width, aux=aux, device=device)
        (folder / "metrics.json").write_text("{}")
    assert course.gpu_runs(results) == [results / "h100-fast"]
    chosen = course.analysed_reference("googlenet-fast")
    assert chosen.path == results / "h100-fast" and "GPU" in chosen.describe()
    assert course.reference_pair("googlenet-fast") == [results / "h100-fast", results / "h100-fast-no-aux"]
