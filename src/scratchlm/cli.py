"""The `scratchlm` command: a dispatcher over the commands the stage modules define.

Each stage module declares its command as a `scratchlm.config.Command`: a config class and a run
function, with flags that are aliases of config keys, or (for the commands without a config) plain
argparse arguments. This module, the only reader of `sys.argv`, does the rest once for all: it
builds the config (defaults < --config FILE < flags and KEY=VALUE overrides; one key given two
values is an error naming both), prints it with --print-config, runs the command and prints what
it returns. Only the module of the command being run is imported, so `scratchlm --help` is quick.
A user error (`ValueError`, `OSError`) becomes a one-line `error: ...` on stderr and exit status 2;
set `SCRATCHLM_DEBUG=1` to see the traceback instead.
"""

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from functools import reduce
from pathlib import Path
from typing import Any

from scratchlm.config import (
    Command,
    arg,
    check_once,
    config_yaml,
    key_type,
    load_config,
    to_dict,
    value_kind,
)

GROUPS = {
    "data": "make, download or prepare text corpora",
    "task": "the offline default post-training task",
}

# Command name -> ("module:attribute" of its Command, one-line help), in pipeline order.
COMMANDS = {
    "data synth": ("scratchlm.data.synth:COMMAND",
                   "write the embedded synthetic story corpus (train.txt, valid.txt), offline"),
    "data download": ("scratchlm.data.download:COMMAND", "fetch TinyStories V2 or the CS336 "
                      "OpenWebText sample (resumable, checksummed)"),
    "data prepare": ("scratchlm.data.sources:COMMAND",
                     "turn .txt / .jsonl / .parquet files or folders into train.txt and valid.txt"),
    "train-tokenizer": ("scratchlm.tokenizer.bpe:COMMAND",
                        "train a byte-level BPE tokenizer on a UTF-8 text file"),
    "tokenize": ("scratchlm.data.prepare:COMMAND",
                 "encode a UTF-8 text file into a .npy token file"),
    "train": ("scratchlm.train.pretrain:COMMAND", "pretrain a TransformerLM on token files"),
    "sft": ("scratchlm.posttrain.sft:COMMAND", "supervised fine-tuning on chat records (JSONL)"),
    "dpo": ("scratchlm.posttrain.dpo:COMMAND",
            "direct preference optimisation on (prompt, chosen, rejected) records"),
    "grpo": ("scratchlm.posttrain.grpo:COMMAND", "reinforcement learning from a verifiable "
             "reward (group relative policy optimisation)"),
    "task make": ("scratchlm.eval.tasks:MAKE_COMMAND",
                  "write sft.jsonl and preference.jsonl for the default task"),
    "task eval": ("scratchlm.posttrain.evaluate:COMMAND",
                  "constraint-satisfaction rate of a checkpoint on the default task"),
    "task pairs": ("scratchlm.posttrain.pairs:COMMAND",
                   "preference pairs from a checkpoint's own answers (on-policy DPO data)"),
    "generate": ("scratchlm.serve.chat_cli:GENERATE_COMMAND",
                 "continue a prompt with a checkpoint, streamed to the terminal"),
    "chat": ("scratchlm.serve.chat_cli:CHAT_COMMAND",
             "multi-turn chat with a checkpoint in the terminal"),
    "serve": ("scratchlm.serve.http:COMMAND",
              "OpenAI-compatible HTTP API and a chat page for a checkpoint"),
    "export-hf": ("scratchlm.export.hf:EXPORT_COMMAND",
                  "write a checkpoint as a Hugging Face LlamaForCausalLM directory"),
    "import-hf": ("scratchlm.export.hf:IMPORT_COMMAND",
                  "read a Hugging Face Llama directory (as export-hf writes) into a checkpoint"),
    "eval": ("scratchlm.harness.run:COMMAND",
             "score a checkpoint with lm-evaluation-harness (offline or harness tasks)"),
    "export-gguf": ("scratchlm.export.gguf:COMMAND",
                    "write a checkpoint as a GGUF file for llama.cpp"),
    "speedrun": ("scratchlm.cli:SPEEDRUN_COMMAND", "the whole pipeline (data, tokenizer, "
                 "pretraining, post-training, evaluation, report)"),
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command `argv` (default: sys.argv[1:]) names; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser([" ".join(argv[:2] if argv[:1] and argv[0] in GROUPS else argv[:1])])
    args, extra = parser.parse_known_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    level = logging.INFO if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        result = run(args._command, args, extra)
    except (ValueError, OSError) as exc:
        if os.environ.get("SCRATCHLM_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if result is not None and rank == 0:
        print(result)
    return getattr(result, "exit_status", 0)  # a training run stopped by a signal: 128 + it


def run(command: Command, args: argparse.Namespace, extra: list[str]) -> Any:
    """Run `command` on its parsed arguments; returns what it prints."""
    if command.config is not None:  # a KEY=VALUE after a flag is an override too
        strays = [item for item in extra if "=" in item and not item.startswith("-")]
        args.overrides += strays
        extra = [item for item in extra if item not in strays]
    if extra:
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if command.config is None:
        return command.run(**{k: v for k, v in vars(args).items() if not k.startswith("_")})
    cfg = resolve_config(command, args)
    if args.print_config:
        return config_yaml(cfg).rstrip("\n")
    return command.run(cfg, args.resume) if command.resume else command.run(cfg)


def resolve_config(command: Command, args: argparse.Namespace) -> Any:
    """The command's config: defaults, then the --config file, then the flags and overrides."""
    given = []  # (as written, as key=value)
    for flag, spec in command.flags.items():
        value = getattr(args, flag)
        if isinstance(value, list):  # a flag of many values swallows the overrides after it
            args.overrides += [v for v in value if is_override(command.config, v)]
            value = [v for v in value if not is_override(command.config, v)]
            given.append((" ".join([flag, *value]), f"{spec.key}={value!r}"))
        elif value is True:
            given.append((flag, f"{spec.key}=true"))
        elif value is not None:
            given.append((f"{flag} {value}", f"{spec.key}={value}"))
    given += [(item, item) for item in args.overrides]
    check_once(command.config, given)
    return load_config(command.config, args.config, [item for _, item in given])


def is_override(cls: type, text: str) -> bool:
    """Whether `text` is KEY=VALUE for a key of config class `cls`."""
    try:
        key_type(cls, text.partition("=")[0].strip())
    except ValueError:
        return False
    return "=" in text


def load_command(target: str) -> Command:
    """The Command at "module:attribute" (importing the module)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def declare(p: argparse.ArgumentParser, command: Command) -> None:
    """Give the parser of one command its description and arguments."""
    p.description = command.description
    p.set_defaults(_command=command, _parser=p)
    if command.config is None:
        for a in command.args:
            p.add_argument(*a.names, **a.options)
        return
    p.epilog = "Every config key and its default: --print-config. Flags are aliases of keys."
    p.add_argument("--config", metavar="FILE", help="YAML or JSON config file")
    defaults = to_dict(command.config())
    for flag, spec in command.flags.items():
        kind = value_kind(command.config, spec.key)
        default = reduce(dict.__getitem__, spec.key.split("."), defaults)
        shown = "" if default in ("", None) or isinstance(default, bool) else f", default {default}"
        options = {"metavar": spec.metavar or spec.key.upper(), "action": Once,
                   "nargs": "*" if kind == "list" else None}  # fmt: skip
        if kind == "bool":
            options = {"action": "store_true"}
        p.add_argument(flag, dest=flag, help=f"{spec.help} ({spec.key}{shown})", **options)
    if command.resume:
        p.add_argument(
            "--resume",
            metavar="latest|PATH",
            help="continue from the run directory's newest checkpoint, or from PATH",
        )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit; nothing runs",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, typed by the key"
    )


class Once(argparse.Action):
    """Store a flag's value; the same flag again with another value is an error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option: str | None = None) -> None:  # fmt: skip
        if getattr(namespace, self.dest) not in (None, values):
            parser.error(f"{option} is given twice, as {getattr(namespace, self.dest)} and as "
                         f"{values}: give it once")  # fmt: skip
        setattr(namespace, self.dest, values)


def build_parser(load: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser listing every command; it declares the arguments (importing the modules) of the
    commands named in `load` only, or of all of them when `load` is None."""
    parser = argparse.ArgumentParser(
        prog="scratchlm", description="Train language models from scratch."
    )
    sub = parser.add_subparsers(dest="_name", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, (target, help_text) in COMMANDS.items():
        group, _, leaf = name.rpartition(" ")
        if group and group not in groups:
            groups[group] = sub.add_parser(group, help=GROUPS[group]).add_subparsers(
                dest=f"_{group}", required=True, metavar=f"{group.upper()}_COMMAND"
            )
        p = (groups[group] if group else sub).add_parser(leaf, help=help_text)
        if load is None or name in load:
            declare(p, load_command(target))
    return parser


def run_speedrun(preset: str, out: Path | None, budget: str | None, overrides: list[str]) -> str:
    """`scratchlm speedrun`: the preset's config with the overrides, run into `out`."""
    from scratchlm.pipeline import SpeedrunConfig, make_config, speedrun

    check_once(SpeedrunConfig, [(item, item) for item in overrides])
    cfg = make_config(preset, overrides, budget)
    home = Path(os.environ.get("SCRATCHLM_HOME", "runs"))
    return f"report: {speedrun(cfg, out or home / f'speedrun-{preset}')}"


SPEEDRUN_COMMAND = Command(
    run=run_speedrun,
    description="Runs every stage into --out and writes report.md there. A rerun skips finished "
    "stages and resumes an interrupted one. Overrides such as pretrain.training.steps=200 apply "
    "on top of the preset.",
    args=(
        arg("--preset", default="cpu", choices=["cpu", "mini", "tinystories", "gpt2-owt"],
            help="cpu (default, ~10 min on 2 cores), mini (smoke test), tinystories (1 GPU), "
            "gpt2-owt (torchrun, several GPUs)"),
        arg("--out", type=Path, default=None, help="run directory (runs/speedrun-PRESET)"),
        arg("--budget", default=None, metavar="TIME",
            help="wall-clock time for pretraining (90s, 10m, 1h): sizes its steps to fit"),
        arg("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides"),
    ),
)  # fmt: skip
