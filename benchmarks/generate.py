"""Decode speed: our KV-cached generation vs `transformers` generate on the same weights, and vs our
own model recomputing the whole sequence for every new token (no cache).

All three decode greedily, the same prompts, exactly --new-tokens tokens per row (no stop token).
tokens/s counts generated tokens (batch x new tokens) over the time of the whole call, prefill
included: wall time, or with --clock cpu this process's CPU time (for a machine other jobs share).
Each figure is the median of --repeats runs after a short warm-up.

    python benchmarks/generate.py --threads 1     # the `small` preset shape, batch 1 and 8, CPU
    python benchmarks/generate.py --threads 1 --clock cpu   # the same on a busy shared machine
    python benchmarks/generate.py --device cuda --d-model 768 --layers 12 --heads 12 --d-ff 2048
"""

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import transformers

from scratchlm.model import ModelConfig, TransformerLM
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.hf import to_hf_llama


def ours(model: TransformerLM, prompts: torch.Tensor, new: int) -> list[list[int]]:
    return generate(model, prompts.tolist(), SamplingConfig(max_new_tokens=new, temperature=0))


def theirs(hf: transformers.PreTrainedModel, prompts: torch.Tensor, new: int) -> list[list[int]]:
    out = hf.generate(prompts, attention_mask=torch.ones_like(prompts), max_new_tokens=new,
                      do_sample=False)  # fmt: skip
    return out[:, prompts.shape[1] :].tolist()


@torch.no_grad()
def no_cache(model: TransformerLM, prompts: torch.Tensor, new: int) -> list[list[int]]:
    ids = prompts
    for _ in range(new):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[:, prompts.shape[1] :].tolist()


def tokens_per_s(
    fn: Callable, model: object, prompts: torch.Tensor, new: int, repeats: int, clock: str
) -> float:
    """Generated tokens per second of fn(model, prompts, new): the median over `repeats` runs.

    clock "wall" times the call; "cpu" counts this process's CPU seconds instead, which other jobs
    on a busy machine do not inflate (meaningful for CPU runs with --threads 1).
    """
    timer = time.process_time if clock == "cpu" else time.perf_counter
    times = []
    for _ in range(repeats):
        start = timer()
        out = fn(model, prompts, new)
        if prompts.is_cuda:
            torch.cuda.synchronize()
        times.append(timer() - start)
        assert sum(len(row) for row in out) == prompts.shape[0] * new
    return prompts.shape[0] * new / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall", help="what a second is")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    context = args.prompt_len + args.new_tokens
    config = ModelConfig(args.vocab, context, args.layers, args.d_model, args.heads, args.d_ff)
    torch.manual_seed(0)
    model = TransformerLM.from_config(config, device=device).eval()
    hf = to_hf_llama(model)
    hf.generation_config.eos_token_id = None  # always exactly --new-tokens tokens
    hf.generation_config.pad_token_id = 0
    print(f"model: {config}")
    print(f"device {device}, torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads; {args.new_tokens} new tokens, prompt "
          f"{args.prompt_len}, greedy; tokens per {args.clock}-clock second")  # fmt: skip

    header = f"{'batch':>5} | {'ours (cache)':>13} | {'transformers':>13} | {'ours no cache':>13} |"
    print(header + " vs transformers | vs no cache")
    rows = []
    for batch in args.batch_sizes:
        gen = torch.Generator().manual_seed(batch)
        prompts = torch.randint(0, args.vocab, (batch, args.prompt_len), generator=gen).to(device)
        n = args.new_tokens
        short = min(n, 8)
        for fn in (ours, theirs):  # warm-up
            fn(hf if fn is theirs else model, prompts, short)
        no_cache(model, prompts, short)
        mine = ours(model, prompts, n)
        reference = theirs(hf, prompts, n)
        same = sum(a == b for a, b in zip(mine, reference, strict=True))
        runs = [(ours, model, args.repeats), (theirs, hf, args.repeats),
                (no_cache, model, args.no_cache_repeats)]  # fmt: skip
        tps = [tokens_per_s(fn, m, prompts, n, reps, args.clock) for fn, m, reps in runs]
        rows.append((batch, tps))
        print(f"{batch:>5} | {tps[0]:>13.1f} | {tps[1]:>13.1f} | {tps[2]:>13.1f} | "
              f"{tps[0] / tps[1]:>14.2f}x | {tps[0] / tps[2]:>10.2f}x   "
              f"({same}/{batch} rows identical to transformers)")  # fmt: skip
    worst_hf = min(t[0] / t[1] for _, t in rows)
    worst_nc = min(t[0] / t[2] for _, t in rows)
    print(f"bench_generate: ratio={worst_hf:.2f} (kv-cache vs transformers generate, worst batch); "
          f"{worst_nc:.1f}x vs recompute; {args.new_tokens} tokens, {device}, torch "
          f"{torch.__version__}")  # fmt: skip


if __name__ == "__main__":
    main()
