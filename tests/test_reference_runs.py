"""The reference runs shipped under results/: they load, rebuild, and reproduce what they record."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from googlenet_utils import RECIPES, CIFARLoader, load_cifar10
from googlenet_utils.checkpoint import model_from_checkpoint
from googlenet_utils.cifar10 import CIFAR10Data
from googlenet_utils.complexity import count_parameters
from googlenet_utils.course import (
    LONG_REFERENCE,
    REFERENCE_RUNS,
    analysed_reference,
    course_settings,
    find_run,
)
from googlenet_utils.evaluation import predict, score
from googlenet_utils.provenance import ENVIRONMENT
from googlenet_utils.run_record import load_run
from googlenet_utils.runspec import describe_run

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHIPPED = [ROOT / "results" / name for name in REFERENCE_RUNS.values()]
# Earlier 30-minute runs of the cpu recipe (2026-12-01), kept as the measurements behind its settings.
EARLIER = sorted((ROOT / "results").glob("timed-cpu-30min*"))
# The longer reference notebook 05 analyses (make cpu-90min), once shipped.
LONG = [path for path in [ROOT / "results" / LONG_REFERENCE] if path.is_dir()]
CHECKED_IMAGES = 250  # every twentieth test image: 25 of each class, about a second per run on 2 cores


@pytest.fixture(scope="module", params=[*SHIPPED, *EARLIER, *LONG], ids=lambda path: path.name)
def shipped(request):
    return load_run(request.param)


def test_both_runs_are_shipped_and_differ_only_in_the_auxiliary_heads():
    aux, no_aux = (load_run(path) for path in SHIPPED)
    assert aux.model_config.aux_logits and not no_aux.model_config.aux_logits
    assert dataclasses.replace(aux.model_config, aux_logits=False) == no_aux.model_config
    # Where and how it ran, not what it trained; the budget chose the length that both runs trained.
    not_training = {"run_dir", "resume", "progress", "time_budget"}
    # A setting added to TrainConfig between the two runs is recorded by the later one only.
    shared = (set(aux.train_config) & set(no_aux.train_config)) - not_training
    assert shared >= {"epochs", "lr", "batch_size", "seed", "resolutions", "aux_weight"}
    assert {k: aux.train_config[k] for k in shared} == {k: no_aux.train_config[k] for k in shared}
    assert aux.metrics.epochs == no_aux.metrics.epochs == aux.train_config["epochs"]
    # Same images, same validation split (the source's wording changed between the two runs).
    data = [{k: v for k, v in run.config["data"].items() if k != "source"} for run in (aux, no_aux)]
    assert data[0] == data[1]
    assert aux.metrics.recipe == no_aux.metrics.recipe == "cpu"


def test_the_run_with_heads_is_the_recipe_as_a_learner_runs_it_within_its_budget():
    aux = load_run(SHIPPED[0])
    recipe = RECIPES["cpu"]
    assert aux.model_config == describe_run(recipe).model  # no dropout, the recipe's width, both heads
    budget = recipe.config().time_budget
    assert aux.train_config["time_budget"] == budget and aux.metrics.wall_seconds <= budget
    assert aux.metrics.epochs <= recipe.config().epochs and aux.config["time_budget"]["reason"]
    environment = json.loads((SHIPPED[0] / ENVIRONMENT).read_text())
    assert environment["processor"] in (SHIPPED[0] / "README.md").read_text()


@pytest.mark.parametrize("folder", EARLIER, ids=lambda path: path.name)
def test_the_earlier_timed_runs_kept_to_their_budget_and_say_so(folder):
    timed = load_run(folder)
    assert timed.train_config["time_budget"] == 1800 and timed.metrics.wall_seconds <= 1800
    readme = (folder / "README.md").read_text()  # "--time-budget 1800", or a trial's "its time budget"
    assert timed.metrics.recipe == "cpu" and ("--time-budget 1800" in readme or "its time budget" in readme)


def test_each_run_says_where_it_came_from(shipped):
    readme = (shipped.run_dir / "README.md").read_text()
    for fact in ("recipe", "data", "device", "date", "commit", "wall time", "test accuracy"):
        assert f"\n- {fact}: " in readme
    assert f"width {shipped.model_config.width}" in readme
    assert "JPEG mirror" in shipped.metrics.data["source"]
    assert not (shipped.run_dir / "last.pt").exists()  # no optimiser state is shipped


def test_the_weights_fit_the_recorded_model_and_are_small(shipped):
    model = model_from_checkpoint(shipped.weights_file)
    assert model.config == shipped.model_config
    assert count_parameters(model) == shipped.metrics.parameters["train"]
    assert shipped.weights_file.stat().st_size < 5 * 2**20


def test_the_stored_predictions_give_the_recorded_accuracies(shipped):
    metrics = score(shipped.predictions)
    assert metrics.accuracy == pytest.approx(shipped.metrics.test_accuracy, abs=1e-6)
    assert metrics.accuracy_plain == pytest.approx(shipped.metrics.test_accuracy_no_tta, abs=1e-6)
    assert len(shipped.predictions.labels) == shipped.metrics.data["test"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> CIFAR10Data:
    """The JPEG mirror the runs were trained on: data/mirror if written, else written from ../shared."""
    local = ROOT / "data" / "mirror"
    if not (local / "cifar-10-batches-py" / "test_batch").exists():
        tool, packed = SHARED / "tools" / "cifar10_mirror.py", SHARED / "data" / "cifar10-jpeg-train.npz"
        official_test = SHARED / "data" / "cifar10-jpeg-test.npz"
        if not (tool.exists() and packed.exists() and official_test.exists()):
            pytest.skip("the JPEG mirror is not here: ../shared/data is absent (it is present in CI)")
        local = tmp_path_factory.mktemp("mirror")
        command = [sys.executable, str(tool), str(local), "--official-test", "--train", str(packed),
                   "--test", str(official_test)]  # fmt: skip
        subprocess.run(command, check=True)  # the split the runs were trained and tested on
    return load_cifar10(local, download=False, verify=False)


@pytest.mark.slow  # reads the 55,000-image mirror and evaluates each shipped network
def test_the_weights_reproduce_the_stored_test_predictions_on_the_mirror(shipped, mirror):
    assert mirror.fingerprint()["digest"] == shipped.config["data"]["digest"]
    rows = torch.arange(0, len(mirror.test_labels), len(mirror.test_labels) // CHECKED_IMAGES)
    loader = CIFARLoader(mirror.test_images[rows], mirror.test_labels[rows], 250, train=False,
                         device="cpu", stats=shipped.stats)  # fmt: skip
    model = model_from_checkpoint(shipped.weights_file)
    precision = shipped.metrics.precision  # evaluated as the run evaluated its test
    fresh = predict(model, loader, tta=shipped.metrics.tta, precision=precision)
    stored = shipped.predictions
    # bf16 keeps 8 bits of mantissa, and processors with and without native bf16 round differently.
    close = {"atol": 1e-3} if precision == "fp32" else {"atol": 5e-2, "rtol": 2e-2}
    assert torch.equal(fresh.labels, stored.labels[rows])
    assert torch.allclose(fresh.logits, stored.logits[rows], **close)
    assert torch.allclose(fresh.tta, stored.tta[rows], **close)


def test_notebook_05_in_smoke_mode_analyses_the_shipped_runs_and_never_trains(monkeypatch):
    notebook = json.loads((ROOT / "notebooks" / "05_analyze_results.ipynb").read_text())
    code = "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert "googlenet_utils.trainer" not in code and "fit(" not in code
    assert "find_run(settings" in code
    monkeypatch.setenv("GOOGLENET_SMOKE", "1")  # a fresh temporary runs folder: no learner run in it
    settings = course_settings()
    for name, shipped_name in REFERENCE_RUNS.items():
        found, _ = find_run(settings, name)
        expected = analysed_reference(name).path  # the pair's run, or the longer reference once shipped
        assert found.whose == "reference" and found.path == expected
        assert expected.name in (shipped_name, LONG_REFERENCE)
