"""May this run continue from that checkpoint? The rules behind ``--resume``, each with its reason.

The one place that says which settings may change when a run resumes (``OPERATIONAL``, plus the two
remedies for a diverging run) and how a refusal is worded. The sweep's check of shipped results and
the overrides a run prints use the same ``OPERATIONAL`` set: a setting that may change on resume
does not change what a run computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import CheckpointError
from .recipe import TrainConfig
from .run_report import describe_data

# Settings that do not change what a run computes: free to change when resuming.
# The time budget and the wall limit too: a resumed run keeps the length its budget chose.
OPERATIONAL = {
    *("run_dir", "resume", "progress", "device", "compile", "eval_batch_size"),
    *("time_budget", "wall_limit"),
}


def resume_changes(saved: dict[str, Any], config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the differences between a checkpoint's settings and ``config`` into (allowed, refused).

    Allowed beyond the operational ones: a *lower* peak learning rate and ``precision="fp32"``,
    the two remedies for a diverging run. Both are recorded in the history.
    """
    allowed, refused = {}, {}
    for key, old in saved.items():
        new = getattr(config, key, old)
        if new == old or key in OPERATIONAL:
            continue
        remedy = (key == "lr" and new < old) or (key == "precision" and new == "fp32")
        (allowed if remedy else refused)[key] = (old, new)
    return allowed, refused


def check_resume(
    state: dict[str, Any], *, fingerprint: dict[str, Any], config: TrainConfig, has_ema: bool, path: Path
) -> str | None:
    """Refuse a resume that would mix data or settings; return the allowed changes in words, if any.

    Allowed: what does not change the computation (device, compile, ...), plus the two remedies
    for a diverging run, a lower peak learning rate and fp32. The history records them.
    """
    if _contents(state.get("data")) != _contents(fingerprint):
        raise CheckpointError(
            f"{path} was trained on other data or another validation split; resuming would test a model "
            f"chosen on one dataset against another.\n  the run: {describe_data(state.get('data'))}\n"
            f"  now:     {describe_data(fingerprint)}\n"
            "Point --data-dir (and --val-size, --seed) at what the run used, or start a new --out."
        )
    allowed, refused = resume_changes(state["config"], config)
    if refused:
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in refused.items())
        raise CheckpointError(
            f"{path} was trained with other settings ({listed}); resume with the original settings "
            "(only a lower --lr or --precision fp32 may change), or start a new --out"
        )
    if has_ema != (state["ema"] is not None):
        raise CheckpointError(
            f"the run was trained with ema={state['ema'] is not None}; resume with the same"
        )
    return "; ".join(f"{k} {old} -> {new}" for k, (old, new) in allowed.items()) or None


def _contents(fingerprint: Any) -> Any:
    """A data fingerprint without its ``source`` label: the digest and sizes say which images, and a
    label's wording may change between versions of the package (the same images stay resumable)."""
    if not isinstance(fingerprint, dict):
        return fingerprint
    return {key: value for key, value in fingerprint.items() if key != "source"}


def divergence_advice(
    epoch: int, step: int, lr: float, peak_lr: float, checkpoint: Path | None, precision: str | None = None
) -> str:
    """Where the loss became non-finite, and advice that resuming will accept.

    ``precision`` is the run's resolved precision: an fp32 run is not told to switch to fp32.
    """
    where = (
        f"the training loss became non-finite at epoch {epoch + 1}, step {step + 1} (learning rate {lr:.4g})."
    )
    fp32 = "" if precision == "fp32" else " or --precision fp32"
    if checkpoint is None:
        return where + (
            " No checkpoint was written yet. Start again in the same folder with --resume and a lower "
            f"peak learning rate (e.g. --lr {peak_lr / 2:g}){fp32}."
        )
    return where + (
        f" {checkpoint} holds epoch {epoch}, the last good one. Continue it with --resume and "
        f"--lr {peak_lr / 2:g} (a lower peak learning rate is allowed on resume and recorded in the "
        f"history){fp32}."
    )
