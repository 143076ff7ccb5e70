"""CIFAR-10 from disk: download, safe unpacking, restricted unpickling, md5 checks and the validation split.

The official python layout (``cifar-10-batches-py/``: ``data_batch_1..5``, ``test_batch``,
``batches.meta``) is read into uint8 tensors. Every file can be checked against the official
md5 sums; every malformed file raises ``DatasetError`` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
import shutil
import tarfile
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import UserError, is_disk_full

# The official archive and per-file checksums (the dataset's page; torchvision's CIFAR10 records
# the same, which a test checks). Written out so that loading data does not import torchvision,
# which costs seconds per process; its download and md5 helpers are imported where they are used.
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_FOLDER = "cifar-10-batches-py"
TRAIN_FILES: list[tuple[str, str]] = [
    ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
    ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
    ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
    ("data_batch_4", "634d18415352ddfa80567beed471001a"),
    ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
]
TEST_FILES: list[tuple[str, str]] = [("test_batch", "40351d587109b95175f43aff81a1287e")]
META_FILE: tuple[str, str] = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
# batches.meta of a dataset this project wrote itself says where its images came from under this key.
PROVENANCE_KEY = "provenance"
# Words by which a stated provenance claims checked, official files: trusted only after the md5 check.
# ("official training images" of the JPEG mirror names where its images came from, not a check.)
_CLAIMS_CHECKED = re.compile(r"md5|checksum|verif|official (files|archive)", re.IGNORECASE)


class DatasetError(UserError, RuntimeError):
    """The dataset is missing, corrupted or malformed; the message says which file and what to do."""


class DatasetMissingError(DatasetError):
    """Neither the batch folder nor the archive is there: the one problem a download solves."""


def _unreadable(path: Path, error: OSError) -> str:
    """The message for a file that exists but cannot be opened (permissions, a folder in its place)."""
    reason = error.strerror or str(error)
    if isinstance(error, PermissionError):
        return f"cannot read {path} ({reason}): make it readable by your user (chmod a+r), then load again"
    if isinstance(error, IsADirectoryError):
        return f"{path} is a folder, not a file: move it away and put the CIFAR-10 file there"
    return f"cannot read {path} ({reason}); check the disk, or copy the dataset elsewhere"


@dataclass(frozen=True)
class ImageSet:
    """Images (uint8, N x 3 x 32 x 32) with their int64 labels."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class CIFAR10Data:
    """The training and test sets, the class names, and where the images came from."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    classes: list[str]
    source: str = "CIFAR-10"  # read from the files, so that no result is mislabelled

    @property
    def train(self) -> ImageSet:
        return ImageSet(self.train_images, self.train_labels)

    @property
    def test(self) -> ImageSet:
        return ImageSet(self.test_images, self.test_labels)

    def subset(self, n_train: int, n_test: int) -> CIFAR10Data:
        """A class-balanced subset: about ``n / 10`` images of every class from each split, in file order.

        Official test batches are not shuffled by class everywhere (the JPEG mirror's is sorted),
        so taking the first ``n`` images could give a one-class test set.
        """
        train = balanced_indices(self.train_labels, n_train)
        test = balanced_indices(self.test_labels, n_test)
        return CIFAR10Data(
            self.train_images[train],
            self.train_labels[train],
            self.test_images[test],
            self.test_labels[test],
            list(self.classes),
            f"{self.source}; class-balanced subset of {len(train):,} training + {len(test):,} test images",
        )

    def fingerprint(self) -> dict[str, Any]:
        """Source, sizes and a content digest, so a run can refuse to resume on other data.

        The digest covers every label and every 64th image: cheap (a few milliseconds for
        CIFAR-10) and different for any two datasets this course meets.
        """
        digest = hashlib.blake2b(digest_size=12)
        for tensor in (self.train_labels, self.test_labels, self.train_images[::64], self.test_images[::64]):
            digest.update(tensor.contiguous().numpy().tobytes())
        digest.update("\n".join(self.classes).encode())
        return {
            "source": self.source,
            "train": len(self.train_labels),
            "test": len(self.test_labels),
            "digest": digest.hexdigest(),
        }


def balanced_indices(labels: Tensor, n: int) -> Tensor:
    """Indices of ``n`` items (or all, if fewer) with class counts as equal as the data allows, in order."""
    n = min(n, len(labels))
    classes = torch.unique(labels)
    per_class = {int(c): n // len(classes) for c in classes}
    for c in classes[: n - sum(per_class.values())].tolist():  # the remainder goes to the first classes
        per_class[c] += 1
    chosen = []
    for c, take in per_class.items():
        chosen.append(torch.nonzero(labels == c).flatten()[:take])
    picked = torch.cat(chosen)
    if len(picked) < n:  # a rare class ran short: top up with the next unused images
        unused = torch.ones(len(labels), dtype=torch.bool)
        unused[picked] = False
        picked = torch.cat([picked, torch.nonzero(unused).flatten()[: n - len(picked)]])
    return picked.sort().values


# --------------------------------------------------------------------------- download and unpack


def download_cifar10(root: str | os.PathLike) -> Path:
    """Download the official archive (md5-checked) into ``root`` and unpack it; return the batch folder."""
    root = Path(root)
    _ensure_writable(root)
    archive = root / ARCHIVE_NAME
    existed = archive.exists()
    try:
        from torchvision.datasets.utils import download_url  # torchvision's download, md5-checked

        download_url(CIFAR10_URL, str(root), ARCHIVE_NAME, ARCHIVE_MD5)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        if archive.exists() and not existed:
            archive.unlink()  # a partial download would only fail the checksum later
        if is_disk_full(error):
            raise DatasetError(
                f"disk full while downloading CIFAR-10 into {root}: free 400 MB and retry"
            ) from error
        raise DatasetError(
            f"could not download CIFAR-10 from {CIFAR10_URL} ({error}). Download "
            f"{ARCHIVE_NAME} by hand from that address and put it at {archive.resolve()}; "
            "load_cifar10 will verify and unpack it from there."
        ) from error
    _extract_archive(archive, root)
    return root / BATCH_FOLDER


def _ensure_writable(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as error:
        raise DatasetError(
            f"cannot write to the data folder {root} ({error.strerror or error}): CIFAR-10 is unpacked "
            "there. Make it writable, or point the data folder (--data-dir, GOOGLENET_DATA_DIR) elsewhere."
        ) from error


def _extract_archive(archive: Path, root: Path) -> None:
    """Unpack into a temporary folder first, so an interrupted unpack never looks like a dataset."""
    _ensure_writable(root)
    staging = Path(tempfile.mkdtemp(prefix=".cifar10-unpack-", dir=root))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                target = (staging / member.name).resolve()
                if not (member.isfile() or member.isdir()):
                    raise DatasetError(
                        f"{archive} holds {member.name!r}, which is not a plain file; refusing to unpack it"
                    )
                if os.path.commonpath([staging.resolve(), target]) != str(staging.resolve()):
                    raise DatasetError(
                        f"{archive} holds {member.name!r}, which points outside {root}; refusing to unpack it"
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")  # the standard library's own safety net
            else:  # Python < 3.10.12 / 3.11.4: members were checked above
                tar.extractall(staging)  # noqa: S202
        unpacked = staging / BATCH_FOLDER
        if not unpacked.is_dir():
            raise DatasetError(
                f"{archive} has no {BATCH_FOLDER}/ folder: it is not the CIFAR-10 python archive"
            )
        os.replace(unpacked, root / BATCH_FOLDER)
    except (tarfile.TarError, EOFError, OSError) as error:
        if isinstance(error, PermissionError):
            raise DatasetError(_unreadable(Path(error.filename or archive), error)) from error
        if is_disk_full(error):
            raise DatasetError(
                f"disk full while unpacking {archive} into {root}: CIFAR-10 needs about 180 MB unpacked. "
                "Free some space and load again; nothing half-unpacked was left behind."
            ) from error
        raise DatasetError(
            f"could not unpack {archive} ({error}): the archive is truncated or corrupted. "
            "Delete it and download it again."
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- read and verify


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10 batches hold (dicts, lists, numpy arrays): pickles can run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's own signature
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"unexpected object {module}.{name} (only arrays and lists are allowed)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        file = open(path, "rb")  # closed below: failing to open is not a damaged file
    except OSError as error:
        raise DatasetError(_unreadable(path, error)) from error
    try:
        with file:
            entry = _ArrayUnpickler(file, encoding="latin1").load()
    except Exception as error:  # truncated or foreign files fail in many different ways
        raise DatasetError(
            f"{path} could not be read as a CIFAR-10 file ({type(error).__name__}: {error}); it is "
            f"truncated or corrupted. Delete {path.parent} and download CIFAR-10 again."
        ) from error
    if not isinstance(entry, dict):
        raise DatasetError(f"{path} holds a {type(entry).__name__}, not the dict of a CIFAR-10 file")
    return entry


_INT64 = np.iinfo(np.int64)


def _is_class_number(value: Any) -> bool:
    """A whole number that fits int64: ``True`` is not class 1, 3.7 is not 3, "cat" and None are not."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return _INT64.min <= value <= _INT64.max
    if isinstance(value, float | np.floating):
        return math.isfinite(value) and float(value).is_integer() and abs(value) <= _INT64.max
    return False


def _read_labels(path: Path, raw: Any, count: int) -> np.ndarray:
    """Labels as int64, refusing anything that is not a flat list of whole numbers (3.7 is not 3)."""
    try:
        labels = np.asarray(raw)
    except (ValueError, OverflowError) as error:
        raise DatasetError(f"{path}: 'labels' is not a flat list of class numbers ({error})") from error
    if labels.ndim != 1:
        raise DatasetError(
            f"{path}: 'labels' has shape {labels.shape}; expected a flat list of {count} labels"
        )
    # The values as stored, one by one: a list keeps True apart from 1, which np.asarray merges.
    if not (isinstance(raw, np.ndarray) and raw.dtype.kind in "iu" and raw.dtype != np.uint64):
        values = raw.tolist() if isinstance(raw, np.ndarray) else list(raw)
        bad = [(i, value) for i, value in enumerate(values) if not _is_class_number(value)]
        if bad:
            shown = ", ".join(f"{value!r} (label {i})" for i, value in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            raise DatasetError(f"{path}: labels must be whole class numbers, found {shown}{more}")
    return labels.astype(np.int64)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images (N x 3 x 32 x 32), labels, and the file's other entries (batch label, file names)."""
    entry = _unpickle(path)
    missing = [key for key in ("data", "labels") if key not in entry]
    if missing:
        raise DatasetError(f"{path} has no {' or '.join(missing)} entry: it is not a CIFAR-10 batch file")
    data = np.asarray(entry["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != math.prod(IMAGE_SHAPE):
        raise DatasetError(
            f"{path}: 'data' has shape {data.shape} and dtype {data.dtype}; expected N x 3072 uint8 "
            "(32x32 RGB images stored channel by channel)"
        )
    labels = _read_labels(path, entry["labels"], len(data))
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    others = {key: value for key, value in entry.items() if key not in ("data", "labels")}
    return data.reshape(-1, *IMAGE_SHAPE), labels, others


def _read_classes(path: Path, meta: dict) -> list[str]:
    names = meta.get("label_names")
    if (
        not isinstance(names, list | tuple)
        or len(names) != NUM_CLASSES
        or not all(isinstance(name, str) and name for name in names)
    ):
        shown = repr(names)[:80]
        raise DatasetError(
            f"{path}: 'label_names' must be a list of {NUM_CLASSES} class names (strings), got {shown}"
        )
    return list(names)


def describe_source(meta: dict, first_batch: dict, verified: bool, n_train: int, n_test: int) -> str:
    """Where the images came from, read from the files themselves.

    A dataset this project wrote states its provenance in ``batches.meta``; the official files
    are known by their md5 sums; the JPEG mirror (``cifar10_mirror.py``) names its images
    ``mirror_*`` and either holds 5,000 training images out as its test set or carries the
    10,000 official test images: the counts tell which. A stated provenance that claims a check
    (md5, verified, official) is believed only when the md5 check ran: a label never claims more.
    """
    stated = meta.get(PROVENANCE_KEY)
    if isinstance(stated, str) and (verified or not _CLAIMS_CHECKED.search(stated)):
        return stated
    if verified:
        return "CIFAR-10 (official files, md5-verified)"
    if str((first_batch.get("filenames") or [""])[0]).startswith("mirror_"):
        if n_train == 45_000 and n_test == 5_000:
            return (
                "CIFAR-10 JPEG mirror: 45,000 training images, test = 5,000 images held out of "
                "the official training set"
            )
        return f"CIFAR-10 JPEG mirror: {n_train:,} training images, test = {n_test:,} images"
    return f"CIFAR-10 layout, md5 not verified: {n_train:,} training + {n_test:,} test images"


def _verify_md5(path: Path, expected: str) -> None:
    from torchvision.datasets.utils import calculate_md5

    try:
        actual = calculate_md5(str(path))
    except OSError as error:
        raise DatasetError(_unreadable(path, error)) from error
    if actual != expected:
        raise DatasetError(
            f"{path} does not match the official CIFAR-10 checksum (md5 {actual}, expected "
            f"{expected}): it is corrupted or not the official file. If it is a dataset you built "
            "yourself (the JPEG mirror, the synthetic set), skip the check: --no-verify on the command "
            "line, GOOGLENET_VERIFY=0 in the notebooks, verify=False in Python. Otherwise delete "
            f"{path.parent} and download again."
        )


def load_cifar10(root: str | os.PathLike, *, download: bool = False, verify: bool = True) -> CIFAR10Data:
    """Load CIFAR-10 from ``root/cifar-10-batches-py/`` (or ``root/cifar-10-python.tar.gz``).

    ``verify`` checks every file against the official md5 sums; ``download`` fetches the
    archive when neither the folder nor the archive is there.
    """
    root = Path(root)
    folder = root / BATCH_FOLDER
    if root.exists() and not root.is_dir():
        raise DatasetError(f"the data folder {root} is a file; point the data folder at a directory")
    if not folder.is_dir():
        archive = root / ARCHIVE_NAME
        if folder.exists():
            raise DatasetError(
                f"{folder} is a file, not the folder of CIFAR-10 batch files: move it away, or point the "
                "data folder elsewhere"
            )
        if archive.exists() and not archive.is_file():
            raise DatasetError(
                f"{archive} is a folder, not the CIFAR-10 archive: move it away, or point the data "
                "folder elsewhere"
            )
        if archive.is_file():
            if verify:
                _verify_md5(archive, ARCHIVE_MD5)
            _extract_archive(archive, root)
        elif download:
            download_cifar10(root)
        else:
            raise DatasetMissingError(
                f"CIFAR-10 is not in {root}: expected the folder {folder} or the archive "
                f"{archive}. Pass download=True, download {CIFAR10_URL} into {root} by hand, or "
                "write a synthetic stand-in with make_synthetic_cifar10(root) for offline tests."
            )
    files = [*TRAIN_FILES, *TEST_FILES, META_FILE]
    missing = [name for name, _ in files if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"{folder} lacks {', '.join(missing)}. Delete the folder and download CIFAR-10 again "
            "(load_cifar10(root, download=True))."
        )
    if verify:
        for name, md5 in files:
            _verify_md5(folder / name, md5)

    train = [_read_batch(folder / name) for name, _ in TRAIN_FILES]
    test_images, test_labels, _ = _read_batch(folder / TEST_FILES[0][0])
    meta = _unpickle(folder / META_FILE[0])
    classes = _read_classes(folder / META_FILE[0], meta)
    train_labels = np.concatenate([labels for _, labels, _ in train])
    for name, labels in (("training", train_labels), ("test", test_labels)):
        if not labels.size:
            raise DatasetError(f"{folder}: the {name} set holds no images; the files are incomplete")
        if labels.min() < 0 or labels.max() >= len(classes):
            raise DatasetError(
                f"{folder}: {name} labels range over {labels.min()}..{labels.max()}, but "
                f"batches.meta names {len(classes)} classes (labels must be 0..{len(classes) - 1})"
            )
    return CIFAR10Data(
        train_images=torch.from_numpy(np.concatenate([images for images, _, _ in train])),
        train_labels=torch.from_numpy(train_labels),
        test_images=torch.from_numpy(test_images),
        test_labels=torch.from_numpy(test_labels),
        classes=classes,
        source=describe_source(meta, train[0][2], verify, len(train_labels), len(test_labels)),
    )


# --------------------------------------------------------------------------- validation split


def validation_indices(labels: Tensor, n_val: int, seed: int = 0) -> Tensor:
    """A boolean mask of the ``n_val`` stratified validation images among ``labels`` (seeded)."""
    if not 0 < n_val < len(labels):
        raise ValueError(
            f"n_val must be between 1 and {len(labels) - 1} (the training set size - 1), got {n_val}"
        )
    counts = torch.bincount(labels).double()
    quota = counts * n_val / len(labels)
    per_class = quota.floor().long()
    # Largest remainders get the leftover places so the split has exactly n_val images.
    leftover = n_val - int(per_class.sum())
    per_class[torch.argsort(quota - quota.floor(), descending=True, stable=True)[:leftover]] += 1
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label, take in enumerate(per_class.tolist()):
        members = torch.nonzero(labels == label).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:take]])
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[torch.cat(chosen)] = True
    return is_val


def split_fingerprint(data: CIFAR10Data, val_size: int, seed: int) -> dict[str, Any]:
    """The data and the validation split a run used, for refusing to resume on anything else."""
    mask = validation_indices(data.train_labels, val_size, seed)
    digest = hashlib.blake2b(mask.numpy().tobytes(), digest_size=8).hexdigest()
    return {**data.fingerprint(), "validation": {"size": val_size, "seed": seed, "digest": digest}}


def split_validation(data: CIFAR10Data, n_val: int = 5000, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Stratified (train, validation) split of the training set; the test set stays untouched."""
    is_val = validation_indices(data.train_labels, n_val, seed)
    return (
        ImageSet(data.train_images[~is_val], data.train_labels[~is_val]),
        ImageSet(data.train_images[is_val], data.train_labels[is_val]),
    )
