"""Where the repository is, and paths shown relative to it (what a reader of any output can use)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository checkout the package runs from (a clone in Colab), else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir() else Path.cwd()


def display_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository when inside it, else as given: never this machine's layout."""
    try:
        return str(Path(path).resolve().relative_to(project_root()))
    except ValueError:
        return str(path)
