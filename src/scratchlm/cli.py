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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="Train language models from scratch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands register here, in pipeline order.
    add_data(sub)
    del sub
    return parser
