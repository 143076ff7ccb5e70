"""CIFAR-10 reading, verification, the synthetic twin, the validation split and the device loader."""

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import calculate_md5

from googlenet_utils import data as data_module
from googlenet_utils.data import (
    ARCHIVE_NAME,
    BATCH_FOLDER,
    CIFARLoader,
    DatasetError,
    channel_stats,
    load_cifar10,
    make_synthetic_cifar10,
    random_crop_flip,
    split_validation,
)

TRAIN_NAMES = [f"data_batch_{k}" for k in range(1, 6)]


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_cifar10(root, n_train=500, n_test=100, seed=3)
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    """A private copy of a dataset folder that a test may damage."""
    target = tmp_path / "copy"
    (target / BATCH_FOLDER).mkdir(parents=True)
    for file in (root / BATCH_FOLDER).iterdir():
        (target / BATCH_FOLDER / file.name).write_bytes(file.read_bytes())
    return target


def raw_batch(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")  # the reference way, without our reader


# ---------------------------------------------------------------- synthetic writer and reader


def test_loader_returns_exactly_what_was_written(synthetic_root):
    data = load_cifar10(synthetic_root, verify=False)
    raws = [raw_batch(synthetic_root / BATCH_FOLDER / name) for name in TRAIN_NAMES]
    written = np.concatenate([r["data"] for r in raws]).reshape(-1, 3, 32, 32)
    assert torch.equal(data.train_images, torch.from_numpy(written))
    assert data.train_labels.tolist() == sum((r["labels"] for r in raws), [])
    test = raw_batch(synthetic_root / BATCH_FOLDER / "test_batch")
    assert torch.equal(data.test_images, torch.from_numpy(test["data"].reshape(-1, 3, 32, 32)))
    assert data.test_labels.tolist() == test["labels"]
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert data.train_images.shape == (500, 3, 32, 32) and data.test_images.shape == (100, 3, 32, 32)
    assert data.classes == raw_batch(synthetic_root / BATCH_FOLDER / "batches.meta")["label_names"]
    assert data.source.startswith("synthetic")


def test_torchvision_reads_the_synthetic_layout_identically(synthetic_root, monkeypatch):
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    ours = load_cifar10(synthetic_root, verify=False)
    for train, images, labels in (
        (True, ours.train_images, ours.train_labels),
        (False, ours.test_images, ours.test_labels),
    ):
        theirs = CIFAR10(str(synthetic_root), train=train)
        assert torch.equal(
            torch.from_numpy(theirs.data).permute(0, 3, 1, 2), images
        )  # theirs is N x H x W x C
        assert theirs.targets == labels.tolist()
        assert theirs.classes == ours.classes


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        make_synthetic_cifar10(tmp_path / name, n_train=50, n_test=10, seed=seed)

    def files(name):
        return {f.name: f.read_bytes() for f in (tmp_path / name / BATCH_FOLDER).iterdir()}

    assert files("a") == files("b")
    assert files("a")["data_batch_1"] != files("c")["data_batch_1"]


def test_synthetic_classes_are_balanced_and_distinct(synthetic_root):
    data = load_cifar10(synthetic_root, verify=False)
    assert torch.bincount(data.train_labels).tolist() == [50] * 10
    mean_image = torch.stack([data.train_images[data.train_labels == c].float().mean(0) for c in range(10)])
    distances = torch.cdist(mean_image.flatten(1), mean_image.flatten(1))
    assert distances[~torch.eye(10, dtype=torch.bool)].min() > 100  # no two classes look alike on average


def test_verify_rejects_files_that_are_not_official(synthetic_root):
    with pytest.raises(
        DatasetError, match=r"data_batch_1 does not match the official CIFAR-10 checksum.*verify=False"
    ):
        load_cifar10(synthetic_root, verify=True)


# ---------------------------------------------------------------- damaged data


def trust_these_files(root: Path, monkeypatch) -> None:
    """Make the loader treat ``root``'s files as the official ones, so md5 checks can pass or fail."""
    folder = root / BATCH_FOLDER

    def md5s(names):
        return [(name, calculate_md5(str(folder / name))) for name in names]

    monkeypatch.setattr(data_module, "TRAIN_FILES", md5s(TRAIN_NAMES))
    monkeypatch.setattr(data_module, "TEST_FILES", md5s(["test_batch"]))
    monkeypatch.setattr(data_module, "META_FILE", md5s(["batches.meta"])[0])


def test_verify_passes_on_matching_checksums(synthetic_root, tmp_path, monkeypatch):
    root = copy_of(synthetic_root, tmp_path)
    trust_these_files(root, monkeypatch)
    assert len(load_cifar10(root, verify=True).train_labels) == 500


def test_corrupted_file_names_the_file_and_the_fix(synthetic_root, tmp_path, monkeypatch):
    root = copy_of(synthetic_root, tmp_path)
    trust_these_files(root, monkeypatch)
    path = root / BATCH_FOLDER / "data_batch_3"
    damaged = bytearray(path.read_bytes())
    damaged[:16] = b"\x00garbage-bytes!!"
    path.write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match=r"data_batch_3 could not be read .*corrupted. Delete .* download"):
        load_cifar10(root, verify=False)
    with pytest.raises(
        DatasetError, match=r"data_batch_3 does not match the official .*Delete .*download again"
    ):
        load_cifar10(root, verify=True)


def test_truncated_file_names_the_file(synthetic_root, tmp_path):
    root = copy_of(synthetic_root, tmp_path)
    path = root / BATCH_FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"test_batch could not be read .*truncated"):
        load_cifar10(root, verify=False)


def test_missing_file_is_named(synthetic_root, tmp_path):
    root = copy_of(synthetic_root, tmp_path)
    (root / BATCH_FOLDER / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match=r"lacks data_batch_5. Delete the folder and download"):
        load_cifar10(root, verify=False)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"CIFAR-10 is not in .*download=True.*make_synthetic_cifar10"):
        load_cifar10(tmp_path)


def write_batch(path: Path, data, labels) -> None:
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": labels}, f)


def test_wrong_shapes_and_labels_are_reported(synthetic_root, tmp_path):
    root = copy_of(synthetic_root, tmp_path)
    batch = root / BATCH_FOLDER / "data_batch_2"
    write_batch(batch, np.zeros((4, 1024), np.uint8), [0, 1, 2, 3])
    with pytest.raises(
        DatasetError, match=r"data_batch_2: 'data' has shape \(4, 1024\).*expected N x 3072 uint8"
    ):
        load_cifar10(root, verify=False)
    write_batch(batch, np.zeros((4, 3072), np.uint8), [0, 1, 2])
    with pytest.raises(DatasetError, match="4 images but 3 labels"):
        load_cifar10(root, verify=False)
    write_batch(batch, np.zeros((2, 3072), np.uint8), [0, 10])
    with pytest.raises(DatasetError, match=r"labels range over 0..10, but batches.meta names 10 classes"):
        load_cifar10(root, verify=False)


def test_pickles_cannot_run_code(synthetic_root, tmp_path):
    root = copy_of(synthetic_root, tmp_path)
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (root / BATCH_FOLDER / "data_batch_1").write_bytes(pickle.dumps({"data": Exploit(), "labels": []}))
    with pytest.raises(DatasetError, match="data_batch_1 could not be read"):
        load_cifar10(root, verify=False)
    assert not marker.exists()


# ---------------------------------------------------------------- archive and download


def make_archive(source_root: Path, archive: Path, extra: tarfile.TarInfo | None = None) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_root / BATCH_FOLDER, arcname=BATCH_FOLDER)
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x"))


def test_archive_alone_is_unpacked_and_loaded(synthetic_root, tmp_path):
    make_archive(synthetic_root, tmp_path / ARCHIVE_NAME)
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz does not match the official"):
        load_cifar10(tmp_path, verify=True)
    data = load_cifar10(tmp_path, verify=False)
    assert torch.equal(data.train_images, load_cifar10(synthetic_root, verify=False).train_images)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging leftovers


def test_archive_members_cannot_escape_the_folder(synthetic_root, tmp_path):
    escape = tarfile.TarInfo("../escaped.txt")
    escape.size = 1
    (tmp_path / "root").mkdir()
    make_archive(synthetic_root, tmp_path / "root" / ARCHIVE_NAME, extra=escape)
    with pytest.raises(DatasetError, match="points outside"):
        load_cifar10(tmp_path / "root", verify=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "root" / BATCH_FOLDER).exists()


def test_offline_download_says_where_to_put_the_archive(tmp_path, monkeypatch):
    # Port 9 on localhost refuses connections: a real failed download, without a network.
    monkeypatch.setattr(data_module, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    expected = str(tmp_path.resolve() / ARCHIVE_NAME)
    with pytest.raises(DatasetError, match="could not download CIFAR-10") as error:
        load_cifar10(tmp_path, download=True)
    assert expected in str(error.value) and "by hand" in str(error.value)
    assert not (tmp_path / ARCHIVE_NAME).exists()


# ---------------------------------------------------------------- validation split


def test_split_is_stratified_disjoint_and_seeded(synthetic_root):
    data = load_cifar10(synthetic_root, verify=False)
    train, val = split_validation(data, n_val=100, seed=0)
    assert len(train) == 400 and len(val) == 100
    assert torch.bincount(val.labels).tolist() == [10] * 10
    every = torch.cat([train.images, val.images]).flatten(1)
    assert len(torch.unique(every, dim=0)) == 500  # each image lands on exactly one side
    again, _ = split_validation(data, n_val=100, seed=0)
    other, _ = split_validation(data, n_val=100, seed=1)
    assert torch.equal(train.images, again.images) and not torch.equal(train.images, other.images)
    _, odd = split_validation(data, n_val=37, seed=0)
    assert len(odd) == 37 and torch.bincount(odd.labels).max() - torch.bincount(odd.labels).min() <= 1
    with pytest.raises(ValueError, match="n_val must be between 1 and 499"):
        split_validation(data, n_val=500)


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


@pytest.fixture(scope="module")
def loader_data(synthetic_root):
    return load_cifar10(synthetic_root, verify=False)


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
