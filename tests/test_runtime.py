"""`keep_freed_memory`: freed blocks come back without page faults (glibc only).

The setting is process-wide and cannot be undone, so the CPU cases run in their own interpreter.
"""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scratchlm.runtime import keep_freed_memory

# Allocate and free a 64 MB tensor (above glibc's largest default mmap threshold, 32 MB) five
# times after ten warm-up rounds (the heap takes a few to settle), and print the minor page faults
# those five allocations took.
PROGRAM = """
import resource, sys, torch
from scratchlm.runtime import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory(torch.device("cpu"))
for _ in range(10):
    torch.ones(2**24)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.ones(2**24)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
@pytest.mark.skipif(
    THP.exists() and "[always]" in THP.read_text(), reason="huge pages: 512x fewer faults"
)
def test_keep_freed_memory_reuses_pages() -> None:
    pages = 5 * 2**26 // 4096  # five 64 MB blocks in 4 KiB pages: 81,920
    assert minor_faults("default") > pages // 2  # fresh pages each time
    assert minor_faults("keep") < pages // 100  # the same pages again


def test_keep_freed_memory_is_for_cpus_only() -> None:
    assert keep_freed_memory(torch.device("meta")) is False  # nothing applied, nothing to undo
