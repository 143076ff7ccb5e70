"""Sections of a Markdown file that a command writes: the text between ``<!-- NAME:start -->`` and
``<!-- NAME:end -->``. The rest of the file is a person's, and stays as it is."""

from __future__ import annotations


class MissingSectionError(ValueError):
    """The file lacks a section's markers (or has them in the wrong order)."""


def markers(name: str) -> tuple[str, str]:
    """The two comments around section ``name``."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def has_section(text: str, name: str) -> bool:
    """Whether ``text`` holds section ``name``'s two markers, start before end."""
    start, end = markers(name)
    return start in text and end in text.split(start, 1)[1]


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with section ``name`` holding ``body``; a missing section is an error that names it."""
    if not has_section(text, name):
        start, end = markers(name)
        raise MissingSectionError(f"lacks the {start} ... {end} markers around the generated {name} section")
    start, end = markers(name)
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"
