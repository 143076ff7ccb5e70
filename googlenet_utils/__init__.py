"""Helpers for the GoogLeNet course: the model, CIFAR-10 data, training and analysis."""

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .data import (
    CIFAR10Data,
    CIFARLoader,
    DatasetError,
    ImageSet,
    download_cifar10,
    load_cifar10,
    make_synthetic_cifar10,
    split_validation,
)
from .model import (
    INCEPTION_TABLE,
    AuxClassifier,
    GoogLeNet,
    GoogLeNetOutputs,
    InceptionModule,
    googlenet_loss,
)

# The training module is imported on first use, so that `python -m googlenet_utils.train` runs it
# once as a script instead of importing it twice (as a package member and as __main__).
_FROM_TRAIN = ("Run", "TrainConfig", "evaluate", "fit")


def __getattr__(name: str):
    if name in _FROM_TRAIN:
        from . import train

        return getattr(train, name)
    raise AttributeError(f"module 'googlenet_utils' has no attribute {name!r}")


__all__ = [
    "INCEPTION_TABLE",
    "AuxClassifier",
    "CIFAR10Data",
    "CIFARLoader",
    "CheckpointError",
    "DatasetError",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "ImageSet",
    "InceptionModule",
    "Run",
    "TrainConfig",
    "download_cifar10",
    "evaluate",
    "fit",
    "googlenet_loss",
    "load_checkpoint",
    "load_cifar10",
    "make_synthetic_cifar10",
    "model_from_checkpoint",
    "split_validation",
]
__version__ = "0.1.0"
