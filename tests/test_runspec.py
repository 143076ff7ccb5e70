"""One description of a run: its name, its folder, its network and settings, validated up front."""

from dataclasses import replace

import pytest
import torch
from conftest import quick_config

from googlenet_utils import RECIPES, load_run
from googlenet_utils.errors import ConfigError
from googlenet_utils.runspec import describe_run, trained_length


def test_the_recipe_alone_gives_its_name_folder_width_and_heads():
    spec = describe_run(RECIPES["cpu"])
    assert spec.name == "googlenet-cpu" and spec.train.run_dir == "runs/googlenet-cpu"
    assert (
        spec.model.width == RECIPES["cpu"].width and spec.model.aux_logits and spec.model.variant == "cifar"
    )
    assert spec.train == RECIPES["cpu"].config(run_dir="runs/googlenet-cpu") and spec.overrides == ""


def test_overrides_change_the_name_and_are_stated_in_words(tmp_path):
    spec = describe_run(RECIPES["cpu"], width=0.5, aux_logits=False, epochs=1, runs=tmp_path)
    assert spec.name == "googlenet-cpu-w0.5-no-aux" and spec.train.run_dir == str(tmp_path / spec.name)
    recipe_epochs = RECIPES["cpu"].config().epochs
    assert spec.overrides == f"epochs 1 (recipe: {recipe_epochs}), width 0.5 (recipe: 0.25)"
    assert describe_run(RECIPES["cpu"], run_dir=str(tmp_path / "mine")).train.run_dir == str(
        tmp_path / "mine"
    )


def test_a_recipe_sets_network_settings_that_a_caller_can_override_in_words():
    recipe = replace(RECIPES["smoke"], model={"dropout": 0.0})
    assert describe_run(recipe).model.dropout == 0.0 and describe_run(recipe).overrides == ""
    assert describe_run(RECIPES["smoke"]).model.dropout == 0.4  # the paper's, when the recipe is silent
    spec = describe_run(recipe, model_changes={"dropout": 0.4, "aux_dropout": 0.0})
    assert (spec.model.dropout, spec.model.aux_dropout) == (0.4, 0.0)
    assert spec.overrides == "dropout 0.4 (recipe: 0.0), aux dropout 0.0 (paper: 0.7)"


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"width": 0}, "width must be > 0"), ({"lr": -1.0}, "lr"), ({"model_changes": {"head": "x"}}, "head")],
)
def test_a_bad_value_is_refused_before_any_data_is_read(changes, message):
    with pytest.raises(ConfigError, match=message):
        describe_run(RECIPES["smoke"], **changes)


def test_the_model_is_seeded_by_the_training_seed():
    spec = describe_run(RECIPES["smoke"], width=0.0625, seed=3)
    first, second = spec.build_model(), spec.build_model()
    pairs = zip(first.state_dict().values(), second.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    other = describe_run(RECIPES["smoke"], width=0.0625, seed=4).build_model()
    assert not torch.equal(first.fc.weight, other.fc.weight)


def test_fit_trains_the_described_run_and_load_run_reads_it_back(small, tmp_path):
    settings = quick_config(tmp_path / "run", epochs=1).to_dict()
    spec = describe_run(RECIPES["smoke"], width=0.0625, **settings)
    run = spec.fit(spec.data(small))
    record = load_run(tmp_path / "run")
    assert record.model_config == spec.model and run.metrics.recipe == "smoke"
    assert record.train_config["epochs"] == 1 and record.train_config["seed"] == spec.train.seed


def test_data_with_other_classes_is_refused_with_the_fix(synthetic, tmp_path):
    spec = describe_run(RECIPES["smoke"], width=0.0625, num_classes=5, run_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match="5 classes, the data 10: describe the run with num_classes"):
        spec.fit(synthetic)


def test_a_run_given_another_runs_length_trains_as_long_without_a_budget(finished_run):
    length = trained_length(finished_run)
    spec = describe_run(RECIPES["cpu"], aux_logits=False, **length)
    assert spec.train.epochs == finished_run.train_config["epochs"] and spec.train.time_budget == 0
    assert spec.train.resolutions == finished_run.train_config["resolutions"]
    assert spec.train.wall_limit == RECIPES["cpu"].config().wall_limit  # the guard stays
