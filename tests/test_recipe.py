"""Recipes: settings validated up front, the named presets, the schedule, the optimiser, resume rules."""

import math

import pytest
import torch
from conftest import tiny_model

from googlenet_utils.recipe import (
    RECIPES,
    TrainConfig,
    choose_recipe,
    lr_factor,
    make_optimizer,
)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs", 0, "between 1 and"),
        ("epochs", 2.5, "must be int"),
        ("batch_size", -1, "between 1 and"),
        ("lr", 0.0, "between"),
        ("lr", float("nan"), "between"),
        ("lr", float("inf"), "between"),
        ("lr", 1e6, "between"),
        ("momentum", -0.1, "between 0.0 and 0.999"),
        ("momentum", 1.0, "between 0.0 and 0.999"),
        ("weight_decay", -1e-4, "between"),
        ("weight_decay", 5.0, "between"),
        ("label_smoothing", 1.0, "between"),
        ("aux_weight", -0.3, "between"),
        ("aux_weight", float("nan"), "between"),
        ("schedule", "step", "must be one of linear, cosine, constant"),
        ("precision", "fp8", "must be one of"),
        ("tta", "crops", "must be one of none, flip, flip"),
        ("ema_decay", 1.0, "between"),
        ("warmup_epochs", 100, "between 0.0 and 40.0"),
        ("val_size", 0, "between"),
        ("seed", -1, r"TrainConfig.seed \(--seed\) must be between 0 and 4294967295"),
        ("seed", 2**64, r"\(--seed\)"),
        ("ema", 1, "must be bool"),
        ("run_dir", "  ", r"\(--out\) must name a folder"),
    ],
)
def test_invalid_settings_name_the_field_and_the_flag(field, value, message):
    flag = "--out" if field == "run_dir" else "--" + field.replace("_", "-")
    with pytest.raises(ValueError, match=rf"TrainConfig.{field} \({flag}\)") as error:
        TrainConfig(**{field: value})
    assert error.match(message)


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="nesterov.*momentum > 0"):
        TrainConfig(momentum=0.0)
    assert TrainConfig(momentum=0.0, nesterov=False).momentum == 0


def test_presets_are_valid_and_fast_is_the_default():
    assert RECIPES["fast"].config() == TrainConfig()
    for name, recipe in RECIPES.items():
        config = recipe.config()
        assert recipe.name == name and recipe.summary and config.aux_weight == 0.3  # the paper's weight
        assert 0 < recipe.width <= 1
    assert RECIPES["smoke"].subset == (640, 256) and RECIPES["smoke"].width == 0.125
    assert RECIPES["best"].config().cutout == 16 and RECIPES["best"].config().ema
    assert RECIPES["cpu"].width < 1 and RECIPES["cpu"].config().compile is None


def test_every_setting_carries_a_reason_that_the_command_line_shows():
    import dataclasses

    from googlenet_utils.cli import build_parser

    shown = {action.dest: action.help or "" for action in build_parser()._actions}
    for f in dataclasses.fields(TrainConfig):
        reason = f.metadata["help"]
        assert len(reason.split()) >= 3, f"{f.name}: {reason!r} is a label, not a reason"
        assert reason in shown[f.name], f"--{f.name.replace('_', '-')}'s help does not give the reason"


def test_recipe_is_chosen_by_device_unless_named():
    recipe, why = choose_recipe(None, torch.device("cpu"))
    assert recipe.name == "cpu" and "no GPU" in why
    recipe, why = choose_recipe("auto", torch.device("cuda"))
    assert recipe.name == "fast" and "GPU" in why
    recipe, why = choose_recipe("fast", torch.device("cpu"))
    assert recipe.name == "fast" and "asked for" in why
    with pytest.raises(ValueError, match="unknown recipe 'fastest': choose one of fast, best, cpu, smoke"):
        choose_recipe("fastest", torch.device("cpu"))


def test_learning_rate_warms_up_then_decays_to_zero():
    factors = [lr_factor(step, total_steps=100, warmup_steps=10, schedule="cosine") for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[9:], factors[10:], strict=False))
    assert factors[-1] < 0.001
    assert lr_factor(55, total_steps=100, warmup_steps=10, schedule="linear") == pytest.approx(0.5)
    assert lr_factor(99, total_steps=100, warmup_steps=0, schedule="constant") == 1.0
    assert math.isclose(lr_factor(0, total_steps=100, warmup_steps=0, schedule="linear"), 1.0)


def test_no_weight_decay_on_norms_and_biases():
    model = tiny_model()
    decay, no_decay = make_optimizer(model, TrainConfig()).param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0
    bn_weight = model.stem.conv1.bn.weight
    assert any(p is bn_weight for p in no_decay["params"]) and any(
        p is model.fc.bias for p in no_decay["params"]
    )
    assert any(p is model.fc.weight for p in decay["params"])
    assert make_optimizer(model, TrainConfig()).defaults["foreach"]  # one kernel launch for all tensors
