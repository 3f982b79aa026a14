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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="Train language models from scratch."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Subcommands register here, in pipeline order.
    del sub
    return parser
