"""Evaluating a model: raw logits of every head and view (``predict``), then metrics from them (``score``).

Test-time augmentation (TTA) averages the logits of several views of each image: ``"flip"``
adds the mirror image; ``"flip+translate"`` adds both of them shifted by two pixels down-right
and up-left as well (six views). Every view is laid out in memory like the batch it came from,
so a compiled model sees one shape and one layout and compiles once (``compile_views``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .devices import autocast_dtype, synchronize
from .distributed import Distributed, gather_rows
from .loader import CIFARLoader

TRANSLATE = 2  # pixels; reflect-padded, like the training crops
VIEWS = {"none": 1, "flip": 2, "flip+translate": 6}


@dataclass
class Predictions:
    """Logits (float32, on the CPU) for one evaluation set, in the loader's order."""

    labels: Tensor
    logits: Tensor  # the plain images
    flipped: Tensor | None = None  # their mirror images
    tta: Tensor | None = None  # the mean over the TTA mode's views (plain + flipped for "flip")
    aux: dict[str, Tensor] = field(default_factory=dict)

    def combined(self) -> Tensor:
        """The logits the TTA mode produces (the plain logits without TTA)."""
        return self.tta if self.tta is not None else self.logits


@dataclass
class Metrics:
    """Loss and accuracy of the main head (with the TTA mode), per class, and of each auxiliary head."""

    loss: float
    accuracy: float
    accuracy_plain: float
    per_class_accuracy: list[float]
    aux_accuracy: dict[str, float]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of rows whose highest logit is the label."""
    return (logits.argmax(1) == labels).float().mean().item()


def score(predictions: Predictions, num_classes: int | None = None) -> Metrics:
    """Metrics from predictions: nothing here runs the model."""
    labels, combined = predictions.labels, predictions.combined()
    num_classes = num_classes or combined.shape[1]
    correct = combined.argmax(1) == labels
    totals = torch.bincount(labels, minlength=num_classes).clamp_min(1)
    hits = torch.bincount(labels[correct], minlength=num_classes)
    return Metrics(
        loss=F.cross_entropy(combined, labels).item(),
        accuracy=correct.float().mean().item(),
        accuracy_plain=accuracy(predictions.logits, labels),
        per_class_accuracy=(hits / totals).tolist(),
        aux_accuracy={name: accuracy(logits, labels) for name, logits in predictions.aux.items()},
    )


def _translate(images: Tensor, rows: int, cols: int) -> Tensor:
    """Images shifted by (rows, cols) pixels, the uncovered border reflected."""
    pad = F.pad(images, (TRANSLATE,) * 4, mode="reflect")
    height, width = images.shape[-2:]
    top, left = TRANSLATE - rows, TRANSLATE - cols
    return pad[..., top : top + height, left : left + width]


def _layout(images: Tensor) -> torch.memory_format:
    """The memory format a batch is in: channels-last (the model's on a GPU) or the default."""
    return (
        torch.channels_last
        if images.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )


def _views(images: Tensor, tta: str) -> list[Tensor]:
    """The TTA mode's views, each contiguous in the batch's layout: a compiled model then sees the
    strides it was compiled for (a shifted view is a slice of a padded tensor, with other strides)."""
    views = [images]
    if tta in ("flip", "flip+translate"):
        views.append(images.flip(3))
    if tta == "flip+translate":
        for shift in (TRANSLATE, -TRANSLATE):
            moved = _translate(images, shift, shift)
            views += [moved, moved.flip(3)]
    layout = _layout(images)
    return [view.contiguous(memory_format=layout) for view in views]


def _heads(forward: Callable[[Tensor], object], view: Tensor, dtype: torch.dtype | None) -> object:
    with torch.autocast(view.device.type, dtype=dtype, enabled=dtype is not None):
        return forward(view)


@torch.inference_mode()
def predict(
    model: nn.Module,
    loader: CIFARLoader,
    *,
    tta: str = "none",
    precision: str = "fp32",
    forward: Callable[[Tensor], object] | None = None,
    distributed: Distributed | None = None,
) -> Predictions:
    """Logits of every head for every image of ``loader`` (gathered from all processes).

    Batches are padded to the loader's batch size, so a compiled ``forward`` sees one shape.
    ``forward`` defaults to ``model.forward_heads`` (all heads, also in eval mode) or ``model``.
    """
    was_training = model.training
    model.eval()
    forward, dtype = _evaluation_forward(model, forward), autocast_dtype(precision)
    parts: dict[str, list[Tensor]] = {}
    indices = torch.cat(list(loader.batch_indices())) if distributed is not None else None
    try:
        for images, labels in loader:
            size = len(images)
            padded = _pad_batch(images, loader.local_batch_size)
            for view_index, view in enumerate(_views(padded, tta)):
                heads = _heads(forward, view, dtype)
                main = heads[0] if isinstance(heads, tuple) else heads
                parts.setdefault(f"view{view_index}", []).append(main[:size].float())
                if view_index == 0 and isinstance(heads, tuple):
                    for name, head in zip(("aux1", "aux2"), heads[1:], strict=True):
                        if head is not None:
                            parts.setdefault(name, []).append(head[:size].float())
            parts.setdefault("labels", []).append(labels)
    finally:
        model.train(was_training)
    gathered = {name: _gather(torch.cat(chunks), indices, distributed) for name, chunks in parts.items()}
    views = [gathered[f"view{k}"] for k in range(VIEWS[tta])]
    return Predictions(
        labels=gathered["labels"],
        logits=views[0],
        flipped=views[1] if len(views) > 1 else None,
        tta=torch.stack(views).mean(0) if len(views) > 1 else None,
        aux={name: gathered[name] for name in ("aux1", "aux2") if name in gathered},
    )


@torch.inference_mode()
def compile_views(
    model: nn.Module,
    loader: CIFARLoader,
    tta_modes: Iterable[str],
    *,
    precision: str = "fp32",
    forward: Callable[[Tensor], object] | None = None,
) -> None:
    """Run every view of every mode in ``tta_modes`` on one padded batch of ``loader``, once.

    With a compiled ``forward`` this is what compiles the evaluation, before any clock starts:
    the views share the batch's shape and layout, so later evaluations find the graph ready.
    """
    forward, dtype = _evaluation_forward(model, forward), autocast_dtype(precision)
    padded = _first_batch(loader)
    was_training = model.training
    model.eval()
    try:
        for mode in dict.fromkeys(tta_modes):
            for view in _views(padded, mode):
                _heads(forward, view, dtype)
    finally:
        model.train(was_training)


@torch.inference_mode()
def time_views(
    model: nn.Module,
    loader: CIFARLoader,
    *,
    precision: str = "fp32",
    forward: Callable[[Tensor], object] | None = None,
    repeats: int = 2,
) -> float:
    """Seconds one view of one evaluation batch takes: ``predict`` costs that per batch and view.

    One untimed call comes first: it allocates (and compiles, if ``compile_views`` has not).
    """
    forward, dtype = _evaluation_forward(model, forward), autocast_dtype(precision)
    padded = _first_batch(loader)
    was_training = model.training
    model.eval()
    try:
        _heads(forward, padded, dtype)
        synchronize(loader.device)
        start = time.perf_counter()
        for _ in range(repeats):
            _heads(forward, padded, dtype)
        synchronize(loader.device)
    finally:
        model.train(was_training)
    return (time.perf_counter() - start) / repeats


def _evaluation_forward(model: nn.Module, forward: Callable[[Tensor], object] | None) -> Callable:
    return forward if forward is not None else getattr(model, "forward_heads", model)


def _first_batch(loader: CIFARLoader) -> Tensor:
    images, _ = next(iter(loader))
    return _pad_batch(images, loader.local_batch_size)


def evaluate(model: nn.Module, loader: CIFARLoader, **options: object) -> Metrics:
    """``score(predict(model, loader, **options))``: loss and accuracy (with ``tta``), per class too."""
    return score(predict(model, loader, **options))


def _pad_batch(images: Tensor, size: int) -> Tensor:
    """The batch followed by zero images up to ``size``, in the batch's memory layout."""
    if len(images) >= size:
        return images
    padded = torch.empty(
        (size, *images.shape[1:]), dtype=images.dtype, device=images.device, memory_format=_layout(images)
    )
    padded[len(images) :] = 0
    padded[: len(images)] = images
    return padded


def _gather(local: Tensor, indices: Tensor | None, distributed: Distributed | None) -> Tensor:
    """All processes' rows, put back in dataset order (each rank held a slice of every batch)."""
    if distributed is None:
        return local.cpu()
    rows = torch.cat(gather_rows(local, distributed)).cpu()
    order = torch.cat(gather_rows(indices.to(local.device), distributed)).cpu()
    result = torch.empty_like(rows)
    result[order] = rows
    return result
