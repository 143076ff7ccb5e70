"""Helpers for the GoogLeNet course: the model, CIFAR-10 data, training and analysis.

The package is layered; each module imports only from the layers below it:

    model, devices, complexity, errors, distributed        the network and the machine
    cifar10, synthetic, loader                             the data
    recipe, budget, checkpoint, rundir, evaluation, ema    pieces of a run
    trainer                                                the training loop
    cli, analysis, plots, course, bench, gpu_report        what people and notebooks call

The root exports the building blocks below the training loop, so that importing the package,
its analysis or its plots never imports the trainer; train with ``googlenet_utils.trainer.fit``.
"""

from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint
from .cifar10 import CIFAR10Data, DatasetError, ImageSet, download_cifar10, load_cifar10, split_validation
from .errors import ConfigError, UserError
from .evaluation import Metrics, Predictions, evaluate, predict, score
from .loader import CIFARLoader
from .model import (
    INCEPTION_TABLE,
    AuxClassifier,
    GoogLeNet,
    GoogLeNetOutputs,
    InceptionModule,
    ModelConfig,
    googlenet_loss,
)
from .recipe import RECIPES, Recipe, TrainConfig
from .run_record import RunRecord, load_run
from .run_schema import RunMetrics
from .rundir import RunDir
from .synthetic import make_synthetic_cifar10

__all__ = [
    "INCEPTION_TABLE",
    "RECIPES",
    "AuxClassifier",
    "CIFAR10Data",
    "CIFARLoader",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "ImageSet",
    "InceptionModule",
    "Metrics",
    "ModelConfig",
    "Predictions",
    "Recipe",
    "RunDir",
    "RunMetrics",
    "RunRecord",
    "TrainConfig",
    "UserError",
    "download_cifar10",
    "evaluate",
    "googlenet_loss",
    "load_checkpoint",
    "load_cifar10",
    "load_run",
    "make_synthetic_cifar10",
    "model_from_checkpoint",
    "predict",
    "score",
    "split_validation",
]
__version__ = "0.2.0"
