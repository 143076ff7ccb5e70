"""The analysis functions notebook 05 measures its interpretations with, on inputs worked out by hand."""

import math

import matplotlib
import pytest
import torch
from conftest import assert_labelled
from matplotlib.patches import Rectangle
from torch import nn

from googlenet_utils import CIFAR10Data, plots
from googlenet_utils.analysis import run_test_data
from googlenet_utils.model import InceptionModule
from googlenet_utils.probes import (
    branch_ablation,
    branch_activity,
    cam_box_shares,
    class_effect,
    class_means,
    filter_structure,
    neighbour_correlation,
    paired_difference,
)

matplotlib.use("Agg")  # no display in CI

# ---------------------------------------------------------------- which images a run was tested on


def _data() -> CIFAR10Data:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(30) % 2
    return CIFAR10Data(images[:20], labels[:20], images[20:], labels[20:], ["even", "odd"], "two classes")


def test_run_test_data_finds_the_data_or_the_recorded_subset():
    data = _data()
    assert run_test_data(data, data.fingerprint()) is data
    subset = data.subset(8, 4)
    found = run_test_data(data, subset.fingerprint())  # the sizes it records lead to the subset
    assert found is not None and torch.equal(found.test_images, subset.test_images)
    assert found.test_labels.tolist() == [0, 1, 0, 1]  # class-balanced: 2 + 2 of the 10 test images
    other = {**subset.fingerprint(), "digest": "0" * 24}
    assert run_test_data(data, other) is None
    assert run_test_data(data, {**data.fingerprint(), "digest": "0" * 24}) is None


def test_paired_difference_by_hand():
    # b also gets the fourth item right: differences 0, 0, 0, 1; mean 1/4;
    # sample variance (3 * (1/4)^2 + (3/4)^2) / 3 = 1/4, so sd 1/2 and standard error (1/2) / 2.
    change, error = paired_difference(torch.tensor([1, 1, 1, 0]), torch.tensor([1, 1, 1, 1]))
    assert change == pytest.approx(0.25) and error == pytest.approx(0.25)
    assert paired_difference(torch.tensor([1, 0, 1]), torch.tensor([1, 0, 1])) == (0.0, 0.0)
    with pytest.raises(ValueError, match="equally long"):
        paired_difference(torch.tensor([1, 0]), torch.tensor([1, 0, 1]))


# ---------------------------------------------------------------- what the branches do


def test_neighbour_correlation_by_hand():
    rows, cols = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    ramp = cols  # each pixel's right neighbour is 1 higher, the one below equal: +1 and +1
    checkerboard = (-1.0) ** (rows + cols)  # every neighbour has the opposite sign: -1 and -1
    stripes = cols % 2  # right neighbours alternate (-1), the ones below repeat (+1): mean 0
    maps = torch.stack([ramp, checkerboard, stripes])[:, None]  # 3 images, 1 channel each
    assert neighbour_correlation(maps).tolist() == pytest.approx([1.0, -1.0, 0.0])
    # A channel without variation (all zero after a ReLU) is left out; with nothing left: NaN.
    with_dead = torch.stack([ramp, torch.zeros(4, 4)])[None]
    assert neighbour_correlation(with_dead).item() == pytest.approx(1.0)
    assert math.isnan(neighbour_correlation(torch.zeros(1, 2, 4, 4)).item())
    assert math.isnan(neighbour_correlation(torch.full((1, 1, 4, 4), 3.0)).item())


def test_class_means_by_hand():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    means = class_means(values, torch.tensor([0, 0, 2]), 3)
    assert means[0].tolist() == [2.0, 3.0] and means[2].tolist() == [5.0, 6.0]
    assert means[1].isnan().all()  # no image of class 1


def test_class_effect_by_hand():
    # Classes {0, 2} and {4, 6}: means 1 and 5 around 3. Between: (2 * 2^2 + 2 * 2^2) / (2 - 1) = 16;
    # within: (1 + 1 + 1 + 1) / (4 - 2) = 2; F = 8. Of the 6 ways to split four items in two
    # pairs, 2 give F = 8 ({0, 2} | {4, 6} either way round), the others 1/2 and 0: p about 1/3.
    values = torch.tensor([[0.0], [2.0], [4.0], [6.0]])
    ratio, p = class_effect(values, torch.tensor([0, 0, 1, 1]), 2, shuffles=3000)
    assert ratio.item() == pytest.approx(8.0)
    assert p.item() == pytest.approx(1 / 3, abs=0.03)
    # A column that does not depend on the class: F = 0 (equal class means), p = 1.
    ratio, p = class_effect(torch.tensor([[1.0], [3.0], [3.0], [1.0]]), torch.tensor([0, 0, 1, 1]), 2, 99)
    assert ratio.item() == 0 and p.item() == 1
    with pytest.raises(ValueError, match="two classes"):
        class_effect(values, torch.tensor([0, 0, 0, 0]), 2)


class Tiny(nn.Module):
    """One Inception module (1 channel per branch) with hand-set weights, and a two-class read-out.

    Branch outputs: 1x1 = relu(x), 3x3 = 2, 5x5 = 3, pool proj = 0 everywhere. The logits are
    (0, 2 * mean(1x1 output) - 1): class 1 when the image's mean is above 1/2.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inception3a = InceptionModule(1, 1, 1, 1, 1, 1, 1)
        for parameter in self.inception3a.parameters():
            nn.init.zeros_(parameter)
        with torch.no_grad():
            self.inception3a.branch1x1.conv.weight.fill_(1.0)
            self.inception3a.branch3x3[1].conv.bias.fill_(2.0)
            self.inception3a.branch5x5[1].conv.bias.fill_(3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = self.inception3a(x)[:, 0].mean(dim=(1, 2))
        return torch.stack([torch.zeros_like(evidence), 2 * evidence - 1], dim=1)


def test_branch_activity_by_hand():
    flat = torch.ones(1, 1, 4, 4)  # 1x1 branch: 1 everywhere
    half = torch.zeros(1, 1, 4, 4)
    half[..., :2] = 2.0  # 1x1 branch: 2 in the left half, 0 in the right
    activity = branch_activity(
        Tiny(), [(flat, torch.tensor([0])), (half, torch.tensor([1]))], ["inception3a"]
    )
    assert activity.labels.tolist() == [0, 1]
    # Energy = mean over positions of the squared output (one channel per branch):
    # flat: 1, 2^2, 3^2, 0; half: (4 * 8 + 0 * 8) / 16 = 2, then 4, 9, 0.
    assert activity.energy["inception3a"].tolist() == [[1.0, 4.0, 9.0, 0.0], [2.0, 4.0, 9.0, 0.0]]
    assert activity.energy_shares("inception3a")[0].tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14, 0])
    smooth = activity.smoothness["inception3a"]
    assert smooth[0].isnan().all()  # nothing varies in the flat image's maps
    # half, 1x1 branch: each row reads 2 2 0 0; right neighbours (2,2) (2,0) (0,0) correlate 1/2,
    # the pixels below are equal (1): mean 3/4. The constant 3x3, 5x5 and pool maps: NaN.
    assert smooth[1, 0].item() == pytest.approx(0.75)
    assert smooth[1, 1:].isnan().all()
    with pytest.raises(ValueError, match="not an Inception module"):
        branch_activity(Tiny(), [(flat, torch.tensor([0]))], ["forward"])


def test_branch_ablation_by_hand():
    images = torch.tensor([1.0, 1.0, 1.0, 0.0])[:, None, None, None].expand(4, 1, 4, 4)
    labels = torch.tensor([1, 1, 1, 0])  # intact: the mean decides, all 4 right
    batches = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    model = Tiny().train()
    rows = branch_ablation(model, batches, ["inception3a"])
    assert model.training, "the model's mode is restored"
    assert [row["branch"] for row in rows] == ["1x1", "3x3", "5x5", "pool proj"]
    assert all(row["intact accuracy"] == 1.0 for row in rows)
    # The 1x1 branch replaced by its mean 3/4: every logit is 2 * 3/4 - 1 > 0, class 1 for all,
    # so the last image is lost: change -1/4, paired standard error 1/4 (as worked out above).
    assert rows[0]["accuracy"] == 0.75
    assert rows[0]["change"] == pytest.approx(-0.25) and rows[0]["standard error"] == pytest.approx(0.25)
    # The other branches do not reach the logits: nothing changes.
    assert all(row["change"] == 0 and row["standard error"] == 0 for row in rows[1:])
    assert {row["module"] for row in rows} == {"3a"}


# ---------------------------------------------------------------- first-layer filters


def test_filter_structure_by_hand():
    step = torch.tensor([[-1.0, -1, -1], [0, 0, 0], [1, 1, 1]])  # a horizontal edge
    diagonal = torch.tensor([[-2.0, -1, 0], [-1, 0, 1], [0, 1, 2]])  # the ramp x + y
    centre_surround = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    kernels = torch.stack([
        torch.stack([step, step, step]),  # grey edge: no colour, all edge
        torch.stack([diagonal, diagonal, diagonal]),  # an edge at 45 degrees
        torch.stack([centre_surround] * 3),  # grey, but no ramp at all
        torch.stack([centre_surround, -centre_surround, torch.zeros(3, 3)]),  # pure colour opponent
    ])  # fmt: skip
    result = filter_structure(kernels)
    assert result["colour share"].tolist() == pytest.approx([0, 0, 0, 1])
    assert result["edge fit"][:3].tolist() == pytest.approx([1, 1, 0])
    assert math.isnan(result["edge fit"][3].item())  # its channel mean is zero: no grey pattern


def test_filter_structure_of_random_kernels_matches_the_chance_levels():
    # Random weights: the grey pattern's 8 free directions, 2 of them ramps, give 2/8 on average;
    # 18 of a kernel's 27 directions are colour differences, giving 2/3.
    weights = torch.randn(20_000, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    result = filter_structure(weights)
    assert result["edge fit"].mean().item() == pytest.approx(0.25, abs=0.01)
    assert result["colour share"].mean().item() == pytest.approx(2 / 3, abs=0.01)


# ---------------------------------------------------------------- Grad-CAM against objects


def test_cam_box_shares_by_hand():
    corner = torch.zeros(4, 4)
    corner[:2, :2] = 1.0  # all mass in the top-left 2x2
    even = torch.ones(4, 4)
    inside, area = cam_box_shares(torch.stack([corner, even]), [(0, 0, 2, 2), (1, 0, 4, 2)])
    assert inside.tolist() == pytest.approx([1.0, 6 / 16])  # an even map: the box's area share
    assert area.tolist() == pytest.approx([4 / 16, 6 / 16])
    with pytest.raises(ValueError, match="one box per heat map"):
        cam_box_shares(torch.stack([corner, even]), [(0, 0, 2, 2)])
    with pytest.raises(ValueError, match="empty or outside"):
        cam_box_shares(corner[None], [(2, 0, 2, 2)])


# ---------------------------------------------------------------- the figures notebook 05 draws with them


CLASSES = [f"class {k}" for k in range(10)]


def test_head_accuracy_bars_start_at_zero_and_mark_guessing():
    fig = plots.plot_head_accuracies({"main": 0.9, "main + flip TTA": 0.91, "aux1": 0.8, "aux2": 0.85}, 0.1)
    assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.9, 0.91, 0.8, 0.85])
    assert any(line.get_xdata()[0] == 0.1 for line in ax.lines)  # the guessing line


def test_feature_maps_share_one_colour_scale():
    maps = {"branch1x1": torch.rand(1, 3, 8, 8), "branch5x5": 5 * torch.rand(1, 2, 8, 8)}
    fig = plots.plot_feature_maps(maps, torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8), channels=3)
    assert_labelled(fig)
    maps_drawn = [image for ax in fig.axes for image in ax.get_images() if image.get_array().ndim == 2]
    assert len(maps_drawn) == 5  # the RGB input image is not a map
    limits = {image.get_clim() for image in maps_drawn}
    assert len(limits) == 1  # one scale for every map
    low, high = limits.pop()
    assert low == 0 and high == pytest.approx(float(maps["branch5x5"].max()))
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_filters_form_a_square_grid_with_notes():
    filters = torch.rand(9, 3, 3, 3)
    fig = plots.plot_filters(filters, notes=[f"n{k}" for k in range(9)])
    assert_labelled(fig)
    assert [ax.get_title() for ax in fig.axes] == [f"n{k}" for k in range(9)]  # 3 x 3, none left over


def test_grad_cam_draws_boxes_and_a_colour_bar():
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    fig = plots.plot_grad_cam(images, torch.rand(3, 8, 8), ["a", "b", "c"], [(0, 0, 4, 4)] * 3, columns=2)
    assert_labelled(fig)
    assert sum(isinstance(p, Rectangle) for ax in fig.axes for p in ax.patches) == 6  # on image and map
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_the_new_measurement_figures_are_labelled():
    shares = torch.rand(10, 4)
    shares = {"3a": shares / shares.sum(1, keepdim=True)}
    assert_labelled(plots.plot_branch_energy(shares, CLASSES, {"3a": [0.25, 0.5, 0.125, 0.125]}))
    rows = branch_ablation(Tiny(), [(torch.ones(2, 1, 4, 4), torch.tensor([1, 1]))], ["inception3a"])
    assert_labelled(plots.plot_branch_ablation(rows))
    weights = torch.randn(16, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    measures = {"trained": filter_structure(weights), "untrained": filter_structure(weights.flip(2))}
    assert_labelled(plots.plot_filter_structure(measures, {"edge fit": 0.25, "colour share": 2 / 3}))
