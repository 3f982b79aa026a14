"""CPU attention kernel in bf16 and in fp32, side by side: why the model's attention runs in fp32
on a CPU even under bf16 autocast.

Forward and backward of torch's `scaled_dot_product_attention` (causal) at one layer's shape of
the CPU configs (batch 8, 4 heads of 32, T 128 by default), with bf16 inputs and with fp32 inputs,
taking turns so that background load hits both alike. Then one update of `cpu-tiny`'s model
(forward, loss, backward, AdamW step) in bf16 autocast, as the model runs it now. Prints medians,
spreads (max - min over rounds) and the ratio bf16 / fp32.

    python benchmarks/cpu_attention.py --threads 1
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from scratchlm.model import TransformerLM, cross_entropy
from scratchlm.optimizers import AdamW
from scratchlm.runtime import autocast

SIDES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def attention_pass(args: argparse.Namespace, dtype: torch.dtype) -> Callable[[], None]:
    """A closure running SDPA forward + backward on fresh (B, H, T, Dh) inputs in `dtype`."""
    shape = (args.batch, args.heads, args.context, args.head_dim)
    q, k, v = (torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, dtype=dtype)

    def run() -> None:
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y.backward(grad)
        q.grad = k.grad = v.grad = None

    return run


def model_update(args: argparse.Namespace) -> Callable[[], None]:
    """A closure running one bf16-autocast update of cpu-tiny's model (V 2048, 4 layers, C 128)."""
    torch.manual_seed(0)
    model = TransformerLM(2048, args.context, 4, args.heads * args.head_dim, args.heads)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 2048, (args.batch, args.context))
    y = torch.randint(0, 2048, (args.batch, args.context))

    def run() -> None:
        with autocast(torch.device("cpu"), torch.bfloat16):
            logits = model(x)  # (B, T, V)
        cross_entropy(logits.float(), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def timed(runs: dict[str, Callable[[], None]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each closure, the closures taking turns round by round."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=32)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per side first")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {name: attention_pass(args, dtype) for name, dtype in SIDES.items()}
    times = timed(runs, args.rounds, args.warmup)
    print(
        f"causal SDPA forward + backward, batch {args.batch}, {args.heads} heads of "
        f"{args.head_dim}, T {args.context}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds"
    )
    print("| inputs | median ms | spread ms |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {1e3 * statistics.median(ts):.2f} | {1e3 * (max(ts) - min(ts)):.2f} |")
    ratios = [b / f for b, f in zip(times["bf16"], times["fp32"], strict=True)]
    ratio = statistics.median(times["bf16"]) / statistics.median(times["fp32"])
    print(f"bf16 / fp32: {ratio:.2f} (per round {min(ratios):.2f}-{max(ratios):.2f})")
    update = timed({"update": model_update(args)}, args.rounds // 3, args.warmup)["update"]
    median, spread = 1e3 * statistics.median(update), 1e3 * (max(update) - min(update))
    print(
        f"one bf16-autocast update of cpu-tiny's model (attention in fp32): "
        f"median {median:.0f} ms, spread {spread:.0f} ms"
    )


if __name__ == "__main__":
    main()
