"""Train GoogLeNet on CIFAR-10 with its auxiliary classifiers: fast on a GPU, resumable anywhere.

python -m googlenet_utils.train --data-dir data --out runs/googlenet --resume
python -m googlenet_utils.train --synthetic --smoke --out /tmp/smoke   # a one-minute CPU check
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .checkpoint import (
    CheckpointError,
    atomic_write,
    check_compatible,
    load_checkpoint,
    load_weights,
    restore_rng_state,
    rng_state,
    save_checkpoint,
)
from .data import (
    CIFAR10Data,
    CIFARLoader,
    DatasetError,
    load_cifar10,
    make_synthetic_cifar10,
    split_validation,
)
from .devices import PRECISIONS, autocast_dtype, pick_device, pick_precision
from .model import GoogLeNet, combine_losses, head_losses

SCHEDULES = ("cosine", "linear", "constant")
HEADS = ("main", "aux1", "aux2")
PREDICTIONS_FILE = "test_predictions.pt"
# Settings that may change when a run is resumed: they do not change what the run computes.
RESUMABLE_CHANGES = {"run_dir", "resume", "progress", "device", "compile"}


@dataclass
class TrainConfig:
    """Everything a training run depends on; ``config.json`` in the run directory records it."""

    epochs: int = field(default=80, metadata={"help": "passes over the training split"})
    batch_size: int = field(default=512, metadata={"help": "images per optimiser step"})
    lr: float = field(
        default=0.4, metadata={"help": "peak learning rate (0.1 per 128 images, scaled linearly)"}
    )
    warmup_epochs: float = field(default=3.0, metadata={"help": "linear warm-up from 0 to lr"})
    schedule: str = field(default="cosine", metadata={"help": f"decay after warm-up: {', '.join(SCHEDULES)}"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    nesterov: bool = field(default=True, metadata={"help": "Nesterov momentum"})
    weight_decay: float = field(
        default=5e-4, metadata={"help": "L2 on conv/linear weights (not on norms or biases)"}
    )
    label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing of every head's loss"})
    aux_weight: float = field(default=0.3, metadata={"help": "weight of each auxiliary loss (paper: 0.3)"})
    precision: str = field(
        default="auto",
        metadata={"help": f"{', '.join(PRECISIONS)} (auto: bf16 on GPUs, else fp16/fp32)"},
    )
    channels_last: bool = field(
        default=True, metadata={"help": "NHWC memory layout (faster tensor-core convolutions)"}
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the training step's model"})
    ema: bool = field(
        default=False, metadata={"help": "evaluate an exponential moving average of the weights"}
    )
    ema_decay: float = field(default=0.998, metadata={"help": "EMA decay per step"})
    tta: bool = field(
        default=True,
        metadata={"help": "average logits with horizontally flipped images at evaluation"},
    )
    seed: int = field(
        default=0,
        metadata={"help": "seed of the validation split, data order, augmentation and dropout"},
    )
    val_size: int = field(default=5000, metadata={"help": "training images held out for model selection"})
    eval_batch_size: int = field(default=1024, metadata={"help": "images per evaluation batch"})
    device: str = field(
        default="auto", metadata={"help": "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps"}
    )
    run_dir: str = field(
        default="runs/googlenet", metadata={"help": "where checkpoints, history and metrics go"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from run_dir/last.pt if it exists"})
    progress: bool | None = field(
        default=None, metadata={"help": "progress bars (default: in terminals and notebooks)"}
    )

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "lr", "val_size", "eval_batch_size")
        non_negative = ("warmup_epochs", "momentum", "weight_decay", "aux_weight")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)!r}")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"TrainConfig.warmup_epochs ({self.warmup_epochs}) exceeds epochs ({self.epochs})"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"TrainConfig.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"TrainConfig.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in (0, 1), got {self.ema_decay!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig.nesterov needs momentum > 0")


@dataclass
class Evaluation:
    """Loss, accuracy and per-class accuracy of a model on one loader (plus aux heads' accuracy)."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    aux_accuracy: dict[str, float]
    logits: Tensor | None = None  # N x classes, without flip (kept on request)
    logits_flipped: Tensor | None = None  # the same images mirrored (when tta)
    aux_logits: dict[str, Tensor] = field(default_factory=dict)
    labels: Tensor | None = None


@dataclass
class Run:
    """What ``fit`` leaves: the run directory, the per-epoch history and the final metrics."""

    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        return self.metrics["test_accuracy"]

    @property
    def best_val_accuracy(self) -> float:
        return self.metrics["best_val_accuracy"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last checkpoint on disk is still the last good one."""


class RunExistsError(RuntimeError):
    """The run directory already holds a checkpoint and ``resume`` was not asked for."""


# --------------------------------------------------------------------------- pieces of the recipe


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warm-up, then the chosen decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - progress
    return 1.0


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with weight decay on conv and linear weights only: decaying norms' scales and biases only hurts."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None  # Jupyter and Colab kernels; not terminal IPython


def _want_progress(setting: bool | None) -> bool:
    if setting is not None:
        return setting
    return _in_notebook() or sys.stderr.isatty()  # quiet in CI logs and pipes


def count_parameters(model: nn.Module, *, inference: bool = False) -> int:
    """Parameters used in training, or at inference (without the auxiliary heads the paper discards)."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not (inference and name.split(".")[0] in ("aux1", "aux2"))
    )


# --------------------------------------------------------------------------- evaluation


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    loader: CIFARLoader,
    *,
    tta: bool = False,
    precision: str = "fp32",
    keep_logits: bool = False,
) -> Evaluation:
    """Cross-entropy, accuracy and per-class accuracy of the main head (flip-averaged with ``tta``)."""
    was_training = model.training
    model.eval()
    dtype = autocast_dtype(precision)
    device = loader.device
    logits, flipped, labels = [], [], []
    aux: dict[str, list[Tensor]] = {"aux1": [], "aux2": []}
    try:
        for images, targets in loader:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                heads = model.forward_heads(images) if hasattr(model, "forward_heads") else None
                main = heads.logits if heads is not None else model(images)
                logits.append(main.float())
                for name in aux:
                    head = getattr(heads, name, None) if heads is not None else None
                    if head is not None:
                        aux[name].append(head.float())
                if tta:
                    flipped.append(model(images.flip(3)).float())
            labels.append(targets)
    finally:
        model.train(was_training)
    logits_all, labels_all = torch.cat(logits), torch.cat(labels)
    flipped_all = torch.cat(flipped) if tta else None
    combined = (logits_all + flipped_all) / 2 if tta else logits_all
    correct = combined.argmax(1) == labels_all
    num_classes = combined.shape[1]
    per_class_total = torch.bincount(labels_all, minlength=num_classes).clamp_min(1)
    per_class_correct = torch.bincount(labels_all[correct], minlength=num_classes)
    aux_logits = {name: torch.cat(parts) for name, parts in aux.items() if parts}
    return Evaluation(
        loss=F.cross_entropy(combined, labels_all).item(),
        accuracy=correct.float().mean().item(),
        per_class_accuracy=(per_class_correct / per_class_total).tolist(),
        aux_accuracy={
            name: (t.argmax(1) == labels_all).float().mean().item() for name, t in aux_logits.items()
        },
        logits=logits_all.cpu() if keep_logits else None,
        logits_flipped=flipped_all.cpu() if keep_logits and tta else None,
        aux_logits={name: t.cpu() for name, t in aux_logits.items()} if keep_logits else {},
        labels=labels_all.cpu() if keep_logits else None,
    )


# --------------------------------------------------------------------------- the training loop


class Trainer:
    """One training run: built once, then ``run()``; all state lives here so it can be checkpointed."""

    def __init__(self, model: nn.Module, data: CIFAR10Data, config: TrainConfig) -> None:
        self.config = config
        self.model = model
        self.data = data
        self.run_dir = Path(config.run_dir)
        self.device = pick_device(config.device)
        self.precision = pick_precision(config.precision, self.device)
        self.dtype = autocast_dtype(self.precision)
        if config.val_size >= len(data.train_labels):
            raise ValueError(
                f"TrainConfig.val_size ({config.val_size}) must be smaller than the "
                f"{len(data.train_labels)} training images"
            )
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
        train_set, val_set = split_validation(data, config.val_size, config.seed)
        if len(train_set) < config.batch_size:
            raise ValueError(
                f"TrainConfig.batch_size ({config.batch_size}) exceeds the {len(train_set)} training images "
                f"left after the validation split"
            )
        self.train_loader = CIFARLoader(
            train_set.images,
            train_set.labels,
            config.batch_size,
            train=True,
            device=self.device,
            seed=config.seed,
            channels_last=config.channels_last,
        )
        eval_args = {
            "train": False,
            "device": self.device,
            "channels_last": config.channels_last,
            "stats": self.train_loader.stats,
        }
        self.val_loader = CIFARLoader(val_set.images, val_set.labels, config.eval_batch_size, **eval_args)
        self.test_loader = CIFARLoader(
            data.test_images, data.test_labels, config.eval_batch_size, **eval_args
        )

        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        model.to(self.device, memory_format=memory_format)
        self.optimizer = make_optimizer(model, config)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ema = (
            AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
            if config.ema
            else None
        )
        self.eval_model = self.ema.module if self.ema is not None else model
        # Only the training step is compiled: evaluation is a small share of the time.
        self.step_model = torch.compile(model) if config.compile else model
        self.history: list[dict[str, Any]] = []
        self.best = {"epoch": 0, "val_accuracy": -1.0}
        self.start_epoch = 0

    def _lr_factor(self, step: int) -> float:
        return lr_factor(
            step,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            schedule=self.config.schedule,
        )

    # ---- checkpoints

    def _state(self, epoch: int) -> dict[str, Any]:
        return {
            "format": 1,
            "model_config": getattr(self.model, "config", None),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": rng_state(),
            "epoch": epoch,
            "history": self.history,
            "best": self.best,
            "config": dataclasses.asdict(self.config),
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path)
        check_compatible(self.model, state, f"checkpoint {path}")
        changed = {
            key: (value, getattr(self.config, key))
            for key, value in state["config"].items()
            if key not in RESUMABLE_CHANGES and getattr(self.config, key, value) != value
        }
        if changed:
            listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise CheckpointError(
                f"{path} was trained with other settings ({listed}); resume with the original "
                "settings or start a new run in another run_dir"
            )
        if (self.ema is None) != (state["ema"] is None):
            raise CheckpointError(
                f"{path} was trained with ema={state['ema'] is not None}; resume with the same setting"
            )
        load_weights(self.model, state, f"checkpoint {path}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        restore_rng_state(state["rng"])
        self.history, self.best, self.start_epoch = state["history"], state["best"], state["epoch"]

    def _write_history(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.history[0]))
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write(self.run_dir / "history.csv", lambda f: f.write(buffer.getvalue()), mode="w")

    # ---- one epoch

    def train_step(self, images: Tensor, labels: Tensor) -> tuple[Any, dict[str, Tensor], Tensor]:
        """One optimiser step of the recipe; returns outputs, per-head losses and the total (detached)."""
        config = self.config
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            outputs = self.step_model(images)
            losses = head_losses(outputs, labels, label_smoothing=config.label_smoothing)
            loss = combine_losses(losses, aux_weight=config.aux_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # the scaler is a no-op unless precision is fp16
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return outputs, {k: v.detach() for k, v in losses.items()}, loss.detach()

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        config, device = self.config, self.device
        self.model.train()
        self.train_loader.set_epoch(epoch)
        # Running sums stay on the device: reading them forces a sync, so it happens only now and then.
        sums = {name: torch.zeros((), device=device) for name in (*HEADS, "total", "correct")}
        step_counter = torch.zeros((), dtype=torch.long, device=device)
        first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        seen = 0
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=not _want_progress(config.progress),
            leave=False,
            dynamic_ncols=True,
        )
        start = time.perf_counter()
        for step, (images, labels) in enumerate(bar):
            outputs, losses, loss = self.train_step(images, labels)
            bad = ~torch.isfinite(loss)
            first_bad_step = torch.where(bad & (first_bad_step < 0), step_counter, first_bad_step)
            step_counter += 1
            logits = outputs[0] if isinstance(outputs, tuple) else outputs
            for name, value in losses.items():
                sums[name] += value * len(labels)
            sums["total"] += loss * len(labels)
            sums["correct"] += (logits.argmax(1) == labels).sum()
            seen += len(labels)
            if step % 20 == 19 or step == self.steps_per_epoch - 1:
                self._check_finite(first_bad_step, epoch)
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{sums['total'].item() / seen:.3f}",
                    acc=f"{sums['correct'].item() / seen:.3f}",
                    img_s=f"{seen / elapsed:,.0f}",
                )
        self._check_finite(first_bad_step, epoch)  # also waits for the GPU, so the timing is true
        seconds = time.perf_counter() - start
        row = {
            "epoch": epoch + 1,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": sums["total"].item() / seen,
        }
        for name in HEADS:
            row[f"train_loss_{name}"] = sums[name].item() / seen if name in losses else None
        row.update(
            train_accuracy=sums["correct"].item() / seen,
            train_seconds=seconds,
            images_per_s=seen / seconds,
        )
        return row

    def _check_finite(self, first_bad_step: Tensor, epoch: int) -> None:
        bad_step = int(first_bad_step.item())
        if bad_step >= 0:
            global_step = epoch * self.steps_per_epoch + bad_step
            lr = self.config.lr * self._lr_factor(global_step)
            raise NonFiniteLossError(
                f"the training loss became non-finite at epoch {epoch + 1}, step {bad_step + 1} "
                f"(learning rate {lr:.4g}). {self.run_dir / 'last.pt'} still holds the last good "
                "epoch; lower the learning rate or use fp32, then resume."
            )

    # ---- the whole run

    def run(self) -> Run:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        last = self.run_dir / "last.pt"
        if last.exists():
            if not config.resume:
                raise RunExistsError(
                    f"{self.run_dir} already holds a run ({last}). Pass resume=True (--resume) to "
                    "continue it, or choose another run_dir so nothing is overwritten."
                )
            self._restore(last)
            print(f"resumed {self.run_dir} after epoch {self.start_epoch}/{config.epochs}")
        else:
            random.seed(config.seed)
            np.random.seed(config.seed)  # noqa: NPY002 - seeds user code too
            torch.manual_seed(config.seed)  # dropout masks; the data order has its own seed
        atomic_write(
            self.run_dir / "config.json",
            lambda f: json.dump(dataclasses.asdict(config), f, indent=2),
            "w",
        )
        for epoch in range(self.start_epoch, config.epochs):
            row = self._train_epoch(epoch)
            val_start = time.perf_counter()
            val = evaluate(self.eval_model, self.val_loader, tta=config.tta, precision=self.precision)
            row.update(val_loss=val.loss, val_accuracy=val.accuracy)
            for name in ("aux1", "aux2"):
                row[f"val_accuracy_{name}"] = val.aux_accuracy.get(name)
            row["seconds"] = row["train_seconds"] + time.perf_counter() - val_start
            row["elapsed_seconds"] = row["seconds"] + (
                self.history[-1]["elapsed_seconds"] if self.history else 0.0
            )
            self.history.append(row)
            if val.accuracy > self.best["val_accuracy"]:
                self.best = {"epoch": epoch + 1, "val_accuracy": val.accuracy}
                save_checkpoint(
                    self.run_dir / "best.pt",
                    {
                        "model_config": getattr(self.model, "config", None),
                        "model": self.eval_model.state_dict(),
                        **self.best,
                    },
                )
            save_checkpoint(last, self._state(epoch + 1))
            self._write_history()
            print(_epoch_line(row, config.epochs))
        return self._finish()

    def _finish(self) -> Run:
        """Evaluate the best checkpoint on the test set, once, and write predictions and metrics."""
        best = load_checkpoint(self.run_dir / "best.pt")
        load_weights(self.model, best, f"checkpoint {self.run_dir / 'best.pt'}")
        start = time.perf_counter()
        test = evaluate(
            self.model,
            self.test_loader,
            tta=self.config.tta,
            precision=self.precision,
            keep_logits=True,
        )
        plain_accuracy = (test.logits.argmax(1) == test.labels).float().mean().item()
        save_predictions(
            self.run_dir / PREDICTIONS_FILE,
            {
                "logits": test.logits,
                "logits_flipped": test.logits_flipped,
                "aux1": test.aux_logits.get("aux1"),
                "aux2": test.aux_logits.get("aux2"),
                "labels": test.labels,
                "classes": list(self.data.classes),
            },
        )
        train_seconds = sum(row["seconds"] for row in self.history)
        steady = [row["images_per_s"] for row in self.history[1:]] or [self.history[-1]["images_per_s"]]
        metrics = {
            "test_accuracy": test.accuracy,
            "test_accuracy_no_tta": plain_accuracy,
            "test_loss": test.loss,
            "test_per_class_accuracy": dict(zip(self.data.classes, test.per_class_accuracy, strict=True)),
            "test_aux_accuracy": test.aux_accuracy,
            "best_val_accuracy": self.best["val_accuracy"],
            "best_epoch": self.best["epoch"],
            "epochs": len(self.history),
            "train_seconds": train_seconds,
            "wall_seconds": train_seconds + time.perf_counter() - start,
            "images_per_s": float(np.median(steady)),  # the first epoch pays for warm-up and compilation
            "time_to_val_accuracy": _time_to_accuracy(self.history),
            "parameters": {
                "train": count_parameters(self.model),
                "inference": count_parameters(self.model, inference=True),
            },
            "data": {
                "source": self.data.source,
                "train": len(self.train_loader.labels),
                "val": len(self.val_loader.labels),
                "test": len(self.test_loader.labels),
            },
            "device": _device_name(self.device),
            "precision": self.precision,
            "versions": _versions(),
        }
        atomic_write(self.run_dir / "metrics.json", lambda f: json.dump(metrics, f, indent=2), "w")
        print(
            f"test accuracy {test.accuracy:.4f} (without flip TTA {plain_accuracy:.4f}) "
            f"from epoch {self.best['epoch']}; run saved in {self.run_dir}"
        )
        return Run(self.run_dir, self.history, metrics)


def save_predictions(path: Path, predictions: dict[str, Any]) -> None:
    """Test-set logits (plain, flipped, aux heads) and labels, for the analysis notebook."""
    atomic_write(path, lambda file: torch.save(predictions, file))


def _time_to_accuracy(
    history: list[dict[str, Any]], targets=(0.90, 0.93, 0.94, 0.95)
) -> dict[str, float | None]:
    """Seconds of training until the validation accuracy first reached each target."""
    return {
        f"{target:.2f}": next(
            (row["elapsed_seconds"] for row in history if row["val_accuracy"] >= target), None
        )
        for target in targets
    }


def _epoch_line(row: dict[str, Any], epochs: int) -> str:
    aux = "".join(
        f" {k[-4:]} {row[k]:.3f}" for k in ("val_accuracy_aux1", "val_accuracy_aux2") if row[k] is not None
    )
    return (
        f"epoch {row['epoch']:3d}/{epochs}  loss {row['train_loss']:.3f}  train {row['train_accuracy']:.3f}  "
        f"val {row['val_accuracy']:.3f}{aux}  lr {row['lr']:.3g}  {row['images_per_s']:,.0f} img/s  "
        f"{row['seconds']:.1f} s"
    )


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _versions() -> dict[str, str]:
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
    }


def fit(model: nn.Module, data: CIFAR10Data, config: TrainConfig) -> Run:
    """Train ``model`` on ``data`` (selecting on a validation split), then test the best epoch once.

    Every epoch ends with an atomic checkpoint; ``config.resume`` continues an interrupted run.
    Afterwards ``model`` holds the best epoch's weights.
    """
    return Trainer(model, data, config).run()


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data and model")
    data.add_argument(
        "--data-dir", default="data", help="folder holding cifar-10-batches-py/ (default: data)"
    )
    data.add_argument("--no-download", action="store_true", help="never try to download CIFAR-10")
    data.add_argument("--no-verify", action="store_true", help="skip the md5 check (for a mirror you built)")
    data.add_argument(
        "--synthetic",
        action="store_true",
        help="train on the synthetic stand-in (no dataset needed)",
    )
    data.add_argument(
        "--smoke", action="store_true", help="a few steps on a small subset with a narrow model"
    )
    data.add_argument(
        "--no-aux", action="store_true", help="build GoogLeNet without the auxiliary classifiers"
    )
    data.add_argument(
        "--width", type=float, default=1.0, help="channel multiplier (1.0 = the paper's widths)"
    )
    data.add_argument("--out", dest="run_dir", help="run directory (same as --run-dir)")
    recipe = parser.add_argument_group("recipe (TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "run_dir":
            recipe.add_argument(flag, dest="run_dir", help=f.metadata["help"])
        elif f.type in ("bool", "bool | None"):
            recipe.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"]
            )
        else:
            kind = {"int": int, "float": float}.get(f.type, str)
            recipe.add_argument(
                flag, type=kind, default=None, help=f"{f.metadata['help']} (default: {f.default})"
            )
    return parser


# Small enough for a minute on a laptop CPU; the learning rate follows the linear-scaling rule.
SMOKE = {
    "epochs": 3,
    "batch_size": 64,
    "lr": 0.05,
    "val_size": 128,
    "eval_batch_size": 256,
    "warmup_epochs": 0.5,
}


def _load_data(args: argparse.Namespace, scratch: Path) -> CIFAR10Data:
    if args.synthetic:
        make_synthetic_cifar10(
            scratch, n_train=1000 if args.smoke else 10000, n_test=500 if args.smoke else 2000
        )
        return load_cifar10(scratch, verify=False)
    return load_cifar10(args.data_dir, download=not args.no_download, verify=not args.no_verify)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    if args.smoke:
        overrides = {**SMOKE, **overrides}
    width = 0.125 if args.smoke and args.width == 1.0 else args.width
    try:
        config = TrainConfig(**overrides)
        with tempfile.TemporaryDirectory() as scratch:
            data = _load_data(args, Path(scratch))
        if args.smoke:
            data = data.subset(640, 256)
        torch.manual_seed(config.seed)  # the model's initial weights
        model = GoogLeNet(len(data.classes), variant="cifar", aux_logits=not args.no_aux, width=width)
        fit(model, data, config)
    except DatasetError as error:
        hint = "leave out --no-download to download it, or " if args.no_download else ""
        print(
            f"error: {error}\nFrom the command line: {hint}--synthetic trains on a synthetic stand-in.",
            file=sys.stderr,
        )
        return 2
    except (ValueError, CheckpointError, RunExistsError, NonFiniteLossError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
