"""torchvision's ImageNet GoogLeNet (notebook 05): skipped offline with a reason; tested on random weights."""

import urllib.error

import pytest
import torch
import torchvision.models

from googlenet_utils import pretrained
from googlenet_utils.probes import grad_cam


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return pretrained.random_googlenet()


def test_offline_the_section_is_skipped_with_its_reason(monkeypatch):
    monkeypatch.setattr(pretrained, "cached_weights", lambda: None)
    model, why = pretrained.imagenet_googlenet(allow_download=False)
    assert model is None and why.startswith("skipped") and "no network" in why


def test_a_failed_download_is_reported_not_raised(monkeypatch, capsys):
    monkeypatch.setattr(pretrained, "cached_weights", lambda: None)

    def offline(**_):
        print('Downloading: "https://example.org/w.pth" to /root/.cache/w.pth')  # as torch.hub does
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models, "googlenet", offline)
    model, why = pretrained.imagenet_googlenet(allow_download=True, timeout=1)
    assert model is None and "could not be downloaded (URLError" in why
    shown = capsys.readouterr()
    assert "/root/" not in shown.out + shown.err  # no cache path of this machine in a stored output


def test_the_sample_photo_ships_with_matplotlib():
    photo, name = pretrained.sample_photo()
    assert photo.shape == (3, 224, 224) and photo.dtype == torch.uint8 and name.endswith(".jpg")
    assert 20 < photo.float().mean() < 235  # a photo, not a blank
    normalised = pretrained.imagenet_normalise(photo[None])
    assert normalised.shape == (1, 3, 224, 224) and abs(float(normalised.mean())) < 3


def test_top_classes_filters_and_grad_cam_run_on_random_weights(network):
    photo, _ = pretrained.sample_photo()
    inputs = pretrained.imagenet_normalise(photo[None])
    top = pretrained.top_classes(network, inputs, k=5)
    names = torchvision.models.GoogLeNet_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(top) == 5 and all(name in names for name, _ in top)
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
    filters = pretrained.first_filters(network)
    assert filters.shape == (64, 3, 7, 7) and 0 <= filters.min() and filters.max() <= 1
    heat = grad_cam(network, inputs, network.inception5b)
    assert heat.shape == (1, 224, 224) and float(heat.max()) == pytest.approx(1.0) and heat.min() >= 0


def test_the_weights_facts_come_from_torchvision():
    facts = pretrained.weights_facts()
    assert "top-1" in facts and "top-5" in facts and "parameters" in facts
