"""CIFAR-10 reading, verification, provenance, bad files, the archive, download and the validation split."""

import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import calculate_md5

from googlenet_utils import cifar10 as cifar10_module
from googlenet_utils.cifar10 import (
    ARCHIVE_NAME,
    BATCH_FOLDER,
    CIFAR10Data,
    DatasetError,
    balanced_indices,
    describe_source,
    load_cifar10,
    split_validation,
)
from googlenet_utils.synthetic import make_synthetic_cifar10

TRAIN_NAMES = [f"data_batch_{k}" for k in range(1, 6)]


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
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


def test_loader_returns_exactly_what_was_written(small_root):
    data = load_cifar10(small_root, verify=False)
    raws = [raw_batch(small_root / BATCH_FOLDER / name) for name in TRAIN_NAMES]
    written = np.concatenate([r["data"] for r in raws]).reshape(-1, 3, 32, 32)
    assert torch.equal(data.train_images, torch.from_numpy(written))
    assert data.train_labels.tolist() == sum((r["labels"] for r in raws), [])
    test = raw_batch(small_root / BATCH_FOLDER / "test_batch")
    assert torch.equal(data.test_images, torch.from_numpy(test["data"].reshape(-1, 3, 32, 32)))
    assert data.test_labels.tolist() == test["labels"]
    assert data.train_images.dtype == torch.uint8 and data.train_labels.dtype == torch.int64
    assert data.train_images.shape == (500, 3, 32, 32) and data.test_images.shape == (100, 3, 32, 32)
    assert data.classes == raw_batch(small_root / BATCH_FOLDER / "batches.meta")["label_names"]
    assert data.source.startswith("synthetic")


def test_torchvision_reads_the_synthetic_layout_identically(small_root, monkeypatch):
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    ours = load_cifar10(small_root, verify=False)
    for train, images, labels in (
        (True, ours.train_images, ours.train_labels),
        (False, ours.test_images, ours.test_labels),
    ):
        theirs = CIFAR10(str(small_root), train=train)
        assert torch.equal(
            torch.from_numpy(theirs.data).permute(0, 3, 1, 2), images
        )  # theirs is N x H x W x C
        assert theirs.targets == labels.tolist()
        assert theirs.classes == ours.classes


def test_verify_rejects_files_that_are_not_official(small_root):
    with pytest.raises(
        DatasetError, match=r"data_batch_1 does not match the official CIFAR-10 checksum.*verify=False"
    ):
        load_cifar10(small_root, verify=True)


# ---------------------------------------------------------------- damaged data


def trust_these_files(root: Path, monkeypatch) -> None:
    """Make the loader treat ``root``'s files as the official ones, so md5 checks can pass or fail."""
    folder = root / BATCH_FOLDER

    def md5s(names):
        return [(name, calculate_md5(str(folder / name))) for name in names]

    monkeypatch.setattr(cifar10_module, "TRAIN_FILES", md5s(TRAIN_NAMES))
    monkeypatch.setattr(cifar10_module, "TEST_FILES", md5s(["test_batch"]))
    monkeypatch.setattr(cifar10_module, "META_FILE", md5s(["batches.meta"])[0])


def test_verify_passes_on_matching_checksums(small_root, tmp_path, monkeypatch):
    root = copy_of(small_root, tmp_path)
    trust_these_files(root, monkeypatch)
    assert len(load_cifar10(root, verify=True).train_labels) == 500


def test_corrupted_file_names_the_file_and_the_fix(small_root, tmp_path, monkeypatch):
    root = copy_of(small_root, tmp_path)
    trust_these_files(root, monkeypatch)
    path = root / BATCH_FOLDER / "data_batch_3"
    damaged = bytearray(path.read_bytes())
    damaged[:16] = b"\x00garbage-bytes!!"
    path.write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match=r"data_batch_3 could not be read .*corrupted. Delete .* download"):
        load_cifar10(root, verify=False)
    with pytest.raises(
        DatasetError, match=r"data_batch_3 does not match the official .*delete .*download again"
    ):
        load_cifar10(root, verify=True)


def test_truncated_file_names_the_file(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
    path = root / BATCH_FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"test_batch could not be read .*truncated"):
        load_cifar10(root, verify=False)


def test_missing_file_is_named(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
    (root / BATCH_FOLDER / "data_batch_5").unlink()
    with pytest.raises(DatasetError, match=r"lacks data_batch_5. Delete the folder and download"):
        load_cifar10(root, verify=False)


def test_an_unreadable_batch_is_not_called_corrupted(small_root, tmp_path, monkeypatch):
    root = copy_of(small_root, tmp_path)
    trust_these_files(root, monkeypatch)  # so that with verify=True the md5 check reaches the file
    locked = root / BATCH_FOLDER / "data_batch_4"

    def no_permission(path, *args, **kwargs):  # chmod does not stop root, who runs CI containers
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(cifar10_module, "open", no_permission, raising=False)
    monkeypatch.setattr("torchvision.datasets.utils.open", no_permission, raising=False)
    for verify in (False, True):
        with pytest.raises(DatasetError, match=r"cannot read .*data_batch_4 \(Permission denied\)") as error:
            load_cifar10(root, verify=verify)
        assert "corrupted" not in str(error.value) and "download" not in str(error.value)


def test_an_archive_that_is_a_folder_is_named_as_such(tmp_path):
    (tmp_path / ARCHIVE_NAME).mkdir()
    for download in (False, True):
        with pytest.raises(
            DatasetError, match=r"cifar-10-python.tar.gz is a folder, not the CIFAR-10 archive"
        ):
            load_cifar10(tmp_path, download=download)


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"CIFAR-10 is not in .*download=True.*make_synthetic_cifar10"):
        load_cifar10(tmp_path)


def write_batch(path: Path, data, labels) -> None:
    with open(path, "wb") as f:
        pickle.dump({"data": data, "labels": labels}, f)


def test_wrong_shapes_and_labels_are_reported(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
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


def test_pickles_cannot_run_code(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
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


def test_archive_alone_is_unpacked_and_loaded(small_root, tmp_path):
    make_archive(small_root, tmp_path / ARCHIVE_NAME)
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz does not match the official"):
        load_cifar10(tmp_path, verify=True)
    data = load_cifar10(tmp_path, verify=False)
    assert torch.equal(data.train_images, load_cifar10(small_root, verify=False).train_images)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging leftovers


def test_archive_members_cannot_escape_the_folder(small_root, tmp_path):
    escape = tarfile.TarInfo("../escaped.txt")
    escape.size = 1
    (tmp_path / "root").mkdir()
    make_archive(small_root, tmp_path / "root" / ARCHIVE_NAME, extra=escape)
    with pytest.raises(DatasetError, match="points outside"):
        load_cifar10(tmp_path / "root", verify=False)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "root" / BATCH_FOLDER).exists()


def test_offline_download_says_where_to_put_the_archive(tmp_path, monkeypatch):
    # Port 9 on localhost refuses connections: a real failed download, without a network.
    monkeypatch.setattr(cifar10_module, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    expected = str(tmp_path.resolve() / ARCHIVE_NAME)
    with pytest.raises(DatasetError, match="could not download CIFAR-10") as error:
        load_cifar10(tmp_path, download=True)
    assert expected in str(error.value) and "by hand" in str(error.value)
    assert not (tmp_path / ARCHIVE_NAME).exists()


# ---------------------------------------------------------------- validation split


def test_split_is_stratified_disjoint_and_seeded(small_root):
    data = load_cifar10(small_root, verify=False)
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


# ---------------------------------------------------------------- provenance and subsets


def test_a_stated_provenance_never_claims_a_check_that_did_not_run(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
    claim = "CIFAR-10 (official files, md5-verified)"
    rewrite(root / BATCH_FOLDER / "batches.meta", provenance=claim)
    source = load_cifar10(root, verify=False).source
    assert "verified" not in source.replace("not verified", "") and "official" not in source
    assert source.startswith("CIFAR-10 layout, md5 not verified")
    honest = "synthetic stand-in (not CIFAR-10 images), seed 3"
    rewrite(root / BATCH_FOLDER / "batches.meta", provenance=honest)
    assert load_cifar10(root, verify=False).source == honest  # a claim of no check is kept as stated
    mirror = "CIFAR-10 JPEG mirror: 50,000 official training images, test = 5,000 official test images"
    rewrite(root / BATCH_FOLDER / "batches.meta", provenance=mirror)
    assert load_cifar10(root, verify=False).source == mirror  # where the images came from, not a check


def test_the_mirror_is_described_by_what_its_test_batch_holds():
    names = {"filenames": ["mirror_00000.png"]}
    held_out = describe_source({}, names, False, 45_000, 5_000)
    assert held_out == (
        "CIFAR-10 JPEG mirror: 45,000 training images, "
        "test = 5,000 images held out of the official training set"
    )
    official_test = describe_source({}, names, False, 50_000, 10_000)
    assert "held out" not in official_test and "10,000" in official_test
    assert describe_source({}, {"filenames": ["x.png"]}, True, 50_000, 10_000).startswith(
        "CIFAR-10 (official"
    )
    assert "md5 not verified" in describe_source({}, {}, False, 50_000, 10_000)


def test_subset_is_class_balanced_even_for_a_sorted_test_batch():
    labels = torch.arange(10).repeat_interleave(30)  # sorted by class, like the mirror's test batch
    data = CIFAR10Data(
        torch.zeros(300, 3, 32, 32, dtype=torch.uint8),
        labels,
        torch.zeros(300, 3, 32, 32, dtype=torch.uint8),
        labels,
        [str(c) for c in range(10)],
        "x",
    )
    small = data.subset(100, 25)
    assert torch.bincount(small.train_labels).tolist() == [10] * 10
    assert torch.bincount(small.test_labels, minlength=10).tolist() == [3] * 5 + [2] * 5
    assert "class-balanced subset of 100 training + 25 test" in small.source
    assert torch.equal(balanced_indices(labels, 300), torch.arange(300))


def test_fingerprint_tells_datasets_apart(small_root, tmp_path):
    data = load_cifar10(small_root, verify=False)
    assert data.fingerprint() == load_cifar10(small_root, verify=False).fingerprint()
    make_synthetic_cifar10(tmp_path, n_train=500, n_test=100, seed=4)
    other = load_cifar10(tmp_path, verify=False).fingerprint()
    assert other["digest"] != data.fingerprint()["digest"]
    assert set(other) == {"source", "train", "test", "digest"}


# ---------------------------------------------------------------- malformed labels and class names


def rewrite(path: Path, **changes) -> None:
    entry = raw_batch(path)
    entry.update(changes)
    path.write_bytes(pickle.dumps(entry))


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0.0, 3.7, 1.0], r"whole class numbers, found 3.7 \(label 1\)"),
        (["cat", "dog", "cat"], r"whole class numbers, found 'cat' \(label 0\), 'dog' \(label 1\)"),
        ([[0], [1], [2]], r"'labels' has shape \(3, 1\)"),
        ([0, 2**70, 1], "whole class numbers"),
        ([0, 10**12, 1], r"labels range over 0..1000000000000"),
        ([0, float("nan"), 1], "whole class numbers"),
    ],
)
def test_bad_labels_are_refused_not_truncated(small_root, tmp_path, labels, message):
    root = copy_of(small_root, tmp_path)
    path = root / BATCH_FOLDER / "data_batch_2"
    rewrite(path, data=np.zeros((3, 3072), np.uint8), labels=labels)
    with pytest.raises(DatasetError, match=message):
        load_cifar10(root, verify=False)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(2**70, str(2**70)), (None, "None"), ("cat", "'cat'"), (True, "True")],
)
def test_a_bad_label_is_quoted_itself_not_the_first_three(small_root, tmp_path, bad, shown):
    root = copy_of(small_root, tmp_path)
    labels = [2, 6, 5, 1, bad, 3]  # True would silently become class 1
    rewrite(root / BATCH_FOLDER / "data_batch_2", data=np.zeros((6, 3072), np.uint8), labels=labels)
    with pytest.raises(DatasetError, match="whole class numbers") as error:
        load_cifar10(root, verify=False)
    assert f"found {shown} (label 4)" in str(error.value) and "[2, 6, 5]" not in str(error.value)


def test_whole_float_labels_are_accepted(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
    rewrite(root / BATCH_FOLDER / "data_batch_2", data=np.zeros((3, 3072), np.uint8), labels=[0.0, 3.0, 1.0])
    assert load_cifar10(root, verify=False).train_labels.dtype == torch.int64


@pytest.mark.parametrize("names", ["airplane", ["a", "b"], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], None])
def test_class_names_must_be_ten_strings(small_root, tmp_path, names):
    root = copy_of(small_root, tmp_path)
    meta = root / BATCH_FOLDER / "batches.meta"
    rewrite(meta, label_names=names)
    with pytest.raises(DatasetError, match="'label_names' must be a list of 10 class names"):
        load_cifar10(root, verify=False)


def test_an_empty_test_set_is_refused_when_loading(small_root, tmp_path):
    root = copy_of(small_root, tmp_path)
    rewrite(root / BATCH_FOLDER / "test_batch", data=np.zeros((0, 3072), np.uint8), labels=[])
    with pytest.raises(DatasetError, match="the test set holds no images"):
        load_cifar10(root, verify=False)


# ---------------------------------------------------------------- folders, archives and full disks


def test_an_unwritable_data_folder_with_only_the_archive_says_so(small_root, tmp_path, monkeypatch):
    make_archive(small_root, tmp_path / ARCHIVE_NAME)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cifar10_module.tempfile, "TemporaryFile", refuse)
    with pytest.raises(DatasetError, match="cannot write to the data folder .*Permission denied.*--data-dir"):
        load_cifar10(tmp_path, verify=False)


def test_disk_full_while_unpacking_says_disk_full(small_root, tmp_path, monkeypatch):
    make_archive(small_root, tmp_path / ARCHIVE_NAME)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tarfile.TarFile, "extractall", full)
    with pytest.raises(DatasetError, match="disk full while unpacking"):
        load_cifar10(tmp_path, verify=False)
    assert not (tmp_path / BATCH_FOLDER).exists()
    assert [p.name for p in tmp_path.iterdir()] == [ARCHIVE_NAME]  # no half-unpacked staging folder


def test_a_data_folder_that_is_a_file_is_named(tmp_path):
    (tmp_path / "data").write_text("not a folder")
    with pytest.raises(DatasetError, match="is a file"):
        load_cifar10(tmp_path / "data")


def test_the_md5_hint_names_the_verify_switch_not_download(small_root):
    with pytest.raises(DatasetError) as error:
        load_cifar10(small_root, verify=True)
    assert "--no-verify" in str(error.value) and "GOOGLENET_VERIFY=0" in str(error.value)
    assert "--no-download" not in str(error.value)


def test_the_official_names_and_checksums_are_torchvisions():
    assert (cifar10_module.CIFAR10_URL, cifar10_module.ARCHIVE_NAME) == (CIFAR10.url, CIFAR10.filename)
    assert (cifar10_module.ARCHIVE_MD5, cifar10_module.BATCH_FOLDER) == (CIFAR10.tgz_md5, CIFAR10.base_folder)
    assert cifar10_module.TRAIN_FILES == [tuple(item) for item in CIFAR10.train_list]
    assert cifar10_module.TEST_FILES == [tuple(item) for item in CIFAR10.test_list]
    assert cifar10_module.META_FILE == (CIFAR10.meta["filename"], CIFAR10.meta["md5"])


@pytest.mark.slow  # starts processes
def test_loading_data_does_not_import_torchvision():
    code = "import sys, googlenet_utils.trainer; print('torchvision' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"  # it costs seconds in every process, torchrun's included
