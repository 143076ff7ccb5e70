"""The project's two dependency lists (pip and conda) must name the same packages and ranges."""

import re
from importlib.metadata import requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}
REQUIRED = {"torch", "torchvision", "jupyterlab", "matplotlib", "torchinfo", "nbval"}  # the course stack


def normalise(spec: str) -> str:
    return ",".join(sorted(part.strip() for part in spec.split(",") if part.strip()))


def pip_requirements() -> dict[str, str]:
    found = {}
    for line in requires("googlenet-course"):
        requirement = line.split(";")[0].strip()
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", requirement).groups()
        found[name.lower()] = normalise(spec)
    return found


def conda_requirements() -> dict[str, str]:
    found, section = {}, None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"\w+:", line):  # a top-level key: channels, dependencies...
            section = line.split(":")[0]
        if re.match(r"\s+- pip:", line):
            section = "pip"
        match = re.match(r"  - ([A-Za-z0-9_.-]+)\s*(.*)$", line)  # conda dependency entries
        if match and section == "dependencies":
            name, spec = match.groups()
            found[CONDA_TO_PIP.get(name, name).lower()] = normalise(spec)
    found.pop("python", None)
    found.pop("pip", None)
    return found


def test_environment_yml_matches_pyproject():
    pip, conda = pip_requirements(), conda_requirements()
    assert pip, "the package must be installed (pip install -e .[dev]) for its metadata to be read"
    assert conda == pip, (
        f"only in pyproject: {pip.keys() - conda.keys()}; "
        f"only in environment.yml: {conda.keys() - pip.keys()}"
    )


def test_required_packages_are_listed():
    assert REQUIRED <= pip_requirements().keys()


def test_environment_yml_names_the_course_env():
    assert re.search(r"^name: googlenet$", (ROOT / "environment.yml").read_text(), re.M)
