"""Train-step throughput: our TransformerLM + AdamW + cross_entropy vs transformers' Llama.

Both models have the same shape and the same weights (ours mapped onto LlamaForCausalLM with
attn_implementation="sdpa"). One step = forward, loss, backward, optimizer step, zero_grad.
Ours uses scratchlm's AdamW and cross_entropy; the baseline uses torch.optim.AdamW and
F.cross_entropy. Each side is timed eagerly and under torch.compile (model + loss compiled, the
optimizer step eager on both sides). All four variants take turns in rounds, so background load
hits them alike; the reported number is each one's median step time, and the spread of the
per-round ratio (ours compiled / HF eager) shows how much the machine moved.

By default malloc runs as glibc sets it up: freed activations go back to the kernel and return as
fresh zero-filled pages next step, which costs the eager side (more, unfused buffers) far more page
faults than the compiled one. --keep-freed-memory removes that cost for both sides. The table
gives each variant's minor page faults per step and the kernel's share of its CPU time.

    python benchmarks/train_step.py                      # default shape, fp32 CPU
    python benchmarks/train_step.py --keep-freed-memory  # no page faults after warm-up
    python benchmarks/train_step.py --no-compile         # eager only
    python benchmarks/train_step.py --device cuda --batch 128   # CUDA, bf16 autocast, with MFU

On CUDA the forward runs under bf16 autocast on both sides (the loss in fp32), as `pretrain` runs
it, and every timed step waits for the GPU. benchmarks/gpu_check.py calls `measure` for its rows.
"""

import argparse
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from scratchlm.model import ModelConfig, TransformerLM, cross_entropy
from scratchlm.model.hf import to_hf_llama
from scratchlm.optimizers import AdamW
from scratchlm.runtime import autocast, autocast_dtype, keep_freed_memory, pick_device
from scratchlm.train.metrics import mfu, peak_flops


def make_step(
    loss_of: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    compile_model: bool,
) -> Callable[[Tensor, Tensor], Tensor]:
    """A function running one training step on (inputs, targets); returns the loss."""
    forward_loss = torch.compile(loss_of) if compile_model else loss_of

    def step(inputs: Tensor, targets: Tensor) -> Tensor:
        loss = forward_loss(inputs, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


@dataclass
class Timings:
    """One variant's timed steps: wall seconds of each, and minor page faults and user / kernel
    CPU seconds summed over all of them."""

    seconds: list[float] = field(default_factory=list)
    faults: int = 0
    user: float = 0.0
    kernel: float = 0.0

    def run(
        self, step: Callable[[Tensor, Tensor], Tensor], inputs: Tensor, targets: Tensor
    ) -> None:
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        step(inputs, targets)
        if inputs.is_cuda:
            torch.cuda.synchronize(inputs.device)
        self.seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        self.faults += after.ru_minflt - before.ru_minflt
        self.user += after.ru_utime - before.ru_utime
        self.kernel += after.ru_stime - before.ru_stime


@dataclass(frozen=True)
class Plan:
    """How many steps each variant runs: untimed warm-up (more when compiled), then timed rounds."""

    warmup: int = 3
    compile_warmup: int = 3
    rounds: int = 5
    steps_per_round: int = 3


def build(
    config: ModelConfig,
    compile_model: bool,
    device: torch.device,
    sides: tuple[str, ...] = ("ours", "hf"),
) -> dict[str, Callable]:
    """Fresh models and optimizers for one variant on `device`: {side: step} for `sides` ("ours",
    "hf"). The forward runs under the device's autocast dtype (bf16 on CUDA), the loss in fp32."""
    torch.manual_seed(0)
    ours = TransformerLM.from_config(config, device=device).train()
    amp = autocast(device, autocast_dtype(device))

    def ours_loss(x: Tensor, y: Tensor) -> Tensor:
        with amp:
            logits = ours(x)
        return cross_entropy(logits, y)

    steps = {"ours": make_step(ours_loss, AdamW(ours.parameters(), lr=1e-4), compile_model)}
    if "hf" in sides:
        hf = to_hf_llama(ours, attn_implementation="sdpa").train()
        hf.config.use_cache = False

        def hf_loss(x: Tensor, y: Tensor) -> Tensor:
            with amp:
                logits = hf(input_ids=x, use_cache=False).logits
            return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1))

        hf_opt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
        steps["hf"] = make_step(hf_loss, hf_opt, compile_model)
    return {side: steps[side] for side in sides}


def measure(
    config: ModelConfig,
    batch: int,
    modes: list[str],
    plan: Plan,
    device: torch.device,
    sides: tuple[str, ...] = ("ours", "hf"),
) -> dict[tuple[str, str], Timings]:
    """Timings of every (mode, side) on one fixed batch of `batch` sequences, in rounds where each
    variant runs `plan.steps_per_round` steps."""
    steps = {}
    for mode in modes:
        for name, step in build(config, mode == "compile", device, sides).items():
            steps[mode, name] = step
    gen = torch.Generator().manual_seed(1)
    data = torch.randint(0, config.vocab_size, (batch, config.context_length + 1), generator=gen)
    inputs, targets = data[:, :-1].contiguous().to(device), data[:, 1:].contiguous().to(device)
    for (mode, name), step in steps.items():
        warmup = plan.warmup + (plan.compile_warmup if mode == "compile" else 0)
        for _ in range(warmup):
            step(inputs, targets)
        if inputs.is_cuda:
            torch.cuda.synchronize(device)
        print(f"  warmed up {name} {mode} ({warmup} steps)", flush=True)
    times = {key: Timings() for key in steps}
    for i in range(plan.rounds):
        for key, step in steps.items():
            for _ in range(plan.steps_per_round):
                times[key].run(step, inputs, targets)
        print(f"  round {i + 1}/{plan.rounds}", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--d-ff", type=int, default=1344)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="cpu (fp32) or cuda (bf16 autocast)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--compile-warmup", type=int, default=3, help="extra warm-up if compiled")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="let malloc reuse freed memory (no page faults after warm-up), for both sides, as "
        "scratchlm's training commands do on a CPU",
    )
    args = parser.parse_args()
    try:
        device = pick_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    if args.keep_freed_memory and not keep_freed_memory(torch.device("cpu")):
        parser.error("--keep-freed-memory needs glibc's mallopt, which this C library lacks")
    config = ModelConfig(
        args.vocab, args.context, args.layers, args.d_model, args.heads, d_ff=args.d_ff
    )
    plan = Plan(args.warmup, args.compile_warmup, args.rounds, args.steps_per_round)

    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)}, bf16 autocast"
    else:
        where = f"fp32 CPU ({torch.get_num_threads()} threads)"
    print(
        f"train step, {where}, torch {torch.__version__}: "
        f"V={args.vocab} T={args.context} L={args.layers} C={args.d_model} H={args.heads} "
        f"d_ff={args.d_ff} B={args.batch}, malloc "
        f"{'keeps freed memory' if args.keep_freed_memory else 'defaults'}",
        flush=True,
    )
    modes = ["eager"] if args.no_compile else ["eager", "compile"]
    times = measure(config, args.batch, modes, plan, device)
    tokens = args.batch * args.context
    rate = {key: tokens / statistics.median(t.seconds) for key, t in times.items()}
    hf_eager = rate["eager", "hf"]
    peak = peak_flops(device)
    extra = "| MFU, ours / HF |" if peak else ""
    print(
        "\n| mode | ours tok/s | HF Llama tok/s | ours / HF (same mode) | ours / HF eager "
        f"| page faults per step, ours / HF | kernel share of CPU time, ours / HF |{extra}"
    )
    print("|---|---|---|---|---|---|---|" + ("---|" if peak else ""))
    for mode in modes:
        ours, hf = rate[mode, "ours"], rate[mode, "hf"]
        t_ours, t_hf = times[mode, "ours"], times[mode, "hf"]
        faults = " / ".join(f"{t.faults / len(t.seconds):,.0f}" for t in (t_ours, t_hf))
        kernel = " / ".join(f"{100 * t.kernel / (t.user + t.kernel):.1f}%" for t in (t_ours, t_hf))
        util = ""
        if peak:
            shares = (100 * mfu(r, config.flops_per_token(), peak) for r in (ours, hf))
            util = " " + " / ".join(f"{u:.1f}%" for u in shares) + " |"
        print(
            f"| {mode} | {ours:,.0f} | {hf:,.0f} | {ours / hf:.2f}x | {ours / hf_eager:.2f}x "
            f"| {faults} | {kernel} |{util}"
        )
    # Each round's own ratio shows how much of the spread is the machine rather than the code.
    n = args.steps_per_round
    ours_t, hf_t = times[modes[-1], "ours"].seconds, times["eager", "hf"].seconds
    per_round = [
        statistics.median(hf_t[i : i + n]) / statistics.median(ours_t[i : i + n])
        for i in range(0, len(ours_t), n)
    ]
    print(
        f"ours {modes[-1]} / HF eager, round by round: {min(per_round):.2f}x-{max(per_round):.2f}x"
    )
    summary = ", ".join(f"{m} {rate[m, 'ours'] / rate[m, 'hf']:.2f}x" for m in modes)
    ratio = rate["eager", "ours"] / hf_eager
    print(f"\ntrain_step: ratio={ratio:.2f} ({summary}; ours vs HF Llama)")


if __name__ == "__main__":
    main()
