"""Parameters and multiply-adds counted on the real layers, against numbers worked out by hand."""

import pytest
import torch
from torch import nn

from googlenet_utils import GoogLeNet, InceptionModule
from googlenet_utils.complexity import PAPER_TABLE1, count_parameters, grouped_costs, layer_costs, total_macs
from googlenet_utils.model import INCEPTION_TABLE


def test_layer_costs_of_one_module_by_hand():
    module = InceptionModule(*INCEPTION_TABLE["3a"])
    costs = layer_costs(module, (1, 192, 28, 28))
    by_name = {c.name: c for c in costs}
    assert by_name["branch1x1.conv"].macs == 192 * 64 * 28 * 28
    assert by_name["branch5x5.1.conv"].macs == 25 * 16 * 32 * 28 * 28
    assert by_name["branch5x5.1.conv"].params == 25 * 16 * 32 + 32  # weights and the bias
    assert by_name["branch_pool.1.conv"].output_shape == (32, 28, 28)
    assert sum(c.macs for c in costs) == total_macs(module, (1, 192, 28, 28))


def test_costs_do_not_disturb_batch_norm_statistics():
    model = GoogLeNet(10, variant="cifar", width=0.25).train()
    before = model.inception3a.branch1x1.bn.running_mean.clone()
    layer_costs(model, (1, 3, 32, 32))
    assert torch.equal(model.inception3a.branch1x1.bn.running_mean, before) and model.training


def test_grouped_costs_sum_the_layers_of_each_prefix():
    model = GoogLeNet(1000, aux_logits=False)
    costs = layer_costs(model.eval(), (1, 3, 224, 224))
    groups = grouped_costs(costs, ["inception3a", "fc"])
    assert groups["fc"] == (1024 * 1000 + 1000, 1024 * 1000)
    assert groups["inception3a"][1] == pytest.approx(PAPER_TABLE1["inception3a"][1], rel=0.01)  # 128M


def test_inference_parameters_leave_out_the_auxiliary_heads():
    model = GoogLeNet(10, variant="cifar")
    heads = sum(p.numel() for name, p in model.named_parameters() if name.startswith(("aux1.", "aux2.")))
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    assert count_parameters(model, inference=True) == count_parameters(model) - heads
    assert count_parameters(nn.Linear(3, 2), inference=True) == 8


def test_the_memory_estimate_grows_with_the_batch_and_leaves_the_model_as_it_was():
    from googlenet_utils.complexity import DATA_BYTES, training_memory

    def estimate(model, batch, **kwargs):
        options = {"device_type": "cpu", "precision": "fp32", **kwargs}
        return training_memory(model, batch, **options) - DATA_BYTES

    model = GoogLeNet(10, variant="cifar", width=0.25).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    empty, eight, many = estimate(model, 0), estimate(model, 8), estimate(model, 64)
    assert 0 < empty < eight and many - empty == pytest.approx(8 * (eight - empty))
    assert estimate(model, 64, device_type="cuda", precision="bf16") < many / 2
    assert estimate(model, 64, ema=True) > many
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
