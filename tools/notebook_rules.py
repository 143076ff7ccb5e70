"""What a notebook may store and how its exercises are laid out (shared by the tests and the output tool).

Stored outputs: cells whose first line is ``# NBVAL_CHECK_OUTPUT`` (deterministic, data-independent;
nbval compares them in CI) and cells of a real full-mode run, whose first line the output tool
writes as ``# REAL RUN OUTPUT: data: ...; device: ...`` and whose source hash it records, so a
stored output can never silently belong to code that has since changed.

Exercises: a ``# YOUR TURN`` cell (a self-contained skeleton that raises NotImplementedError),
then a ``# SOLUTION`` cell (collapsed; it runs only while the skeleton is unfilled), then a
``# CHECK`` cell (self-contained; it calls a checker from ``googlenet_utils.exercises``).
"""

import hashlib
import json
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"
REAL_RUN = "# REAL RUN OUTPUT:"
YOUR_TURN, SOLUTION, CHECK = "# YOUR TURN", "# SOLUTION", "# CHECK"
FORBIDDEN_IN_OUTPUTS = ("synthetic", "smoke", "/tmp/", "googlenet-smoke-")


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def body(cell: dict) -> str:
    """The cell's source without a real-run marker line (what the code does, for hashing)."""
    text = source(cell)
    return text.split("\n", 1)[1] if text.startswith(REAL_RUN) and "\n" in text else text


def body_hash(cell: dict) -> str:
    return hashlib.sha256(body(cell).encode()).hexdigest()[:16]


def may_store_outputs(cell: dict) -> bool:
    """Checked cells (deterministic, data-independent) and cells labelled as a real run's output."""
    text = source(cell)
    return text.startswith(CHECKED) or text.startswith(REAL_RUN)


def exercise_cells(cells: list[dict]) -> list[tuple[int, dict, dict | None, dict | None]]:
    """Each YOUR TURN cell with the SOLUTION and CHECK cells that follow it (None where missing)."""
    code = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "code"]
    found = []
    for position, (index, cell) in enumerate(code):
        if body(cell).startswith(YOUR_TURN):  # body: a stored real-run label may precede the marker
            after = [c for _, c in code[position + 1 : position + 3]]
            solution = next((c for c in after[:1] if body(c).startswith(SOLUTION)), None)
            check = next((c for c in after[1:2] if body(c).startswith(CHECK)), None)
            found.append((index, cell, solution, check))
    return found


def load(path: Path) -> dict:
    return json.loads(path.read_text())
