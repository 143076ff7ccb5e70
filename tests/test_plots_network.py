"""The whole-network diagram: every size on it is read from the model it draws."""

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure

from googlenet_utils import GoogLeNet
from googlenet_utils.plots.network import MAIN_PATH, draw_network, stage_shapes


def texts(fig: Figure) -> list[str]:
    return [text.get_text() for ax in fig.axes for text in ax.texts]


def box_size(fig: Figure, name: str) -> str:
    """The size printed in the box whose bold name is ``name`` (the text right after it)."""
    found = texts(fig)
    return found[found.index(name) + 1]


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before, "draw_network must not open pyplot figures"


def test_cifar_at_32_shows_the_sizes_of_the_paper_stages():
    fig = draw_network(GoogLeNet(10, variant="cifar"), 32)
    assert isinstance(fig, Figure)
    assert box_size(fig, "inception 4a") == "512 x 16 x 16"
    assert box_size(fig, "inception 5b") == "1024 x 8 x 8"
    assert box_size(fig, "input image") == "3 x 32 x 32"
    assert sum(text.startswith("max pool 3x3/2") for text in texts(fig)) == 2
    assert "linear → 10 logits" in texts(fig)  # each aux head ends in one logit per class


def test_imagenet_at_224_has_the_paper_sizes_and_its_stem():
    fig = draw_network(GoogLeNet(1000, variant="imagenet"), 224)
    assert box_size(fig, "stem") == "192 x 28 x 28"
    assert box_size(fig, "inception 4a") == "512 x 14 x 14"
    assert box_size(fig, "inception 5b") == "1024 x 7 x 7"
    assert any("conv 7x7/2" in text and "LRN" in text for text in texts(fig))
    assert "aux1 (training only)" in texts(fig) and "aux2 (training only)" in texts(fig)
    assert "avg pool 5x5/3 → 528 x 4 x 4" in texts(fig)  # aux2 reads 4d's 528 channels


@pytest.mark.parametrize("width", [0.25, 0.5])
def test_channels_follow_the_width(width):
    model = GoogLeNet(10, variant="cifar", width=width)
    fig = draw_network(model, 32)
    assert box_size(fig, "inception 3a") == f"{model.inception3a.out_channels} x 32 x 32"
    assert model.inception3a.out_channels == round(64 * width) + round(128 * width) + round(32 * width) * 2
    assert f"conv 1x1 → {round(128 * width)} x 4 x 4" in texts(fig)


def test_every_stage_shape_comes_from_a_forward_pass():
    model = GoogLeNet(10, variant="cifar", width=0.25)
    shapes = stage_shapes(model, 40)  # not a size anyone hard-coded
    x = torch.zeros(1, 3, 40, 40)
    model.eval()
    with torch.no_grad():
        for name in MAIN_PATH[:-2]:
            x = getattr(model, name)(x)
            assert shapes[name] == tuple(x.shape[1:]), name
    assert shapes["fc"] == (10,)


def test_without_aux_heads_no_aux_boxes():
    fig = draw_network(GoogLeNet(10, variant="cifar", width=0.25, aux_logits=False), 32)
    assert not any(text.startswith("aux") for text in texts(fig))
    assert box_size(fig, "inception 4d") == "132 x 16 x 16"


def test_training_mode_and_batch_norm_statistics_are_left_alone():
    model = GoogLeNet(10, variant="cifar", width=0.25).train()
    before = model.inception3a.branch1x1.bn.running_mean.clone()
    draw_network(model, 32)
    assert model.training
    assert torch.equal(model.inception3a.branch1x1.bn.running_mean, before)


def test_too_small_an_image_says_which_size_to_use():
    with pytest.raises(ValueError, match="224"):
        draw_network(GoogLeNet(1000, variant="imagenet"))
