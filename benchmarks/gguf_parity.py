"""llama.cpp on our GGUF exports: how far its logits are from ours, and whether it decodes our ids.

For each --checkpoint and each outtype (f32, f16, q8_0): export with `scratchlm.export.gguf`, load
the file in llama.cpp through llama-cpp-python (one thread, f32 KV cache, weights as stored: no
repacking, which crashes on q8_0 files on CPUs with AMX, see README "llama.cpp (GGUF)"), then

- logits over the first --positions ids of the text: the largest absolute difference from our
  model's fp32 logits, our largest logit for scale, and at how many positions the argmax agrees;
- greedy continuations of --new-tokens ids after the openings (first --opening ids) of the text's
  first --stories stories (`<|endoftext|>`-separated): how many are identical to ours, and the mean
  length of the identical prefix. Ours is the plain argmax of a full forward over the sequence so
  far, no KV cache, so it depends on nothing but the model.

    python benchmarks/gguf_parity.py --checkpoint runs/speedrun-cpu/pretrain \\
        --checkpoint runs/speedrun-cpu/sft --text runs/speedrun-cpu/corpus/valid.txt

Needs `pip install llama-cpp-python` (it compiles llama.cpp) and the gguf package (in .[dev]).
"""

import argparse
import itertools
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
from generate import no_cache  # benchmarks/generate.py: greedy by full recomputation, no cache

from scratchlm.export.gguf import OUTTYPES, export_gguf
from scratchlm.tokenizer import Tokenizer
from scratchlm.train.checkpoint import find_checkpoint, load_model


def cpu_name() -> str:
    """The CPU's model name and whether it has AMX tiles (where llama.cpp's repacked q8_0 path
    crashes), from /proc/cpuinfo; the machine type elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.machine()
    info = cpuinfo.read_text()
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line]
    return f"{names[0] if names else platform.machine()}, AMX: {'amx_tile' in info}"


def load_llama(path: Path, n_ctx: int) -> object:
    """`path` in llama.cpp: one thread, f32 KV cache, all logits kept, weights as stored."""
    import llama_cpp

    default_params = llama_cpp.llama_cpp.llama_model_default_params

    def plain_buffers() -> object:
        params = default_params()
        params.use_extra_bufts = False  # llama-cli's --no-repack
        return params

    llama_cpp.llama_cpp.llama_model_default_params = plain_buffers
    try:
        return llama_cpp.Llama(
            str(path), n_ctx=n_ctx, logits_all=True, verbose=False, n_threads=1,
            type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32,
        )  # fmt: skip
    finally:
        llama_cpp.llama_cpp.llama_model_default_params = default_params


def identical_prefix(a: list[int], b: list[int]) -> int:
    """How many leading ids `a` and `b` share."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def measure(checkpoint: str, text: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    """Our model's logits and greedy continuations on `text` once, then llama.cpp's on the
    checkpoint exported as each outtype: one row per outtype."""
    ckpt = find_checkpoint(checkpoint)  # a checkpoint directory, or a run's newest one
    ours = load_model(ckpt)
    tokenizer = Tokenizer.from_dir(ckpt / "tokenizer")
    ids = tokenizer.encode(text)[: args.positions]
    with torch.no_grad():
        expected = ours(torch.tensor([ids]))[0].numpy()  # (T, V)
    stories = [s.strip() for s in text.split("<|endoftext|>") if s.strip()][: args.stories]
    prompts = [tokenizer.encode(story)[: args.opening] for story in stories]
    mine = [no_cache(ours, torch.tensor([p]), args.new_tokens)[0] for p in prompts]
    rows = []
    for outtype in OUTTYPES:
        path = export_gguf(ckpt, workdir / f"{Path(checkpoint).name}-{outtype}.gguf", outtype)
        theirs = load_llama(path, ours.config.context_length)
        theirs.eval(ids)
        got = np.array(theirs.scores[: len(ids)])
        greedy = (theirs.generate(p, temp=0.0, top_k=1, reset=True) for p in prompts)
        picked = [list(itertools.islice(tokens, args.new_tokens)) for tokens in greedy]
        theirs.close()
        prefixes = [identical_prefix(a, b) for a, b in zip(picked, mine, strict=True)]
        rows.append({
            "checkpoint": checkpoint, "file": outtype, "size": path.stat().st_size,
            "diff": float(np.abs(got - expected).max()),
            "max_logit": float(np.abs(expected).max()),
            "argmax": int((got.argmax(-1) == expected.argmax(-1)).sum()), "positions": len(ids),
            "same": sum(a == b for a, b in zip(picked, mine, strict=True)), "stories": len(stories),
            "prefix": sum(prefixes) / len(prefixes),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", action="append", required=True, help="repeatable")
    parser.add_argument("--text", required=True, help="text whose stories end in <|endoftext|>")
    parser.add_argument("--positions", type=int, default=128)
    parser.add_argument("--stories", type=int, default=20)
    parser.add_argument("--opening", type=int, default=16, help="ids of each story's opening")
    parser.add_argument("--new-tokens", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import llama_cpp
    except ImportError:
        raise SystemExit("needs llama-cpp-python: pip install llama-cpp-python") from None
    if not Path(args.text).is_file():
        raise SystemExit(f"--text {args.text}: no such file")
    text = Path(args.text).read_text(encoding="utf-8")
    print(f"llama-cpp-python {llama_cpp.__version__} on {cpu_name()}; weights as stored\n")
    print("| checkpoint | file | size | logits max abs diff (our max logit) | argmax agrees "
          f"| greedy {args.new_tokens} tokens identical (mean identical prefix) |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoint:
            try:
                rows = measure(checkpoint, text, args, Path(tmp))
            except (FileNotFoundError, ValueError) as err:  # no checkpoint, not a llama
                raise SystemExit(f"--checkpoint {checkpoint}: {err}") from None
            for r in rows:
                print(f"| {r['checkpoint']} | {r['file']} | {r['size'] / 1e6:.2f} MB "
                      f"| {r['diff']:.1e} ({r['max_logit']:.1f}) "
                      f"| {r['argmax']}/{r['positions']} | {r['same']}/{r['stories']} "
                      f"({r['prefix']:.1f}) |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
