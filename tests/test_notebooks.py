"""The notebooks' shape and storage rules (nbval, run by `make test`, executes them)."""

import re

import pytest
from notebook_rules import CHECKED, FORBIDDEN_IN_OUTPUTS, NOTEBOOKS, REAL_RUN, load, may_store_outputs, source

EXPECTED = [
    "01_inception_module.ipynb",
    "02_googlenet_architecture.ipynb",
    "03_cifar10_data.ipynb",
    "04_train_googlenet.ipynb",
    "05_analyze_results.ipynb",
]
COLAB_URL = "https://colab.research.google.com/github/googlenet-course/googlenet-course/blob/main/notebooks/"
INSTALL_URL = "git+https://github.com/googlenet-course/googlenet-course"
IDS = [path.name for path in NOTEBOOKS]


def test_the_course_has_its_five_notebooks_in_order():
    assert [path.name for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stored_only_where_allowed(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell["outputs"] and not may_store_outputs(cell):
            pytest.fail(
                f"cell {index} stores outputs without {CHECKED!r} (or {REAL_RUN!r} with data and device)"
            )
        if source(cell).startswith(REAL_RUN):
            label = source(cell).splitlines()[0]
            assert re.search(r"data: .+; device: .+", label), (
                f"cell {index}: label the real run's data and device"
            )
        text = str(cell["outputs"]).lower()
        for word in FORBIDDEN_IN_OUTPUTS:
            assert word not in text, f"cell {index} stores output mentioning {word!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_checked_cells_carry_their_outputs(path):
    for index, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code" and source(cell).startswith(CHECKED):
            assert cell["outputs"], f"cell {index} is checked by nbval but stores no output to check against"
            assert cell["execution_count"] is not None, f"cell {index} needs its execution count for nbval"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opens_with_goals_and_ends_with_summary_and_exercises(path):
    cells = load(path)["cells"]
    first, last = source(cells[0]), source(cells[-1])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "What you will learn" in first and "Prerequisites" in first and "Time:" in first
    assert "## Summary" in last and "## Exercises" in last
    exercises = last.split("## Exercises")[1]
    assert 2 <= len(re.findall(r"^\d+\. ", exercises, re.M)) <= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_ready_for_colab(path):
    notebook = load(path)
    assert f"({COLAB_URL}{path.name})" in source(notebook["cells"][0]), "Open in Colab badge"
    setup = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    assert '"google.colab" in sys.modules' in source(setup) and INSTALL_URL in source(setup)
    assert notebook["metadata"]["accelerator"] == "GPU"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS[2:], ids=IDS[2:])
def test_data_notebooks_read_settings_in_one_place(path):
    code = [source(cell) for cell in load(path)["cells"] if cell["cell_type"] == "code"]
    assert sum("course_settings()" in text for text in code) == 1
    assert not any("os.environ[" in text or "getenv" in text for text in code)
