"""The notebooks' shape, storage and exercise rules (nbval, run by `make test`, executes them)."""

import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from notebook_rules import (
    ABSOLUTE_PATH,
    CHECKED,
    FORBIDDEN_IN_OUTPUTS,
    NOTEBOOKS,
    REAL_RUN,
    body_hash,
    declared_data,
    exercise_cells,
    load,
    may_store_outputs,
    output_texts,
    source,
)

from googlenet_utils.answers import SHEETS
from googlenet_utils.exercises import ExerciseError

EXPECTED = [
    "01_inception_module.ipynb",
    "02_googlenet_architecture.ipynb",
    "03_cifar10_data.ipynb",
    "04_train_googlenet.ipynb",
    "05_analyze_results.ipynb",
    "06_design_choices.ipynb",
]
COLAB_URL = "https://colab.research.google.com/github/googlenet-course/googlenet-course/blob/main/notebooks/"
REPOSITORY = "https://github.com/googlenet-course/googlenet-course"
IDS = [path.name for path in NOTEBOOKS]
NEEDS_GPU = {"04_train_googlenet.ipynb"}  # only the training notebook asks Colab for a GPU
WITH_EXERCISE_CELLS = {
    "01_inception_module.ipynb",
    "02_googlenet_architecture.ipynb",
    "03_cifar10_data.ipynb",
    "04_train_googlenet.ipynb",
    "05_analyze_results.ipynb",
    "06_design_choices.ipynb",
}
MAX_BYTES = 3_000_000


def test_the_course_has_its_six_notebooks_in_order():
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stored_only_where_allowed(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell["outputs"] and not may_store_outputs(cell):
            pytest.fail(
                f"cell {index} stores outputs without {CHECKED!r} (or a {REAL_RUN!r} line from the tool)"
            )
        if source(cell).startswith(REAL_RUN):
            label = source(cell).splitlines()[0]
            assert re.search(r"data: .+; device: .+", label), (
                f"cell {index}: label the real run's data and device"
            )
            own = declared_data(cell)  # a cell that computes on data of its own is labelled with it
            if own is not None:
                labelled = label.split("data: ", 1)[1]
                short = own.split(":")[0].split(" (")[0]  # as the tool shortens it
                assert labelled.startswith(short), f"cell {index}: label it {own!r}"
            stored = cell["metadata"].get("real_run", {}).get("source_hash")
            assert stored == body_hash(cell), (
                f"cell {index} changed after its real-run output was stored: run `make notebook-outputs-real`"
            )
        text = "\n".join(output_texts(cell)).lower()  # words, not images' base64
        for word in FORBIDDEN_IN_OUTPUTS:
            assert word not in text, f"cell {index} stores output mentioning {word!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_stored_output_shows_an_absolute_path(path):
    for index, cell in enumerate(load(path)["cells"]):
        for text in output_texts(cell) if cell["cell_type"] == "code" else []:
            found = ABSOLUTE_PATH.search(text)
            shown = text[max(0, found.start() - 30) : found.end() + 30] if found else ""
            assert found is None, (
                f"cell {index} stores a machine's path ({shown!r}): "
                "print it relative to the repository (googlenet_utils.paths.display_path)"
            )


def test_the_absolute_path_rule_catches_what_it_should():
    for text in ("resumed /work/main/runs/x", "in /home/me/runs", "(/tmp/abc)", "C:\\Users\\me", "/root/x"):
        assert ABSOLUTE_PATH.search(text), text
    for text in ("runs/notebooks/googlenet-aux", "data/mirror", "results/reference-cpu-aux/best.pt", "1/5"):
        assert ABSOLUTE_PATH.search(text) is None, text


def test_no_shipped_result_shows_an_absolute_path():
    root = Path(__file__).resolve().parents[1] / "results"
    texts = [p for p in root.rglob("*") if p.suffix in (".json", ".md", ".csv")]
    assert len(texts) >= 10  # the shipped runs' configs, metrics, histories and READMEs
    for path in texts:
        found = ABSOLUTE_PATH.search(path.read_text())
        assert found is None, f"{path.relative_to(root)} names a machine's path near {found.group()!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_checked_cells_carry_their_outputs(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code" and source(cell).startswith(CHECKED):
            assert cell["outputs"], f"cell {index} is checked by nbval but stores no output to check against"
            assert cell["execution_count"] is not None, f"cell {index} needs its execution count for nbval"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opens_with_goals_and_ends_with_summary_exercises_and_answers(path):
    cells = load(path)["cells"]
    if path.name[:2] in SHEETS:  # then an answer sheet for the exercises with one right answer follows
        sheet = source(cells.pop())
        assert (
            f'answer_sheet("{path.name[:2]}")' in sheet
            and f'check_answers("{path.name[:2]}", answers)' in sheet
        )
    first, last = source(cells[0]), source(cells[-1])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "What you will learn" in first and "Prerequisites" in first and "Time:" in first
    assert "## Summary" in last and "## Exercises" in last
    exercises = last.split("## Exercises")[1].split("<details>")[0]
    count = len(re.findall(r"^\d+\. ", exercises, re.M))
    assert 2 <= count <= 4
    assert "<details>" in last and "Worked answers" in last, "worked answers, one click away"
    answers = last.split("<details>")[1]
    assert len(re.findall(r"^\d+\. ", answers, re.M)) == count, "one worked answer per exercise"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_ready_for_colab(path):
    notebook = load(path)
    assert f"({COLAB_URL}{path.name})" in source(notebook["cells"][0]), "Open in Colab badge"
    setup = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert '"google.colab" in sys.modules' in source(setup) and REPOSITORY in source(setup)
    assert (notebook["metadata"].get("accelerator") == "GPU") == (path.name in NEEDS_GPU)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_the_colab_setup_cells_are_one_and_the_same():
    setups = {source(next(c for c in load(p)["cells"] if c["cell_type"] == "code")) for p in NOTEBOOKS}
    assert len(setups) == 1, "the first code cell (Colab setup) differs between notebooks"
    assert f'REPOSITORY = "{REPOSITORY}"' in setups.pop(), "one variable names the address to clone"


def test_a_failed_colab_download_says_what_to_do(monkeypatch):
    setup = source(next(c for c in load(NOTEBOOKS[0])["cells"] if c["cell_type"] == "code"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    calls = []

    def fail(command, **_):
        calls.append(command)
        return subprocess.CompletedProcess(command, 128, "", "fatal: repository not found")

    monkeypatch.setattr(subprocess, "run", fail)
    with pytest.raises(SystemExit) as stopped:
        exec(setup, {})  # noqa: S102 - the notebooks' own setup cell
    message = str(stopped.value)
    assert calls and calls[0][:2] == ["git", "clone"] and REPOSITORY in calls[0]
    assert "upload the repository" in message and "REPOSITORY" in message and "your fork" in message


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_small_enough_to_browse(path):
    assert path.stat().st_size < MAX_BYTES


@pytest.mark.parametrize("path", NOTEBOOKS[2:], ids=IDS[2:])
def test_data_notebooks_read_settings_in_one_place(path):
    code = [source(cell) for cell in load(path)["cells"] if cell["cell_type"] == "code"]
    assert sum("course_settings()" in text for text in code) == 1
    assert not any("os.environ[" in text or "getenv" in text for text in code)


# ---------------------------------------------------------------- the learner writes code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_your_turn_cell_has_a_hidden_solution_and_a_check(path):
    found = exercise_cells(load(path)["cells"])
    if path.name in WITH_EXERCISE_CELLS:
        assert found, "this notebook needs at least one YOUR TURN cell"
    for index, _, solution, check in found:
        assert solution is not None, f"cell {index}: a # SOLUTION cell must follow the YOUR TURN cell"
        assert check is not None, f"cell {index}: a # CHECK cell must follow the solution"
        assert solution["metadata"].get("jupyter", {}).get("source_hidden"), (
            f"cell {index}: collapse the solution"
        )
        assert "googlenet_utils.exercises" in source(check), f"cell {index}: check with the package's checker"


EXERCISES = [(path, index) for path in NOTEBOOKS for index, *_ in exercise_cells(load(path)["cells"])]


@pytest.mark.parametrize(("path", "index"), EXERCISES, ids=[f"{p.name}:{i}" for p, i in EXERCISES])
def test_a_check_fails_on_the_unfilled_cell_and_passes_on_the_solution(path, index):
    cells = load(path)["cells"]
    _, your_turn, solution, check = next(found for found in exercise_cells(cells) if found[0] == index)
    unfilled: dict = {}
    exec(source(your_turn), unfilled)  # noqa: S102 - the notebook's own, self-contained cell
    with pytest.raises(ExerciseError, match="NotImplementedError|your"):
        exec(source(check), unfilled)  # noqa: S102
    solved: dict = {}
    exec(source(your_turn), solved)  # noqa: S102
    exec(source(solution), solved)  # noqa: S102
    exec(source(check), solved)  # noqa: S102
