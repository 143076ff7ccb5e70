"""The GPU report: one prepared, bounded command that trains and measures on a GPU, and its publisher.

On the GPU machine (``make gpu-report``: PyTorch there, no network, the JPEG mirror written from
``.gpu/``)::

    python -m googlenet_utils.gpu_report run --data-dir data/mirror --no-verify --out OUT --started T

writes into ``OUT``, in this order, so that a command killed at any moment leaves what it had:

- ``environment.json`` (GPU, driver, versions, date, commit), before anything else;
- ``bench.json`` with ``--bench`` only (the eager step and a plain DataLoader loop, in a process of
  their own);
- after every epoch, each file atomically: ``config.json``, ``history.csv`` and ``progress.json``
  (the metrics so far);
- at the end ``metrics.json``, ``test_predictions.pt``, ``best.pt`` (inference weights in half
  precision) and ``report.json`` (the summary: images/s and model FLOP utilisation of the run's
  steady full-resolution epochs).

``OUT`` is then a complete run directory that ``load_run`` reads. Its length is set up front by a
time budget (``--budget``, counted from ``--started``, when make started, so writing the mirror and
compiling count too); a wall-clock guard (``--wall-limit``) ends training at an epoch boundary if
the estimate was wrong, still testing the best epoch. Back here::

    python -m googlenet_utils.gpu_report publish OUT --name h100-fast

copies it into ``results/<name>/`` with a README (device, date, commit, data source) and
rewrites the README's GPU table from every published report: no figure is typed by hand.
``run --smoke`` does all of it in seconds on a CPU, which the test suite checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .bench import peak_flops, train_flops_per_image
from .checkpoint import atomic_write, load_checkpoint, save_checkpoint
from .cifar10 import load_cifar10
from .devices import pick_device
from .generated_sections import has_section, markers, replace_section
from .model import GoogLeNet
from .provenance import write_environment
from .recipe import MEASURED, RECIPES, Recipe
from .run_schema import RunMetrics
from .rundir import BEST, CONFIG, HISTORY, METRICS, PREDICTIONS, RunDir
from .runspec import RunSpec, describe_run
from .synthetic import make_synthetic_cifar10
from .trainer import ProgressHook

REPORT, TABLE = "report.json", "gpu-report"  # the README section (generated_sections) the table fills
TABLE_START, TABLE_END = markers(TABLE)
BENCH, PROGRESS = "bench.json", "progress.json"
# The command's clock, from when make starts: done within 8 minutes, the guard under 10 (the kill).
BUDGET_SECONDS, WALL_LIMIT_SECONDS = 450.0, 530.0
AFTER_FIT_SECONDS = 10.0  # kept back from both for what follows training: weights, report, exit
BENCH_TIMEOUT_SECONDS = 120.0  # the baselines are optional: never let them eat the call
MAX_SHIPPED_BYTES = 25_000_000  # a full-width run's half-precision weights are about 12 MB
FULL_RESOLUTION = 32


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda file: json.dump(value, file, indent=2), "w")


def mirror_progress(out: Path) -> ProgressHook:
    """A hook for ``fit``: after every epoch, the run's config, history and metrics so far into ``out``."""
    target = RunDir(out)

    def write(progress: dict[str, Any]) -> None:
        target.write_config(progress["config"])
        if progress["history"]:
            target.write_history(progress["history"])
        so_far = {key: value for key, value in progress.items() if key not in ("config", "history")}
        so_far["images_per_s"] = steady_images_per_s(progress["history"])
        _write_json(out / PROGRESS, so_far)

    return write


def steady_images_per_s(history: list[dict[str, Any]]) -> float | None:
    """Training images/s of the full-resolution epochs after the first (the median), what MFU is read from."""
    full = [row for row in history if row.get("resolution", FULL_RESOLUTION) == FULL_RESOLUTION]
    steady = [row["images_per_s"] for row in full if row["epoch"] > 1] or [r["images_per_s"] for r in full]
    return sorted(steady)[len(steady) // 2] if steady else None


def half_weights(source: Path, target: Path) -> None:
    """``source``'s inference weights in half precision: half the bytes; ``load_weights`` casts back."""
    state = load_checkpoint(source, "weights")
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    save_checkpoint(target, {k: v for k, v in state.items() if k != "kind"}, "weights")


def collect_results(run_dir: Path, out: Path) -> None:
    """A finished run's files into ``out`` (each atomically), its best weights in half precision."""
    for name in (CONFIG, HISTORY, METRICS, PREDICTIONS):
        data = (run_dir / name).read_bytes()
        atomic_write(out / name, lambda file, data=data: file.write(data))
    half_weights(run_dir / BEST, out / BEST)


def run_bench(
    args: argparse.Namespace, recipe: Recipe, data_dir: str, verify: bool, out: Path
) -> dict | None:
    """``bench train`` without compiling (the real run times the compiled step), in a process of its own.

    Its DataLoader workers then fork in a fresh process, never after this one's CUDA and compiler
    threads started; a failure or a hang costs at most ``BENCH_TIMEOUT_SECONDS``, not the report.
    """
    steps, warmup = ("2", "1") if args.smoke else ("30", "5")
    command = [sys.executable, "-m", "googlenet_utils.bench", "train", "--recipe", recipe.name]
    command += ["--no-compile", "--device", args.device, "--steps", steps, "--warmup", warmup]
    command += ["--data-dir", data_dir, "--json", str(out / BENCH), *([] if verify else ["--no-verify"])]
    try:
        subprocess.run(command, check=True, timeout=BENCH_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as error:
        print(f"bench skipped ({type(error).__name__}: {error}); the report goes on without it", flush=True)
        return None
    return json.loads((out / BENCH).read_text())


def limits(budget: float, wall_limit: float, started: float) -> dict[str, float]:
    """The trainer's time budget and wall limit: what is left of the command's, less what follows training."""
    gone = time.time() - started
    left = {"time_budget": budget, "wall_limit": wall_limit}
    return {name: max(1.0, seconds - gone - AFTER_FIT_SECONDS) for name, seconds in left.items()}


def _run_spec(args: argparse.Namespace, recipe: Recipe, run_dir: Path, device: torch.device) -> RunSpec:
    changes: dict[str, Any] = {"run_dir": str(run_dir), "device": str(device), "progress": False}
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    spec = describe_run(recipe, aux_logits=not args.no_aux, **changes)  # validated before the clock is read
    train = spec.train.replace(**limits(args.budget, args.wall_limit, args.started))
    return dataclasses.replace(spec, train=train)


def _data(args: argparse.Namespace, scratch: str) -> tuple[str, bool]:
    if args.smoke:
        make_synthetic_cifar10(scratch, n_train=1000, n_test=500)
        return scratch, False
    return args.data_dir, not args.no_verify


def run_report(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and write everything into ``args.out``; each file is written as soon as it is known."""
    args.started = time.time() if args.started is None else args.started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        args.device = "cpu"
    device = pick_device(args.device)
    recipe = RECIPES["smoke" if args.smoke else args.recipe]
    env = write_environment(out, device, args.commit)
    print(json.dumps(env), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir, verify = _data(args, scratch)
        bench = run_bench(args, recipe, data_dir, verify, out) if args.bench else None
        data = load_cifar10(data_dir, verify=verify)
        run_dir = Path(scratch) / "run"  # checkpoints stay here; OUT gets the results
        spec = _run_spec(args, recipe, run_dir, device)
        model = spec.build_model()  # the initial weights, as `python -m googlenet_utils.train`
        run = spec.fit(spec.data(data), model, on_epoch=mirror_progress(out))
        collect_results(run_dir, out)
    report = summarise(run.metrics, run.history, model, env, args, recipe, bench, device)
    _write_json(out / REPORT, report)
    print(
        f"report written to {out}: test accuracy {report['test_accuracy']:.4f} after {report['epochs']} "
        f"epochs, {report['wall_seconds']:.0f} s since the command started",
        flush=True,
    )
    return report


def summarise(
    metrics: RunMetrics,
    history: list[dict[str, Any]],
    model: GoogLeNet,
    env: dict[str, Any],
    args: argparse.Namespace,
    recipe: Recipe,
    bench: dict[str, Any] | None,
    device: torch.device,
) -> dict[str, Any]:
    """``report.json``: the run's result, its speed and model FLOP utilisation, and how it was bounded."""
    images_per_s = steady_images_per_s(history)
    flops = train_flops_per_image(model)
    peak = peak_flops(env["device"]) if device.type == "cuda" else None
    return {
        "name": recipe.name + ("-no-aux" if args.no_aux else ""),
        "recipe": recipe.name,
        "aux_heads": not args.no_aux,
        "width": recipe.width,
        "environment": env,
        "data": metrics.data_source,
        "epochs": metrics.epochs,
        "planned_epochs": metrics.planned_epochs,
        "train_seconds": metrics.train_seconds,
        "compile_seconds": metrics.compile_seconds,
        "wall_seconds": time.time() - args.started,
        "budget_seconds": args.budget,
        "wall_limit_seconds": args.wall_limit,
        "time_budget": metrics.time_budget,
        "stopped_early": metrics.stopped_early,
        "test_accuracy": metrics.test_accuracy,
        "test_accuracy_no_tta": metrics.test_accuracy_no_tta,
        "tta": metrics.tta,
        "best_val_accuracy": metrics.best_val_accuracy,
        "time_to_val_accuracy": metrics.time_to_val_accuracy,
        "images_per_s": images_per_s,
        "train_gflop_per_image": flops / 1e9,
        "peak_flops": peak,
        "model_flop_utilisation": images_per_s * flops / peak if peak and images_per_s else None,
        "bench": bench,
    }


# --------------------------------------------------------------------------- publishing


def _format(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:,.0f} s"


def _utilisation(report: dict[str, Any]) -> float | None:
    """The run's model FLOP utilisation (older reports had only the benchmark's)."""
    if "model_flop_utilisation" in report:
        return report["model_flop_utilisation"]
    return (report.get("bench") or {}).get("model_flop_utilisation")


def report_table(results: Path) -> str:
    """A Markdown table of every published GPU report under ``results``, generated from report.json."""
    rows = [
        "| result | device | recipe | epochs | training (compile) | test accuracy (TTA / plain) "
        "| time to 94% val. | images/s | MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    reports = sorted(results.glob(f"*/{REPORT}"))
    for path in reports:
        r = json.loads(path.read_text())
        mfu = _utilisation(r)
        stopped = " (guard)" if r.get("stopped_early") else ""
        rows.append(
            f"| [{path.parent.name}]({path.parent.name}/) | {r['environment']['device']} | {r['recipe']}"
            f"{'' if r['aux_heads'] else ' (no aux)'} | {r['epochs']}{stopped} | {r['train_seconds']:,.0f} s "
            f"({r['compile_seconds']:,.0f} s) | {r['test_accuracy']:.2%} / {r['test_accuracy_no_tta']:.2%} "
            f"| {_format(r['time_to_val_accuracy'].get('0.94'))} | {r['images_per_s'] or 0:,.0f} "
            f"| {'peak unknown' if mfu is None else f'{mfu:.1%}'} |"
        )
    if not reports:
        rows.append("| not measured yet | | | | | | | | |")
    return "\n".join(rows)


def _readme(report: dict[str, Any]) -> str:
    env = report["environment"]
    times = ", ".join(f"{k}: {_format(v)}" for k, v in report["time_to_val_accuracy"].items())
    mfu = _utilisation(report)
    budget = report.get("time_budget") or {}
    stopped = report.get("stopped_early")
    lines = [
        f"# {report['name']}\n",
        "Measured by `python -m googlenet_utils.gpu_report run` (see `make gpu-report`). A complete run",
        "directory: read it with `googlenet_utils.load_run`; `best.pt` holds the inference weights in half",
        "precision (`googlenet_utils.model_from_checkpoint` rebuilds the network in float32).\n",
        f"- device: {env['device']} (driver {env['driver']}, CUDA {env['cuda']}, torch {env['torch']})",
        f"- date: {env['date']}",
        f"- commit: {env['commit']}",
        f"- data: {report['data']}",
        f"- recipe: {report['recipe']}, width {report['width']}, auxiliary heads: {report['aux_heads']}",
        f"- test accuracy: {report['test_accuracy']:.4f} with {report['tta']} TTA, "
        f"{report['test_accuracy_no_tta']:.4f} without",
        f"- training: {report['train_seconds']:,.1f} s over {report['epochs']} epochs, plus "
        f"{report['compile_seconds']:,.1f} s compiling; {report['wall_seconds']:,.0f} s the whole command",
        f"- speed: {report['images_per_s'] or 0:,.0f} training images/s in the steady full-resolution "
        f"epochs; model FLOP utilisation {'unknown (no peak known)' if mfu is None else f'{mfu:.1%}'}",
        f"- time to validation accuracy: {times}",
    ]
    if budget:
        lines.append(f"- length: {budget['reason']}")
    if stopped:
        lines.append(f"- stopped early: {stopped['reason']}")
    return "\n".join(lines) + "\n"


def publish(report_dir: Path, name: str, results: Path, readme: Path, measured: Path | None = None) -> Path:
    """Copy a report into ``results/<name>/``, then regenerate the README's table and the measured figures."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SystemExit(f"error: --name {name!r}: use letters, digits, '.', '_' and '-'")
    report = json.loads((report_dir / REPORT).read_text())
    too_big = [p.name for p in report_dir.iterdir() if p.is_file() and p.stat().st_size > MAX_SHIPPED_BYTES]
    if too_big:
        raise SystemExit(
            f"error: {', '.join(too_big)} exceed {MAX_SHIPPED_BYTES:,} bytes; nothing was copied"
        )
    target = results / name
    if target.exists():
        raise SystemExit(f"error: {target} exists; choose another --name or remove it first")
    text = readme.read_text()
    if not has_section(text, TABLE):
        raise SystemExit(f"error: {readme} lacks the {TABLE_START} ... {TABLE_END} markers for the table")
    shutil.copytree(report_dir, target, ignore=shutil.ignore_patterns(".*.tmp"))  # a kill's half-writes
    (target / "README.md").write_text(_readme(report))
    readme.write_text(replace_section(text, TABLE, report_table(results)))
    record_measurement(report["recipe"] if report["aux_heads"] else None, report, measured)
    return target


def record_measurement(recipe: str | None, report: dict[str, Any], path: Path | None = None) -> None:
    """Keep a recipe's measured time and accuracy where ``Recipe.expected`` reads them."""
    if recipe is None:
        return  # the no-aux ablation measures the architecture, not the recipe
    path = path or MEASURED
    measured = json.loads(path.read_text()) if path.is_file() else {}
    env = report["environment"]
    measured[recipe] = (
        f"{report['test_accuracy']:.2%} test accuracy ({report['tta']} TTA) "
        f"after {report['train_seconds'] / 60:.1f} "
        f"min of training on {env['device']}, {env['date'][:10]} ({report['data']})"
    )
    path.write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")


def _run_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="train and measure on this machine, writing a report as it goes")
    run.add_argument("--out", required=True, help="folder for the report's files")
    run.add_argument(
        "--data-dir", default="data/mirror", help="CIFAR-10 layout folder (default: data/mirror)"
    )
    run.add_argument("--no-verify", action="store_true", help="skip the md5 check (the JPEG mirror)")
    run.add_argument(
        "--recipe", default="fast", choices=sorted(RECIPES), help="the recipe to run (default: fast)"
    )
    run.add_argument("--no-aux", action="store_true", help="train without the auxiliary heads (the ablation)")
    run.add_argument("--epochs", type=int, help="at most this many epochs (default: the recipe's)")
    run.add_argument(
        "--budget", type=float, default=BUDGET_SECONDS,
        help=f"seconds from --started to the end: sets the epochs (default: {BUDGET_SECONDS:.0f})",
    )  # fmt: skip
    run.add_argument(
        "--wall-limit", type=float, default=WALL_LIMIT_SECONDS,
        help=f"seconds from --started it must end by: stops early (default: {WALL_LIMIT_SECONDS:.0f})",
    )  # fmt: skip
    run.add_argument(
        "--started", type=float, help="when the command started, in seconds since the epoch (default: now)"
    )
    run.add_argument(
        "--bench", action="store_true", help="also time the eager step and a plain DataLoader loop"
    )
    run.add_argument("--device", default="auto")
    run.add_argument(
        "--commit", help="the commit being measured (default: git rev-parse HEAD, if git is there)"
    )
    run.add_argument(
        "--smoke", action="store_true", help="synthetic data, the smoke recipe, the CPU: seconds"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.gpu_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _run_parser(commands)
    publish_cmd = commands.add_parser("publish", help="copy a report into results/ and update the README")
    publish_cmd.add_argument("report", help="the folder `run --out` wrote")
    publish_cmd.add_argument("--name", required=True, help="results/<name>/, e.g. h100-fast")
    publish_cmd.add_argument("--results", default="results", help="(default: results)")
    publish_cmd.add_argument("--readme", default="README.md", help="(default: README.md)")
    publish_cmd.add_argument(
        "--measured",
        type=Path,
        default=None,
        help=f"where recipes' measured figures go (default: {MEASURED.name})",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        run_report(args)
    else:
        target = publish(Path(args.report), args.name, Path(args.results), Path(args.readme), args.measured)
        print(f"published {target}; {args.readme} and {(args.measured or MEASURED).name} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
