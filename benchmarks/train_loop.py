"""End-to-end tokens/s of `pretrain` vs the bare train step of benchmarks/train_step.py.

Same model shape (tinystories by default: vocab 10000, T 256, 4 layers, d_model 512, 16 heads,
d_ff 1344), same batch, same AdamW and cross_entropy. The bare step is forward, loss, backward,
optimizer step, zero_grad on one fixed batch. The loop adds what training needs on top: drawing
batches from a memory-mapped token file, the schedule, gradient clipping, loss bookkeeping, the
status line and progress bar. Its rate is the tok/s that `pretrain` itself writes to metrics.jsonl
(log_interval=1), which leaves out start-up, evaluation and checkpoint saving. The two sides
alternate in rounds so background load hits both alike; each reports the median over its steps
after the first of each round.

    python benchmarks/train_loop.py                         # CPU fp32, batch 8, 3 rounds x 4 steps
    python benchmarks/train_loop.py --batch 128 --steps 50   # on a GPU (bf16 autocast in both)
"""

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scratchlm.config import load_config
from scratchlm.model import ModelConfig, TransformerLM, cross_entropy
from scratchlm.optimizers import AdamW
from scratchlm.runtime import autocast, autocast_dtype, keep_freed_memory, pick_device
from scratchlm.train.pretrain import PretrainConfig, pretrain


def bare_step_times(cfg: ModelConfig, batch: int, steps: int, device: torch.device) -> list[float]:
    """Seconds per bare step (forward + loss + backward + AdamW step), first one dropped."""
    torch.manual_seed(0)
    model = TransformerLM.from_config(cfg, device=device)
    optimizer = AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    inputs = torch.randint(0, cfg.vocab_size, (batch, cfg.context_length), device=device)
    targets = torch.roll(inputs, -1, dims=1)
    amp = autocast(device, autocast_dtype(device))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with amp:
            logits = model(inputs)
        loss = cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # wait for the device, as the loop's logging does
        times.append(time.perf_counter() - start)
    return times[1:]


def loop_tokens_per_s(overrides: list[str], out_dir: Path) -> list[float]:
    """tok/s of each logged step of one `pretrain` run, first one dropped."""
    pretrain(load_config(PretrainConfig, None, overrides + [f"logging.out_dir={out_dir}"]))
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    rates = [r["tok_per_s"] for r in map(json.loads, lines) if "tok_per_s" in r]
    return rates[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="steps per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = pick_device(args.device)
    keep_freed_memory(device)  # as pretrain does, but from the start: both sides run alike
    shape = ModelConfig(10_000, 256, 4, 512, 16, d_ff=1344)
    with tempfile.TemporaryDirectory() as tmp:
        data = np.random.default_rng(0).integers(0, shape.vocab_size, 4_000_000, dtype=np.uint16)
        np.save(Path(tmp) / "tokens.npy", data)
        overrides = [f"model.{k}={v}" for k, v in shape.to_dict().items()] + [
            f"data.train_path={Path(tmp) / 'tokens.npy'}",
            f"training.steps={args.steps + 1}",
            f"training.batch_size={args.batch}",
            f"training.device={device}",
            f"training.checkpoint_interval={args.steps + 1}",
            "schedule.warmup_steps=1",
            "training.log_interval=1",
        ]
        bare, loop = [], []
        for r in range(args.rounds):
            bare += [
                args.batch * shape.context_length / s
                for s in bare_step_times(shape, args.batch, args.steps, device)
            ]
            loop += loop_tokens_per_s(overrides, Path(tmp) / f"run{r}")
    a, b = statistics.median(loop), statistics.median(bare)
    dtype = str(autocast_dtype(device)).removeprefix("torch.")
    print(f"tinystories shape, batch {args.batch} x {shape.context_length}, {device}, {dtype}, "
          f"torch {torch.__version__}")  # fmt: skip
    print(f"{'':>10} | {'tok/s (median)':>14} | steps")
    print(f"{'bare step':>10} | {b:>14.0f} | {len(bare)}")
    print(f"{'pretrain':>10} | {a:>14.0f} | {len(loop)}")
    print(f"train_loop: ratio={a / b:.3f} (loop overhead {100 * (1 - a / b):.1f}%; target <= 5%)")


if __name__ == "__main__":
    main()
