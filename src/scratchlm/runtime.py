"""Where and how code runs: device, autocast dtype, seeds, torchrun process groups, run dirs,
the C allocator's policy for freed memory.

Nothing happens at import time. `init_distributed` reads the variables torchrun sets (RANK,
WORLD_SIZE, LOCAL_RANK) and starts a process group (nccl on CUDA, gloo otherwise); without them it
is a no-op and the process is rank 0 of 1. Run directories live under `$SCRATCHLM_HOME` (default
`./runs`).
"""

import contextlib
import ctypes
import ctypes.util
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank among world_size, and the device it drives."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; another name (`cpu`, `cuda:1`, `mps`) is checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available: use device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available: use device=cpu")
    return device


def autocast_dtype(device: torch.device, name: str = "auto") -> torch.dtype:
    """The forward pass's dtype for `training.dtype` = `name`.

    auto: bf16 on CUDA, fp32 elsewhere. fastest: bf16 also on a CPU whose instructions compute
    it (AVX512-BF16 or AMX), fp32 on other CPUs and on MPS: `benchmarks/cpu_dtype.py` measured a
    bf16 update at 0.76x the fp32 one's time on such a CPU, and at 8.8x with oneDNN held to AVX2,
    where bf16 is emulated. float32 / bfloat16 / float16: that dtype.
    """
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if name == "fastest":
        native = device.type == "cuda" or (device.type == "cpu" and cpu_computes_bf16())
        return torch.bfloat16 if native else torch.float32
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}: use auto, fastest, {', '.join(DTYPES)}")
    return DTYPES[name]


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (x86 AVX512-BF16 or AMX) that oneDNN uses."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed-precision context for forward passes; a no-op for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def enable_tf32() -> None:
    """Let fp32 matmuls and convolutions use TF32 tensor cores (Ampere and newer)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


# glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD and M_MMAP_THRESHOLD.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(device: torch.device) -> bool:
    """On a CPU, make glibc's malloc keep freed memory for reuse instead of handing it back to the
    kernel; a no-op for other devices, whose activations the C allocator does not hold.

    By default glibc serves blocks over 32 MB with fresh mmap pages and gives freed heap tops back
    to the kernel, so a CPU training step that frees its activations gets them back as new
    zero-filled pages in the next step: in `benchmarks/train_step.py`, ~5,000 page faults per
    compiled step of our model and ~90,000 per eager step of transformers' Llama. With blocks up
    to 1 GiB served from the heap and no trimming, the steps after the first few reuse the same
    pages, and the process holds on to its peak memory. Process-wide and permanent.
    Returns True when applied, False for other devices or where the C library has no `mallopt`
    (not glibc).
    """
    if device.type != "cpu":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 2**30)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (all devices) with `seed + rank`."""
    value = seed + rank
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the torchrun process group if RANK/WORLD_SIZE are set, else run as rank 0 of 1.

    On CUDA each process takes the GPU `cuda:LOCAL_RANK` and the nccl backend; elsewhere gloo.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def teardown_distributed() -> None:
    """Leave the process group if one was started."""
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device_name: str = "auto") -> Iterator[DistInfo]:
    """`init_distributed` for the block, `teardown_distributed` when it ends, however it ends."""
    info = init_distributed(device_name)
    try:
        yield info
        if dist.is_initialized():
            dist.barrier()  # no rank leaves the group while another still works in it
    finally:
        teardown_distributed()


def is_main() -> bool:
    """True on rank 0 (and in a plain single-process run)."""
    if dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def base_dir() -> Path:
    """Root for run directories: `$SCRATCHLM_HOME`, else `./runs`."""
    return Path(os.environ.get("SCRATCHLM_HOME") or "runs")


def make_run_dir(name: str, parent: str | Path | None = None) -> Path:
    """Create (if needed) and return `<parent or base_dir()>/<name>`; fails with a clear message."""
    path = Path(parent or base_dir()) / name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create run directory {path}: {exc.strerror}; "
            "set SCRATCHLM_HOME to a writable place"
        ) from None
    if not os.access(path, os.W_OK):
        raise OSError(
            f"run directory {path} is not writable; set SCRATCHLM_HOME to a writable place"
        )
    return path
