"""The output tool's partial real run: the cells up to one are stored anew, every later one stays."""

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import store_notebook_outputs  # noqa: E402
from notebook_rules import REAL_RUN, body  # noqa: E402

OLD_LABEL = f"{REAL_RUN} data: earlier; device: earlier"


def _notebook(path: Path) -> None:
    cells = [
        nbformat.v4.new_markdown_cell("# A notebook"),
        nbformat.v4.new_code_cell(f"{OLD_LABEL}\nprint('first', 1 + 1)"),
        nbformat.v4.new_code_cell("print('second')"),
        nbformat.v4.new_code_cell(f"{OLD_LABEL}\nraise SystemExit('the training cell must not run')"),
    ]
    for cell in (cells[1], cells[3]):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="stored earlier\n")]
        cell.metadata["real_run"] = {"commit": "0000000"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


@pytest.mark.slow  # starts a kernel
def test_a_partial_real_run_stores_the_cells_it_ran_and_keeps_the_rest(tmp_path, monkeypatch):
    path = tmp_path / "01_partial.ipynb"
    _notebook(path)
    monkeypatch.setattr(store_notebook_outputs, "TIMES", tmp_path / "times.json")
    monkeypatch.setattr(store_notebook_outputs, "_settle", lambda: 0.0)  # no wait for a quiet machine

    store_notebook_outputs.refresh(path, real=True, through=2)

    cells = nbformat.read(path, as_version=4).cells
    first, second, training = cells[1], cells[2], cells[3]
    assert "first 2" in first.outputs[0]["text"] and "second" in second.outputs[0]["text"]
    for ran in (first, second):  # labelled as this run's, with its commit
        assert ran.source.startswith(REAL_RUN) and OLD_LABEL not in ran.source
        assert ran.metadata["real_run"]["commit"] != "0000000"
    assert training.source.startswith(OLD_LABEL) and "SystemExit" in body(training)
    assert (
        training.outputs[0]["text"] == "stored earlier\n"
        and training.metadata["real_run"]["commit"] == "0000000"
    )
    assert not (tmp_path / "times.json").exists()  # not a top-to-bottom run: no running time recorded


def test_through_needs_a_real_run(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["store_notebook_outputs.py", "--through", "3"])
    with pytest.raises(SystemExit):
        store_notebook_outputs.main()
