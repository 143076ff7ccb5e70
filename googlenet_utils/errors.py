"""The one base class for mistakes a user can fix: the command line prints their message and exits 2."""

from __future__ import annotations

import errno


class UserError(Exception):
    """Bad input, a missing file, a full disk: the message names the value and the fix.

    Anything else that escapes to the command line is a bug and keeps its traceback.
    """


class ConfigError(UserError, ValueError):
    """A setting is out of its valid range (a ``ValueError``, so plain Python callers can catch it too)."""


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is the operating system saying there is no space left (or quota exceeded)."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
