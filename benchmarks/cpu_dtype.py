"""CPU update time in fp32 and in bf16 autocast, side by side: what `training.dtype=fastest` buys.

One update of our TransformerLM (forward, loss, backward, AdamW step) at a `cpu-tiny`-like shape,
in fp32 and in bf16 autocast, taking turns so that background load hits both alike. Prints each
one's median update time, the spread (max - min over rounds) and the ratio bf16 / fp32.

    python benchmarks/cpu_dtype.py --threads 1
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/cpu_dtype.py --threads 1  # as on a CPU without bf16

The second line holds oneDNN to AVX2, as on a CPU without AVX512-BF16 or AMX, where bf16 is
emulated and `fastest` picks fp32. The last line printed says what `fastest` picks here; it reads
the CPU's flags, so under ONEDNN_MAX_CPU_ISA it still names bf16 on a CPU that has them.
"""

import argparse
import statistics
import time

import torch

from scratchlm.model import TransformerLM, cross_entropy
from scratchlm.optimizers import AdamW
from scratchlm.runtime import autocast, autocast_dtype, cpu_computes_bf16


def make_update(args: argparse.Namespace, dtype: torch.dtype):
    """A closure running one update of a fresh model in `dtype` autocast."""
    torch.manual_seed(0)
    model = TransformerLM(args.vocab, args.context, args.layers, args.d_model, args.heads)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, args.vocab, (args.batch, args.context))
    y = torch.randint(0, args.vocab, (args.batch, args.context))
    cpu = torch.device("cpu")

    def update() -> None:
        with autocast(cpu, dtype):
            logits = model(x)  # (B, T, V)
        cross_entropy(logits.float(), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return update


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=2048)
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--warmup", type=int, default=3, help="untimed updates per side first")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sides = {"fp32": torch.float32, "bf16": torch.bfloat16}
    updates = {name: make_update(args, dtype) for name, dtype in sides.items()}
    for update in updates.values():
        for _ in range(args.warmup):
            update()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, update in updates.items():
            start = time.perf_counter()
            update()
            times[name].append(time.perf_counter() - start)
    print(
        f"{args.layers} layers, C {args.d_model}, V {args.vocab}, batch {args.batch} x "
        f"{args.context}, {torch.get_num_threads()} threads, {args.rounds} rounds"
    )
    print("| forward dtype | median ms per update | spread ms |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {1e3 * statistics.median(ts):.0f} | {1e3 * (max(ts) - min(ts)):.0f} |")
    ratio = statistics.median(times["bf16"]) / statistics.median(times["fp32"])
    ratios = [b / f for b, f in zip(times["bf16"], times["fp32"], strict=True)]
    print(f"bf16 / fp32: {ratio:.2f} (per round {min(ratios):.2f}-{max(ratios):.2f})")
    picked = autocast_dtype(torch.device("cpu"), "fastest")
    print(f"fastest picks {picked} here (cpu_computes_bf16: {cpu_computes_bf16()})")


if __name__ == "__main__":
    main()
