"""A synthetic twin of CIFAR-10 in the official layout: the tests and smoke mode run on it offline.

Its ten classes differ in pattern (stripes, checks, rings, blob) and palette (warm, cool),
hidden under noise, so the real reader, the loader and a short training run can be tested
without the real data. ``batches.meta`` states its provenance, which the loader reports.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from .cifar10 import BATCH_FOLDER, META_FILE, PROVENANCE_KEY, TEST_FILES, TRAIN_FILES, DatasetError
from .errors import is_disk_full

SYNTHETIC_SOURCE = "synthetic stand-in (not CIFAR-10 images)"
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
    try:
        with open(path, "wb") as file:
            pickle.dump(entry, file, protocol=4)  # protocol 4: what the official files and tools read
    except OSError as error:
        if not is_disk_full(error):
            raise
        path.unlink(missing_ok=True)  # no half-written batch that would later read as corrupted
        raise DatasetError(
            f"disk full while writing the synthetic stand-in's {path.name} into {path.parent}: it needs "
            "about 3 KB per image; free some space there or write it elsewhere"
        ) from error


def make_synthetic_cifar10(
    root: str | os.PathLike, *, n_train: int = 2000, n_test: int = 500, seed: int = 0
) -> Path:
    """Write a learnable, CIFAR-shaped dataset in the official python layout; same seed, same bytes."""
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
            PROVENANCE_KEY: f"{SYNTHETIC_SOURCE}, seed {seed}: {n_train:,} training + {n_test:,} test images",
        },
    )
    return folder
