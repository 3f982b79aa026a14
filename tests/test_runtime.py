"""`keep_freed_memory`: freed blocks come back without page faults (glibc only); `dtype: fastest`.

The setting is process-wide and cannot be undone, so the CPU cases run in their own interpreter.
"""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scratchlm.runtime import autocast_dtype, cpu_computes_bf16, keep_freed_memory

# Allocate and free a 64 MB tensor (above glibc's largest default mmap threshold, 32 MB) five
# times after ten warm-up rounds (the heap takes a few to settle), and print the minor page faults
# those five allocations took.
PROGRAM = """
import resource, sys, torch
from scratchlm.runtime import autocast_dtype, cpu_computes_bf16, keep_freed_memory
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


CPUINFO = Path("/proc/cpuinfo")


@pytest.mark.skipif(not CPUINFO.exists(), reason="the CPU's flags are read from /proc/cpuinfo")
def test_cpu_bf16_detection_matches_the_kernels_cpu_flags() -> None:
    flags = set()
    for line in CPUINFO.read_text().splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    assert cpu_computes_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


@pytest.mark.parametrize("native", [True, False])
def test_fastest_dtype_is_bf16_only_where_the_cpu_computes_it(monkeypatch, native) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    assert autocast_dtype(cpu, "fastest") == (torch.bfloat16 if native else torch.float32)
    assert autocast_dtype(cpu, "auto") == torch.float32  # auto keeps fp32 on every CPU
    assert autocast_dtype(torch.device("cuda"), "fastest") == torch.bfloat16
    assert autocast_dtype(torch.device("mps"), "fastest") == torch.float32
    with pytest.raises(ValueError, match="use auto, fastest, float32"):
        autocast_dtype(cpu, "fast")
