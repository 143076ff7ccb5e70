"""CIFAR-10: verified loading, a synthetic twin for offline runs, and a GPU-resident loader.

The loader keeps the whole uint8 dataset on the device and augments whole batches there: at
32x32 pixels the data is 150 MB, so copying it once beats decoding and collating it on CPU
workers every epoch.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import calculate_md5, download_url

from .devices import pick_device

# The official archive and per-file checksums, as torchvision records them.
CIFAR10_URL = CIFAR10.url
ARCHIVE_NAME = CIFAR10.filename
ARCHIVE_MD5 = CIFAR10.tgz_md5
BATCH_FOLDER = CIFAR10.base_folder  # "cifar-10-batches-py"
TRAIN_FILES: list[tuple[str, str]] = [tuple(item) for item in CIFAR10.train_list]
TEST_FILES: list[tuple[str, str]] = [tuple(item) for item in CIFAR10.test_list]
META_FILE: tuple[str, str] = (CIFAR10.meta["filename"], CIFAR10.meta["md5"])
IMAGE_SHAPE = (3, 32, 32)
CROP_PADDING = 4


class DatasetError(RuntimeError):
    """The dataset is missing, corrupted or malformed; the message says which file and what to do."""


@dataclass(frozen=True)
class ImageSet:
    """Images (uint8, N x 3 x 32 x 32) with their int64 labels."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class CIFAR10Data:
    """The training and test sets plus the class names from ``batches.meta``."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    classes: list[str]
    source: str = "CIFAR-10"  # where the images came from, for labelling results honestly

    @property
    def train(self) -> ImageSet:
        return ImageSet(self.train_images, self.train_labels)

    @property
    def test(self) -> ImageSet:
        return ImageSet(self.test_images, self.test_labels)

    def subset(self, n_train: int, n_test: int) -> CIFAR10Data:
        """The first ``n_train`` training and ``n_test`` test images (for quick runs)."""
        return CIFAR10Data(
            self.train_images[:n_train],
            self.train_labels[:n_train],
            self.test_images[:n_test],
            self.test_labels[:n_test],
            list(self.classes),
            f"{self.source}, subset of {n_train} + {n_test}",
        )


# --------------------------------------------------------------------------- download and unpack


def download_cifar10(root: str | os.PathLike) -> Path:
    """Download the official archive (md5-checked) into ``root`` and unpack it; return the batch folder."""
    root = Path(root)
    archive = root / ARCHIVE_NAME
    existed = archive.exists()
    try:
        download_url(CIFAR10_URL, str(root), ARCHIVE_NAME, ARCHIVE_MD5)
    except (urllib.error.URLError, OSError, RuntimeError) as error:
        if archive.exists() and not existed:
            archive.unlink()  # a partial download would only fail the checksum later
        raise DatasetError(
            f"could not download CIFAR-10 from {CIFAR10_URL} ({error}). Download "
            f"{ARCHIVE_NAME} by hand from that address and put it at {archive.resolve()}; "
            "load_cifar10 will verify and unpack it from there."
        ) from error
    _extract_archive(archive, root)
    return root / BATCH_FOLDER


def _extract_archive(archive: Path, root: Path) -> None:
    """Unpack into a temporary folder first, so an interrupted unpack never looks like a dataset."""
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
        with open(path, "rb") as file:
            entry = _ArrayUnpickler(file, encoding="latin1").load()
    except Exception as error:  # truncated or foreign files fail in many different ways
        raise DatasetError(
            f"{path} could not be read as a CIFAR-10 file ({type(error).__name__}: {error}); it is "
            f"truncated or corrupted. Delete {path.parent} and download CIFAR-10 again."
        ) from error
    if not isinstance(entry, dict):
        raise DatasetError(f"{path} holds a {type(entry).__name__}, not the dict of a CIFAR-10 file")
    return entry


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
    labels = np.asarray(entry["labels"], dtype=np.int64)
    if labels.shape != (len(data),):
        raise DatasetError(f"{path}: {len(data)} images but {labels.size} labels")
    others = {key: value for key, value in entry.items() if key not in ("data", "labels")}
    return data.reshape(-1, *IMAGE_SHAPE), labels, others


def _describe_source(batch_info: dict, verified: bool) -> str:
    if str(batch_info.get("batch_label", "")).startswith("synthetic"):
        return "synthetic stand-in (not CIFAR-10 images)"
    if str((batch_info.get("filenames") or [""])[0]).startswith("mirror_"):
        return "CIFAR-10 JPEG mirror (test = 5,000 held-out training images)"
    return "CIFAR-10 (official files, md5-verified)" if verified else "CIFAR-10 layout (md5 not verified)"


def _verify_md5(path: Path, expected: str) -> None:
    actual = calculate_md5(str(path))
    if actual != expected:
        raise DatasetError(
            f"{path} does not match the official CIFAR-10 checksum (md5 {actual}, expected "
            f"{expected}): it is corrupted or not the official file. Delete {path.parent} and "
            "download again with load_cifar10(root, download=True); for a dataset you built "
            "yourself (a mirror or the synthetic set) pass verify=False."
        )


def load_cifar10(root: str | os.PathLike, *, download: bool = False, verify: bool = True) -> CIFAR10Data:
    """Load CIFAR-10 from ``root/cifar-10-batches-py/`` (or ``root/cifar-10-python.tar.gz``).

    ``verify`` checks every file against the official md5 sums; ``download`` fetches the
    archive when neither the folder nor the archive is there.
    """
    root = Path(root)
    folder = root / BATCH_FOLDER
    if not folder.is_dir():
        archive = root / ARCHIVE_NAME
        if archive.is_file():
            if verify:
                _verify_md5(archive, ARCHIVE_MD5)
            _extract_archive(archive, root)
        elif download:
            download_cifar10(root)
        else:
            raise DatasetError(
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
    classes = [str(name) for name in meta.get("label_names", [])]
    if not classes:
        raise DatasetError(f"{folder / META_FILE[0]} has no 'label_names' list")
    train_labels = np.concatenate([labels for _, labels, _ in train])
    for name, labels in (("training", train_labels), ("test", test_labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
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
        source=_describe_source(train[0][2], verify),
    )


def split_validation(data: CIFAR10Data, n_val: int = 5000, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Stratified (train, validation) split of the training set; the test set stays untouched."""
    labels = data.train_labels
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
    val_index = []
    for label, take in enumerate(per_class.tolist()):
        members = torch.nonzero(labels == label).flatten()
        val_index.append(members[torch.randperm(len(members), generator=generator)[:take]])
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    is_val[torch.cat(val_index)] = True
    return (
        ImageSet(data.train_images[~is_val], labels[~is_val]),
        ImageSet(data.train_images[is_val], labels[is_val]),
    )


# --------------------------------------------------------------------------- synthetic twin

_PATTERNS = ("h-stripes", "v-stripes", "checks", "rings", "blob")
_PALETTES = {"warm": ((70, 30, 20), (240, 170, 80)), "cool": ((20, 40, 80), (110, 190, 240))}


def synthetic_class_names() -> list[str]:
    """Names of the synthetic set's ten classes: a colour palette and a pattern each."""
    return [f"{palette} {pattern}" for palette in _PALETTES for pattern in _PATTERNS]


def _synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images whose class shows in their pattern and colours, under random phase, position and noise."""
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    freq = rng.uniform(0.45, 0.8, (n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 2, 1, 1)).astype(np.float32)
    centre = rng.uniform(10, 22, (n, 2, 1, 1)).astype(np.float32)
    width = rng.uniform(4, 7, (n, 1, 1)).astype(np.float32)
    signal = np.empty((n, 32, 32), dtype=np.float32)  # values in [-1, 1]
    for k, pattern in enumerate(_PATTERNS):
        i = np.flatnonzero(labels % len(_PATTERNS) == k)
        f, p0, p1 = freq[i], phase[i, 0], phase[i, 1]
        radius = np.hypot(yy - centre[i, 0], xx - centre[i, 1])
        if pattern == "h-stripes":
            signal[i] = np.sin(f * yy + p0)
        elif pattern == "v-stripes":
            signal[i] = np.sin(f * xx + p0)
        elif pattern == "checks":
            signal[i] = np.sign(np.sin(f * xx + p0) * np.sin(f * yy + p1))
        elif pattern == "rings":
            signal[i] = np.sin(f * radius + p0)
        else:  # a soft blob
            signal[i] = 2 * np.exp(-(radius**2) / (2 * width[i] ** 2)) - 1
    palettes = np.array(list(_PALETTES.values()), dtype=np.float32)  # palette x (low, high) x RGB
    low, high = (palettes[labels // len(_PATTERNS), k] + rng.normal(0, 20, (n, 3)) for k in (0, 1))
    mix = (signal[:, None] + 1) / 2  # n x 1 x 32 x 32
    images = low[:, :, None, None] + (high - low)[:, :, None, None] * mix
    images += rng.normal(0, 30, images.shape) + rng.normal(0, 15, (n, 1, 1, 1))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(n, -1)


def _write_pickle(path: Path, entry: dict) -> None:
    with open(path, "wb") as file:
        pickle.dump(entry, file, protocol=4)  # protocol 4: what the official files and tools read


def make_synthetic_cifar10(
    root: str | os.PathLike, *, n_train: int = 2000, n_test: int = 500, seed: int = 0
) -> Path:
    """Write a learnable, CIFAR-shaped dataset in the official python layout; same seed, same bytes.

    Its ten classes differ in pattern (stripes, checks, rings, blob) and palette (warm, cool),
    hidden under noise, so the real reader, loader and a short training run can be tested offline.
    """
    if n_train < len(TRAIN_FILES) or n_test < 1:
        raise ValueError(f"need n_train >= {len(TRAIN_FILES)} and n_test >= 1, got {n_train} and {n_test}")
    rng = np.random.default_rng(seed)
    folder = Path(root) / BATCH_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = rng.permutation(np.arange(n_train) % 10)
    test_labels = rng.permutation(np.arange(n_test) % 10)
    train_data, test_data = (
        _synthetic_images(train_labels, rng),
        _synthetic_images(test_labels, rng),
    )
    chunks = np.array_split(np.arange(n_train), len(TRAIN_FILES))
    for k, ((name, _), chunk) in enumerate(zip(TRAIN_FILES, chunks, strict=True), start=1):
        _write_pickle(
            folder / name,
            {
                "batch_label": f"synthetic training batch {k} of {len(TRAIN_FILES)}",
                "labels": train_labels[chunk].tolist(),
                "data": train_data[chunk],
                "filenames": [f"synthetic_{i:06d}.png" for i in chunk],
            },
        )
    _write_pickle(
        folder / TEST_FILES[0][0],
        {
            "batch_label": "synthetic testing batch 1 of 1",
            "labels": test_labels.tolist(),
            "data": test_data,
            "filenames": [f"synthetic_test_{i:06d}.png" for i in range(n_test)],
        },
    )
    _write_pickle(
        folder / META_FILE[0],
        {
            "label_names": synthetic_class_names(),
            "num_cases_per_batch": len(chunks[0]),
            "num_vis": 3072,
        },
    )
    return folder


# --------------------------------------------------------------------------- the loader


def channel_stats(images: Tensor, chunk: int = 8192) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation of uint8 images, in pixel units (0-255)."""
    total = torch.zeros(images.shape[1], dtype=torch.float64, device=images.device)
    squares = torch.zeros_like(total)
    for start in range(0, len(images), chunk):  # chunks keep the float copy small
        block = images[start : start + chunk].double()
        total += block.sum(dim=(0, 2, 3))
        squares += block.square().sum(dim=(0, 2, 3))
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def pad_with_mirrors(images: Tensor, padding: int = CROP_PADDING) -> Tensor:
    """Reflect-padded images followed by their mirror images (2N of them), stored channels-last.

    Keeping the mirrored copy makes a flipped crop as cheap as a plain one: both are one gather.
    Reflect padding keeps normalised statistics at mean 0 and std 1, unlike black borders.
    """
    padded = F.pad(images, (padding,) * 4, mode="reflect")
    return torch.cat([padded, padded.flip(3)]).contiguous(memory_format=torch.channels_last)


def crop_windows(padded: Tensor, size: int) -> Tensor:
    """Every ``size`` x ``size`` window of every padded image, as a view: N x shifts x shifts x H x W x C.

    Indexing it with (image, row shift, column shift) gathers a batch of crops in one copy.
    """
    nhwc = padded.permute(0, 2, 3, 1)  # channels last, so each crop row is a contiguous run
    n, height, width, channels = nhwc.shape
    s_n, s_h, s_w, s_c = nhwc.stride()
    shape = (n, height - size + 1, width - size + 1, size, size, channels)
    return nhwc.as_strided(shape, (s_n, s_h, s_w, s_h, s_w, s_c), nhwc.storage_offset())


def random_crop_flip(images: Tensor, shifts: Tensor, flips: Tensor, padding: int = CROP_PADDING) -> Tensor:
    """Crop each reflect-padded image at its ``shifts`` (row, col) offset; use its mirror where ``flips``.

    ``shifts`` run from 0 to ``2 * padding`` (``padding`` = centred). A flipped crop at column
    shift ``s`` is the mirror of the plain crop at ``2 * padding - s``.
    """
    windows = crop_windows(pad_with_mirrors(images, padding), images.shape[-1])
    index = torch.arange(len(images), device=images.device) + len(images) * flips.long()
    return windows[index, shifts[:, 0], shifts[:, 1]].permute(0, 3, 1, 2)


class CIFARLoader:
    """Batches of normalised (and, for training, augmented) images straight from device memory.

    Each epoch's order and augmentation come from ``(seed, epoch)`` drawn on the CPU, so the
    same seed gives the same batches on any device and a resumed run sees the same data.
    Training loaders shuffle, augment and drop the ragged last batch by default; evaluation
    loaders keep the order and every image, and need the training set's ``stats``.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        batch_size: int,
        *,
        train: bool,
        device: str | torch.device | None = None,
        augment: bool | None = None,
        seed: int = 0,
        drop_last: bool | None = None,
        channels_last: bool = True,
        stats: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if stats is None and not train:
            raise ValueError(
                "an evaluation loader must normalise with the training set's statistics: "
                "pass stats=train_loader.stats"
            )
        self.device = pick_device(device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.train = train
        self.augment = train if augment is None else augment
        # Training drops the ragged last batch: steady batch-norm statistics and compiled shapes.
        self.drop_last = train if drop_last is None else drop_last
        self.seed = seed
        self.channels_last = channels_last
        self.stats = channel_stats(images) if stats is None else stats
        mean, std = (s.to(self.device, torch.float32) for s in self.stats)
        self._scale, self._shift = 1 / std, -mean / std  # per channel, applied to channels-last pixels
        # The dataset lives on the device once, reflect-padded, with a mirrored copy, channels-last:
        # a batch of augmented crops is then a single gather from a strided view. The copy is
        # prepared where the images are (usually the CPU) and moved once.
        self._n_images = len(images)
        padded = (
            pad_with_mirrors(images) if self.augment else images.contiguous(memory_format=torch.channels_last)
        )
        self._windows = crop_windows(padded.to(self.device), images.shape[-1])
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield epoch ``epoch``'s order and augmentation."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        n = len(self.labels)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = (torch.randperm(n, generator=generator) if self.train else torch.arange(n)).to(self.device)
        if self.augment:
            shifts = torch.randint(0, 2 * CROP_PADDING + 1, (n, 2), generator=generator).to(self.device)
            flips = (torch.rand(n, generator=generator) < 0.5).to(self.device)
            source = order + self._n_images * flips.long()  # mirrored copies sit after the originals
        else:
            shifts, source = torch.zeros(n, 2, dtype=torch.long, device=self.device), order
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = slice(start, start + self.batch_size)
            crops = self._windows[source[batch], shifts[batch, 0], shifts[batch, 1]]  # B x H x W x C uint8
            images = torch.addcmul(self._shift, crops.float(), self._scale).permute(0, 3, 1, 2)  # NCHW view
            yield (images if self.channels_last else images.contiguous()), self.labels[order[batch]]
