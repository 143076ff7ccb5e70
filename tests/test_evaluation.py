"""Evaluation: raw logits of every head and view, then metrics computed from them."""

import pytest
import torch
from torch import nn

from googlenet_utils.evaluation import VIEWS, Predictions, _views, evaluate, predict, score
from googlenet_utils.loader import CIFARLoader

STATS = (torch.full((3,), 100.0), torch.full((3,), 50.0))


class FixedLogits(nn.Module):
    """Predicts class 0 for images whose first pixel is negative, class 1 otherwise."""

    def forward(self, x):
        positive = (x[:, 0, 0, 0] > 0).float()
        return torch.stack([1 - positive, positive, torch.zeros_like(positive)], dim=1) * 5


class LeftRight(nn.Module):
    """Class 0 if the left half is brighter, class 1 otherwise: the mirror image swaps them."""

    def forward(self, x):
        left, right = x[..., :16].mean(dim=(1, 2, 3)), x[..., 16:].mean(dim=(1, 2, 3))
        return torch.stack([left - right, right - left], dim=1)


def test_evaluate_counts_accuracy_per_class():
    images = torch.zeros(6, 3, 32, 32, dtype=torch.uint8)
    images[3:, :, 0, 0] = 255  # these three become positive after normalisation
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    loader = CIFARLoader(images, labels, 4, train=False, device="cpu", stats=STATS)
    result = evaluate(FixedLogits(), loader)
    # predictions: 0, 0, 0, 1, 1, 1 -> right on items 0, 1, 3, 4
    assert result.accuracy == pytest.approx(4 / 6) == pytest.approx(result.accuracy_plain)
    assert result.per_class_accuracy == pytest.approx([1.0, 2 / 3, 0.0])
    logits = FixedLogits()(torch.cat([x for x, _ in loader]))
    assert result.loss == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)


def test_flip_tta_on_a_model_that_is_not_flip_invariant():
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    images[0, :, :, :16] = 200  # bright left
    images[1, :, :, 16:] = 200  # bright right
    images[2, :, :, :16], images[2, :, :, 16:] = 120, 100  # slightly brighter left
    images[3] = 50
    labels = torch.tensor([0, 1, 0, 1])
    loader = CIFARLoader(images, labels, 4, train=False, device="cpu", stats=STATS)
    predictions = predict(LeftRight(), loader, tta="flip")
    x = next(iter(loader))[0]
    assert torch.allclose(predictions.logits, LeftRight()(x))
    assert torch.allclose(predictions.flipped, LeftRight()(x.flip(3)))  # the mirror swaps the halves
    assert torch.allclose(predictions.tta, torch.zeros(4, 2))  # mirrored logits cancel
    metrics = score(predictions)
    assert metrics.accuracy == pytest.approx(0.5) and metrics.accuracy_plain == pytest.approx(0.75)


def test_flip_translate_averages_six_views():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    loader = CIFARLoader(images, torch.zeros(5, dtype=torch.long), 5, train=False, device="cpu", stats=STATS)
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    predictions = predict(model, loader, tta="flip+translate")
    x = next(iter(loader))[0]
    padded = nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    down_right, up_left = padded[..., :32, :32], padded[..., 4:, 4:]
    views = [x, x.flip(3), down_right, down_right.flip(3), up_left, up_left.flip(3)]
    with torch.no_grad():
        expected = torch.stack([model(v) for v in views]).mean(0)
    assert torch.allclose(predictions.tta, expected, atol=1e-6)


@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_every_test_time_view_has_the_batch_s_shape_and_layout(layout):
    # A compiled model then finds its graph for every view: a shifted view, a slice of a padded
    # tensor, would otherwise carry other strides and be compiled again.
    batch = torch.randn(4, 3, 32, 32).contiguous(memory_format=layout)
    for mode, count in VIEWS.items():
        views = _views(batch, mode)
        assert len(views) == count
        assert all(v.shape == batch.shape and v.stride() == batch.stride() for v in views), mode


def test_batches_are_padded_to_one_shape():
    shapes = []

    class Recorder(nn.Module):
        def forward(self, x):
            shapes.append(tuple(x.shape))
            return torch.zeros(len(x), 3)

    images = torch.zeros(10, 3, 32, 32, dtype=torch.uint8)
    loader = CIFARLoader(images, torch.zeros(10, dtype=torch.long), 4, train=False, device="cpu", stats=STATS)
    predictions = predict(Recorder(), loader)
    assert set(shapes) == {(4, 3, 32, 32)} and predictions.logits.shape == (10, 3)


def test_aux_heads_are_scored_from_their_own_logits():
    labels = torch.tensor([0, 1, 1, 0])
    hit = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    half = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    metrics = score(Predictions(labels=labels, logits=hit, aux={"aux1": half, "aux2": hit}))
    assert metrics.aux_accuracy == {"aux1": 0.5, "aux2": 1.0} and metrics.accuracy == 1.0
