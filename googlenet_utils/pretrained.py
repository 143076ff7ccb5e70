"""A well-trained GoogLeNet to look inside: torchvision's ImageNet weights, for learners with a network.

The weights (about 50 MB) download once into PyTorch's cache. Without a network (CI, smoke mode,
an offline machine) ``imagenet_googlenet`` returns ``None`` and says why, and the notebook skips
its section; every other function here works with any weights, and the tests use random ones.
The photo comes with matplotlib (``matplotlib.cbook.get_sample_data``), so no download is needed.
"""

from __future__ import annotations

import contextlib
import io
import socket
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .probes import shared_scale

# torchvision's ImageNet preprocessing for these weights: resize to 256, centre crop 224, normalise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SAMPLE_PHOTO = "grace_hopper.jpg"  # a portrait in matplotlib's sample data (Grace Hopper in uniform)


def _weights():
    from torchvision.models import GoogLeNet_Weights

    return GoogLeNet_Weights.IMAGENET1K_V1


def cached_weights() -> Path | None:
    """Where the weights sit in PyTorch's download cache, if they are there already."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights().url).name
    return path if path.is_file() else None


def imagenet_googlenet(allow_download: bool, timeout: float = 20.0) -> tuple[nn.Module | None, str]:
    """torchvision's ImageNet-trained ``googlenet`` in eval mode and where it came from, or None and why."""
    from torchvision.models import googlenet

    if cached_weights() is None and not allow_download:
        return None, "skipped: downloads are off here (smoke mode and CI have no network)"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # an offline machine fails in seconds instead of hanging
    try:
        quiet = io.StringIO()  # torch.hub prints "Downloading ... to <this machine's cache path>"
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            model = googlenet(weights=_weights(), progress=False)
    except Exception as error:  # no network, a proxy, a full disk: say so, and let the notebook go on
        first = str(error).splitlines()[0] if str(error) else ""
        return None, f"skipped: the weights could not be downloaded ({type(error).__name__}: {first[:120]})"
    finally:
        socket.setdefaulttimeout(previous)
    return model.eval(), "torchvision's googlenet with its ImageNet weights (IMAGENET1K_V1)"


def random_googlenet() -> nn.Module:
    """The same network with random weights (what the tests use; no download)."""
    from torchvision.models import googlenet

    return googlenet(weights=None, aux_logits=False, init_weights=True).eval()


def sample_photo(size: int = 224) -> tuple[Tensor, str]:
    """matplotlib's sample photo as uint8 3 x size x size: shorter side to size * 8/7, centre crop."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data(SAMPLE_PHOTO) as file:
        image = Image.open(file).convert("RGB")
    scale = round(size * 256 / 224) / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    pixels = np.asarray(image.crop((left, top, left + size, top + size)))
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1), SAMPLE_PHOTO


def imagenet_normalise(images: Tensor) -> Tensor:
    """uint8 N x 3 x H x W images as the float input these weights expect."""
    mean = torch.tensor(IMAGENET_MEAN)[None, :, None, None]
    std = torch.tensor(IMAGENET_STD)[None, :, None, None]
    return (images.float() / 255 - mean) / std


def top_classes(model: nn.Module, inputs: Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet classes for one normalised image, with their probabilities."""
    names = _weights().meta["categories"]
    with torch.no_grad():
        probabilities = model.eval()(inputs[:1]).softmax(dim=1)[0]
    values, indices = probabilities.topk(k)
    return [(names[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]


def first_filters(model: nn.Module) -> Tensor:
    """torchvision's first-layer kernels (64 x 3 x 7 x 7) on one colour scale (``probes.shared_scale``)."""
    return shared_scale(model.conv1.conv.weight)


def weights_facts() -> str:
    """What torchvision's documentation records for these weights: accuracy, size, provenance."""
    meta = _weights().meta
    metrics = meta["_metrics"]["ImageNet-1K"]
    return (
        f"{meta['num_params']:,} parameters, {meta['_file_size']:.0f} MB; ImageNet-1K validation accuracy "
        f"{metrics['acc@1']:.2f}% top-1, {metrics['acc@5']:.2f}% top-5 (torchvision's record: "
        f'"{meta["_docs"]}")'
    )
