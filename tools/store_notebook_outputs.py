"""Re-run notebooks and store only the outputs they may keep (see notebook_rules.py).

    make notebook-outputs        smoke mode: refresh the checked cells; keep stored real-run outputs
    make notebook-outputs-real   full mode on the JPEG mirror: store every output, labelled

or ``python tools/store_notebook_outputs.py [--real [--changed]] notebooks/02_*.ipynb``: with
``--changed``, a full-mode run stores real outputs only for the cells whose code changed since their
output was stored (or that have none), and keeps every other stored output as it is. With
``--through N``, a full-mode run executes only cells 0 to N and keeps every later stored output:
notebook 04's cells before its training run (``--through 22``) need no reference runs, so they can
be refreshed on a machine without ``runs/reference/`` (no running time is recorded for such a run).

In ``--real`` mode notebooks 03-05 read the JPEG mirror (``data/mirror``); notebook 04 works in
``runs/notebooks/``, where the finished reference runs of ``runs/reference/`` are copied first
so that it re-tests them instead of training for an hour; notebook 05 is given an empty run
folder, so that it analyses the reference runs shipped under ``results/``, as a learner without
a run of their own sees them; notebook 06 reads the sweep shipped under ``results/sweeps/ablation/``
and is labelled with that sweep's data and machines. Each stored cell's first line names the data
and device, and its metadata records a hash of its code: change the code and the tests ask for a
refresh. How long each run took, and how busy the machine was, goes to results/notebook-times.json,
and the README's table of running times is rewritten from that file. ``--time-only`` runs and times
the notebooks without storing any output (run it with nothing else on the machine).
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_rules import (  # noqa: E402
    CHECKED,
    NOTEBOOKS,
    REAL_RUN,
    body,
    body_hash,
    declared_data,
    may_store_outputs,
    source,
)

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "data" / "mirror"
NEEDS_DATA = ("03_", "04_", "05_")
READS_SWEEP = "06_"  # reads the shipped sweep: its runs say which data and which machine made them
SWEEP = ROOT / "results" / "sweeps" / "ablation"
TIMES = ROOT / "results" / "notebook-times.json"  # each notebook's last top-to-bottom run, per mode


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return found.stdout.strip() or "unknown"


def _real_environment(
    path: Path, mirror: Path = MIRROR, prefix_only: bool = False
) -> tuple[dict[str, str], str, str]:
    """Environment variables for a full-mode run of ``path``, and how to label its data and device.

    ``prefix_only``: only the cells before notebook 04's training run, which need no reference runs.
    """
    from googlenet_utils.cifar10 import load_cifar10
    from googlenet_utils.devices import device_name, pick_device

    env = {"GOOGLENET_SMOKE": "0", "GOOGLENET_DATA_DIR": str(mirror), "GOOGLENET_VERIFY": "0"}
    device = device_name(pick_device("auto"))
    if path.name.startswith(READS_SWEEP):
        return env, *_sweep_label(device)
    if not path.name.startswith(NEEDS_DATA):
        return env, "none (the architecture alone)", device
    data = load_cifar10(mirror, verify=False).source
    runs = ROOT / "runs" / "notebooks"
    if path.name.startswith("04_"):
        reference = ROOT / "runs" / "reference"
        shutil.rmtree(runs, ignore_errors=True)
        if prefix_only:
            pass  # the cells before the training run read no runs
        elif reference.is_dir():
            shutil.copytree(reference, runs)  # finished runs: the notebook re-tests instead of training
            device += "; runs: reference, re-tested"  # the shipped cpu runs, not retrained here
        else:
            print("runs/reference/ is missing: notebook 04 trains its runs now (about an hour on 2 cores)")
        env["GOOGLENET_RUN_DIR"] = str(runs)
    elif path.name.startswith("05_"):
        empty = ROOT / "runs" / "notebooks-empty"
        shutil.rmtree(empty, ignore_errors=True)
        empty.mkdir(parents=True)
        env["GOOGLENET_RUN_DIR"] = str(empty)  # no learner run: the shipped reference runs are shown
    return env, data, device


def _sweep_label(device: str) -> tuple[str, str]:
    """The shipped sweep's data, and this machine plus the machines that trained the sweep."""
    from googlenet_utils.sweep_results import read_sweep

    runs = read_sweep(SWEEP)
    if not runs:
        raise SystemExit(f"{SWEEP.relative_to(ROOT)} holds no finished run: run the sweep first")
    # The machines that trained the runs: the notebook prints them; the label stays one short line.
    return "; ".join(sorted({run.source for run in runs})), f"{device}; runs: the shipped sweep"


def _execute(notebook, path: Path, env: dict[str, str]) -> None:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        client = NotebookClient(notebook, timeout=7200, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _settle(patience: float = 180.0) -> float:
    """Wait, at most ``patience`` s, for the one-minute load average to fall below ``QUIET_LOAD`` (the
    previous notebook's kernel counts in it for a minute after it ends); return the load then."""
    waited = time.perf_counter()
    while os.getloadavg()[0] >= QUIET_LOAD and time.perf_counter() - waited < patience:
        time.sleep(5)
    return os.getloadavg()[0]


def record_time(name: str, mode: str, seconds: float, load: float) -> None:
    """Keep how long a notebook ran, top to bottom, in TIMES (what the README's running times cite).

    ``load`` is the machine's one-minute load average when the run started: above about 1 on the
    2-core machine, something else was running and the time is an upper bound.
    """
    from googlenet_utils.devices import device_name, pick_device

    times = json.loads(TIMES.read_text()) if TIMES.is_file() else {}
    times.setdefault(name, {})[mode] = {
        "seconds": round(seconds, 1), "date": datetime.date.today().isoformat(), "commit": _commit(),
        "device": device_name(pick_device("cpu" if mode == "smoke" else "auto")),
        "load_average_at_start": round(load, 2),
    }  # fmt: skip
    TIMES.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
    update_readme_times(times)


TIMES_SECTION = "notebook-times"  # the README section the running-times table fills
QUIET_LOAD = 1.0  # a one-minute load average below this on 2 cores: nothing else was running


def times_table(times: dict) -> str:
    """The README's running times, one row per notebook, each figure with its date, commit and load."""

    def shown(entry: dict | None) -> str:
        if entry is None:
            return "not measured yet"
        seconds = entry["seconds"]
        length = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
        busy = "" if entry["load_average_at_start"] < QUIET_LOAD else ", machine busy: an upper bound"
        return f"{length} ({entry['date']}, `{entry['commit']}`{busy})"

    rows = ["| notebook | smoke mode | full mode |", "|---|---|---|"]
    for path in NOTEBOOKS:
        entry = times.get(path.name, {})
        rows.append(f"| {path.stem} | {shown(entry.get('smoke'))} | {shown(entry.get('full'))} |")
    return "\n".join(rows)


def update_readme_times(times: dict) -> None:
    readme = ROOT / "README.md"
    from googlenet_utils.generated_sections import has_section, replace_section

    text = readme.read_text()
    if has_section(text, TIMES_SECTION):  # a README without the table (a fork's): nothing to rewrite
        readme.write_text(replace_section(text, TIMES_SECTION, times_table(times)))


def _unchanged(stored: dict, cell) -> bool:
    """A stored real-run output of exactly this code (its recorded hash still matches)."""
    old = stored.get(body(cell))
    return old is not None and old.metadata.get("real_run", {}).get("source_hash") == body_hash(old)


def _keep(cell, old) -> None:
    cell.source, cell.outputs, cell.metadata = old.source, old.outputs, old.metadata
    cell.execution_count = old.execution_count


def refresh(
    path: Path,
    real: bool,
    changed_only: bool = False,
    also: frozenset[int] = frozenset(),
    mirror: Path = MIRROR,
    time_only: bool = False,
    through: int | None = None,
) -> None:
    """Run ``path`` and store the outputs it may keep; with ``through``, only cells 0 to ``through``."""
    original = nbformat.read(path, as_version=4)
    stored = {
        body(cell): cell
        for cell in original.cells
        if cell.cell_type == "code" and source(cell).startswith(REAL_RUN)
    }
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:  # run the code itself, without old labels
        if cell.cell_type == "code":
            cell.source = body(cell)
    if real:
        env, data, device = _real_environment(path, mirror, prefix_only=through is not None)
    else:
        env, data, device = {"GOOGLENET_SMOKE": "1"}, "", ""
    busy = _settle()
    start = time.perf_counter()
    if through is None:
        _execute(notebook, path, env)
        record_time(path.name, "full" if real else "smoke", time.perf_counter() - start, busy)
    else:  # the cells up to ``through`` only: not a top-to-bottom run, so no running time is kept
        prefix = nbformat.from_dict({**notebook, "cells": notebook.cells[: through + 1]})
        _execute(prefix, path, env)
        notebook.cells[: through + 1] = prefix.cells
    if time_only:
        print(f"{path.name}: timed ({'full' if real else 'smoke'} mode), nothing stored")
        return
    kept = 0
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if through is not None and index > through:
            _keep(cell, original.cells[index])  # not run this time: its stored output and label stay
            kept += bool(cell.outputs)
            continue
        cell.metadata.pop("execution", None)
        cell.metadata.pop("real_run", None)
        if source(cell).startswith(CHECKED):
            kept += 1  # nbval wants the execution count of a cell that has outputs
        elif real and changed_only and index not in also and _unchanged(stored, cell):
            _keep(cell, stored[body(cell)])  # unchanged code: its stored output stays
            kept += 1
        elif real and cell.outputs:
            own = declared_data(cell) or data  # a cell may compute on data of its own
            short = own.split(":")[0].split(" (")[0]  # the full description is in the metadata
            cell.source = f"{REAL_RUN} data: {short}; device: {device}\n{cell.source}"
            cell.metadata["real_run"] = {
                "source_hash": body_hash(cell), "data": own, "device": device, "commit": _commit(),
                "date": datetime.date.today().isoformat(),
            }  # fmt: skip
            kept += 1
        elif not real and _unchanged(stored, cell):
            _keep(cell, stored[body(cell)])  # unchanged code: keep its real-run output and label
            kept += 1
        else:
            cell.outputs, cell.execution_count = [], None
    assert all(may_store_outputs(c) or not c.outputs for c in notebook.cells if c.cell_type == "code")
    nbformat.write(notebook, path)
    print(f"{path.name}: stored the outputs of {kept} cells ({'real run' if real else 'smoke mode'})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--real", action="store_true", help="full mode on the JPEG mirror; store every output"
    )
    parser.add_argument(
        "--changed", action="store_true", help="with --real: store only the cells whose code changed"
    )
    parser.add_argument(
        "--also",
        default="",
        help="with --changed: cell numbers (from 0) to store anew although their code is the same, "
        "because the package code they call changed; e.g. 20,26",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=MIRROR,
        help="with --real: the JPEG mirror to read (default: data/mirror), e.g. the shipped runs' one",
    )
    parser.add_argument(
        "--time-only", action="store_true", help="run and time the notebooks (README table); store nothing"
    )
    parser.add_argument(
        "--through",
        type=int,
        help="with --real: run only cells 0 to N (from 0) and keep every later stored output, e.g. "
        "notebook 04's cells before its training run where runs/reference/ is missing",
    )
    parser.add_argument("notebooks", nargs="*", help="default: all of them")
    args = parser.parse_args()
    if args.through is not None and not args.real:
        parser.error("--through goes with --real (smoke mode runs every cell, and fast)")
    also = frozenset(int(n) for n in args.also.split(",") if n.strip())
    if args.changed and not args.real:
        parser.error("--changed goes with --real (smoke mode always keeps unchanged real outputs)")
    for name in args.notebooks or [str(p) for p in NOTEBOOKS]:
        refresh(
            Path(name).resolve(),
            args.real,
            args.changed,
            also,
            args.data_dir.resolve(),
            args.time_only,
            args.through,
        )


if __name__ == "__main__":
    main()
