"""Re-run notebooks and keep only the outputs they are allowed to store (see notebook_rules.py).

    make notebook-outputs        (or: python tests/store_notebook_outputs.py notebooks/02_*.ipynb)

Checked cells are data- and mode-independent by design, so running in smoke mode gives the
outputs a full run would; every other cell is stored empty.
"""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_rules import NOTEBOOKS, may_store_outputs  # noqa: E402


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    os.environ["GOOGLENET_SMOKE"] = "1"
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    kept = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if may_store_outputs(cell):
            kept += 1  # nbval wants the execution count of a cell that has outputs
        else:
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, path)
    print(f"{path.name}: kept the outputs of {kept} checked cells")


if __name__ == "__main__":
    for name in sys.argv[1:] or [str(p) for p in NOTEBOOKS]:
        refresh(Path(name))
