"""The training loop: ``fit`` trains on a validation-split training set, checkpoints, resumes, tests once.

Speed on a GPU comes from the data living on the device (``CIFARLoader``), bf16 autocast,
channels-last tensors, ``torch.compile``, a fused optimiser, and a step that never waits for
the device: losses are summed on the device and read once per epoch, the EMA update needs no
host value, and checkpoints are copied to host memory and written by a background thread.

Every graph is compiled before the first epoch, and with a time budget or a wall limit the
steps are timed then too: the budget sets the number of epochs up front (the schedule needs
it), and the wall-clock guard ends the run at an epoch boundary when the next would not fit.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed as dist_utils
from .budget import BudgetChoice, Costs, choose_epochs, replan, stop_now
from .checkpoint import BackgroundWriter, CheckpointError, check_compatible, host_copy, load_weights
from .cifar10 import CIFAR10Data, split_fingerprint, validation_indices
from .complexity import count_parameters
from .devices import autocast_dtype, device_name, library_versions, pick_device, pick_precision, synchronize
from .ema import EMA
from .errors import ConfigError, UserError
from .evaluation import VIEWS, Predictions, compile_views, predict, score, time_views
from .host_memory import keep_freed_memory
from .loader import CIFARLoader
from .model import combine_losses, head_losses
from .paths import display_path
from .recipe import TrainConfig, lr_factor, make_optimizer, resolution_at
from .resume import check_resume, divergence_advice
from .run_record import RunRecord
from .run_report import epoch_line, final_line, run_metrics, want_progress
from .rundir import BEST, FORMAT, HISTORY, LAST, RunDir, refuse_history_folder

HEADS = ("main", "aux1", "aux2")
# Per image side, after one untimed step. The median of 7, not the mean of 3: on the 2-core host a
# 3-step mean once timed 269 ms at 16 px where the median of many steps that hour was 175-209 ms.
TIMED_STEPS = 7
COMPILE_BACKEND = "inductor"  # torch.compile's default; the CPU tests swap in aot_eager (no C++ build)
ProgressHook = Callable[[dict[str, Any]], None]


def compile_options() -> dict[str, Any]:
    """torch.compile's settings: static shapes, so each image side gets its own graph, not a dynamic one."""
    return {"backend": COMPILE_BACKEND, "dynamic": False}


class NonFiniteLossError(UserError, RuntimeError):
    """The loss became NaN or infinite; the last checkpoint on disk is still the last good one."""


def shrink(images: Tensor, size: int) -> Tensor:
    """A batch resized to ``size`` pixels, antialiased, in its own memory layout (low-resolution epochs)."""
    channels_last = images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous()
    resized = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _epoch_seed(seed: int, epoch: int, rank: int) -> int:
    # Dropout masks come from a generator re-seeded every epoch, so resuming needs no generator state.
    return (seed * 1_000_003 + epoch) * 1_009 + rank


class Trainer:
    """One training run: built once, then ``run()``; all state lives here so it can be checkpointed."""

    def __init__(
        self,
        model: nn.Module,
        data: CIFAR10Data,
        config: TrainConfig,
        *,
        recipe: str | None = None,
        distributed: dist_utils.Distributed | None = None,
        on_epoch: ProgressHook | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.config, self.model, self.data, self.recipe = config, model, data, recipe
        self.on_epoch = on_epoch
        self.dist = distributed
        self.is_main = distributed is None or distributed.is_main
        self.rundir = RunDir(config.run_dir)
        self._choose_device(device)
        is_val = self._check_sizes()
        self._build_loaders(is_val)
        self._place_model(model)
        self._empty_state()

    # ---- construction, step by step

    def _choose_device(self, device: torch.device | None) -> None:
        """The device (the caller's, else this process's GPU under torchrun), its precision and whether
        to compile."""
        config = self.config
        self.device = device or pick_device(dist_utils.device_for(self.dist, config.device))
        self.precision = pick_precision(config.precision, self.device)
        self.dtype = autocast_dtype(self.precision)
        self.compile = config.compile if config.compile is not None else self.device.type == "cuda"
        if config.sync_batch_norm and self.dist is not None and self.device.type != "cuda":
            raise ConfigError("sync_batch_norm needs GPUs: PyTorch's SyncBatchNorm does not run on CPUs")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels

    def _check_sizes(self) -> Tensor:
        """Refuse a validation split or batch the data cannot hold; return the split's mask."""
        config, labels = self.config, self.data.train_labels
        if config.val_size >= len(labels):
            raise ConfigError(
                f"TrainConfig.val_size ({config.val_size}) must be smaller than the "
                f"{len(labels)} training images"
            )
        is_val = validation_indices(labels, config.val_size, config.seed)
        if int((~is_val).sum()) < config.batch_size:
            raise ConfigError(
                f"TrainConfig.batch_size ({config.batch_size}) exceeds the {int((~is_val).sum())} training "
                "images left after the validation split"
            )
        return is_val

    def _build_loaders(self, is_val: Tensor) -> None:
        """Training, validation and test loaders on the device; the data's fingerprint for resuming."""
        config, data, distributed = self.config, self.data, self.dist
        world = {"rank": distributed.rank, "world_size": distributed.world_size} if distributed else {}
        common = {"device": self.device, "channels_last": config.channels_last, **world}
        train, val = data.train_images, data.train_labels
        self.train_loader = CIFARLoader(train[~is_val], val[~is_val], config.batch_size, train=True,
                                        seed=config.seed, cutout_size=config.cutout, **common)  # fmt: skip
        evaluation = {"train": False, "stats": self.train_loader.stats, **common}
        self.val_loader = CIFARLoader(train[is_val], val[is_val], config.eval_batch_size, **evaluation)
        self.test_loader = CIFARLoader(
            data.test_images, data.test_labels, config.eval_batch_size, **evaluation
        )
        self.fingerprint = split_fingerprint(data, config.val_size, config.seed)
        self.steps_per_epoch = len(self.train_loader)

    def _place_model(self, model: nn.Module) -> None:
        """The model on the device in its memory format, its optimiser, scaler, average and wrappers."""
        config, distributed = self.config, self.dist
        memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        if config.sync_batch_norm and distributed is not None:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.device, memory_format=memory_format)
        self.optimizer = make_optimizer(model, config, self.device)
        self._set_config(config)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ema = EMA(model, config.ema_decay) if config.ema else None
        self.eval_model = self.ema.module if self.ema is not None else model
        ddp_args = {"device_ids": [self.device.index]} if self.device.type == "cuda" else {}
        self.step_model = DistributedDataParallel(model, **ddp_args) if distributed else model
        self.eval_forward = (
            self.eval_model.forward_heads if hasattr(self.eval_model, "forward_heads") else None
        )

    def _empty_state(self) -> None:
        """What the run fills in as it goes (or a resume restores)."""
        self.compile_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.best = {"epoch": 0, "val_accuracy": -1.0}
        self.start_epoch = 0
        self.resume_note: str | None = None
        self.costs: Costs | None = None  # measured before the first epoch when a budget or limit asks
        self.budget: BudgetChoice | None = None
        self.before_budget: TrainConfig | None = None  # what a new budgeted run's choice started from
        self.timed: Costs | None = None  # the warm-up's timings, kept for the re-plan after epoch 1
        self.stopped: dict[str, Any] | None = None  # set when the wall-clock guard ended the run
        self.clock = time.perf_counter()  # reset when the run starts: budget and limit count from there

    # ---- pieces

    def _set_config(self, config: TrainConfig) -> None:
        """Adopt ``config``, and the schedule's length that follows from its epochs."""
        self.config = config
        self.total_steps = config.epochs * self.steps_per_epoch
        self.warmup_steps = round(config.warmup_epochs * self.steps_per_epoch)

    def elapsed(self) -> float:
        """Seconds since the run started (what the time budget and the wall limit count)."""
        return time.perf_counter() - self.clock

    def lr_at(self, step: int, lr: float | None = None) -> float:
        factor = lr_factor(
            step, total_steps=self.total_steps, warmup_steps=self.warmup_steps, schedule=self.config.schedule
        )
        return (lr or self.config.lr) * factor

    def train_step(
        self, images: Tensor, labels: Tensor, step: int = 0
    ) -> tuple[Any, dict[str, Tensor], Tensor]:
        """One optimiser step of the recipe; returns outputs, per-head losses and the total (detached)."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)  # a Python float: setting it costs no device sync
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            outputs = self.step_model(images)
            losses = head_losses(outputs, labels, label_smoothing=self.config.label_smoothing)
            loss = combine_losses(losses, aux_weight=self.config.aux_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # the scaler is a no-op unless precision is fp16
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update()
        return outputs, {k: v.detach() for k, v in losses.items()}, loss.detach()

    def _train_sizes(self) -> list[int]:
        """Every image side the remaining epochs train at: each is compiled and timed before the clock."""
        epochs = range(self.start_epoch, self.config.epochs)
        return sorted({resolution_at(epoch, self.config.resolutions) for epoch in epochs})

    def _snapshot(self) -> dict[str, Any]:
        """A host copy of everything a step changes: warm-up steps are undone from it."""
        return host_copy(
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
            }
        )

    def _rewind(self, saved: dict[str, Any]) -> None:
        """Undo warm-up steps: weights, batch-norm statistics, momentum, loss scale and EMA as they were."""
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(saved["ema"])
        self.optimizer.zero_grad(set_to_none=True)
        synchronize(self.device)

    def warm_up_compiled(self) -> None:
        """Compile every graph before the clock starts; fall back to eager if the compiler fails.

        The graphs: the training step (forward and backward) at each image side the run trains at,
        and the evaluation of every test-time view, so that nothing compiles during the epochs.
        """
        if not self.compile:
            return
        start = time.perf_counter()
        saved = self._snapshot()
        try:
            compiled = torch.compile(self.step_model, **compile_options())
            eval_forward = torch.compile(self.eval_model.forward_heads, **compile_options())
            images, labels = next(iter(self.train_loader))
            for size in self._train_sizes():
                batch = shrink(images, size) if size != images.shape[-1] else images
                with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                    loss = combine_losses(head_losses(compiled(batch), labels))
                loss.backward()  # compiles the backward graph too
            compile_views(self.eval_model, self.val_loader, (self.config.val_tta, self.config.tta),
                          precision=self.precision, forward=eval_forward)  # fmt: skip
        except Exception as error:  # any compiler failure: train eagerly rather than not at all
            print(f"torch.compile failed ({type(error).__name__}: {str(error)[:300]}); training without it.")
            self.compile = False
        else:
            self.step_model, self.eval_forward = compiled, eval_forward
        finally:
            self._rewind(saved)  # the warm-up steps must leave no trace (batch-norm statistics)
        self.compile_seconds = time.perf_counter() - start

    def _batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            yield from self.train_loader

    def _time_steps(self, size: int, batches: Iterator[tuple[Tensor, Tensor]]) -> float:
        """Seconds per training step at ``size`` pixels: the median of a few, after one untimed step."""

        def step() -> float:
            start = time.perf_counter()  # cutting the batch is part of an epoch's step too
            images, labels = next(batches)
            self.train_step(shrink(images, size) if size != images.shape[-1] else images, labels)
            synchronize(self.device)
            return time.perf_counter() - start

        step()  # the first step at a side pays for allocation and cuDNN's choice of kernels
        return statistics.median(step() for _ in range(TIMED_STEPS))

    def measure_costs(self) -> Costs:
        """Time the step at each image side and an evaluation batch; the run is left as it was."""
        saved = self._snapshot()
        self.model.train()
        try:
            batches = self._batches()
            steps = {size: self._time_steps(size, batches) for size in self._train_sizes()}
            view = time_views(self.eval_model, self.val_loader, precision=self.precision,
                              forward=self.eval_forward)  # fmt: skip
        finally:
            self._rewind(saved)
        return Costs(
            step_seconds=steps,
            steps_per_epoch=self.steps_per_epoch,
            validation_seconds=view * len(self.val_loader) * VIEWS[self.config.val_tta],
            test_seconds=view * len(self.test_loader) * VIEWS[self.config.tta],
        )

    def _plan(self) -> None:
        """Before the first epoch: time what a budget or limit needs; a new budgeted run gets its length."""
        choose = bool(self.config.time_budget) and self.start_epoch == 0 and self.budget is None
        if not (choose or self.config.wall_limit):
            return  # a resumed run keeps the length it has
        self.costs = self.measure_costs()
        if not choose:
            return
        self.budget = dist_utils.share(choose_epochs(self.costs, self.config, self.elapsed()), self.dist)
        self.before_budget, self.timed = self.config, self.costs
        self._set_config(self.budget.apply(self.config))
        if self.is_main:
            self.rundir.write_config(self._record())
            print(self.budget.reason)

    def _replan(self, epoch: int, row: dict[str, Any]) -> None:
        """After a new budgeted run's first epoch, all warm-up: shorten it if that epoch ran slow."""
        if epoch != 0 or self.before_budget is None or self.config.warmup_epochs < 1:
            return  # past the warm-up the decay has begun: its slope depends on the length
        shorter = replan(self.budget, self.timed, self.before_budget, row["resolution"], row["train_seconds"])
        shorter = dist_utils.share(shorter, self.dist)  # every process trains the same length
        if shorter is None:
            return
        self.budget = shorter
        self._set_config(shorter.apply(self.config))
        if self.is_main:
            self.rundir.write_config(self._record())
            print(shorter.reason)

    def _ends_here(self, epoch: int) -> bool:
        """Whether (0-based) ``epoch`` is the run's last: the plan's last, or the wall-clock guard's stop."""
        if epoch + 1 >= self.config.epochs:
            return True
        if not self.config.wall_limit or self.costs is None:
            return False
        config = self.config
        plan = {"epochs": config.epochs, "resolutions": config.resolutions, "val_every": config.val_every}
        stop = stop_now(self.costs, elapsed=self.elapsed(), limit=config.wall_limit, epoch=epoch, **plan)
        if not dist_utils.share(stop, self.dist):  # every process stops after the same epoch
            return False
        self.stopped = {
            "by": "wall_limit",
            "after_epoch": epoch + 1,
            "planned_epochs": config.epochs,
            "limit_seconds": config.wall_limit,
            "elapsed_seconds": self.elapsed(),
            "reason": (
                f"wall-clock guard: epoch {epoch + 2} and the test would end past the limit of "
                f"{config.wall_limit:.0f} s ({self.elapsed():.0f} s gone); stopping after epoch {epoch + 1} "
                f"of {config.epochs} and testing the best epoch"
            ),
        }
        if self.is_main:
            print(self.stopped["reason"])
        return True

    def _train_epoch(self, epoch: int) -> dict[str, Any]:
        config, device = self.config, self.device
        self.model.train()
        self.train_loader.set_epoch(epoch)
        torch.manual_seed(_epoch_seed(config.seed, epoch, self.dist.rank if self.dist else 0))
        # Running sums stay on the device: reading them forces a sync, so it happens once per epoch.
        sums = {name: torch.zeros((), device=device) for name in (*HEADS, "total", "correct", "count")}
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        show = want_progress(config.progress) and self.is_main
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not show, leave=False, dynamic_ncols=True)  # fmt: skip
        synchronize(device)
        start = time.perf_counter()
        size = resolution_at(epoch, config.resolutions)
        for step, (images, labels) in enumerate(bar):
            if size != images.shape[-1]:
                images = shrink(images, size)
            outputs, losses, loss = self.train_step(images, labels, epoch * self.steps_per_epoch + step)
            first_bad = torch.where(~torch.isfinite(loss) & (first_bad < 0), step, first_bad)
            logits = outputs[0] if isinstance(outputs, tuple) else outputs
            for name, value in losses.items():
                sums[name] += value * len(labels)
            sums["total"] += loss * len(labels)
            sums["correct"] += (logits.argmax(1) == labels).sum()
            sums["count"] += len(labels)
            if show and step % 20 == 19:  # progress costs a sync; only when someone watches
                bar.set_postfix(loss=f"{(sums['total'] / sums['count']).item():.3f}")
        totals = dist_utils.all_reduce_sum(torch.stack(list(sums.values())), self.dist).tolist()
        sums = dict(zip(sums, totals, strict=True))  # reading them waits for the device: the timing is true
        seconds = time.perf_counter() - start
        bad_step = int(first_bad.item())
        if bad_step >= 0 or not all(map(math.isfinite, totals)):
            self._diverged(epoch, max(bad_step, 0))
        seen = sums["count"]
        row = {
            "epoch": epoch + 1,
            "lr": self.lr_at((epoch + 1) * self.steps_per_epoch - 1),
            "train_loss": sums["total"] / seen,
        }
        for name in HEADS:
            row[f"train_loss_{name}"] = sums[name] / seen if name in losses else None
        row["resolution"] = size
        row.update(train_accuracy=sums["correct"] / seen, train_seconds=seconds, images_per_s=seen / seconds)
        return row

    def _diverged(self, epoch: int, step: int) -> None:
        lr = self.lr_at(epoch * self.steps_per_epoch + step)
        checkpoint = None if epoch == 0 else self.rundir.file(LAST)
        raise NonFiniteLossError(
            divergence_advice(epoch, step, lr, self.config.lr, checkpoint, self.precision)
        )

    def _validate(self, epoch: int, row: dict[str, Any], last: bool = False) -> bool:
        """Validate if the recipe asks for it this epoch (always the run's last); True when it is the best."""
        if (epoch + 1) % self.config.val_every and not last:
            row.update(val_loss=None, val_accuracy=None, val_accuracy_aux1=None, val_accuracy_aux2=None)
            return False
        metrics = score(self._predict(self.val_loader, self.config.val_tta))
        row.update(val_loss=metrics.loss, val_accuracy=metrics.accuracy)
        for name in ("aux1", "aux2"):
            row[f"val_accuracy_{name}"] = metrics.aux_accuracy.get(name)
        if metrics.accuracy > self.best["val_accuracy"]:
            self.best = {"epoch": epoch + 1, "val_accuracy": metrics.accuracy}
            return True
        return False

    def _predict(self, loader: CIFARLoader, tta: str) -> Predictions:
        return predict(self.eval_model, loader, tta=tta, precision=self.precision, forward=self.eval_forward,
                       distributed=self.dist)  # fmt: skip

    # ---- checkpoints

    def _training_state(self, epoch: int) -> dict[str, Any]:
        return {
            "model_config": self.model.config.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "epoch": epoch,
            "history": self.history,
            "best": self.best,
            "config": self.config.to_dict(),
            "data": self.fingerprint,
            "world_size": self.dist.world_size if self.dist else 1,
            "budget": self.budget.to_dict() if self.budget is not None else None,
        }

    def _checkpoint(self, writer: BackgroundWriter, epoch: int, improved: bool) -> None:
        """Hand a host copy of the state to the writer, so the device goes on training meanwhile."""
        if self.is_main:
            state = host_copy(self._training_state(epoch))
            weights = state["ema"]["module"] if self.ema else state["model"]
            best = (
                {"model_config": state["model_config"], "model": weights, **self.best} if improved else None
            )
            writer.submit(lambda: self.rundir.save_epoch(state, best))

    def _restore(self) -> None:
        state, path = self.rundir.load_last(), self.rundir.file(LAST)
        check_compatible(self.model, state, f"checkpoint {path}")
        if state.get("budget") is not None:  # the length a time budget chose stays the run's length
            self.budget = BudgetChoice.from_dict(state["budget"])
            self._set_config(self.budget.apply(self.config))
        note = check_resume(
            state, fingerprint=self.fingerprint, config=self.config, has_ema=self.ema is not None, path=path
        )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.history, self.best, self.start_epoch = state["history"], state["best"], state["epoch"]
        self.resume_note = note
        if self.is_main:
            before, now = state.get("world_size", 1), self.dist.world_size if self.dist else 1
            size = (
                f"; {now} process(es) now, {before} before: the data stream is the same"
                if now != before
                else ""
            )
            where = display_path(self.rundir.path)  # relative to the repository: no machine's layout
            print(f"resumed {where} after epoch {self.start_epoch}/{self.config.epochs}"
                  f"{f' with {note}' if note else ''}{size}")  # fmt: skip

    # ---- the whole run

    def _record(self) -> dict[str, Any]:
        mean, std = (s.tolist() for s in self.train_loader.stats)
        return {
            "recipe": self.recipe,
            "train": self.config.to_dict(),
            "model": self.model.config.to_dict(),
            "data": self.fingerprint,
            "normalisation": {"mean": mean, "std": std, "units": "pixel (0-255)"},
            "time_budget": self.budget.to_dict() if self.budget is not None else None,
        }

    def progress(self) -> dict[str, Any]:
        """The run so far (after each epoch): what a report mirrors into its output folder."""
        validated = [row for row in self.history if row.get("val_accuracy") is not None]
        return {
            "epochs_done": len(self.history),
            "planned_epochs": self.config.epochs,
            "best_epoch": self.best["epoch"] or None,
            "best_val_accuracy": self.best["val_accuracy"] if validated else None,
            "elapsed_seconds": self.elapsed(),
            "time_budget": self.budget.to_dict() if self.budget is not None else None,
            "stopped_early": self.stopped,
            "history": [dict(row) for row in self.history],
            "config": self._record(),
        }

    def _report(self) -> None:
        if self.on_epoch is not None and self.is_main:
            self.on_epoch(self.progress())

    def _notes(self, epoch: int) -> str | None:
        """What the history should say about this epoch: the budget's choice, the guard's stop."""
        notes = []
        if self.budget is not None and epoch == 0:
            notes.append(f"{self.budget.epochs} epochs chosen by a {self.budget.budget_seconds:.0f} s budget")
        if self.stopped is not None:
            notes.append(f"stopped by the {self.config.wall_limit:.0f} s wall-clock guard")
        return "; ".join(notes) or None

    def run(self) -> RunRecord:
        self.clock = time.perf_counter()
        dist_utils.check_same_settings(
            {"config": self.config.to_dict(), "model": self.model.config.to_dict(), "data": self.fingerprint},
            self.dist,
        )
        plan: str | UserError = "fresh"
        if self.is_main:
            try:
                self.rundir.prepare()
                plan = self.rundir.plan_start(self.config.resume)
            except UserError as error:
                plan = error
        plan = dist_utils.share(plan, self.dist)
        if isinstance(plan, UserError):
            raise plan
        lock = self.rundir.lock() if self.is_main else nullcontext()
        with lock, BackgroundWriter() as writer:
            if plan == "resume":
                if self.is_main:
                    refuse_history_folder(self.rundir.file(HISTORY))  # before "resumed ..." is printed
                self._restore()
                if self.is_main and self.rundir.sync_history(self.history):
                    history = display_path(self.rundir.file(HISTORY))
                    print(f"rewrote {history} from last.pt (it was behind or damaged)")
            elif self.config.resume and self.is_main:
                print(f"no checkpoint in {display_path(self.rundir.path)}: starting from the first epoch")
            if self.is_main:
                self.rundir.write_config(self._record())
            if self.device.type == "cpu":
                keep_freed_memory()  # before the steps are timed: the budget must see the epochs' speed
            if self.start_epoch < self.config.epochs:
                self.warm_up_compiled()
                self._plan()
                self._report()
            for epoch in range(self.start_epoch, self.config.epochs):
                row = self._train_epoch(epoch)
                self._replan(epoch, row)
                if self.costs is not None:  # the epoch's real speed replaces the warm-up's estimate
                    self.costs = self.costs.updated(row["resolution"], row["train_seconds"], None)
                last = self._ends_here(epoch)
                val_start = time.perf_counter()
                improved = self._validate(epoch, row, last)
                val_seconds = time.perf_counter() - val_start
                if self.costs is not None and row["val_accuracy"] is not None:
                    self.costs = self.costs.updated(row["resolution"], row["train_seconds"], val_seconds)
                row["seconds"] = row["train_seconds"] + val_seconds
                row["elapsed_seconds"] = row["seconds"] + (
                    self.history[-1]["elapsed_seconds"] if self.history else 0.0
                )
                if self.resume_note:
                    row["resumed_with"], self.resume_note = self.resume_note, None
                note = self._notes(epoch)
                if note:
                    row["note"] = note
                self.history.append(row)
                self._checkpoint(writer, epoch + 1, improved)
                if self.is_main:
                    print(epoch_line(row, self.config.epochs))
                self._report()
                if last:
                    break
            writer.wait()
            return self._finish()

    def _finish(self) -> RunRecord:
        """Evaluate the best checkpoint on the test set, once, and write predictions and metrics."""
        if self.dist is not None:
            torch.distributed.barrier()  # rank 0 has written best.pt
        best = self.rundir.load_best()
        if best["epoch"] != self.best["epoch"]:
            raise CheckpointError(
                f"{self.rundir.file(BEST)} holds epoch {best['epoch']}, but the run's best is epoch "
                f"{self.best['epoch']}; the run directory was changed by hand. Retrain in a new --out."
            )
        load_weights(self.eval_model, best, f"checkpoint {self.rundir.file(BEST)}")
        start = time.perf_counter()
        test = self._predict(self.test_loader, self.config.tta)
        metrics = score(test, len(self.data.classes))
        model = self.model
        data = {"source": self.data.source, "digest": self.fingerprint["digest"]}
        data.update(
            train=len(self.train_loader.labels), val=len(self.val_loader.labels), test=len(test.labels)
        )
        result = run_metrics(
            metrics, self.history, self.best, classes=self.data.classes, tta=self.config.tta,
            compile_seconds=self.compile_seconds, test_seconds=time.perf_counter() - start,
            parameters={"train": count_parameters(model), "inference": count_parameters(model, True)},
            data=data, recipe=self.recipe, width=model.config.width, device=device_name(self.device),
            processes=self.dist.world_size if self.dist else 1, precision=self.precision,
            compiled=self.compile, versions=library_versions(), planned_epochs=self.config.epochs,
            time_budget=self.budget.to_dict() if self.budget is not None else None,
            stopped_early=self.stopped,
        )  # fmt: skip
        if self.is_main:
            self.rundir.write_predictions(test, self.data.classes)
            self.rundir.write_metrics(result)
            print(final_line(metrics.accuracy, metrics.accuracy_plain, self.config.tta, self.best["epoch"],
                             self.rundir.path))  # fmt: skip
        config = {"format": FORMAT, **self._record()}  # as config.json holds it
        return RunRecord(self.rundir.path, config, self.history, result, test, list(self.data.classes))


def fit(
    model: nn.Module,
    data: CIFAR10Data,
    config: TrainConfig,
    *,
    recipe: str | None = None,
    distributed: dist_utils.Distributed | None = None,
    on_epoch: ProgressHook | None = None,
    device: torch.device | None = None,
) -> RunRecord:
    """Train ``model`` on ``data`` (selecting on a validation split), then test the best epoch once.

    Every epoch ends with an atomic checkpoint; ``config.resume`` continues an interrupted run.
    Afterwards ``model`` holds the best epoch's weights (with ``ema``, the EMA copy holds them).
    ``on_epoch``, if given, gets ``Trainer.progress()`` before the first epoch and after each one.
    ``device``: the device the caller resolved already (else ``config.device`` is resolved here).
    """
    trainer = Trainer(
        model, data, config, recipe=recipe, distributed=distributed, on_epoch=on_epoch, device=device
    )
    return trainer.run()
