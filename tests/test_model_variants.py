"""ModelConfig's design-choice options (notebook 06): each builds what it says; defaults change nothing."""

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from googlenet_utils import ConfigError, GoogLeNet, InceptionModule, ModelConfig, model_from_checkpoint
from googlenet_utils.complexity import total_macs
from googlenet_utils.model import INCEPTION_TABLE

ROOT = Path(__file__).resolve().parents[1]
ROW_3A = INCEPTION_TABLE["3a"]  # 192 in: 64, 96 -> 128, 16 -> 32, pool 32


def tiny(**options) -> GoogLeNet:
    torch.manual_seed(0)
    return GoogLeNet(10, variant="cifar", width=0.0625, **options)


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out  # weights and a bias (no batch norm)


def module_params(five_by_five: str = "5x5", reduce: bool = True) -> int:
    c_in, c1, c3r, c3, c5r, c5, pool = ROW_3A
    r3, r5 = (c3r, c5r) if reduce else (c_in, c_in)
    total = conv_params(c_in, c1, 1) + conv_params(r3, c3, 3) + conv_params(c_in, pool, 1)
    if reduce:
        total += conv_params(c_in, c3r, 1) + conv_params(c_in, c5r, 1)
    if five_by_five == "5x5":
        total += conv_params(r5, c5, 5)
    elif five_by_five == "3x3":
        total += conv_params(r5, c5, 3)
    else:
        middle = c5r if reduce else c5
        total += conv_params(r5, middle, 3) + conv_params(middle, c5, 3)
    return total


# ---------------------------------------------------------------- the defaults are today's network


def test_defaults_are_the_papers_choices_and_norm_follows_batch_norm():
    config = ModelConfig(variant="cifar")
    assert (config.five_by_five, config.reduce, config.head) == ("5x5", True, "gap")
    assert (config.norm, config.batch_norm) == ("batch", True)
    assert (ModelConfig().norm, ModelConfig().batch_norm) == ("lrn", False)  # the paper's network
    assert ModelConfig(variant="cifar", batch_norm=False).norm == "lrn"
    assert ModelConfig(variant="cifar", norm="none").batch_norm is False
    assert ModelConfig(norm="batch").batch_norm is True


def test_an_old_record_without_the_new_keys_reads_as_the_same_network():
    old = json.loads((ROOT / "results" / "reference-cpu-aux" / "config.json").read_text())["model"]
    old = {k: v for k, v in old.items() if k not in ("five_by_five", "reduce", "head", "norm")}
    config = ModelConfig.from_dict(old)
    assert config.norm == ("batch" if old["batch_norm"] else "lrn")
    assert config == ModelConfig(**old)
    model = model_from_checkpoint(ROOT / "results" / "reference-cpu-aux" / "best.pt")  # same keys, shapes
    assert model.config.five_by_five == "5x5" and model.config.head == "gap"


def test_a_record_round_trips_every_option():
    config = ModelConfig(
        num_classes=10, variant="cifar", five_by_five="3x3x2", reduce=False, head="fc", norm="none"
    )
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert GoogLeNet.from_config(config).config == config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"five_by_five": "7x7"}, "five_by_five must be one of '5x5', '3x3', '3x3x2'"),
        ({"head": "flatten"}, "head must be one of 'gap', 'fc'"),
        ({"norm": "layer"}, "norm must be one of 'batch', 'lrn', 'none'"),
        ({"reduce": "no"}, "reduce must be True or False"),
        ({"norm": "lrn", "batch_norm": True}, "norm='lrn' contradicts batch_norm=True"),
        ({"norm": "batch", "batch_norm": False}, "norm='batch' contradicts batch_norm=False"),
    ],
)
def test_bad_options_say_what_is_allowed(options, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(variant="cifar", **options)


# ---------------------------------------------------------------- the "5x5" branch and the reductions


@pytest.mark.parametrize("five_by_five", ["5x5", "3x3", "3x3x2"])
@pytest.mark.parametrize("reduce", [True, False])
def test_module_parameters_match_the_formula(five_by_five, reduce):
    module = InceptionModule(*ROW_3A, five_by_five=five_by_five, reduce=reduce)
    assert sum(p.numel() for p in module.parameters()) == module_params(five_by_five, reduce)
    out = module(torch.randn(1, ROW_3A[0], 8, 8))
    assert out.shape == (1, 256, 8, 8) and module.out_channels == 256  # widths stay the paper's


@pytest.mark.parametrize(("five_by_five", "window"), [("5x5", 5), ("3x3", 3), ("3x3x2", 5)])
def test_the_5x5_branch_sees_the_window_its_kernels_give(five_by_five, window):
    module = InceptionModule(4, 1, 1, 1, 2, 2, 1, five_by_five=five_by_five).eval()
    with torch.no_grad():
        for weight in module.parameters():
            weight.abs_()  # positive weights on a positive input: every ReLU passes its gradient
    x = (torch.rand(1, 4, 11, 11) + 0.1).requires_grad_()
    module.branch5x5(x)[0, :, 5, 5].sum().backward()
    rows, cols = torch.nonzero(x.grad.abs().sum(1)[0], as_tuple=True)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (window, window)


def test_the_naive_module_has_no_reductions_and_keeps_the_pool_projection():
    module = InceptionModule(*ROW_3A, reduce=False)
    kernels3 = [m.kernel_size for m in module.branch3x3.modules() if isinstance(m, nn.Conv2d)]
    kernels5 = [m.kernel_size for m in module.branch5x5.modules() if isinstance(m, nn.Conv2d)]
    assert kernels3 == [(3, 3)] and kernels5 == [(5, 5)]
    assert module.branch3x3[0].conv.in_channels == module.branch5x5[0].conv.in_channels == 192
    assert module.branch_pool[1].conv.out_channels == 32  # the projection stays
    reduced, naive = (GoogLeNet(10, variant="cifar", width=0.25, reduce=r).eval() for r in (True, False))
    assert total_macs(naive, (1, 3, 32, 32)) > 2 * total_macs(reduced, (1, 3, 32, 32))


@pytest.mark.parametrize("options", [{"five_by_five": "3x3x2"}, {"reduce": False}, {"norm": "none"}])
def test_the_fused_1x1_path_computes_the_same_function(options):
    model = tiny(**options).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        fused = model.fuse_1x1()(x)
    assert torch.allclose(plain, fused, atol=1e-5)
    fused_modules = [m.fuse_1x1 for m in model.modules() if isinstance(m, InceptionModule)]
    assert all(fused_modules) == options.get("reduce", True) and any(fused_modules) == all(fused_modules)


# ---------------------------------------------------------------- the head and the normalisation


@pytest.mark.parametrize(("variant", "size", "grid"), [("cifar", 32, 8), ("imagenet", 224, 7)])
def test_the_fc_head_flattens_the_last_map(variant, size, grid):
    torch.manual_seed(0)
    gap = GoogLeNet(10, variant=variant, width=0.0625, aux_logits=False).eval()
    torch.manual_seed(0)
    fc = GoogLeNet(10, variant=variant, width=0.0625, aux_logits=False, head="fc").eval()
    channels = fc.inception5b.out_channels
    assert fc.fc.in_features == channels * grid * grid and gap.fc.in_features == channels
    extra = sum(p.numel() for p in fc.parameters()) - sum(p.numel() for p in gap.parameters())
    assert extra == (grid * grid - 1) * channels * 10
    features = {}
    fc.inception5b.register_forward_hook(lambda _m, _i, out: features.__setitem__("map", out))
    with torch.no_grad():
        logits = fc(torch.randn(2, 3, size, size))
    assert features["map"].shape[-1] == grid
    assert torch.allclose(logits, fc.fc(features["map"].flatten(1)), atol=1e-5)  # nothing pooled away


def test_the_fc_head_accepts_low_resolution_epochs():
    model = tiny(head="fc").train()
    for size in (16, 24):
        assert model(torch.randn(2, 3, size, size)).logits.shape == (2, 10)


@pytest.mark.parametrize(
    ("norm", "batch_norms", "lrns"), [("batch", True, 0), ("lrn", False, 2), ("none", False, 0)]
)
def test_norm_decides_batch_norm_and_lrn(norm, batch_norms, lrns):
    model = tiny(norm=norm)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == batch_norms
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == lrns
    assert all((m.bias is None) == batch_norms for m in model.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    "options",
    [{"five_by_five": "3x3"}, {"five_by_five": "3x3x2"}, {"reduce": False}, {"head": "fc"}, {"norm": "none"}],
)
def test_every_option_starts_with_a_sane_loss_and_gradient(options):
    model = tiny(**options).train()
    x, targets = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    loss = nn.functional.cross_entropy(model(x).logits, targets)
    assert abs(loss.item() - math.log(10)) < math.log(10) / 2
    loss.backward()
    assert model.stem.conv1.conv.weight.grad.abs().sum() > 0
