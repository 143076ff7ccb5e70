"""What ``metrics.json`` and ``test_predictions.pt`` hold: the only place that spells their keys.

``RunMetrics`` is ``metrics.json`` as a frozen dataclass: the trainer builds one, ``RunDir``
writes it, ``load_run`` reads it back, and everyone else uses its attributes. The test
predictions are ``evaluation.Predictions`` (every head's and view's logits) plus the class
names; ``predictions_to_file`` and ``predictions_from_file`` translate to the file's keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from .errors import UserError
from .evaluation import Predictions


class RunFileError(UserError):
    """A run's file does not hold what a run writes; the message names the file."""


@dataclass(frozen=True)
class RunMetrics:
    """``metrics.json``: the best epoch's test result, the run's timings, and what is needed to trust it."""

    test_accuracy: float  # the main head with the run's test-time augmentation
    test_accuracy_no_tta: float
    tta: str
    test_loss: float
    test_per_class_accuracy: dict[str, float]
    test_aux_accuracy: dict[str, float]
    best_val_accuracy: float
    best_epoch: int
    epochs: int  # epochs trained (a time budget or the wall-clock guard may end a run early)
    train_seconds: float
    compile_seconds: float
    wall_seconds: float
    images_per_s: float  # median over epochs after the first, which pays for warm-up
    time_to_val_accuracy: dict[str, float | None]  # "0.90" -> seconds of training, None: never
    parameters: dict[str, int]  # "train" (with the auxiliary heads) and "inference"
    data: dict[str, Any]  # source, digest and split sizes
    recipe: str | None
    width: float
    device: str
    processes: int
    precision: str
    compiled: bool
    versions: dict[str, str]
    # Recorded since time budgets exist; runs from before read as None.
    planned_epochs: int | None = None
    time_budget: dict[str, Any] | None = None
    stopped_early: str | None = None

    @property
    def data_source(self) -> str:
        """The data in words, as the run recorded it."""
        return str(self.data.get("source", "unknown data"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Any, where: object) -> RunMetrics:
        """``values`` read from ``where``; ``RunFileError`` naming what is missing or unknown."""
        if not isinstance(values, dict):
            raise RunFileError(f"{where} holds a {type(values).__name__}, not the metrics a run writes")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        required = [n for n, f in fields.items() if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in values]
        unknown = [name for name in values if name not in fields]
        if missing or unknown:
            problems = ([f"lacks {', '.join(missing)}"] if missing else []) + (
                [f"has unknown {', '.join(unknown)}"] if unknown else []
            )
            raise RunFileError(f"{where} is not the metrics a run writes: it {' and '.join(problems)}")
        return cls(**values)


# The file's keys for each field of Predictions (the auxiliary heads keep their own names).
_LOGIT_KEYS = {"logits": "logits", "flipped": "logits_flipped", "tta": "logits_tta"}
AUX_HEADS = ("aux1", "aux2")


def predictions_to_file(predictions: Predictions, classes: list[str]) -> dict[str, Any]:
    """``test_predictions.pt``'s content: every head's and view's logits, the labels, the class names."""
    values: dict[str, Any] = {key: getattr(predictions, name) for name, key in _LOGIT_KEYS.items()}
    values.update({head: predictions.aux.get(head) for head in AUX_HEADS})
    return {**values, "labels": predictions.labels, "classes": list(classes)}


def predictions_from_file(values: Any, where: object) -> tuple[Predictions, list[str]]:
    """The ``Predictions`` and class names in a loaded ``test_predictions.pt``."""
    if not isinstance(values, dict) or not isinstance(values.get("logits"), Tensor):
        raise RunFileError(f"{where} does not hold the test predictions of a run; the run is damaged")
    predictions = Predictions(
        labels=values["labels"],
        **{name: values.get(key) for name, key in _LOGIT_KEYS.items()},
        aux={head: values[head] for head in AUX_HEADS if values.get(head) is not None},
    )
    return predictions, list(values.get("classes") or [])
