"""Keeping freed memory in the process: fewer page faults for a tensor freed and allocated again."""

import platform
import subprocess
import sys

import pytest

from googlenet_utils.host_memory import keep_freed_memory

# A fresh interpreter: the allocator setting is process-wide and cannot be undone.
FAULTS = """
import resource, sys, torch
from googlenet_utils.host_memory import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
MIB = 1024 * 1024 // 4  # floats
torch.ones(4 * MIB)  # far above glibc's first mmap threshold
before = faults()
for step in range(1, 51):  # growing blocks, as a run's first steps at a new image size allocate them
    torch.ones(4 * MIB + step * MIB // 16)
print(faults() - before)
"""


def _page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(result.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_stops_page_faults_of_a_reallocated_tensor():
    default, kept = _page_faults("default"), _page_faults("kept")
    assert default >= 50 * 512  # each fresh block of 4 MiB or more faults in its 1,024+ pages
    assert kept < default / 10


def test_keeping_freed_memory_is_idempotent():
    first = keep_freed_memory()
    assert keep_freed_memory() is first
