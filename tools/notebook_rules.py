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
import re
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"
REAL_RUN = "# REAL RUN OUTPUT:"
CELL_DATA = "# DATA:"  # a cell's own data, when it is not the notebook's (e.g. a generated stand-in)
YOUR_TURN, SOLUTION, CHECK = "# YOUR TURN", "# SOLUTION", "# CHECK"
FORBIDDEN_IN_OUTPUTS = ("synthetic", "smoke", "/tmp/", "googlenet-smoke-")
# A machine's own path in an output: a reader's machine has none of it (relative paths are fine).
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~-])(?:/(?:work|home|tmp|root|Users|mnt|opt|srv|var|private|content)/|[A-Za-z]:\\)"
)


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def declared_data(cell: dict) -> str | None:
    """What a cell says it computes on (its first code line ``# DATA: ...``), if it says so."""
    first = body(cell).split("\n", 1)[0]
    return first[len(CELL_DATA) :].strip() if first.startswith(CELL_DATA) else None


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


def output_texts(cell: dict) -> list[str]:
    """What a code cell's stored outputs show as text (streams, text and HTML, tracebacks; not images)."""
    texts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            texts.append("".join(output["text"]))
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append("".join(value) if isinstance(value, list) else value)
        texts.extend(output.get("traceback", []))
    return texts


def load(path: Path) -> dict:
    return json.loads(path.read_text())
