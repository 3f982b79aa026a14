"""Decode speed: our KV-cached generation vs `transformers` generate on the same weights, and vs our
own model recomputing the whole sequence for every new token (no cache), two ways: the plain
forward (logits at every position, then the last one taken) and the leaner recomputation that puts
only the last position through the output head, as our cached decoding does.

All four decode greedily, the same prompts, exactly --new-tokens tokens per row (no stop token).
Our model is in `decode_layout`, as the inference engine loads it; all our sides use it.
tokens/s counts generated tokens (batch x new tokens) over the time of the whole call, prefill
included: wall time, or with --clock cpu this process's CPU time (for a machine other jobs share).
After a short warm-up the sides take turns in --repeats rounds (the no-cache sides in the first
--no-cache-repeats of them), so a drift in the machine's speed hits all alike; each figure is the
median of its side's runs.

    python benchmarks/generate.py --threads 1     # the `small` preset shape, batch 1 and 8, CPU
    python benchmarks/generate.py --threads 1 --clock cpu   # the same on a busy shared machine
    python benchmarks/generate.py --device cuda --d-model 768 --layers 12 --heads 12 --d-ff 2048
    python benchmarks/generate.py --device cuda --dtype bfloat16   # weights in bf16 on every side

In float32 the no-cache recomputation must decode the very ids of the cached side (checked); in a
lower precision near-ties may break differently, so the agreement is only reported.
benchmarks/gpu_check.py calls `build_models` and `compare` for its rows.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from scratchlm.model import ModelConfig, TransformerLM
from scratchlm.model.generate import SamplingConfig, decode_layout, generate
from scratchlm.model.hf import to_hf_llama
from scratchlm.runtime import DTYPES

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def ours(model: TransformerLM, prompts: torch.Tensor, new: int) -> list[list[int]]:
    return generate(model, prompts.tolist(), SamplingConfig(max_new_tokens=new, temperature=0))


def theirs(hf: "PreTrainedModel", prompts: torch.Tensor, new: int) -> list[list[int]]:
    out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new,
                      do_sample=False)  # fmt: skip
    return out[:, prompts.shape[1] :].tolist()


@torch.no_grad()
def no_cache(model: TransformerLM, prompts: torch.Tensor, new: int) -> list[list[int]]:
    ids = prompts
    for _ in range(new):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[:, prompts.shape[1] :].tolist()


@torch.no_grad()
def no_cache_last(model: TransformerLM, prompts: torch.Tensor, new: int) -> list[list[int]]:
    ids, head = prompts, model.head_weight.t()  # (C, V), contiguous in decode_layout
    for _ in range(new):
        last = model.hidden_states(ids)[:, -1] @ head  # (B, V): the head on one position only
        ids = torch.cat([ids, last.argmax(-1, keepdim=True)], dim=1)
    return ids[:, prompts.shape[1] :].tolist()


SIDES: dict[str, Callable] = {
    "ours (cache)": ours,
    "transformers": theirs,
    "no cache": no_cache,
    "no cache, last head": no_cache_last,
}


def read_bandwidth(device: torch.device) -> float:
    """GB/s of one pass summing 256 MB: batch-1 decoding reads every weight once per token, so
    its speed follows this figure, which drifts on a shared machine."""
    data = torch.ones(64 * 2**20, device=device)
    data.sum()
    start = time.perf_counter()
    for _ in range(3):
        data.sum().item()
    return 3 * data.numel() * 4 / (time.perf_counter() - start) / 1e9


def seconds(fn: Callable, model: object, prompts: torch.Tensor, new: int, clock: str) -> float:
    """Time of one call fn(model, prompts, new).

    clock "wall" times the call; "cpu" counts this process's CPU seconds instead, which other jobs
    on a busy machine do not inflate (meaningful for CPU runs with --threads 1).
    """
    timer = time.process_time if clock == "cpu" else time.perf_counter
    start = timer()
    out = fn(model, prompts, new)
    if prompts.is_cuda:
        torch.cuda.synchronize()
    assert sum(len(row) for row in out) == prompts.shape[0] * new
    return timer() - start


def same_rows(rows: list[list[int]], reference: list[list[int]]) -> int:
    """How many rows equal the start of the reference's row of the same index."""
    return sum(row == ref[: len(row)] for row, ref in zip(rows, reference, strict=True))


def build_models(
    config: ModelConfig, device: torch.device, dtype: torch.dtype, with_hf: bool = True
) -> tuple[TransformerLM, "PreTrainedModel | None"]:
    """Our model in `decode_layout` and (with_hf) transformers' Llama with the same weights, both
    in `dtype` on `device`, eval mode; the Llama never stops early (no end-of-sequence id)."""
    torch.manual_seed(0)
    model = TransformerLM.from_config(config, device=device).eval()
    hf = None
    if with_hf:
        hf = to_hf_llama(model).to(dtype)
        hf.generation_config.eos_token_id = None  # always exactly --new-tokens tokens
        hf.generation_config.pad_token_id = 0
    decode_layout(model.to(dtype))
    return model, hf


def compare(
    model: TransformerLM,
    hf: "PreTrainedModel | None",
    batch: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Time every side on `batch` seeded prompts (args: prompt_len, new_tokens, repeats,
    no_cache_repeats, clock). Returns tokens/s per side name (transformers left out without
    `hf`) and how many rows decode to the same ids as transformers and as the no-cache side."""
    gen = torch.Generator().manual_seed(batch)
    device = next(model.parameters()).device
    prompts = torch.randint(0, model.config.vocab_size, (batch, args.prompt_len), generator=gen)
    prompts = prompts.to(device)
    n = args.new_tokens
    sides = {name: fn for name, fn in SIDES.items() if hf is not None or fn is not theirs}
    for fn in sides.values():  # warm-up
        fn(hf if fn is theirs else model, prompts, min(n, 8))
    mine = ours(model, prompts, n)
    same = None if hf is None else same_rows(theirs(hf, prompts, n), mine)
    same_no_cache = same_rows(no_cache_last(model, prompts, min(n, 32)), mine)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for round_ in range(args.repeats):
        for name, fn in sides.items():
            if not name.startswith("no cache") or round_ < args.no_cache_repeats:
                m = hf if fn is theirs else model
                times[name].append(seconds(fn, m, prompts, n, args.clock))
    return {
        "batch": batch,
        "tok_per_s": {name: batch * n / statistics.median(t) for name, t in times.items()},
        "identical_to_transformers": same,
        "identical_to_no_cache": same_no_cache,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--prompt-len", type=int, default=16)
    p.add_argument("--vocab", type=int, default=10000)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=512)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--d-ff", type=int, default=1344)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-cache-repeats", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=list(DTYPES), default="float32", help="weights on all sides")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what a second is")


def main() -> None:
    import transformers

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args()
    if not 1 <= args.no_cache_repeats <= args.repeats:
        p.error(f"--no-cache-repeats must be between 1 and --repeats ({args.repeats})")
    if args.threads:
        torch.set_num_threads(args.threads)

    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    context = args.prompt_len + args.new_tokens
    config = ModelConfig(args.vocab, context, args.layers, args.d_model, args.heads, args.d_ff)
    model, hf = build_models(config, device, dtype)
    print(f"model: {config}")
    print(f"device {device}, {args.dtype}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, {torch.get_num_threads()} threads; {args.new_tokens} new "
          f"tokens, prompt {args.prompt_len}, greedy; tokens per {args.clock}-clock second; "
          f"memory read {read_bandwidth(device):.1f} GB/s")  # fmt: skip

    print(" | ".join(["batch", *SIDES, "vs transformers", "vs no cache", "vs no cache, last head"]))
    rows = []
    for batch in args.batch_sizes:
        result = compare(model, hf, batch, args)
        assert dtype != torch.float32 or result["identical_to_no_cache"] == batch
        tps = [result["tok_per_s"][name] for name in SIDES]
        rows.append(tps)
        ratios = [tps[0] / t for t in tps[1:]]
        print(" | ".join([f"{batch}", *(f"{t:.1f}" for t in tps), *(f"{r:.2f}x" for r in ratios)])
              + f"   ({result['identical_to_transformers']}/{batch} rows identical to "
              "transformers)")  # fmt: skip
    worst = [min(t[0] / t[side] for t in rows) for side in (1, 2, 3)]
    print(f"bench_generate: ratio={worst[0]:.2f} (kv-cache vs transformers generate, worst batch); "
          f"{worst[1]:.1f}x vs recompute, {worst[2]:.1f}x vs recompute with the head on the last "
          f"position; {args.new_tokens} tokens, {device}, torch {torch.__version__}")  # fmt: skip


if __name__ == "__main__":
    main()
