"""Figures of a training run: schedule, learning curves, head accuracies, errors, calibration (04, 05)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from ..analysis import Reliability
from ..recipe import lr_factor
from .common import HEAD_COLOURS, _image, _subplots


def _zoom_steps(total: int, warmup_steps: int, most: int = 16) -> int:
    """How many first steps the zoom shows: the whole warm-up and a few steps after it if that is
    short, else its first ``most`` steps, so that each step stays a visible stair."""
    wanted = warmup_steps + 4 if warmup_steps + 4 <= most else most
    return max(1, min(total, wanted if warmup_steps else most))


def plot_lr_schedule(
    lrs: Sequence[float],
    *,
    warmup_steps: int,
    steps_per_epoch: int,
    reference: Sequence[float] | None = None,
    label: str = "your schedule",
) -> Figure:
    """A learning-rate schedule, one value per optimiser step: the whole run, and a zoom on the warm-up.

    The left panel spans the run in epochs, each step's rate drawn as a stair from that step to
    the next. The right panel is a real zoom (both axes) on the first steps of the warm-up, one
    point per step, so that the rise of ``peak / warmup_steps`` per step shows; a grey frame in the
    left panel marks where it is. ``reference`` (the recipe's own schedule) is drawn underneath as a
    wide pale line, so a match covers it. Titles are computed from ``warmup_steps``.
    """
    from matplotlib.patches import Rectangle

    lrs = np.asarray(lrs, dtype=float)
    steps = np.arange(len(lrs) + 1)  # one more edge than steps: the last stair ends at len(lrs)
    fig, (run_ax, zoom_ax) = _subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": (3, 2)})
    zoom_end = _zoom_steps(len(lrs), warmup_steps)
    stair = {"drawstyle": "steps-post"}
    pale = {"color": "tab:gray", "lw": 6, "alpha": 0.35, "label": "the recipe's schedule"}
    held = steps[: zoom_end + 1]  # in the zoom too, each step holds its rate until the next step
    if reference is not None:
        run_ax.plot(steps / steps_per_epoch, np.append(reference, reference[-1]), **pale, **stair)
        zoom_ax.plot(held, np.append(reference[:zoom_end], reference[zoom_end - 1]), **pale, **stair)
    mine = {"color": "tab:purple", "lw": 1.5, "label": label}
    run_ax.plot(steps / steps_per_epoch, np.append(lrs, lrs[-1]), **mine, **stair)
    zoom_ax.plot(held, np.append(lrs[:zoom_end], lrs[zoom_end - 1]), **mine, **stair)
    zoom_ax.plot(steps[:zoom_end], lrs[:zoom_end], "o", color="tab:purple", markersize=4)  # each step's rate
    top = 1.12 * max(float(lrs.max()), 1e-12)
    zoom_top = 1.15 * max(float(lrs[:zoom_end].max()), 1e-12)
    run_ax.set_ylim(0, top)
    zoom_ax.set_ylim(0, zoom_top)
    band = {"color": "tab:orange", "alpha": 0.15, "lw": 0, "label": f"warm-up ({warmup_steps:,} steps)"}
    if warmup_steps:
        run_ax.axvspan(0, warmup_steps / steps_per_epoch, **band)
        zoom_ax.axvspan(-0.5, min(warmup_steps, zoom_end + 1), **band)
    if zoom_end <= len(lrs) / 10 or zoom_top < top / 2:  # a real zoom: frame where it sits in the run
        frame = Rectangle(
            (0, 0), zoom_end / steps_per_epoch, zoom_top, fill=False, edgecolor="dimgrey", lw=1.2
        )
        run_ax.add_patch(frame)
        run_ax.annotate("zoom (right)", (zoom_end / steps_per_epoch, zoom_top), xytext=(8, 8),
                        textcoords="offset points", fontsize=9, color="dimgrey")  # fmt: skip
    run_ax.set_xlim(0, len(lrs) / steps_per_epoch)
    run_ax.set_xlabel(f"epoch ({steps_per_epoch:,} steps each)")
    run_ax.set_ylabel("learning rate")
    run_ax.set_title(f"The whole run: {len(lrs):,} steps, of which {warmup_steps:,} warm-up")
    zoom_ax.set_xlim(-0.5, zoom_end + 0.5)
    zoom_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    zoom_ax.set_xlabel("optimiser step")
    zoom_ax.set_ylabel("learning rate")
    if zoom_end >= warmup_steps:
        zoom_ax.set_title(f"Zoom: the whole {warmup_steps:,}-step warm-up, step by step")
    else:
        rise = float(lrs[1] - lrs[0]) if len(lrs) > 1 else 0.0
        zoom_ax.set_title(f"Zoom: steps 0-{zoom_end - 1} of the {warmup_steps:,}-step warm-up\n"
                          f"(each step adds {rise:.3g})")  # fmt: skip
    run_ax.legend(loc="upper right", fontsize=9)
    zoom_ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


def plot_learning_curves(
    history: list[dict[str, Any]], config: Any = None, steps_per_epoch: int | None = None
) -> Figure:
    """Loss per head, accuracy per head and split, and the learning rate, against the epoch.

    Validation columns are ``None`` in epochs a run does not validate (``val_every``): validation
    is drawn with a marker at each epoch that has it, and its legend says how many. ``history``
    holds only the learning rate at the end of each epoch; given the run's ``config`` (a
    ``TrainConfig`` or its dict, e.g. ``RunRecord.train_config``) and ``steps_per_epoch``, the
    learning-rate panel draws the schedule step by step (with ``lr_factor``), so the warm-up
    inside the first epochs shows, and the recorded end-of-epoch values as dots on it.
    """
    epochs = np.array([row["epoch"] for row in history])
    fig, (loss_ax, acc_ax, lr_ax) = _subplots(1, 3, figsize=(15, 4.2))

    def series(key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The epochs that have a value for ``key``, and the values (None if no epoch has one)."""
        pairs = [(e, row[key]) for e, row in zip(epochs, history, strict=True) if row.get(key) is not None]
        return (np.array([e for e, _ in pairs]), np.array([v for _, v in pairs])) if pairs else None

    validated = series("val_accuracy")
    n_validated = 0 if validated is None else len(validated[0])
    every = "" if n_validated == len(history) else f" ({n_validated} of {len(history)} epochs)"
    marks = {"marker": "o", "markersize": 4}
    for head, colour in HEAD_COLOURS.items():
        if (values := series(f"train_loss_{head}")) is not None:
            loss_ax.plot(*values, color=colour, label=f"train, {head} head")
    if (values := series("val_loss")) is not None:
        loss_ax.plot(*values, "k--", label=f"validation, main head{every}", **marks)
    loss_ax.set_title("Loss (training: label smoothing, augmentation, training mode)", fontsize=10)
    if (values := series("train_accuracy")) is not None:
        acc_ax.plot(*values, color="tab:blue", alpha=0.5, label="train (augmented), main")
    if validated is not None:
        acc_ax.plot(*validated, color="tab:blue", label=f"validation, main{every}", **marks)
    for head in ("aux1", "aux2"):
        if (values := series(f"val_accuracy_{head}")) is not None:
            acc_ax.plot(*values, color=HEAD_COLOURS[head], label=f"validation, {head}", **marks)
    acc_ax.set_title("Accuracy", fontsize=10)

    recorded = series("lr")
    settings = config.to_dict() if hasattr(config, "to_dict") else config
    if settings is not None and steps_per_epoch:
        total = settings["epochs"] * steps_per_epoch
        warmup = round(settings["warmup_epochs"] * steps_per_epoch)
        factors = [
            lr_factor(step, total_steps=total, warmup_steps=warmup, schedule=settings["schedule"])
            for step in range(total)
        ]
        edges = np.arange(total + 1) / steps_per_epoch  # step s holds its rate from s to s + 1: a stair
        rates = settings["lr"] * np.array([*factors, factors[-1]])
        per_step = f"schedule, per step ({steps_per_epoch:,} per epoch)"
        lr_ax.plot(edges, rates, color="tab:purple", drawstyle="steps-post", label=per_step)
        if warmup:
            warm = settings["warmup_epochs"]
            band = f"warm-up ({warm:g} epoch{'' if warm == 1 else 's'}, {warmup:,} steps)"
            lr_ax.axvspan(0, warmup / steps_per_epoch, color="tab:orange", alpha=0.15, lw=0, label=band)
        if recorded is not None:  # at most about 40 dots, so that they do not hide the line
            thin = max(1, len(recorded[0]) // 40)
            dots = (recorded[0][thin - 1 :: thin], recorded[1][thin - 1 :: thin])
            shown = "recorded at the end of each epoch" + ("" if thin == 1 else f" (every {thin}th shown)")
            lr_ax.plot(*dots, "o", color="black", markersize=3, label=shown)
        lr_ax.set_title("Learning rate", fontsize=10)
        lr_ax.legend(loc="upper right", fontsize=9)
        right = max(settings["epochs"], len(history))
    else:
        if recorded is not None:
            lr_ax.plot(*recorded, color="tab:purple", **marks)
        lr_ax.set_title("Learning rate at the end of each epoch\n(config= shows the warm-up)", fontsize=10)
        right = len(history)
    lr_ax.set_ylim(bottom=0)
    for ax, unit in ((loss_ax, "loss (nats)"), (acc_ax, "accuracy (fraction)"), (lr_ax, "learning rate")):
        ax.set_xlim(0, right + 0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    for ax in (loss_ax, acc_ax):
        _shade_low_resolution(ax, history)
    loss_ax.legend(fontsize=9)
    acc_ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def _shade_low_resolution(ax: Any, history: list[dict[str, Any]]) -> None:
    """Grey bands over the epochs trained on smaller images (validation always sees full-size ones)."""
    sides = [row.get("resolution") for row in history]
    if None in sides or len(set(sides)) < 2:
        return
    full = max(sides)
    shades = {side: 0.08 + 0.1 * k for k, side in enumerate(sorted(set(sides) - {full}, reverse=True))}
    labelled = set()
    for row, side in zip(history, sides, strict=True):
        if side == full:
            continue
        label = None if side in labelled else f"trained at {side} px (validated at {full} px)"
        labelled.add(side)
        ax.axvspan(row["epoch"] - 1, row["epoch"], color="grey", alpha=shades[side], lw=0, label=label)


def plot_head_accuracies(accuracies: dict[str, float], chance: float | None = None) -> Figure:
    """Test accuracy of each head as horizontal bars on an axis from 0 to 100%, values written on them.

    ``chance`` (e.g. 1 / number of classes) draws the accuracy of guessing as a dashed line.
    """
    names, values = list(accuracies), np.asarray(list(accuracies.values()), dtype=float)
    tta_colours = iter(("tab:cyan", "tab:purple", "tab:olive"))
    colours = [
        HEAD_COLOURS.get(name, "tab:blue") if "TTA" not in name else next(tta_colours, "tab:gray")
        for name in names
    ]
    fig, ax = _subplots(figsize=(7, 0.45 * len(names) + 1.5))
    positions = np.arange(len(names))[::-1]  # the first head on top
    bars = ax.barh(positions, values, color=colours)
    ax.bar_label(bars, labels=[f"{v:.2%}" for v in values], padding=3, fontsize=9)
    if chance is not None:
        ax.axvline(chance, color="black", linestyle="--", linewidth=1, label=f"guessing ({chance:.0%})")
        ax.set_ylim(-0.6, len(names) + 0.2)  # an empty band above the top bar holds the legend
        ax.legend(loc="upper right", fontsize=9)  # clear of every bar and its label
    ticks = np.linspace(0, 1, 6)
    ax.set_xlim(0, 1.13)  # the axis starts at 0, so bar lengths compare; room for the labels
    ax.set_xticks(ticks, [f"{tick:.0%}" for tick in ticks])
    ax.set_yticks(positions, names)
    ax.set_xlabel("test accuracy")
    ax.set_ylabel("head")
    ax.set_title("What each classifier head gets right")
    fig.tight_layout()
    return fig


def plot_confusion(confusion: Tensor, classes: Sequence[str], normalised: bool = True) -> Figure:
    """The confusion matrix as a heat map, row-normalised (share of each true class) or as counts."""
    values = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp_min(1) if normalised else confusion
    fig, ax = _subplots(figsize=(7, 6))
    image = ax.imshow(values.numpy(), cmap="Blues")
    for (i, j), value in np.ndenumerate(values.numpy()):
        if value == 0:
            continue  # empty cells stay blank, so the mistakes that do occur stand out
        text = f"{value:.0%}" if normalised else f"{int(value):,}"
        colour = "white" if value > values.max() / 2 else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    what = "% of each true class" if normalised else "image counts"
    ax.set_title(f"Confusion matrix ({what}; blank: none)")
    colourbar = fig.colorbar(image, ax=ax)
    colourbar.set_label("share of the true class" if normalised else "images")
    if normalised:
        colourbar.ax.yaxis.set_major_formatter(lambda value, _position: f"{100 * value:g}%")
    fig.tight_layout()
    return fig


def plot_precision_recall(precision: Tensor, recall: Tensor, classes: Sequence[str]) -> Figure:
    """Per-class precision and recall as paired bars on a 0-100% axis; a zero is written as "0"."""
    fig, ax = _subplots(figsize=(9.5, 3.6))
    positions = np.arange(len(classes))
    series = (
        ("precision (right among predicted)", precision, -0.2),
        ("recall (found among true)", recall, 0.2),
    )
    for label, values, offset in series:
        bars = ax.bar(positions + offset, values.numpy(), 0.4, label=label)
        for position in positions[values.numpy() == 0]:  # a bar of height 0 would look like a missing one
            ax.annotate("0", (position + offset, 0), xytext=(0, 2), textcoords="offset points", ha="center",
                        fontsize=9, color=bars.patches[0].get_facecolor())  # fmt: skip
    ticks = np.linspace(0, 1, 6)
    ax.set_ylim(0, 1)
    ax.set_yticks(ticks, [f"{tick:.0%}" for tick in ticks])
    ax.set_xticks(positions, classes, rotation=30, ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel("share of images")
    ax.set_title("Per-class precision and recall (test set)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    fig.tight_layout()
    return fig


def plot_reliability(result: Reliability) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, with the bin counts below."""
    centres = ((result.edges[:-1] + result.edges[1:]) / 2).numpy()
    width = float(result.edges[1] - result.edges[0])
    used = result.counts > 0
    fig, (ax, count_ax) = _subplots(2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centres[used], result.accuracy[used].numpy(), width, edgecolor="black", label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence of the predicted class (probability)")
    ax.set_ylabel("accuracy in the bin (fraction)")
    filled = int(used.sum())
    ax.set_title(f"Reliability diagram, ECE = {result.ece:.3f} ({len(used)} bins, {filled} with images)")
    ax.legend(loc="upper left")
    count_ax.bar(centres, result.counts.numpy(), width, color="grey")
    count_ax.set_xlabel("confidence of the predicted class (probability)")
    count_ax.set_ylabel("images")
    fig.tight_layout()
    return fig


def plot_mistakes(
    images: Tensor, mistakes: list[tuple[int, int, int, float]], classes: Sequence[str], columns: int = 8
) -> Figure:
    """A gallery of mistakes: each image with its true class, the prediction and its confidence."""
    rows = max(1, -(-len(mistakes) // columns))
    fig = Figure(figsize=(columns * 1.55, rows * 2.0 + 0.5), layout="constrained")  # room for 2-line titles
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (index, true, predicted, confidence) in zip(axes.flat, mistakes, strict=False):
        ax.imshow(_image(images[index]))
        ax.set_title(f"{classes[true]}\n→ {classes[predicted]} ({confidence:.0%})", fontsize=9)
    if not mistakes:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center", transform=axes.flat[0].transAxes)
    fig.suptitle("Most confident mistakes: true class → predicted class (confidence)")
    return fig
