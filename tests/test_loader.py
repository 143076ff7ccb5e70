"""The device loader: crops, flips, cutout, normalisation, epochs, and sharding over processes."""

import numpy as np
import pytest
import torch

from googlenet_utils.cifar10 import load_cifar10
from googlenet_utils.loader import (
    CROP_PADDING,
    CIFARLoader,
    PaddedImages,
    channel_stats,
    cutout,
    random_crop_flip,
)
from googlenet_utils.synthetic import make_synthetic_cifar10


@pytest.fixture(scope="module")
def loader_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    make_synthetic_cifar10(root, n_train=500, n_test=100, seed=3)
    return load_cifar10(root, verify=False)


# ---------------------------------------------------------------- augmentation and loader


def test_crop_is_a_shifted_copy_with_reflected_padding():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    shifts = torch.tensor([[4, 4], [7, 2], [0, 8]])  # 4 = centred; (7, 2) moves down 3, left 2
    crops = random_crop_flip(images, shifts, torch.zeros(3, dtype=torch.bool))
    assert torch.equal(crops[0], images[0])
    assert torch.equal(crops[1, :, :29, 2:], images[1, :, 3:, :30])  # the shifted interior
    assert torch.equal(crops[1, :, 29, 2:], images[1, :, 30, :30])  # row 32 reflects to row 30
    assert torch.equal(crops[1, :, 31, 2:], images[1, :, 28, :30])
    assert torch.equal(crops[1, :, :29, 0], images[1, :, 3:, 2])  # column -2 reflects to column 2
    assert torch.equal(crops[2, :, 4:, 0:28], images[2, :, :28, 4:])


def test_flip_mirrors_the_crop():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    flipped = random_crop_flip(images, torch.tensor([[4, 4], [2, 6]]), torch.tensor([True, True]))
    assert torch.equal(flipped[0], images[0].flip(-1))
    # A flipped crop at column shift s mirrors the plain crop at 2 * padding - s.
    plain = random_crop_flip(images, torch.tensor([[4, 4], [2, 2]]), torch.tensor([False, False]))
    assert torch.equal(flipped[1], plain[1].flip(-1))
    assert not torch.equal(flipped[1], plain[1])


def test_evaluation_batches_are_untouched(loader_data):
    train = CIFARLoader(loader_data.train_images, loader_data.train_labels, 64, train=True, device="cpu")
    test = CIFARLoader(
        loader_data.test_images, loader_data.test_labels, 32, train=False, device="cpu", stats=train.stats
    )
    mean, std = (s.view(1, 3, 1, 1) for s in train.stats)
    images, labels = zip(*test, strict=True)
    assert torch.allclose(torch.cat(images), (loader_data.test_images.float() - mean) / std, atol=1e-5)
    assert torch.equal(torch.cat(labels), loader_data.test_labels)
    assert len(test) == 4 and [len(b) for b in labels] == [32, 32, 32, 4]


def test_normalised_training_batches_have_zero_mean_unit_std(loader_data):
    for augment in (False, True):
        loader = CIFARLoader(
            loader_data.train_images, loader_data.train_labels, 100, train=True, device="cpu", augment=augment
        )
        images = torch.cat([x for x, _ in loader])
        assert torch.allclose(images.mean(dim=(0, 2, 3)), torch.zeros(3), atol=0.03 if augment else 1e-4)
        assert torch.allclose(images.std(dim=(0, 2, 3)), torch.ones(3), atol=0.03 if augment else 1e-4)
        assert images.is_contiguous(memory_format=torch.channels_last)


def test_channel_stats_match_numpy(loader_data):
    mean, std = channel_stats(loader_data.train_images)
    pixels = loader_data.train_images.numpy().transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    assert np.allclose(mean.numpy(), pixels.mean(1), atol=1e-3) and np.allclose(
        std.numpy(), pixels.std(1), atol=1e-3
    )


def test_same_seed_same_batches_new_epoch_new_order(loader_data):
    def epoch_batches(seed, epoch):
        loader = CIFARLoader(
            loader_data.train_images, loader_data.train_labels, 64, train=True, device="cpu", seed=seed
        )
        loader.set_epoch(epoch)
        return [x for x, _ in loader]

    first, again = epoch_batches(0, 3), epoch_batches(0, 3)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], epoch_batches(0, 4)[0])
    assert not torch.equal(first[0], epoch_batches(1, 3)[0])


def test_an_epoch_covers_every_index_once(loader_data):
    n = len(loader_data.train_labels)
    ids = torch.arange(n)  # labels that name their image
    loader = CIFARLoader(loader_data.train_images, ids, 64, train=True, device="cpu", drop_last=False)
    for _ in range(2):  # consecutive epochs, each a new permutation
        seen = torch.cat([labels for _, labels in loader])
        assert len(seen) == n and torch.equal(seen.sort().values, ids)
    assert len(loader) == sum(1 for _ in loader) == 8
    dropping = CIFARLoader(loader_data.train_images, ids, 64, train=True, device="cpu")  # training default
    seen = torch.cat([labels for _, labels in dropping])
    assert len(dropping) == 7 and len(seen) == 7 * 64 and len(torch.unique(seen)) == len(seen)


def test_loader_rejects_bad_arguments(loader_data):
    images, labels = loader_data.train_images, loader_data.train_labels
    with pytest.raises(ValueError, match="uint8 N x 3 x H x W"):
        CIFARLoader(images.float(), labels, 8, train=True, device="cpu")
    with pytest.raises(ValueError, match="labels must have shape"):
        CIFARLoader(images, labels[:-1], 8, train=True, device="cpu")
    with pytest.raises(ValueError, match="training set's statistics"):
        CIFARLoader(images, labels, 8, train=False, device="cpu")


# ---------------------------------------------------------------- one crop function, cutout, processes


def test_training_batches_are_random_crop_flip_of_the_epoch_draw(loader_data):
    """The loader and the tested function are one: a batch equals random_crop_flip of the same draws."""
    images, labels = loader_data.train_images, loader_data.train_labels
    loader = CIFARLoader(images, labels, 50, train=True, device="cpu", seed=7, channels_last=False)
    loader.set_epoch(2)
    batch, batch_labels = next(iter(loader))
    draw = loader._draw(2)  # the epoch's order, shifts and flips
    index = draw.order[:50]
    expected = random_crop_flip(images[index], draw.shifts[:50], draw.flips[:50])
    mean, std = (s.view(1, 3, 1, 1) for s in loader.stats)
    assert torch.allclose(batch, (expected.float() - mean) / std, atol=1e-5)
    assert torch.equal(batch_labels, labels[index])


def test_padded_images_crop_the_centre_by_default():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    padded = PaddedImages(images)
    assert torch.equal(padded.crops(torch.arange(4)).permute(0, 3, 1, 2), images)
    assert padded.windows.shape == (8, 2 * CROP_PADDING + 1, 2 * CROP_PADDING + 1, 32, 32, 3)


def test_cutout_zeroes_a_square_clipped_at_the_border():
    images = torch.ones(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    holes = cutout(images, torch.tensor([[4, 4], [0, 7]]), 4)
    assert (holes[0, :, 2:6, 2:6] == 0).all() and holes[0].sum() == 3 * (64 - 16)
    assert (holes[1, :, 0:2, 5:8] == 0).all() and holes[1].sum() == 3 * (64 - 6)  # 2 x 3 inside the image


def test_cutout_loader_keeps_the_crop_stream(loader_data):
    images, labels = loader_data.train_images, loader_data.train_labels
    plain = CIFARLoader(images, labels, 64, train=True, device="cpu", seed=1)
    holes = CIFARLoader(images, labels, 64, train=True, device="cpu", seed=1, cutout_size=16)
    a, b = next(iter(plain))[0], next(iter(holes))[0]
    zeroed = (b == 0).all(dim=1)  # pixels blanked in all three channels
    assert zeroed.flatten(1).sum(1).float().mean() > 100  # about 16 x 16, less where clipped
    assert torch.equal(a[~zeroed.unsqueeze(1).expand_as(a)], b[~zeroed.unsqueeze(1).expand_as(b)])


def test_ranks_split_every_batch_and_cover_each_index_once(loader_data):
    n = len(loader_data.train_labels)
    ids = torch.arange(n)
    single = CIFARLoader(loader_data.train_images, ids, 64, train=True, device="cpu", seed=3, drop_last=False)
    ranks = [
        CIFARLoader(
            loader_data.train_images,
            ids,
            64,
            train=True,
            device="cpu",
            seed=3,
            drop_last=False,
            rank=r,
            world_size=2,
        )
        for r in range(2)
    ]
    for epoch in (0, 1):
        for loader in (single, *ranks):
            loader.set_epoch(epoch)
        whole = [labels for _, labels in single]
        parts = [[labels for _, labels in loader] for loader in ranks]
        for step, batch in enumerate(whole):  # the union of the ranks' slices is the single-process batch
            assert torch.equal(torch.cat([parts[0][step], parts[1][step]]), batch)
        seen = torch.cat([torch.cat(p) for p in parts])
        assert len(seen) == n and torch.equal(seen.sort().values, ids)  # each index exactly once


def test_a_batch_that_does_not_split_evenly_is_refused(loader_data):
    with pytest.raises(ValueError, match="cannot be split evenly over 3 processes.*divisible by 3"):
        CIFARLoader(loader_data.train_images, loader_data.train_labels, 64, train=True, world_size=3, rank=0)
