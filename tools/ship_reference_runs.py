"""Train the CPU reference runs on the JPEG mirror and ship them under results/ (``make reference-runs``).

    python tools/ship_reference_runs.py                 # train both runs (about an hour on 2 cores), ship
    python tools/ship_reference_runs.py --ship-only     # ship finished runs from runs/reference/
    python tools/ship_reference_runs.py --timed         # the 30-minute measurement (``make cpu-30min``)
    python tools/ship_reference_runs.py --timed timed-cpu-30min-no-dropout   # the same without dropout
    python tools/ship_reference_runs.py --long          # the 90-minute reference (``make cpu-90min``)

The two runs differ only in the auxiliary heads: same recipe, seed, data and split. They are
trained in runs/reference/ (kept locally: notebook 04's stored outputs re-test them) and copied
through the run-directory module into results/reference-cpu-aux/ and results/reference-cpu-no-aux/
with a README naming recipe, width, device, date, commit, data and wall time. Run nothing else
on the machine meanwhile: the runs record their speed.

``--timed`` trains the `cpu` recipe once more with ``--time-budget 1800`` (the issue's goal: a
result within 30 minutes on 2 cores, compiling and testing included), in runs/timed/, and ships it
as results/timed-cpu-30min/: the budget, not the recipe, decides its number of epochs.
"""

import argparse
import datetime
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from googlenet_utils.course import REFERENCE_RUNS  # noqa: E402
from googlenet_utils.generated_sections import replace_section  # noqa: E402
from googlenet_utils.gpu_report import record_measurement  # noqa: E402
from googlenet_utils.run_record import export_run, load_run  # noqa: E402

SECTION = "cpu-reference"  # the README section the table of shipped CPU runs fills
BUDGET = 1800  # seconds: the 30-minute runs' whole budget, compiling, validation and the test included

REFERENCE_INTRO = (
    "A reference run shipped with the course, so that notebook 05 has a real run to analyse without\n"
    "a GPU. It is a CPU run of a narrow network, not the full-width GoogLeNet."
)
LONG_INTRO = (
    "The longer CPU reference that notebook 05 analyses while no GPU run is shipped. It is a CPU run\n"
    "of a narrow network (3/16 of the paper's width), not the full-width GoogLeNet."
)
TIMED_INTRO = (
    "How far the `cpu` recipe gets in 30 minutes on the project's 2-core machine, everything included.\n"
    "It is a CPU run of a narrow network, not the full-width GoogLeNet."
)


@dataclass(frozen=True)
class ShippedRun:
    """One CPU run this tool trains in ``runs/<group>/<run>/`` and ships as ``results/<folder>/``."""

    folder: str  # the shipped folder's name: the ones notebooks 04 and 05 find
    run: str
    group: str
    flags: tuple[str, ...]  # beyond the recipe's own settings
    intro: str
    why: str = ""  # how it was trained, for its README

    @property
    def source(self) -> Path:
        return ROOT / "runs" / self.group / self.run


def _timed(folder: str, run: str, flags: tuple[str, ...] = ()) -> ShippedRun:
    changed = f" with `{' '.join(flags)}`" if flags else ""
    why = (
        f"The `cpu` recipe{changed} given `--time-budget {BUDGET}` ({BUDGET / 60:.0f} minutes for the "
        "whole run, compiling, validation and the test included) on a machine running nothing else: the "
        "budget chose the number of epochs."
    )
    return ShippedRun(folder, run, "timed", (*flags, "--time-budget", str(BUDGET)), TIMED_INTRO, why)


# The pair: the same recipe, seed, data and split, with and without the auxiliary heads.
PAIR = [
    ShippedRun(folder, name, "reference", ("--no-aux",) if name.endswith("no-aux") else (), REFERENCE_INTRO)
    for name, folder in REFERENCE_RUNS.items()
]
NO_DROPOUT = ("--dropout", "0", "--aux-dropout", "0")  # the narrow network underfits: dropout costs it
TIMED = {
    run.folder: run
    for run in (
        _timed("timed-cpu-30min", "googlenet-cpu"),
        _timed("timed-cpu-30min-no-dropout", "googlenet-cpu-no-dropout", NO_DROPOUT),
        # The time of the run above spent better: validated once, after the last epoch (its 9
        # validations took 170 s), and two more 16 px epochs in their place (about 100 s each), with
        # the same two at 24 px and one at 32 px: 11 epochs, sized by that run's step times.
        _timed(
            "timed-cpu-30min-more-low-res",
            "googlenet-cpu-more-low-res",
            (*NO_DROPOUT, "--val-every", "10000", "--epochs", "11", "--resolutions", "16:8,24:2"),
        ),
    )
}
# The longer CPU reference notebook 05 analyses: the cpu recipe, wider, and as long as 90 minutes
# allow on the machine of the day: the budget, not a fixed count, sizes it (on 2026-12-01 it chose
# 11 of at most 24 epochs: width 0.1875 ran 0.54x as fast as 0.125 at 16 px, 0.68x at 24 px).
# Without dropout: the narrow network underfits at these lengths, and the 30-minute pair measured
# +1.42 pp without it.
_LONG_FLAGS = (
    "--width", "0.1875", "--epochs", "24", "--resolutions", "16:9,24:7", "--time-budget", "5400", *NO_DROPOUT,
)  # fmt: skip
LONG = ShippedRun(
    "reference-cpu-90min", "googlenet-cpu-90min", "long", _LONG_FLAGS, LONG_INTRO,
    f"The `cpu` recipe with `{' '.join(_LONG_FLAGS)}`: a wider network trained longer, so that notebook "
    "05's Grad-CAM, calibration and filters describe a network that has learned more.",
)  # fmt: skip


def train(run: ShippedRun, recipe: str, data_dir: Path) -> None:
    command = [sys.executable, "-m", "googlenet_utils.train", "--recipe", recipe, "--no-progress"]
    command += ["--no-verify", "--data-dir", str(data_dir), "--out", str(run.source), "--resume", *run.flags]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def ship(run: ShippedRun, commit: str, note: str = "") -> None:
    target = ROOT / "results" / run.folder
    shutil.rmtree(target, ignore_errors=True)
    text = readme(
        run.folder, load_run(run.source), commit, "\n\n".join(filter(None, [run.why, note])), run.intro
    )
    export_run(run.source, target, text)
    print(f"shipped {target}")


def record_recipe(recipe: str) -> None:
    """The recipe's measured result, from the shipped pair's run with aux heads (``recipe.expected``)."""
    m = load_run(ROOT / "results" / PAIR[0].folder).metrics
    when = datetime.datetime.now(datetime.timezone.utc).isoformat()
    report = {
        "test_accuracy": m.test_accuracy, "tta": m.tta, "train_seconds": m.train_seconds,
        "data": m.data_source, "environment": {"device": m.device, "date": when},
    }  # fmt: skip
    record_measurement(recipe, report)
    print(json.dumps({f"{recipe} recipe": report}, indent=2))


def readme(name: str, record, commit: str, note: str = "", intro: str = REFERENCE_INTRO) -> str:
    m, width, train = record.metrics, record.model_config.width, record.train_config
    aux = "with both auxiliary heads" if record.model_config.aux_logits else "without auxiliary heads"
    data = m.data
    lines = [
        f"# {name}: the `{m.recipe}` recipe on a CPU, GoogLeNet at width {width} {aux}",
        "",
        intro,
        "",
        f"- recipe: `{m.recipe}` ({m.epochs} epochs, batch {train['batch_size']}, "
        f"peak lr {train['lr']}), width {width}, seed {train['seed']}",
        f"- data: {data['source']}; {data['train']:,} training, {data['val']:,} validation and "
        f"{data['test']:,} test images",
        f"- device: {m.device}, {m.precision}",
        f"- date: {datetime.date.today().isoformat()}",
        f"- commit: {commit}",
        f"- wall time: {m.wall_seconds / 60:.1f} min ({m.train_seconds / 60:.1f} min training and "
        f"validation, {m.images_per_s:,.0f} training images/s)",
        f"- test accuracy: {m.test_accuracy:.2%} with {m.tta} TTA, {m.test_accuracy_no_tta:.2%} "
        f"without; best validation accuracy {m.best_val_accuracy:.2%} at epoch {m.best_epoch}",
        "",
        "Files: `config.json` (settings, model, data fingerprint, normalisation), `history.csv`,",
        "`metrics.json`, `test_predictions.pt` (test logits of every head), `best.pt` (inference weights,",
        "no optimiser state). Read it with `googlenet_utils.load_run`.",
        *(["", note] if note else []),
    ]
    return "\n".join(lines) + "\n"


def reference_table() -> str:
    """The README's table of the shipped CPU runs, generated from their metrics (no hand-typed figures)."""
    rows = [
        "| run | width | epochs | wall time | training images/s | test accuracy (TTA / plain) | best val. |",
        "|---|---|---|---|---|---|---|",
    ]
    shipped = [run.folder for run in PAIR]
    shipped += [name for name in (*TIMED, LONG.folder) if (ROOT / "results" / name).is_dir()]
    for target_name in shipped:
        record = load_run(ROOT / "results" / target_name)
        m = record.metrics
        rows.append(
            f"| [{target_name}](results/{target_name}/) | {record.model_config.width} | {m.epochs} "
            f"| {m.wall_seconds / 60:.1f} min | {m.images_per_s:,.0f} "
            f"| {m.test_accuracy:.2%} / {m.test_accuracy_no_tta:.2%} | {m.best_val_accuracy:.2%} |"
        )
    m = load_run(ROOT / "results" / PAIR[0].folder).metrics
    rows += ["", f"Data: {m.data_source}. Device: {m.device}. Recipe: `{m.recipe}`."]
    return "\n".join(rows)


def update_readme() -> None:
    readme = ROOT / "README.md"
    readme.write_text(replace_section(readme.read_text(), SECTION, reference_table()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default="cpu")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "mirror"))
    parser.add_argument("--ship-only", action="store_true", help="ship finished runs without training")
    parser.add_argument("--commit", default="", help="the commit the runs were trained at (default: HEAD)")
    parser.add_argument("--note", default="", help="a paragraph added to each shipped README")
    parser.add_argument(
        "--timed", nargs="?", const="timed-cpu-30min", choices=sorted(TIMED),
        help="a 30-minute run (default: the cpu recipe's own), not the pair",
    )  # fmt: skip
    parser.add_argument("--long", action="store_true", help="the 90-minute reference, not the pair")
    args = parser.parse_args()
    runs = [LONG] if args.long else [TIMED[args.timed]] if args.timed else PAIR
    git = ["git", "rev-parse", "HEAD"]
    commit = args.commit or subprocess.run(git, capture_output=True, text=True, cwd=ROOT).stdout.strip()
    for run in runs:
        if not args.ship_only:
            train(run, args.recipe, Path(args.data_dir))
        ship(run, commit, args.note)
    if runs is PAIR:
        record_recipe(args.recipe)
    update_readme()


if __name__ == "__main__":
    main()
