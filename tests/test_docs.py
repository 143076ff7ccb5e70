"""The README is a learner's page; CONTRIBUTING.md holds the engineering; generated sections stay findable."""

import re
import sys
from pathlib import Path

from googlenet_utils.generated_sections import has_section, markers
from googlenet_utils.gpu_report import TABLE

ROOT = Path(__file__).resolve().parents[1]
README, CONTRIBUTING = (ROOT / name for name in ("README.md", "CONTRIBUTING.md"))
sys.path.insert(0, str(ROOT / "tools"))
import ship_reference_runs  # noqa: E402
import store_notebook_outputs  # noqa: E402

COURSE_COMMANDS = ("make", "conda", "jupyter", "python", "pip")  # what a course user has or installs


def test_generated_sections_sit_where_their_tools_write_them():
    readme, contributing = README.read_text(), CONTRIBUTING.read_text()
    for name in (ship_reference_runs.SECTION, TABLE, store_notebook_outputs.TIMES_SECTION):
        start, end = markers(name)
        assert readme.count(start) == readme.count(end) == 1 and has_section(readme, name)
    start, end = markers("cpu-bench")
    assert contributing.count(start) == contributing.count(end) == 1
    assert has_section(contributing, "cpu-bench")


def test_the_readme_starts_with_the_course_and_links_the_engineering():
    readme = README.read_text()
    for heading in ("## What you will learn", "## The path through the notebooks", "## Three ways to run it",
                    "## No GPU?", "## Results"):  # fmt: skip
        assert heading in readme
    assert readme.index("## What you will learn") < readme.index("## Results")
    assert "(CONTRIBUTING.md)" in readme
    for engineering in ("torchrun", "SIGKILL", "flock", "gpu-prepare", "bench train"):
        assert engineering not in readme, f"{engineering!r} belongs in CONTRIBUTING.md"


def test_the_readme_names_only_commands_a_course_user_has():
    readme = README.read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    commands = [line.split()[0] for block in blocks for line in block.splitlines() if line.strip()]
    assert commands and all(command in COURSE_COMMANDS for command in commands), commands
    assert "../shared" not in readme  # the project's own machines' folder, not a learner's


def test_relative_links_point_at_files_that_exist():
    for document in (README, CONTRIBUTING):
        for target in re.findall(r"\]\((?!https?://|#)([^)#\s]+)", document.read_text()):
            if target != "notebooks/06_design_choices.ipynb" or (ROOT / target).exists():  # 06: being written
                assert (ROOT / target).exists(), f"{document.name} links to missing {target}"


def test_the_readme_times_table_is_the_recorded_times():
    times = store_notebook_outputs.json.loads(store_notebook_outputs.TIMES.read_text())
    table = (
        README.read_text()
        .split(markers(store_notebook_outputs.TIMES_SECTION)[0])[1]
        .split(markers(store_notebook_outputs.TIMES_SECTION)[1])[0]
    )
    assert table.strip() == store_notebook_outputs.times_table(times)  # rewritten by the tool, never by hand
    busy = {"load_average_at_start": 1.5, "seconds": 200.0, "date": "2026-12-01", "commit": "abc1234"}
    quiet = {**busy, "load_average_at_start": 0.2, "seconds": 42.0}
    shown = store_notebook_outputs.times_table({"01_inception_module.ipynb": {"smoke": quiet, "full": busy}})
    assert (
        "| 01_inception_module | 42 s (2026-12-01, `abc1234`) | 3.3 min (2026-12-01, `abc1234`, machine busy"
        in shown
    )
    assert "| 06_design_choices | not measured yet | not measured yet |" in shown
