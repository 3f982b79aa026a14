"""Batches per second of `get_batch` (one fancy-indexing gather) vs a per-row Python loop.

The loop is the original design: for each row, pick a random offset, build one tensor for the inputs
and one for the targets from memmap slices, then stack them. Both read the same memory-mapped
.npy file (random uint16 ids, written once to a temporary directory) on CPU. The two sides alternate
in rounds so background load hits both alike; the reported rate is the median over rounds.

    python benchmarks/dataloader.py          # 50M tokens; B x T = 128 x 256, 32 x 1024, 8 x 256
    python benchmarks/dataloader.py --tokens 1e8 --rounds 9
"""

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scratchlm.data.loader import get_batch, open_tokens


def per_row_batch(data: np.ndarray, batch_size: int, context_length: int) -> tuple:
    """The baseline: one Python iteration and two tensors per row, then a stack."""
    inputs, targets = [], []
    high = len(data) - context_length - 1
    for _ in range(batch_size):
        i = random.randint(0, high)
        inputs.append(torch.tensor(data[i : i + context_length], dtype=torch.long))
        targets.append(torch.tensor(data[i + 1 : i + context_length + 1], dtype=torch.long))
    return torch.stack(inputs), torch.stack(targets)


def rate(make_batch: Callable[[], object], seconds: float) -> float:
    """Batches per second over about `seconds` of repeated calls."""
    make_batch()  # warm-up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        make_batch()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=float, default=5e7, help="token file length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per side per round")
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokens.npy"
        rng = np.random.default_rng(0)
        np.save(path, rng.integers(0, 10_000, int(args.tokens), dtype=np.uint16))
        data = open_tokens(path)
        print(f"{len(data):,} tokens (uint16 memmap), torch {torch.__version__}, CPU")
        print(f"{'B x T':>11} | {'get_batch':>12} | {'per-row loop':>12} | ratio")
        ratios = []
        for batch_size, context in ((128, 256), (32, 1024), (8, 256)):
            ours, loop = [], []
            for _ in range(args.rounds):
                ours.append(
                    rate(
                        lambda b=batch_size, t=context: get_batch(data, b, t, "cpu", generator),
                        args.seconds,
                    )  # fmt: skip
                )
                loop.append(
                    rate(lambda b=batch_size, t=context: per_row_batch(data, b, t), args.seconds)
                )
            a, b = statistics.median(ours), statistics.median(loop)
            ratios.append(a / b)
            print(f"{batch_size:>4} x {context:<4} | {a:>8.0f} b/s | {b:>8.0f} b/s | {a / b:.1f}x")
    print(f"dataloader: ratio={ratios[0]:.2f} (get_batch vs per-row loop, 128 x 256, batches/s)")


if __name__ == "__main__":
    main()
