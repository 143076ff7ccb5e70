"""The GPU report: one prepared, bounded command that measures the course on a GPU, and its publisher.

On the GPU machine (PyTorch there; no network; the JPEG mirror written from ``.gpu/``)::

    python -m googlenet_utils.gpu_report run --data-dir data/mirror --no-verify --out OUT

writes ``OUT/environment.json`` (GPU, driver, versions), ``OUT/bench.json`` (``bench train``:
eager and compiled images/s, model FLOP utilisation, the plain-loop ratio), the run's
``config.json``, ``history.csv`` and ``metrics.json`` under ``OUT/<recipe>/``, and
``OUT/report.json`` summing it up. Back here::

    python -m googlenet_utils.gpu_report publish OUT --name h100-fast

copies it into ``results/<name>/`` with a README (device, date, commit, data source) and
rewrites the README's GPU table from every published report: no figure is typed by hand.
``run --smoke`` does all of it in seconds on a CPU, which the test suite checks.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .bench import bench_train
from .cifar10 import load_cifar10
from .devices import device_name, pick_device
from .model import GoogLeNet
from .recipe import MEASURED, RECIPES
from .rundir import CONFIG, HISTORY, METRICS
from .synthetic import make_synthetic_cifar10
from .trainer import fit

REPORT, TABLE_START, TABLE_END = "report.json", "<!-- gpu-report:start -->", "<!-- gpu-report:end -->"


def _driver() -> str:
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        return subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _commit(given: str | None) -> str:
    if given:
        return given
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        return found.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: torch.device, commit: str | None) -> dict[str, Any]:
    """What ran the report: the GPU, its driver, the libraries, the date and the code's commit."""
    import torchvision

    return {
        "device": device_name(device),
        "driver": _driver() if device.type == "cuda" else "none",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda or "none",
        "cudnn": str(torch.backends.cudnn.version()) if device.type == "cuda" else "none",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(commit),
    }


def run_report(args: argparse.Namespace) -> dict[str, Any]:
    """Measure and write everything into ``args.out``; each file is written as soon as it is known."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device("cpu" if args.smoke else args.device)
    recipe = RECIPES["smoke" if args.smoke else args.recipe]
    env = environment(device, args.commit)
    (out / "environment.json").write_text(json.dumps(env, indent=2))
    print(json.dumps(env), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            make_synthetic_cifar10(scratch, n_train=1000, n_test=500)
            data_dir, verify = scratch, False
        else:
            data_dir, verify = args.data_dir, not args.no_verify
        data = load_cifar10(data_dir, verify=verify)
        bench = None
        if not args.skip_bench:
            bench_args = argparse.Namespace(
                device=str(device),
                recipe=recipe.name,
                width=None,
                batch_size=None,
                precision=None,
                compile=None,
                steps=2 if args.smoke else 40,
                warmup=1 if args.smoke else 5,
                data_dir=data_dir,
                no_verify=not verify,
                images=1000,
            )
            bench = bench_train(bench_args)
            (out / "bench.json").write_text(json.dumps(bench, indent=2))
        if recipe.subset is not None:
            data = data.subset(*recipe.subset)
        run_dir = Path(scratch) / "run"
        torch.manual_seed(0)
        width = recipe.width
        model = GoogLeNet(len(data.classes), variant="cifar", aux_logits=not args.no_aux, width=width)
        config = recipe.config(run_dir=str(run_dir), device=str(device), progress=False)
        start = time.perf_counter()
        run = fit(model, data, config, recipe=recipe.name)
        seconds = time.perf_counter() - start
        name = recipe.name + ("-no-aux" if args.no_aux else "")
        (out / name).mkdir(exist_ok=True)
        for file in (CONFIG, HISTORY, METRICS):  # small files; no checkpoints leave the machine
            shutil.copy(run_dir / file, out / name / file)
    metrics = run.metrics
    report = {
        "name": name,
        "recipe": recipe.name,
        "aux_heads": not args.no_aux,
        "width": width,
        "environment": env,
        "data": metrics["data"]["source"],
        "epochs": metrics["epochs"],
        "train_seconds": metrics["train_seconds"],
        "compile_seconds": metrics["compile_seconds"],
        "wall_seconds": seconds,
        "test_accuracy": metrics["test_accuracy"],
        "test_accuracy_no_tta": metrics["test_accuracy_no_tta"],
        "tta": metrics["tta"],
        "best_val_accuracy": metrics["best_val_accuracy"],
        "time_to_val_accuracy": metrics["time_to_val_accuracy"],
        "images_per_s": metrics["images_per_s"],
        "bench": bench,
    }
    (out / REPORT).write_text(json.dumps(report, indent=2))
    print(
        f"report written to {out}: test accuracy {report['test_accuracy']:.4f} in {seconds:.0f} s", flush=True
    )
    return report


# --------------------------------------------------------------------------- publishing


def _format(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:,.0f} s"


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
        bench = r.get("bench") or {}
        mfu = bench.get("model_flop_utilisation")
        rows.append(
            f"| [{path.parent.name}]({path.parent.name}/) | {r['environment']['device']} | {r['recipe']}"
            f"{'' if r['aux_heads'] else ' (no aux)'} | {r['epochs']} | {r['train_seconds']:,.0f} s "
            f"({r['compile_seconds']:,.0f} s) | {r['test_accuracy']:.2%} / {r['test_accuracy_no_tta']:.2%} "
            f"| {_format(r['time_to_val_accuracy'].get('0.94'))} | {r['images_per_s']:,.0f} "
            f"| {'peak unknown' if mfu is None else f'{mfu:.1%}'} |"
        )
    if not reports:
        rows.append("| not measured yet | | | | | | | | |")
    return "\n".join(rows)


def _readme(report: dict[str, Any]) -> str:
    env = report["environment"]
    times = ", ".join(f"{k}: {_format(v)}" for k, v in report["time_to_val_accuracy"].items())
    return (
        f"# {report['name']}\n\n"
        f"Measured by `python -m googlenet_utils.gpu_report run` (see `make gpu-report`).\n\n"
        f"- device: {env['device']} (driver {env['driver']}, CUDA {env['cuda']}, torch {env['torch']})\n"
        f"- date: {env['date']}\n- commit: {env['commit']}\n- data: {report['data']}\n"
        f"- recipe: {report['recipe']}, width {report['width']}, auxiliary heads: {report['aux_heads']}\n"
        f"- test accuracy: {report['test_accuracy']:.4f} with {report['tta']} TTA, "
        f"{report['test_accuracy_no_tta']:.4f} without\n"
        f"- training: {report['train_seconds']:,.1f} s over {report['epochs']} epochs, plus "
        f"{report['compile_seconds']:,.1f} s compiling\n- time to validation accuracy: {times}\n"
    )


def publish(report_dir: Path, name: str, results: Path, readme: Path) -> Path:
    """Copy a report into ``results/<name>/``, then regenerate the README's table and the measured figures."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise SystemExit(f"error: --name {name!r}: use letters, digits, '.', '_' and '-'")
    report = json.loads((report_dir / REPORT).read_text())
    target = results / name
    if target.exists():
        raise SystemExit(f"error: {target} exists; choose another --name or remove it first")
    shutil.copytree(report_dir, target)
    (target / "README.md").write_text(_readme(report))
    text = readme.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"error: {readme} lacks the {TABLE_START} ... {TABLE_END} markers for the table")
    head, rest = text.split(TABLE_START, 1)
    readme.write_text(
        head + TABLE_START + "\n" + report_table(results) + "\n" + TABLE_END + rest.split(TABLE_END, 1)[1]
    )
    record_measurement(report["recipe"] if report["aux_heads"] else None, report)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.gpu_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="measure on this machine and write a report")
    run.add_argument("--out", required=True, help="folder for the report's files")
    run.add_argument(
        "--data-dir", default="data/mirror", help="CIFAR-10 layout folder (default: data/mirror)"
    )
    run.add_argument("--no-verify", action="store_true", help="skip the md5 check (the JPEG mirror)")
    run.add_argument(
        "--recipe", default="fast", choices=sorted(RECIPES), help="the recipe to run (default: fast)"
    )
    run.add_argument("--no-aux", action="store_true", help="train without the auxiliary heads (the ablation)")
    run.add_argument("--skip-bench", action="store_true", help="only the training run (for a second command)")
    run.add_argument("--device", default="auto")
    run.add_argument(
        "--commit", help="the commit being measured (default: git rev-parse HEAD, if git is there)"
    )
    run.add_argument(
        "--smoke", action="store_true", help="synthetic data, the smoke recipe, the CPU: seconds"
    )
    publish_cmd = commands.add_parser("publish", help="copy a report into results/ and update the README")
    publish_cmd.add_argument("report", help="the folder `run --out` wrote")
    publish_cmd.add_argument("--name", required=True, help="results/<name>/, e.g. h100-fast")
    publish_cmd.add_argument("--results", default="results", help="(default: results)")
    publish_cmd.add_argument("--readme", default="README.md", help="(default: README.md)")
    args = parser.parse_args(argv)
    if args.command == "run":
        run_report(args)
    else:
        target = publish(Path(args.report), args.name, Path(args.results), Path(args.readme))
        print(f"published {target}; {args.readme} and {MEASURED.name} updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
