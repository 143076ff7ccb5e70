"""Keeping freed tensor memory in the process on Linux, so that a CPU training step stops paying page faults.

glibc's ``malloc`` hands every block above its mmap threshold (128 KiB at first) straight back to
the kernel when it is freed, and a CPU training step frees and allocates its activations again each
step: each fresh block is zeroed page by page on first touch (thousands of page faults a step). The
threshold rises on its own as large blocks are freed, but only after many steps and again at each
new image size, so the steps the time budget measures run slower than the epochs that follow.
Fixing the threshold at its ceiling and never trimming the heap makes the first steps as fast as
the rest. Nothing changes elsewhere (macOS, Windows, musl): the call is then a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt's parameter numbers and the ceiling glibc accepts for the threshold on 64-bit systems.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_CEILING = 32 * 1024 * 1024  # glibc refuses more (half its 64 MiB heap size)
NEVER_TRIM = 2**31 - 1  # mallopt takes an int: about 2 GiB of free heap may stay in the process

_kept = False


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def freed_memory_kept() -> bool:
    """Whether ``keep_freed_memory`` has taken effect in this process (it cannot be undone)."""
    return _kept


def keep_freed_memory() -> bool:
    """Pin glibc's mmap threshold at its ceiling and stop heap trimming; True where it took effect.

    Called once per process before a CPU run times its steps (idempotent). The process's resident
    memory then stays at its peak instead of falling between steps.
    """
    global _kept
    if _kept:
        return True
    libc = _glibc()
    if libc is None:
        return False
    _kept = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_CEILING)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
    )
    return _kept
