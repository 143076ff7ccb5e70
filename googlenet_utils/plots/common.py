"""What every figure module shares: images for imshow, figures outside pyplot, grids, colours."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

HEAD_COLOURS = {"main": "tab:blue", "aux1": "tab:orange", "aux2": "tab:green"}


def _image(pixels: Tensor) -> np.ndarray:
    """A C x H x W image (uint8, or float in [0, 1]) as H x W x C for ``imshow``."""
    array = pixels.detach().cpu()
    array = array.float() / 255 if array.dtype == torch.uint8 else array.float().clamp(0, 1)
    return array.permute(1, 2, 0).numpy()


def _subplots(*args: Any, figsize: tuple[float, float], **kwargs: Any) -> tuple[Figure, Any]:
    """Like ``plt.subplots`` but outside pyplot, so notebooks show the returned figure exactly once."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def _grid(n: int, columns: int, size: float = 1.6) -> tuple[Figure, np.ndarray]:
    rows = max(1, -(-n // columns))
    fig, axes = _subplots(rows, columns, figsize=(columns * size, rows * size + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes


def _row_label(ax: Any, text: str) -> None:
    """A label left of an image panel whose axis is switched off (a y label would not show)."""
    ax.text(-0.08, 0.5, text, rotation=90, ha="right", va="center", fontsize=9, transform=ax.transAxes)
