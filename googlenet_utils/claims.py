"""Verdicts on claims: the effect size that matters is stated in advance, then significance and size decide.

A difference counts only if its whole interval (± two standard errors) lies beyond the smallest
effect that would matter, fixed here before any run is looked at. A significant but tiny
difference is reported as such, not as support, and one whose interval straddles the effect
size is undecided. ``claims_table`` turns notebook 05's
measurements into the seed post's claims with their verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The smallest effects that would matter, each with its one-line reason (stated before measuring).
MIN_EFFECT = {
    "smoothness": 0.05,  # neighbour correlation, 5x5 minus 1x1: 5% of its range, pixel noise 0 to flat 1
    "branch loss": 0.01,  # accuracy lost without a branch: 1 percentage point, a result one would report
    "aux gain": 0.01,  # test accuracy with minus without auxiliary heads: 1 percentage point
    "cam margin": 0.05,  # Grad-CAM's map mass in the box above the best image-blind map: 5 percentage points
}

SUPPORTED, CONTRADICTED, TOO_SMALL, NOISE, UNPLACED = (
    "supported",
    "not supported: the opposite, beyond the stated effect size",
    "not supported: real, but smaller than the effect size stated in advance",
    "not decided by this run: within the noise (two standard errors)",
    "not decided by this run: beyond the noise, but its interval straddles the stated effect size",
)


def verdict(change: float, error: float, min_effect: float) -> str:
    """``change`` (predicted direction: positive) with its standard error, against ``min_effect``.

    The interval is ``change`` ± two standard errors; a claim is decided only when the whole
    interval lies on one side of the effect size (the rule notebook 06 applies to its sweep).
    """
    if error < 0 or min_effect <= 0:
        raise ValueError("the standard error must be >= 0 and the effect size > 0")
    low, high = change - 2 * error, change + 2 * error
    if low <= 0 <= high:
        return NOISE
    if low >= min_effect:
        return SUPPORTED
    if high <= -min_effect:
        return CONTRADICTED
    if -min_effect < low and high < min_effect:
        return TOO_SMALL
    return UNPLACED


@dataclass(frozen=True)
class Measured:
    """What notebook 05 measured, in the form ``claims_table`` needs."""

    shares: list[dict[str, Any]]  # probes.branch_shares rows, first module to last
    ablation: list[dict[str, Any]]  # probes.branch_ablation rows (mean ablation)
    smoothness: tuple[float, float]  # trained network: 5x5 minus 1x1 neighbour correlation, and its se
    smoothness_untrained: float  # the same difference before training (what the architecture alone gives)
    gap_head: int  # parameters of the head after global average pooling
    flatten_head: int  # parameters of a head that flattens the last map instead
    final_side: int  # side of that last map
    aux: tuple[float, float] | None  # test accuracy with minus without aux heads, and its paired se
    ablation_other: list[dict[str, Any]] | None = None  # the same, replaced by another image's maps


def _large(row: dict[str, Any], what: str) -> int:
    return row[f"3x3 {what}"] + row[f"5x5 {what}"]


def _total(row: dict[str, Any], what: str) -> int:
    return sum(value for key, value in row.items() if key.endswith(f" {what}"))


def _branch_rows(measured: Measured) -> tuple[str, str]:
    """Does every branch carry information the network uses? Needed: a loss under every ablation given."""
    ablations = [measured.ablation] + ([measured.ablation_other] if measured.ablation_other else [])
    needed_by = [
        all(verdict(-rows[k]["change"], rows[k]["standard error"], MIN_EFFECT["branch loss"]) == SUPPORTED
            for rows in ablations)
        for k in range(len(measured.ablation))
    ]  # fmt: skip
    needed = sum(needed_by)
    if needed == len(needed_by):
        summary = SUPPORTED
    elif needed:
        summary = f"supported for {needed} of {len(needed_by)} branches"
    else:
        summary = "not supported: no branch's loss reaches the stated effect size beyond the noise"
    weakest = max(measured.ablation if len(ablations) == 1 else ablations[-1], key=lambda r: r["change"])
    how = "mean ablation" if len(ablations) == 1 else "both the mean and the other-image ablation"
    number = (
        f"{needed} of {len(needed_by)} branches lose at least {100 * MIN_EFFECT['branch loss']:.0f} pp under "
        f"{how}; least hurt{'' if len(ablations) == 1 else ' by another image'}: {weakest['module']} "
        f"{weakest['branch']}, {100 * weakest['change']:+.2f} ± {200 * weakest['standard error']:.2f} pp"
    )
    return summary, number


def claims_table(measured: Measured) -> list[dict[str, str]]:
    """The seed post's four advantages as claims, each with this run's verdict and the deciding number."""
    first, last = measured.shares[0], measured.shares[-1]
    share_first = _large(first, "channels") / _total(first, "channels")
    share_last = _large(last, "channels") / _total(last, "channels")
    count_grows = _large(last, "channels") > _large(first, "channels")
    smooth, smooth_error = measured.smoothness
    branch_verdict, branch_number = _branch_rows(measured)
    if measured.aux is None:
        aux_verdict, aux_number = "not tested by this run", "the two runs were tested on different images"
    else:
        change, error = measured.aux
        aux_verdict = verdict(change, error, MIN_EFFECT["aux gain"]) + " (one pair of runs, one seed each)"
        aux_number = f"with − without: {100 * change:+.2f} ± {200 * error:.2f} pp (2 se); needed: +1 pp"
    rows = [
        ("1. dense blocks for a sparse structure", "the module approximates an optimal sparse structure",
         "not tested by this run", "a trained run cannot show it; notebook 01, section 6, shows what can be"),
        ("2. kernels that grow with depth", "deeper modules have more 3x3 and 5x5 kernels",
         f"{SUPPORTED if count_grows else 'not supported'} for the count; "
         f"{SUPPORTED if share_last > share_first else 'not supported'} for the share",
         f"3x3 + 5x5 channels: {first['module']} {_large(first, 'channels'):,} ({share_first:.1%}), "
         f"{last['module']} {_large(last, 'channels'):,} ({share_last:.1%})"),
        ("2. (our reading)", "every branch of the modules probed carries information the network uses",
         branch_verdict, branch_number),
        ("2. (our reading)", "the larger kernel gives coarser maps (3a: 5x5 smoother than 1x1)",
         verdict(smooth, smooth_error, MIN_EFFECT["smoothness"]),
         f"neighbour correlation, 5x5 − 1x1: {smooth:+.3f} ± {2 * smooth_error:.3f} (untrained: "
         f"{measured.smoothness_untrained:+.3f}); needed: +{MIN_EFFECT['smoothness']:.2f}"),
        ("3. global average pooling", "pooling instead of flattening cuts the head's parameters",
         SUPPORTED if measured.gap_head < measured.flatten_head else "not supported",
         f"head {measured.gap_head:,} parameters; flattening the {measured.final_side}x{measured.final_side} "
         f"map: {measured.flatten_head:,} ({measured.flatten_head / measured.gap_head:,.0f}x)"),
        ("3. global average pooling", "... and raises top-1 accuracy", "not tested by this run",
         "no run with a flattening head"),
        ("4. auxiliary classifiers", "they add gradient signal during training", "not tested by this run",
         "notebook 02 measures the gradient they send, at initialisation and after a short run"),
        ("4. auxiliary classifiers", "they regularise: the final network is more accurate", aux_verdict,
         aux_number),
    ]  # fmt: skip
    return [dict(zip(("advantage", "claim", "verdict", "deciding number"), row, strict=True)) for row in rows]


def markdown_table(rows: list[dict[str, str]]) -> str:
    """``rows`` (dicts with the same keys) as a Markdown table."""
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(row[h]).replace("|", "\\|") for h in headers) + " |" for row in rows]
    return "\n".join(lines)
