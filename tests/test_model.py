"""GoogLeNet against the paper's table: shapes, parameter counts, heads, losses and bad input."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from googlenet_utils import AuxClassifier, GoogLeNet, GoogLeNetOutputs, InceptionModule, googlenet_loss
from googlenet_utils.model import (
    INCEPTION_TABLE,
    MAX_WIDTH,
    NCHW_NORM_MULTIPLE,
    BasicConv2d,
    NaiveInceptionModule,
)

MODULES = list(INCEPTION_TABLE)
# Paper Table 1 (Szegedy et al., 2015): output channels and feature-map side at 224x224 input.
PAPER_OUT = {
    "3a": 256,
    "3b": 480,
    "4a": 512,
    "4b": 512,
    "4c": 512,
    "4d": 528,
    "4e": 832,
    "5a": 832,
    "5b": 1024,
}
PAPER_MAP_224 = {"3a": 28, "3b": 28, "4a": 14, "4b": 14, "4c": 14, "4d": 14, "4e": 14, "5a": 7, "5b": 7}
CIFAR_MAP_32 = {"3a": 32, "3b": 32, "4a": 16, "4b": 16, "4c": 16, "4d": 16, "4e": 16, "5a": 8, "5b": 8}


def module_shapes(model: GoogLeNet, size: int) -> dict[str, tuple[int, ...]]:
    """Output shape of every Inception module for one image of ``size`` x ``size``."""
    shapes = {}
    hooks = [
        getattr(model, f"inception{name}").register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in MODULES
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return shapes


@pytest.fixture(scope="module")
def imagenet_model():
    return GoogLeNet(1000, variant="imagenet")


@pytest.fixture(scope="module")
def cifar_model():
    return GoogLeNet(10, variant="cifar")


def test_channel_table_matches_paper_outputs():
    for name, (_, c1, _, c3, _, c5, pool) in INCEPTION_TABLE.items():
        assert c1 + c3 + c5 + pool == PAPER_OUT[name], name
    names = list(INCEPTION_TABLE)
    for before, after in zip(names, names[1:], strict=False):
        assert INCEPTION_TABLE[after][0] == PAPER_OUT[before], f"{after} must take {before}'s output"


def test_imagenet_shapes_at_224(imagenet_model):
    shapes = module_shapes(imagenet_model, 224)
    for name in MODULES:
        assert shapes[name] == (1, PAPER_OUT[name], PAPER_MAP_224[name], PAPER_MAP_224[name]), name
        assert getattr(imagenet_model, f"inception{name}").out_channels == PAPER_OUT[name]


def test_cifar_shapes_at_32(cifar_model):
    shapes = module_shapes(cifar_model, 32)
    for name in MODULES:
        assert shapes[name] == (1, PAPER_OUT[name], CIFAR_MAP_32[name], CIFAR_MAP_32[name]), name


def test_the_shape_comments_of_forward_are_the_shapes_it_makes(imagenet_model, cifar_model):
    import inspect
    import re

    pattern = r"x = self\.(\w+)\(x\)  # ([\d x]+) \| ([\d x]+)"  # name, imagenet shape, cifar shape
    commented = re.findall(pattern, inspect.getsource(GoogLeNet._forward))
    assert len(commented) == 12  # the stem, nine modules and two pools
    for model, size, column in ((imagenet_model, 224, 1), (cifar_model, 32, 2)):
        seen = {}
        hooks = [getattr(model, name).register_forward_hook(
            lambda _m, _i, out, name=name, seen=seen: seen.__setitem__(name, tuple(out.shape[1:])))
            for name, *_ in commented]  # fmt: skip
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
        for hook in hooks:
            hook.remove()
        for row in commented:
            assert seen[row[0]] == tuple(int(n) for n in row[column].split(" x ")), (row[0], size)


# ---------------------------------------------------------------- parameter counts from the table


def conv_params(c_in: int, c_out: int, k: int, bn: bool) -> int:
    # weights, plus a bias without batch norm or BN's scale and shift with it
    return k * k * c_in * c_out + (2 * c_out if bn else c_out)


def inception_params(row: tuple[int, ...], bn: bool) -> int:
    c_in, c1, c3r, c3, c5r, c5, pool = row
    return (
        conv_params(c_in, c1, 1, bn)
        + conv_params(c_in, c3r, 1, bn) + conv_params(c3r, c3, 3, bn)
        + conv_params(c_in, c5r, 1, bn) + conv_params(c5r, c5, 5, bn)
        + conv_params(c_in, pool, 1, bn)
    )  # fmt: skip


def expected_params(variant: str, num_classes: int, aux: bool, bn: bool) -> int:
    first_kernel = 7 if variant == "imagenet" else 3
    stem = conv_params(3, 64, first_kernel, bn) + conv_params(64, 64, 1, bn) + conv_params(64, 192, 3, bn)
    body = sum(inception_params(row, bn) for row in INCEPTION_TABLE.values())
    head = 1024 * num_classes + num_classes
    total = stem + body + head
    if aux:
        for attach in ("4a", "4d"):
            c_in = PAPER_OUT[attach]
            total += (
                conv_params(c_in, 128, 1, bn)
                + (4 * 4 * 128 * 1024 + 1024)
                + (1024 * num_classes + num_classes)
            )
    return total


@pytest.mark.parametrize(
    ("variant", "num_classes", "aux", "bn"),
    [
        ("imagenet", 1000, True, False),
        ("imagenet", 1000, False, False),
        ("imagenet", 1000, True, True),
        ("cifar", 10, True, True),
        ("cifar", 10, False, True),
        ("cifar", 10, False, False),
    ],
)
def test_parameter_counts(variant, num_classes, aux, bn):
    model = GoogLeNet(num_classes, variant=variant, aux_logits=aux, batch_norm=bn)
    assert sum(p.numel() for p in model.parameters()) == expected_params(variant, num_classes, aux, bn)


def test_paper_network_has_about_seven_million_parameters():
    # The paper quotes ~6.8M; conv biases and the real 5x5 kernels put ours at 7.0M.
    model = GoogLeNet(1000, aux_logits=False)
    assert 6.8e6 < sum(p.numel() for p in model.parameters()) < 7.1e6


# ---------------------------------------------------------------- structure


def test_defaults_per_variant():
    imagenet, cifar = GoogLeNet(variant="imagenet"), GoogLeNet(10, variant="cifar")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in imagenet.modules())
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in imagenet.modules()) == 2
    assert any(isinstance(m, nn.BatchNorm2d) for m in cifar.modules())
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in cifar.modules())
    with_bn = GoogLeNet(variant="imagenet", batch_norm=True)
    convs = [m for m in with_bn.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in with_bn.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(norms) and not any(
        isinstance(m, nn.LocalResponseNorm) for m in with_bn.modules()
    )
    assert imagenet.stem.conv1.conv.kernel_size == (7, 7) and imagenet.stem.conv1.conv.stride == (2, 2)
    assert cifar.stem.conv1.conv.kernel_size == (3, 3) and cifar.stem.conv1.conv.stride == (1, 1)


def test_five_by_five_branch_uses_a_real_5x5_kernel(imagenet_model):
    for name in MODULES:
        branch = getattr(imagenet_model, f"inception{name}").branch5x5
        assert branch[1].conv.kernel_size == (5, 5)


def test_inception_module_keeps_the_seed_signature():
    module = InceptionModule(192, 64, 96, 128, 16, 32, 32)
    out = module(torch.randn(2, 192, 28, 28))
    assert out.shape == (2, 256, 28, 28) and module.out_channels == 256
    assert isinstance(GoogLeNet(10), GoogLeNet)  # GoogLeNet(num_classes) as in the seed post


def test_width_scales_every_channel_count():
    model = GoogLeNet(10, variant="cifar", width=0.5)
    _, c1, _, c3, _, c5, pool = INCEPTION_TABLE["3a"]
    assert model.inception3a.out_channels == sum(round(c * 0.5) for c in (c1, c3, c5, pool))
    assert model.stem.conv1.conv.out_channels == 32
    assert model.aux1.conv.conv.out_channels == 64 and model.aux1.fc1.out_features == 512
    assert model.fc.in_features == model.inception5b.out_channels
    assert model.train()(torch.randn(2, 3, 32, 32)).logits.shape == (2, 10)


# ---------------------------------------------------------------- heads


def test_train_and_eval_outputs():
    model = GoogLeNet(10, variant="cifar", width=0.25)
    x = torch.randn(2, 3, 32, 32)
    model.train()
    out = model(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert out.logits.shape == out.aux1.shape == out.aux2.shape == (2, 10)
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    heads = model.forward_heads(x)
    assert heads.aux1.shape == (2, 10)

    plain = GoogLeNet(10, variant="cifar", width=0.25, aux_logits=False).train()
    assert plain.aux1 is None and plain.aux2 is None
    assert isinstance(plain(x), torch.Tensor)


def test_aux1_is_attached_after_4a_and_aux2_after_4d():
    model = GoogLeNet(10, variant="cifar", width=0.25).train()
    seen = {}

    def keep(name):
        return lambda _m, inputs, output: seen.update({f"{name}_in": inputs[0], f"{name}_out": output})

    for name in ("inception4a", "inception4d", "aux1", "aux2"):
        getattr(model, name).register_forward_hook(keep(name))
    torch.manual_seed(0)
    out = model(torch.randn(2, 3, 32, 32))
    assert torch.equal(seen["aux1_in"], seen["inception4a_out"])
    assert torch.equal(seen["aux2_in"], seen["inception4d_out"])
    assert torch.equal(out.aux1, seen["aux1_out"]) and torch.equal(out.aux2, seen["aux2_out"])


def test_aux_head_is_the_papers_head():
    head = AuxClassifier(512, 1000)
    assert head.pool.kernel_size == 5 and head.pool.stride == 3
    assert head.conv.conv.out_channels == 128 and head.fc1.in_features == 2048
    assert head.fc1.out_features == 1024 and head.dropout.p == 0.7
    assert head(torch.randn(2, 512, 14, 14)).shape == (2, 1000)


def test_gradients_reach_the_stem_through_an_aux_head_alone():
    model = GoogLeNet(10, variant="cifar", width=0.25).train()
    out = model(torch.randn(4, 3, 32, 32))
    out.aux1.sum().backward()
    assert model.stem.conv1.conv.weight.grad.abs().sum() > 0
    assert model.inception4a.branch1x1.conv.weight.grad.abs().sum() > 0
    # Nothing after 4a took part: aux1's gradient flows only into the layers below it.
    assert model.inception4b.branch1x1.conv.weight.grad is None
    assert model.fc.weight.grad is None


# ---------------------------------------------------------------- loss


def test_googlenet_loss_on_known_values():
    targets = torch.tensor([0, 0])
    uniform = torch.zeros(2, 4)  # cross-entropy log 4
    half = torch.tensor([[math.log(3), 0.0, 0.0, 0.0]] * 2)  # p(target) = 3 / 6 -> log 2
    outputs = GoogLeNetOutputs(uniform, half, uniform)
    loss = googlenet_loss(outputs, targets)
    assert loss.item() == pytest.approx(math.log(4) + 0.3 * (math.log(2) + math.log(4)), rel=1e-6)
    assert googlenet_loss(outputs, targets, aux_weight=0.0).item() == pytest.approx(math.log(4), rel=1e-6)
    assert googlenet_loss(half, targets).item() == pytest.approx(math.log(2), rel=1e-6)
    # Label smoothing eps: (1 - eps) * CE(target) + eps * mean over classes of CE(class)
    smoothed = 0.9 * math.log(2) + 0.1 * (math.log(2) + 3 * math.log(6)) / 4
    assert googlenet_loss(half, targets, label_smoothing=0.1).item() == pytest.approx(smoothed, rel=1e-6)


def test_googlenet_loss_rejects_bad_settings():
    with pytest.raises(ValueError, match="aux_weight"):
        googlenet_loss(torch.zeros(1, 3), torch.tensor([0]), aux_weight=-1)
    with pytest.raises(ValueError, match="label_smoothing"):
        googlenet_loss(torch.zeros(1, 3), torch.tensor([0]), label_smoothing=1.0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 0}, "num_classes must be a positive integer"),
        ({"width": 0}, "width must be > 0"),
        ({"width": -1.0}, "width must be > 0"),
        ({"variant": "resnet"}, "unknown variant 'resnet': choose one of imagenet, cifar"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GoogLeNet(**kwargs)


def test_bad_inputs_explain_themselves():
    model = GoogLeNet(10, variant="cifar", width=0.25).eval()
    with pytest.raises(ValueError, match=r"4-D tensor .* got \(3, 32, 32\).*unsqueeze"):
        model(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="3 colour channels .* got 1"):
        model(torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="at least 9x9 pixels, got 8x8"):
        model(torch.zeros(1, 3, 8, 8))
    imagenet = GoogLeNet(10, variant="imagenet", width=0.25).eval()
    with pytest.raises(ValueError, match="at least 65x65 pixels, got 32x32 .*variant='cifar'"):
        imagenet(torch.zeros(1, 3, 32, 32))
    assert imagenet(torch.zeros(1, 3, 65, 65)).shape == (1, 10)  # the stated minimum works
    assert model(torch.zeros(1, 3, 9, 9)).shape == (1, 10)


# ---------------------------------------------------------------- configuration and initialisation


def test_the_configuration_is_a_frozen_record_that_rebuilds_the_network():
    from googlenet_utils.model import ModelConfig

    model = GoogLeNet(10, variant="cifar", width=0.25, aux_logits=False)
    config = model.config
    assert config == ModelConfig(num_classes=10, variant="cifar", width=0.25, aux_logits=False)
    assert config.batch_norm is True  # resolved from the variant
    with pytest.raises(Exception, match="cannot assign"):
        config.width = 1.0
    again = GoogLeNet.from_config(ModelConfig.from_dict(config.to_dict()))
    assert again.config == config and sum(p.numel() for p in again.parameters()) == sum(
        p.numel() for p in model.parameters()
    )
    with pytest.raises(ValueError, match="unknown model settings depth"):
        ModelConfig.from_dict({**config.to_dict(), "depth": 22})


@pytest.mark.parametrize(
    ("variant", "classes", "size", "batch_norm"),
    [
        ("imagenet", 1000, 224, False),
        ("imagenet", 1000, 224, True),
        ("cifar", 10, 32, True),
        ("cifar", 10, 32, False),
    ],
)
def test_every_variant_starts_with_a_sane_loss(variant, classes, size, batch_norm):
    # He init over fan_in keeps activations' scale, so even the paper's network without batch norm
    # starts near ln(classes); fan_out made it about 82 instead of 6.9 (1x1 reductions amplified).
    torch.manual_seed(0)
    model = GoogLeNet(
        classes, variant=variant, batch_norm=batch_norm, width=0.5 if variant == "imagenet" else 1.0
    )
    x = torch.randn(4, 3, size, size)
    targets = torch.randint(0, classes, (4,))
    with torch.no_grad():
        outputs = model.train()(x)
    for logits in outputs:
        loss = nn.functional.cross_entropy(logits, targets).item()
        assert loss < 2 * math.log(classes), (variant, batch_norm, loss)


def _outputs_and_grads(net: nn.Module, images: torch.Tensor, projections: list[torch.Tensor]):
    """The outputs, and the parameters' gradients of a random projection of them (same dropout masks)."""
    torch.manual_seed(1)  # the same dropout masks in every pass
    outputs = net(images)
    loss = sum((t * w.to(t.dtype)).sum() for t, w in zip(outputs, projections, strict=True))
    return outputs, torch.autograd.grad(loss, list(net.parameters()))


@pytest.mark.parametrize("batch_norm", [True, False])
def test_the_fused_1x1_pass_is_the_same_function_with_the_same_parameters(batch_norm):
    torch.manual_seed(0)
    model = GoogLeNet(10, variant="cifar", width=0.125, batch_norm=batch_norm).train()
    keys = list(model.state_dict())
    x = torch.randn(4, 3, 32, 32)
    # A random projection of the outputs as the loss: summing the logits would give batch norm's
    # parameters gradients that nearly cancel to zero, and compare rounding noise instead.
    projections = [torch.randn(4, 10, dtype=torch.float64) for _ in range(3)]

    # The truth: the plain pass in float64 (float32 sums in another order differ by more than the
    # fused pass does: with one thread, the plain float32 pass is off by about 1% in one layer).
    reference = copy.deepcopy(model).double()
    true_outputs, true_grads = _outputs_and_grads(reference, x.double(), projections)
    fused_outputs, fused_grads = _outputs_and_grads(model.fuse_1x1(), x, projections)
    assert list(model.state_dict()) == keys  # a run-time change: checkpoints do not see it
    for a, b in zip(fused_outputs, true_outputs, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused_grads, true_grads, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-4 * b.abs().max().item())
    assert not any(m.fuse_1x1 for m in model.fuse_1x1(False).modules() if isinstance(m, InceptionModule))


def test_the_nchw_norm_path_is_the_same_function_and_runs_only_where_it_pays(monkeypatch):
    torch.manual_seed(0)
    model = GoogLeNet(10, variant="cifar", width=0.125).train().to(memory_format=torch.channels_last)
    units = [m for m in model.modules() if isinstance(m, BasicConv2d)]
    flagged = {m.bn.num_features for m in units if m.nchw_norm}
    assert flagged and all(c % NCHW_NORM_MULTIPLE for c in flagged)  # on by default, odd counts only
    assert any(not m.nchw_norm for m in units)  # 16, 32, 64 ... channels keep channels-last
    seen = []  # per batch-norm call: was its input in NCHW?
    batch_norm = F.batch_norm
    monkeypatch.setattr(
        F, "batch_norm", lambda x, *a, **k: seen.append(x.is_contiguous()) or batch_norm(x, *a, **k)
    )
    x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
    projections = [torch.randn(4, 10, dtype=torch.float64) for _ in range(3)]

    # The truth in float64. In float32 the all-channels-last pass is the less exact one: some weight
    # gradients of the 2-channel layers came out 15% off (of the tensor's largest), the NCHW path 3e-5.
    true_outputs, true_grads = _outputs_and_grads(
        copy.deepcopy(model).double().nchw_norm(False), x.double(), projections
    )
    seen.clear()
    outputs, grads = _outputs_and_grads(model, x, projections)
    assert sum(seen) == sum(m.nchw_norm for m in units)  # exactly the flagged layers ran in NCHW
    for a, b in zip(outputs, true_outputs, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-5)
    for a, b in zip(grads, true_grads, strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-4 * b.abs().max().item())
    stem = model.stem.conv1  # 8 channels: flagged, and its output keeps the next layer's layout
    assert stem.nchw_norm and stem(x).is_contiguous(memory_format=torch.channels_last)
    seen.clear()
    model.eval()(x)  # evaluation keeps one layout: the path is for training's backward pass
    model.train().nchw_norm(False)(x)
    assert not any(seen) and not any(m.nchw_norm for m in units)


# ---------------------------------------------------------------- every width builds a consistent network

# 40 widths evenly over [0.05, 2.0], plus those that once built inconsistent networks.
GRID = [0.05 + k * (2.0 - 0.05) / 39 for k in range(40)]


@pytest.mark.parametrize("width", [*GRID, 1 / 32, 0.1, 0.2, 0.3, 0.7, 1.3], ids=lambda w: f"{w:.4g}")
def test_every_width_builds_a_network_whose_layers_fit(width):
    with torch.device("meta"):  # shapes only: no memory, no initialisation, no arithmetic
        model = GoogLeNet(10, variant="cifar", width=width)
    feeds = [model.stem.conv2.conv.out_channels] + [
        getattr(model, f"inception{name}").out_channels for name in MODULES
    ]
    for name, feed in zip(MODULES, feeds, strict=False):
        assert getattr(model, f"inception{name}").in_channels == feed, name
    with torch.no_grad():  # one image through every head: the shapes are what can go wrong
        outputs = model.eval().forward_heads(torch.randn(1, 3, 32, 32, device="meta"))
    assert [tuple(t.shape) for t in outputs] == [(1, 10)] * 3


@pytest.mark.parametrize("width", [16, 15.99, MAX_WIDTH + 1e-9])
def test_widths_above_the_documented_maximum_are_refused_naming_it(width):
    with pytest.raises(ValueError, match=rf"width must be > 0 and at most {MAX_WIDTH:g} .*8 GB"):
        GoogLeNet(10, variant="cifar", width=width)


def test_the_naive_module_reads_every_input_channel_and_passes_the_pool_through():
    module = NaiveInceptionModule(192, 64, 128, 32)  # 3a's widths on 3a's input (paper Fig. 2a)
    by_hand = (1 * 192 * 64 + 64) + (9 * 192 * 128 + 128) + (25 * 192 * 32 + 32)
    assert sum(p.numel() for p in module.parameters()) == by_hand
    x = torch.randn(2, 192, 28, 28)
    out = module(x)
    assert out.shape == (2, module.out_channels, 28, 28) and module.out_channels == 192 + 64 + 128 + 32
    assert torch.equal(out[:, -192:], F.max_pool2d(x, 3, stride=1, padding=1))  # the pool passes through
    assert (out[:, :-192] >= 0).all()  # ReLU after each convolution
