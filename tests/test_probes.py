"""The probes notebook 05 measures its interpretations with: on inputs worked out by hand, and
against baselines (maps that ignore the image, another image's maps); what each head's gradient adds."""

import math

import matplotlib
import pytest
import torch
from conftest import Tiny

from googlenet_utils import GoogLeNet
from googlenet_utils.probes import (
    GRADIENT_LAYERS,
    _derangement,
    branch_ablation,
    branch_activity,
    cam_against_baselines,
    cam_box_shares,
    centre_bias_maps,
    class_effect,
    class_means,
    filter_structure,
    first_layer_filters,
    gradients_before_and_after_training,
    head_gradients,
    neighbour_correlation,
    other_image_shares,
    paired_difference,
    shared_scale,
)

matplotlib.use("Agg")  # no display in CI

# ---------------------------------------------------------------- Grad-CAM against maps that ignore the image


def test_the_centre_map_peaks_in_the_middle_and_is_the_same_for_every_image():
    maps = centre_bias_maps(3, 9, 9)
    assert maps.shape == (3, 9, 9) and torch.equal(maps[0], maps[2])
    assert maps[0, 4, 4] == 1 and maps[0, 4, 4] > maps[0, 0, 0]
    assert torch.allclose(maps[0], maps[0].flip(0)) and torch.allclose(maps[0], maps[0].T)
    inside, area = cam_box_shares(maps[:1], [(3, 3, 6, 6)])  # the middle ninth of the image
    assert float(inside) > 2 * float(area)  # a map that ignores the image still favours a centred box


def test_other_images_maps_by_hand():
    left, right = torch.zeros(4, 4), torch.zeros(4, 4)
    left[:, :2], right[:, 2:] = 1, 1
    boxes = [(0, 0, 2, 4), (2, 0, 4, 4)]  # each map's own half
    own, _ = cam_box_shares(torch.stack([left, right]), boxes)
    others = other_image_shares(torch.stack([left, right]), boxes)
    assert own.tolist() == [1.0, 1.0] and others.tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="at least two"):
        other_image_shares(left[None], boxes[:1])


def test_grad_cam_is_compared_with_every_baseline():
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    boxes = [(0, 0, 4, 4), (2, 2, 8, 8), (1, 0, 3, 8)]
    found = cam_against_baselines(maps, boxes)
    assert list(found) == ["Grad-CAM", "uniform", "centre", "other images"]
    inside, area = cam_box_shares(maps, boxes)
    assert torch.equal(found["Grad-CAM"], inside) and torch.equal(found["uniform"], area)


# ---------------------------------------------------------------- the shuffled-image ablation


def test_the_other_image_ablation_by_hand():
    images = torch.tensor([1.0, 1.0, 1.0, 0.0])[:, None, None, None].expand(4, 1, 4, 4)
    labels = torch.tensor([1, 1, 1, 0])
    batches = [(images[:2], labels[:2]), (images[2:], labels[2:])]
    rows = branch_ablation(Tiny(), batches, ["inception3a"], replacement="other image")
    # Batch 2 swaps its images' 1x1 maps (mean 1 and mean 0): both are then wrong; batch 1 swaps two alike.
    assert rows[0]["replacement"] == "other image" and rows[0]["accuracy"] == 0.5
    assert all(row["change"] == 0 for row in rows[1:])  # the constant branches carry nothing to swap
    with pytest.raises(ValueError, match="replacement"):
        branch_ablation(Tiny(), batches, ["inception3a"], replacement="zero")


def test_every_image_gets_another_images_maps_in_a_random_order():
    for n in (2, 3, 10, 250):
        partner = _derangement(n)
        assert sorted(partner.tolist()) == list(range(n)) and bool((partner != torch.arange(n)).all())
    assert (_derangement(250) != torch.arange(250).roll(1)).any()  # not simply the neighbour


# ---------------------------------------------------------------- filters on one scale


def test_shared_scale_keeps_zero_grey_and_strengths_comparable():
    weights = torch.tensor([[[[0.0, 2.0]]], [[[-1.0, 0.5]]]]).expand(2, 3, 1, 2)
    shown = shared_scale(weights)
    assert shown[0, 0, 0, 0] == 0.5 and shown[0, 0, 0, 1] == 1.0  # zero is grey, the strongest saturates
    assert shown[1, 0, 0, 0] == 0.25  # half as strong, half as far from grey
    filters = first_layer_filters(GoogLeNet(10, variant="cifar", width=0.25))
    assert 0 <= filters.min() and filters.max() <= 1 and (filters.min() == 0 or filters.max() == 1)


# ---------------------------------------------------------------- what each head's gradient adds


def test_head_gradients_measure_the_summed_gradient_as_such():
    torch.manual_seed(0)
    net = GoogLeNet(10, variant="cifar", width=0.0625, batch_norm=False).train()
    images, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    found = head_gradients(net, images, labels)
    assert net.training and len(found.main) == len(GRADIENT_LAYERS)
    assert found.aux[3] == found.aux[4] == 0 and found.total[3:] == found.main[3:]  # 4e, 5b: after both heads
    for k in range(3):  # the triangle: |main + aux| lies between the difference and the sum of the norms
        assert (
            abs(found.main[k] - found.aux[k]) - 1e-6 <= found.total[k] <= found.main[k] + found.aux[k] + 1e-6
        )
        expected = (
            found.main[k] ** 2 + found.aux[k] ** 2 + 2 * found.cosine[k] * found.main[k] * found.aux[k]
        ) ** 0.5
        assert found.total[k] == pytest.approx(expected, rel=1e-4)
    again = head_gradients(net, images, labels)
    assert again.main == found.main  # dropout is off while measuring: the same numbers twice
    no_aux = GoogLeNet(10, variant="cifar", width=0.0625, batch_norm=False, aux_logits=False)
    plain = head_gradients(no_aux, images, labels)
    assert plain.aux == [0.0] * 5 and plain.total == plain.main and set(plain.losses) == {"main"}


def test_the_short_run_starts_both_networks_from_the_same_weights():
    torch.manual_seed(0)
    images, labels = torch.randn(40, 3, 32, 32), torch.randint(0, 10, (40,))
    rows = gradients_before_and_after_training(images, labels, steps=2, batch_size=4, width=0.0625)
    assert [(r["network"], r["when"]) for r in rows] == [
        ("with aux heads", "at initialisation"),
        ("with aux heads", "after 2 steps"),
        ("without aux heads", "at initialisation"),
        ("without aux heads", "after 2 steps"),
    ]
    assert rows[0]["conv1 main"] == rows[2]["conv1 main"] and rows[0]["main loss"] == rows[2]["main loss"]
    assert rows[2]["conv1 total"] == rows[2]["conv1 main"]  # no heads, nothing added
    assert rows[1]["conv1 main"] != rows[0]["conv1 main"]  # the steps changed the weights


# ---------------------------------------------------------------- by hand


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
