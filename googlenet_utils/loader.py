"""A device-resident CIFAR loader: padding, crop windows, channel statistics, augmentation, batches.

The loader keeps the whole uint8 dataset on the device and augments whole batches there: at
32x32 pixels the data is 150 MB, so copying it once beats decoding and collating it on CPU
workers every epoch. Each epoch's order and augmentation are drawn on the CPU from
``(seed, epoch)``, so every device, every number of processes and every resumed run sees the
same stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .devices import pick_device
from .errors import ConfigError

CROP_PADDING = 4


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


class PaddedImages:
    """Images reflect-padded once, followed by their mirror images, channels-last, as crop windows.

    ``crops`` then cuts any batch of (image, row shift, column shift, flip) in a single gather:
    a flipped crop is a window into the mirrored copy, so flipping costs nothing.
    """

    def __init__(
        self, images: Tensor, padding: int = CROP_PADDING, device: torch.device | None = None
    ) -> None:
        self.n_images, self.padding, self.size = len(images), padding, images.shape[-1]
        if padding:
            padded = F.pad(images, (padding,) * 4, mode="reflect")  # see notebook 03 for black borders
            padded = torch.cat([padded, padded.flip(3)])
        else:
            padded = images
        nhwc = padded.permute(0, 2, 3, 1).contiguous()  # each crop row is then one contiguous run
        nhwc = nhwc.to(device) if device is not None else nhwc
        n, height, width, channels = nhwc.shape
        s_n, s_h, s_w, s_c = nhwc.stride()
        shape = (n, height - self.size + 1, width - self.size + 1, self.size, self.size, channels)
        self.windows = nhwc.as_strided(shape, (s_n, s_h, s_w, s_h, s_w, s_c), nhwc.storage_offset())

    def crops(self, index: Tensor, shifts: Tensor | None = None, flips: Tensor | None = None) -> Tensor:
        """Crops (B x H x W x C uint8) of images ``index`` at ``shifts`` (row, col in 0..2*padding).

        Without shifts the crop is centred; a flipped crop at column shift ``s`` is the mirror of
        the plain crop at ``2 * padding - s``.
        """
        if shifts is None:
            shifts = torch.full((len(index), 2), self.padding, dtype=torch.long, device=index.device)
        if flips is not None and self.padding:
            index = index + self.n_images * flips.long()  # mirrored copies sit after the originals
        return self.windows[index, shifts[:, 0], shifts[:, 1]]


def random_crop_flip(images: Tensor, shifts: Tensor, flips: Tensor, padding: int = CROP_PADDING) -> Tensor:
    """Crop each reflect-padded image at its ``shifts`` (row, col) offset; mirror it where ``flips``.

    ``shifts`` run from 0 to ``2 * padding`` (``padding`` = centred). This is the function the
    training loader uses, applied to a whole set at once; it returns N x C x H x W uint8.
    """
    padded = PaddedImages(images, padding)
    return padded.crops(torch.arange(len(images)), shifts, flips).permute(0, 3, 1, 2)


def cutout(images: Tensor, centres: Tensor, size: int) -> Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) around each image's centre (row, col).

    Applied after normalisation, zero is the training set's mean colour (DeVries & Taylor, 2017).
    ``images`` is N x C x H x W in any memory layout.
    """
    rows = torch.arange(images.shape[-2], device=images.device)
    cols = torch.arange(images.shape[-1], device=images.device)
    low = centres - size // 2
    inside_rows = (rows[None] >= low[:, :1]) & (rows[None] < low[:, :1] + size)
    inside_cols = (cols[None] >= low[:, 1:]) & (cols[None] < low[:, 1:] + size)
    hole = inside_rows[:, None, :, None] & inside_cols[:, None, None, :]
    return images.masked_fill(hole, 0.0)


@dataclass(frozen=True)
class EpochDraw:
    """One epoch's order and augmentation, drawn on the CPU from ``(seed, epoch)``."""

    order: Tensor
    shifts: Tensor | None
    flips: Tensor | None
    centres: Tensor | None  # cutout centres


def draw_epoch(
    n: int, *, seed: int, epoch: int, shuffle: bool, augment: bool, padding: int, cutout_size: int, size: int
) -> EpochDraw:
    """The same draw on every device and every rank: a resumed or distributed run sees the same stream."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    shifts = flips = centres = None
    if augment:
        shifts = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        if cutout_size:
            centres = torch.randint(0, size, (n, 2), generator=generator)
    return EpochDraw(order, shifts, flips, centres)


class CIFARLoader:
    """Batches of normalised (and, for training, augmented) images straight from device memory.

    Training loaders shuffle, crop, flip (and optionally cut out) and drop the ragged last
    batch by default; evaluation loaders keep the order and every image, and need the
    training set's ``stats``. With ``world_size > 1`` each process takes its own slice of
    every global batch of ``batch_size`` images, so the union over ranks is exactly the
    single-process batch.
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
        cutout_size: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 N x 3 x H x W, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (len(images),):
            raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in 0..{world_size - 1}, got {rank}")
        if train and batch_size % world_size:
            raise ConfigError(
                f"the batch of {batch_size} images cannot be split evenly over {world_size} processes: "
                f"choose a batch size divisible by {world_size} "
                f"(e.g. {batch_size - batch_size % world_size}) "
                "or another number of processes"
            )
        if stats is None and not train:
            raise ValueError(
                "an evaluation loader must normalise with the training set's statistics: "
                "pass stats=train_loader.stats"
            )
        # A torch.device was resolved by the caller (the trainer): only a name is resolved here.
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = batch_size
        self.train = train
        self.augment = train if augment is None else augment
        # Training drops the ragged last batch: steady batch-norm statistics and compiled shapes.
        self.drop_last = train if drop_last is None else drop_last
        self.seed = seed
        self.channels_last = channels_last
        self.cutout_size = cutout_size if self.augment else 0
        self.rank, self.world_size = rank, world_size
        self.stats = channel_stats(images) if stats is None else stats
        mean, std = (s.to(self.device, torch.float32) for s in self.stats)
        self._scale, self._shift = 1 / std, -mean / std  # per channel, applied to channels-last pixels
        # Prepared where the images are (usually the CPU), then moved to the device once.
        self._images = PaddedImages(images, CROP_PADDING if self.augment else 0, self.device)
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    @property
    def local_batch_size(self) -> int:
        """Images per step in this process (the global batch divided by the number of processes)."""
        return (
            self.batch_size // self.world_size if self.train else math.ceil(self.batch_size / self.world_size)
        )

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield epoch ``epoch``'s order and augmentation."""
        self.epoch = epoch

    def _local(self, start: int, stop: int) -> slice:
        """This rank's part of the global batch [start, stop)."""
        size = math.ceil((stop - start) / self.world_size)
        low = min(stop, start + self.rank * size)
        return slice(low, min(stop, low + size))

    def batch_indices(self) -> Iterator[Tensor]:
        """The dataset indices of this rank's batches in the current epoch (without advancing it)."""
        draw = self._draw(self.epoch)
        n = len(self.labels)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield draw.order[self._local(start, min(n, start + self.batch_size))]

    def _draw(self, epoch: int) -> EpochDraw:
        return draw_epoch(
            len(self.labels),
            seed=self.seed,
            epoch=epoch,
            shuffle=self.train,
            augment=self.augment,
            padding=CROP_PADDING,
            cutout_size=self.cutout_size,
            size=self._images.size,
        )

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        draw = self._draw(epoch)
        on_device = [
            t.to(self.device) if t is not None else None for t in (draw.shifts, draw.flips, draw.centres)
        ]
        shifts, flips, centres = on_device
        order = draw.order.to(self.device)
        n = len(self.labels)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            mine = self._local(start, min(n, start + self.batch_size))
            index = order[mine]
            crops = self._images.crops(
                index,
                shifts[mine] if shifts is not None else None,
                flips[mine] if flips is not None else None,
            )  # B x H x W x C uint8
            images = torch.addcmul(self._shift, crops.float(), self._scale).permute(0, 3, 1, 2)  # NCHW view
            if centres is not None:
                images = cutout(images, centres[mine], self.cutout_size)
            yield (images if self.channels_last else images.contiguous()), self.labels[index]
