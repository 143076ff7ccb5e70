"""The synthetic twin: reproducible bytes, learnable classes, and provenance written into its files."""

import pickle

import torch

from googlenet_utils.cifar10 import BATCH_FOLDER, PROVENANCE_KEY, load_cifar10
from googlenet_utils.synthetic import SYNTHETIC_SOURCE, make_synthetic_cifar10, synthetic_class_names


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        make_synthetic_cifar10(tmp_path / name, n_train=50, n_test=10, seed=seed)

    def files(name):
        return {f.name: f.read_bytes() for f in (tmp_path / name / BATCH_FOLDER).iterdir()}

    assert files("a") == files("b")
    assert files("a")["data_batch_1"] != files("c")["data_batch_1"]


def test_synthetic_classes_are_balanced_and_distinct(tmp_path):
    make_synthetic_cifar10(tmp_path, n_train=500, n_test=100, seed=3)
    data = load_cifar10(tmp_path, verify=False)
    assert torch.bincount(data.train_labels).tolist() == [50] * 10
    mean_image = torch.stack([data.train_images[data.train_labels == c].float().mean(0) for c in range(10)])
    distances = torch.cdist(mean_image.flatten(1), mean_image.flatten(1))
    assert distances[~torch.eye(10, dtype=torch.bool)].min() > 100  # no two classes look alike on average


def test_provenance_is_written_into_the_files_and_read_back(tmp_path):
    make_synthetic_cifar10(tmp_path, n_train=50, n_test=20, seed=4)
    with open(tmp_path / BATCH_FOLDER / "batches.meta", "rb") as file:
        meta = pickle.load(file)
    assert meta[PROVENANCE_KEY].startswith(SYNTHETIC_SOURCE) and "seed 4" in meta[PROVENANCE_KEY]
    assert meta["label_names"] == synthetic_class_names()
    # The loader reports what the files say, even when their names would suggest something else.
    for name in ("data_batch_1", "test_batch"):
        path = tmp_path / BATCH_FOLDER / name
        entry = pickle.loads(path.read_bytes())
        entry["filenames"] = [f"mirror_{i:05d}.png" for i in range(len(entry["labels"]))]
        path.write_bytes(pickle.dumps(entry))
    source = load_cifar10(tmp_path, verify=False).source
    assert source == meta[PROVENANCE_KEY] and "50 training + 20 test" in source


def test_a_full_disk_says_disk_full_and_leaves_no_half_written_batch(tmp_path, monkeypatch):
    import pytest

    from googlenet_utils import synthetic
    from googlenet_utils.cifar10 import DatasetError

    real_dump, calls = pickle.dump, {"n": 0}

    def fill_up(entry, file, protocol=None):
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch meets a full disk, half written
            file.write(b"half a pickle")
            raise OSError(28, "No space left on device")
        real_dump(entry, file, protocol=protocol)

    monkeypatch.setattr(synthetic.pickle, "dump", fill_up)
    with pytest.raises(DatasetError, match=r"disk full while writing the synthetic stand-in's data_batch_3"):
        make_synthetic_cifar10(tmp_path, n_train=50, n_test=10)
    assert not (tmp_path / BATCH_FOLDER / "data_batch_3").exists()
