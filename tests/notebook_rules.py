"""What a notebook may store: outputs of checked cells only (shared by the tests and the refresh tool)."""

import json
from pathlib import Path

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
CHECKED = "# NBVAL_CHECK_OUTPUT"
# A cell run for real (full data, a GPU) may keep its outputs when its first line says where they came from.
REAL_RUN = "# REAL RUN OUTPUT:"
FORBIDDEN_IN_OUTPUTS = ("synthetic", "smoke", "/tmp/", "googlenet-smoke-")


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def may_store_outputs(cell: dict) -> bool:
    """Checked cells (deterministic, data-independent) and cells labelled as a real run's output."""
    text = source(cell)
    return text.startswith(CHECKED) or text.startswith(REAL_RUN)


def load(path: Path) -> dict:
    return json.loads(path.read_text())
