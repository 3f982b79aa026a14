"""Batches from memory-mapped token files: random training windows, a sequential validation pass.

A token file is a `.npy` of uint16/uint32 ids made by `scratchlm tokenize`; it is opened with
`np.load(mmap_mode="r")` and never read into RAM. A batch is `B` windows of `T + 1` consecutive
tokens; inputs are the first `T` of each window and targets the last `T` (the next token at every
position).

Training batches are drawn by `TokenSampler`: the start offsets of the *global* batch (all ranks
together) come from one `torch.Generator` seeded identically on every rank, and each rank keeps its
own slice. So the data a run sees depends on the seed and the global batch, not on how many
processes share it, and the generator state in a checkpoint makes a resumed run draw the same
batches.
"""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

REBUILD_HINT = (
    "rebuild it with 'scratchlm tokenize --dataset-path TEXT --output-path {path} "
    "--tokenizer-dir DIR'"
)
_MAX_CHUNK = 1 << 24  # tokens per slice when scanning a file for its largest id


def open_tokens(
    path: str | Path, vocab_size: int | None = None, context_length: int | None = None
) -> np.ndarray:
    """Memory-map a token file, checking it is 1-D integer ids, long enough and within the vocab.

    Returns the read-only (N,) memmap. With `vocab_size`, the whole file is scanned once (in slices)
    for its smallest and largest id; with `context_length`, the file must hold at least
    `context_length + 1` tokens.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file not found: {path}; " + REBUILD_HINT.format(path=path))
    try:
        data = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(
            f"{path} is not a readable .npy token file ({exc}); " + REBUILD_HINT.format(path=path)
        ) from None
    if data.ndim != 1 or data.dtype.kind not in "iu":
        raise ValueError(
            f"{path} holds a {data.dtype} array of shape {data.shape}, not 1-D token ids; "
            + REBUILD_HINT.format(path=path)
        )
    if context_length is not None and len(data) < context_length + 1:
        raise ValueError(
            f"{path} has {len(data)} tokens, fewer than context_length + 1 = {context_length + 1}; "
            "use more text or a shorter context, then " + REBUILD_HINT.format(path=path)
        )
    if vocab_size is not None and len(data):
        smallest, largest = token_id_range(data)
        if smallest < 0:
            raise ValueError(
                f"{path} contains the negative token id {smallest}; token ids are 0 .. "
                f"vocab_size - 1: " + REBUILD_HINT.format(path=path)
            )
        if largest >= vocab_size:
            raise ValueError(
                f"{path} contains token id {largest} but the model's vocab_size is {vocab_size}; "
                "the file was made with another tokenizer: " + REBUILD_HINT.format(path=path)
            )
    return data


def token_id_range(data: np.ndarray) -> tuple[int, int]:
    """Smallest and largest id of a non-empty `data`, read once in bounded slices (a memmap is
    never loaded whole)."""
    low, high = int(data[0]), int(data[0])
    for i in range(0, len(data), _MAX_CHUNK):
        part = data[i : i + _MAX_CHUNK]
        low, high = min(low, int(part.min())), max(high, int(part.max()))
    return low, high


def windows_to_batch(
    data: np.ndarray, starts: Tensor, context_length: int, device: torch.device | str
) -> tuple[Tensor, Tensor]:
    """Gather the windows beginning at `starts` (B,) in one fancy-indexing read.

    Returns inputs and targets, each (B, T) int64 on `device`; on CUDA the copy is pinned and
    non-blocking.
    """
    offsets = starts.numpy()[:, None] + np.arange(context_length + 1)  # (B, T+1)
    windows = torch.from_numpy(data[offsets].astype(np.int64))
    device = torch.device(device)
    if device.type == "cuda":
        windows = windows.pin_memory().to(device, non_blocking=True)
    elif device.type != "cpu":
        windows = windows.to(device)
    return windows[:, :-1], windows[:, 1:]


def get_batch(
    data: np.ndarray,
    batch_size: int,
    context_length: int,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """`batch_size` windows at random offsets. Returns inputs, targets: each (B, T) int64."""
    if len(data) < context_length + 1:
        raise ValueError(
            f"token array has {len(data)} tokens, fewer than context_length + 1 = "
            f"{context_length + 1}"
        )
    starts = torch.randint(0, len(data) - context_length, (batch_size,), generator=generator)
    return windows_to_batch(data, starts, context_length, device)


def load_dataset(
    dataset_path: str | Path,
    batch_size: int = 32,
    context_length: int = 1024,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless random (inputs, targets) batches from the token file at `dataset_path`."""
    data = open_tokens(dataset_path, context_length=context_length)
    while True:
        yield get_batch(data, batch_size, context_length, device, generator)


class TokenSampler:
    """Random training batches for one rank, reproducible from `seed`, resumable by `state_dict`.

    Each call draws `world_size * batch_size` start offsets from a generator shared (by seed) by all
    ranks and returns this rank's `batch_size` rows, so the global batch does not depend on
    world_size.
    """

    def __init__(
        self,
        data: np.ndarray,
        batch_size: int,
        context_length: int,
        device: torch.device | str,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(data) < context_length + 1:
            raise ValueError(
                f"token file has {len(data)} tokens, fewer than context_length + 1 = "
                f"{context_length + 1}"
            )
        self.data = data
        self.batch_size = batch_size
        self.context_length = context_length
        self.device = device
        self.rank = rank
        self.world_size = world_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> tuple[Tensor, Tensor]:
        """This rank's inputs and targets, each (B, T) int64."""
        high = len(self.data) - self.context_length
        starts = torch.randint(
            0, high, (self.world_size * self.batch_size,), generator=self.generator
        )
        mine = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return windows_to_batch(self.data, mine, self.context_length, self.device)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


def eval_batches(
    data: np.ndarray,
    batch_size: int,
    context_length: int,
    device: torch.device | str,
    max_tokens: int | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive non-overlapping windows covering the file once, for validation.

    Every token after the first is a target exactly once (within the first `max_tokens` tokens when
    given). Windows step by T; the last batch may hold fewer than B rows, and a final window shorter
    than T comes alone as a (1, T') batch. Batch i goes to rank i % world_size.
    """
    n = len(data) if max_tokens is None else min(len(data), max_tokens)
    full = (n - 1) // context_length
    starts = torch.arange(full, dtype=torch.int64) * context_length
    index = 0
    for first in range(0, full, batch_size):
        if index % world_size == rank:
            yield windows_to_batch(data, starts[first : first + batch_size], context_length, device)
        index += 1
    tail = (n - 1) - full * context_length
    if tail > 0 and index % world_size == rank:
        start = torch.tensor([full * context_length])
        yield windows_to_batch(data, start, tail, device)
