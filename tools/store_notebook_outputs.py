"""Re-run notebooks and store only the outputs they may keep (see notebook_rules.py).

    make notebook-outputs        smoke mode: refresh the checked cells; keep stored real-run outputs
    make notebook-outputs-real   full mode on the JPEG mirror: store every output, labelled

or ``python tools/store_notebook_outputs.py [--real] notebooks/02_*.ipynb``.

In ``--real`` mode notebooks 03-05 read the JPEG mirror (``data/mirror``); notebook 04 works in
``runs/notebooks/``, where the finished reference runs of ``runs/reference/`` are copied first
so that it re-tests them instead of training for an hour; notebook 05 is given an empty run
folder, so that it analyses the reference runs shipped under ``results/``, as a learner without
a run of their own sees them. Each stored cell's first line names the data and device, and its
metadata records a hash of its code: change the code and the tests ask for a refresh.
"""

import argparse
import datetime
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_rules import CHECKED, NOTEBOOKS, REAL_RUN, body, body_hash, may_store_outputs, source  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "data" / "mirror"
NEEDS_DATA = ("03_", "04_", "05_")


def _commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return found.stdout.strip() or "unknown"


def _real_environment(path: Path) -> tuple[dict[str, str], str, str]:
    """Environment variables for a full-mode run of ``path``, and how to label its data and device."""
    from googlenet_utils.cifar10 import load_cifar10
    from googlenet_utils.devices import device_name, pick_device

    env = {"GOOGLENET_SMOKE": "0", "GOOGLENET_DATA_DIR": str(MIRROR), "GOOGLENET_VERIFY": "0"}
    device = device_name(pick_device("auto"))
    if not path.name.startswith(NEEDS_DATA):
        return env, "none (the architecture alone)", device
    data = load_cifar10(MIRROR, verify=False).source
    runs = ROOT / "runs" / "notebooks"
    if path.name.startswith("04_"):
        reference = ROOT / "runs" / "reference"
        shutil.rmtree(runs, ignore_errors=True)
        if reference.is_dir():
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


def refresh(path: Path, real: bool) -> None:
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
        env, data, device = _real_environment(path)
    else:
        env, data, device = {"GOOGLENET_SMOKE": "1"}, "", ""
    _execute(notebook, path, env)
    kept = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        cell.metadata.pop("real_run", None)
        if source(cell).startswith(CHECKED):
            kept += 1  # nbval wants the execution count of a cell that has outputs
        elif real and cell.outputs:
            short = data.split(":")[0]  # the full description is in the metadata
            cell.source = f"{REAL_RUN} data: {short}; device: {device}\n{cell.source}"
            cell.metadata["real_run"] = {
                "source_hash": body_hash(cell), "data": data, "device": device, "commit": _commit(),
                "date": datetime.date.today().isoformat(),
            }  # fmt: skip
            kept += 1
        elif (
            not real
            and body(cell) in stored
            and stored[body(cell)].metadata.get("real_run", {}).get("source_hash")
            == body_hash(stored[body(cell)])
        ):
            old = stored[body(cell)]  # unchanged code: keep its real-run output and label
            cell.source, cell.outputs, cell.metadata = old.source, old.outputs, old.metadata
            cell.execution_count = old.execution_count
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
    parser.add_argument("notebooks", nargs="*", help="default: all of them")
    args = parser.parse_args()
    for name in args.notebooks or [str(p) for p in NOTEBOOKS]:
        refresh(Path(name).resolve(), args.real)


if __name__ == "__main__":
    main()
