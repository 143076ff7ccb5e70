"""The moving average of the weights: its warm-up, what it averages and copies, and its state."""

import pytest
import torch
from torch import nn

from googlenet_utils.ema import EMA


def test_the_ema_trails_the_weights_with_a_warm_up():
    model = torch.nn.Linear(2, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update()  # decay_0 = min(0.9, 1 / 10) = 0.1: the average moves 90% of the way
    assert ema.module.weight.flatten().tolist() == pytest.approx([0.9, 0.9])
    ema.update()  # decay_1 = min(0.9, 2 / 11)
    assert ema.module.weight[0, 0].item() == pytest.approx(0.9 + (1 - 0.9) * (1 - 2 / 11))
    assert ema.state_dict()["updates"] == 2


def test_batch_norm_statistics_are_averaged_and_its_step_counter_copied():
    model = nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.running_mean.fill_(4.0)
        model.num_batches_tracked.fill_(7)
    ema.update()  # decay_0 = min(0.5, 1 / 10) = 0.1
    assert ema.module.running_mean.tolist() == pytest.approx([3.6, 3.6])
    assert int(ema.module.num_batches_tracked) == 7  # an integer buffer: copied, not averaged


def test_the_average_follows_weights_changed_in_place_and_never_trains():
    model = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.0)  # decay 0: the average is the live weights after each update
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    model(torch.ones(1, 1)).sum().neg().backward()
    optimizer.step()  # the live weight moves to 1 in place
    ema.update()
    assert ema.module.weight.item() == pytest.approx(1.0)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_the_state_round_trips_into_a_fresh_average():
    model = nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    for _ in range(3):
        with torch.no_grad():
            model.weight.add_(1.0)
        ema.update()
    fresh = EMA(nn.Linear(2, 1), decay=0.9)
    fresh.load_state_dict(ema.state_dict())
    assert fresh.updates == 3 and fresh.current_decay() == ema.current_decay()
    assert torch.equal(fresh.module.weight, ema.module.weight)
