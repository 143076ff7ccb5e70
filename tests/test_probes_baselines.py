"""Baselines for notebook 05's measurements, and what each head's gradient adds (notebook 02)."""

import pytest
import torch
from test_analysis_more import Tiny

from googlenet_utils import GoogLeNet
from googlenet_utils.probes import (
    GRADIENT_LAYERS,
    _derangement,
    branch_ablation,
    cam_against_baselines,
    cam_box_shares,
    centre_bias_maps,
    first_layer_filters,
    gradients_before_and_after_training,
    head_gradients,
    other_image_shares,
    shared_scale,
)

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
