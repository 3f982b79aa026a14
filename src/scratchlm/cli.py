"""The `scratchlm` command: one subcommand per pipeline stage.

Each subcommand has an `add_<name>(subparsers)` that declares its flags and a `run_<name>(args)`
that imports the stage lazily and calls it. This is the only module that reads `sys.argv`.
A user error (`ValueError`, `OSError`) becomes a one-line `error: ...` on stderr and exit
status 2; set `SCRATCHLM_DEBUG=1` to see the traceback instead.
"""

import argparse
import logging
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args) or 0
    except (ValueError, OSError) as exc:
        if os.environ.get("SCRATCHLM_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def add_data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="make, download or prepare text corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    # Data subcommands register here.
    add_data_synth(data_sub)
    add_data_download(data_sub)
    add_data_prepare(data_sub)


def add_data_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write the embedded synthetic story corpus (train.txt, valid.txt), offline",
        description="Generate short children's stories, deterministically from --seed, into "
        "DIR/train.txt and DIR/valid.txt (2%% of the bytes), separated by <|endoftext|>.",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--size-mb", type=float, default=None, help="total size in MB (10^6 bytes; default 20)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=run_data_synth)


def run_data_synth(args: argparse.Namespace) -> int:
    from scratchlm.data.synth import DEFAULT_SIZE_MB, write_corpus

    size_mb = DEFAULT_SIZE_MB if args.size_mb is None else args.size_mb
    s = write_corpus(args.out, size_mb=size_mb, seed=args.seed)
    mb = (s.train_bytes + s.valid_bytes) / 1e6
    print(
        f"wrote {s.out}/train.txt ({s.train_stories:,} stories, {s.train_bytes / 1e6:.2f} MB) and "
        f"valid.txt ({s.valid_stories:,} stories, {s.valid_bytes / 1e6:.2f} MB); "
        f"{s.unique_words:,} unique words; {s.seconds:.1f} s ({mb / s.seconds:.1f} MB/s)"
    )
    return 0


def add_data_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="fetch TinyStories V2 or the CS336 OpenWebText sample (resumable, checksummed)",
    )
    p.add_argument("name", choices=["tinystories", "owt-sample"], help="which corpus")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run_data_download)


def run_data_download(args: argparse.Namespace) -> int:
    from scratchlm.data.download import download

    for path in download(args.name, args.out):
        print(f"{path} ({path.stat().st_size / 1e6:,.1f} MB)")
    return 0


def add_data_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn .txt / .jsonl / .parquet files or folders into train.txt and valid.txt",
        description="Documents are joined by <|endoftext|>; a seeded fraction goes to valid.txt. "
        "Then run train-tokenizer and tokenize on the result.",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--text-field", default="text", help="JSONL key / parquet column (text)")
    p.add_argument("--valid-fraction", type=float, default=0.01, help="held out (0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split (0)")
    p.set_defaults(func=run_data_prepare)


def run_data_prepare(args: argparse.Namespace) -> int:
    from scratchlm.data.sources import prepare_text

    s = prepare_text(args.inputs, args.out, args.text_field, args.valid_fraction, args.seed)
    print(f"{s.train_path}: {s.train_docs:,} documents; {s.valid_path}: {s.valid_docs:,}")
    return 0


def add_train_tokenizer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-tokenizer",
        help="train a byte-level BPE tokenizer on a UTF-8 text file",
        description="Learn byte-level BPE merges on --data-path and write vocab.json, merges.txt "
        "and tokenizer.json (GPT-2 / Hugging Face format) into --output-dir.",
    )
    p.add_argument("--data-path", type=Path, required=True, help="UTF-8 training text")
    p.add_argument(
        "--output-dir", type=Path, required=True, help="directory for the tokenizer files"
    )
    p.add_argument(
        "--vocab-size", type=int, default=10_000, help="256 bytes + special tokens + merges"
    )
    p.add_argument(
        "--special-tokens",
        nargs="*",
        default=["<|endoftext|>"],
        metavar="TOKEN",
        help="special tokens, never merged; the first also marks where the file may be cut "
        "into chunks (default: <|endoftext|>)",
    )
    p.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="pre-tokenization worker processes (default: all cores)",
    )
    p.set_defaults(func=run_train_tokenizer)


def run_train_tokenizer(args: argparse.Namespace) -> int:
    import resource
    import time

    from scratchlm.tokenizer.bpe import check_output_dir, save_tokenizer_dir, train_bpe

    check_output_dir(args.output_dir)
    start = time.perf_counter()
    vocab, merges = train_bpe(
        args.data_path, args.vocab_size, args.special_tokens, args.num_processes
    )
    seconds = time.perf_counter() - start
    out = save_tokenizer_dir(args.output_dir, vocab, merges, args.special_tokens)
    main_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"trained in {seconds:.1f} s; peak memory {main_mib:.0f} MiB (main process), "
        f"{worker_mib:.0f} MiB (largest worker)"
    )
    print(
        f"vocab size {len(vocab):,}: 256 bytes, {len(args.special_tokens)} special, "
        f"{len(vocab) - 256 - len(args.special_tokens):,} merged ({len(merges):,} merges)"
    )
    merged_ids = range(256 + len(args.special_tokens), len(vocab))
    if merged_ids:
        longest = max(merged_ids, key=lambda i: len(vocab[i]))
        text = vocab[longest].decode("utf-8", errors="replace")
        print(f"longest token: id {longest}, {len(vocab[longest])} bytes, {text!r}")
    print(f"wrote {out}/: vocab.json, merges.txt, tokenizer.json")
    return 0


def add_tokenize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="encode a UTF-8 text file into a .npy token file",
        description="Encode --dataset-path with the tokenizer in --tokenizer-dir, in parallel "
        "chunks cut at document boundaries, and write the ids in order to --output-path "
        "(uint16 when the vocab fits, else uint32; load with np.load(path, mmap_mode='r')).",
    )
    p.add_argument("--dataset-path", type=Path, required=True, help="UTF-8 text to encode")
    p.add_argument("--output-path", type=Path, required=True, help="the .npy file to write")
    p.add_argument(
        "--tokenizer-dir", type=Path, required=True, help="directory written by train-tokenizer"
    )
    p.add_argument(
        "--special-tokens",
        nargs="*",
        default=None,
        metavar="TOKEN",
        help="document separators to cut chunks at, first preferred; each must be a special "
        "token of the tokenizer (default: its special tokens)",
    )
    p.add_argument(
        "--num-processes", type=int, default=None, help="encoding workers (default: all cores)"
    )
    p.add_argument(
        "--queue-size", type=int, default=None, help="chunks in flight (default: 2 x workers)"
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=4 << 20,
        help="characters per chunk, about (default: 4 Mi)",
    )
    p.set_defaults(func=run_tokenize)


def run_tokenize(args: argparse.Namespace) -> int:
    from scratchlm.data.prepare import tokenize_file

    s = tokenize_file(
        args.dataset_path,
        args.output_path,
        args.tokenizer_dir,
        args.special_tokens,
        args.num_processes,
        args.queue_size,
        args.chunk_size,
    )
    print(f"tokens: {s.num_tokens:,}")
    print(f"first {len(s.first_ids)} ids: {list(s.first_ids)}")
    print(f"last {len(s.last_ids)} ids: {list(s.last_ids)}")
    print(f"seconds: {s.seconds:.1f} ({s.num_bytes / max(s.seconds, 1e-9) / 1e6:.1f} MB/s)")
    print(f"bytes per token: {s.bytes_per_token:.3f}")
    print(f"wrote {s.output_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="Train language models from scratch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands register here, in pipeline order.
    add_data(sub)
    add_train_tokenizer(sub)
    add_tokenize(sub)
    del sub
    return parser
