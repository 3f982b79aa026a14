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
        f"vocab size {len(vocab):,} (256 bytes + {len(args.special_tokens)} special + "
        f"{len(vocab) - 256 - len(args.special_tokens):,} merged)"
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


def _posttrain_flags(p: argparse.ArgumentParser, stage: str) -> None:
    """Flags every post-training stage shares: output, config file, resume and overrides."""
    p.add_argument("--out", metavar="DIR", help=f"run directory (default runs/{stage})")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML or JSON config file")
    p.add_argument(
        "--resume", default=None, metavar="latest|PATH", help="continue from a checkpoint of --out"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. loop.steps=300 optimizer.lr=1e-4",
    )


def _stage_config(cls: type, args: argparse.Namespace, **flags: object) -> object:
    """A stage's config: the file (if any), then the overrides, then the flags that were given."""
    from dataclasses import replace

    from scratchlm.config import load_config

    cfg = load_config(cls, args.config, args.overrides)
    return replace(cfg, **{key: value for key, value in flags.items() if value is not None})


def _print_summary(summary: dict) -> None:
    numbers = ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, float))
    print(f"{summary['stage']} finished at step {summary['step']}: {numbers}")
    print(f"checkpoint: {summary['checkpoint']}")


def add_sft(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sft",
        help="supervised fine-tuning on chat records (JSONL)",
        description='Fine-tune --base on conversations, one per line: {"messages": [{"role": ..., '
        '"content": ...}, ...]} or {"prompt": ..., "response": ...}. The loss covers the '
        "assistant's tokens only. The chat tokens are added and the model grows to match.",
    )
    p.add_argument("--base", required=True, metavar="CHECKPOINT", help="checkpoint or run dir")
    p.add_argument("--data", required=True, metavar="FILE.jsonl", help="chat records")
    p.add_argument("--skip-malformed", action="store_true", help="skip and count bad lines")
    _posttrain_flags(p, "sft")
    p.set_defaults(func=run_sft)


def run_sft(args: argparse.Namespace) -> int:
    from scratchlm.posttrain.sft import SFTConfig
    from scratchlm.posttrain.sft import run_sft as sft

    cfg = _stage_config(
        SFTConfig,
        args,
        base=args.base,
        data=args.data,
        out_dir=args.out,
        skip_malformed=args.skip_malformed or None,
    )
    _print_summary(sft(cfg, resume=args.resume))
    return 0


def add_dpo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dpo",
        help="direct preference optimisation on (prompt, chosen, rejected) records",
        description='Train --policy on preference pairs, one per line: {"prompt": ..., "chosen": '
        '..., "rejected": ...}, against a frozen reference (the starting policy unless '
        "--reference is given).",
    )
    p.add_argument("--policy", required=True, metavar="CHECKPOINT", help="usually the SFT output")
    p.add_argument("--data", required=True, metavar="FILE.jsonl", help="preference records")
    p.add_argument("--reference", default=None, metavar="CHECKPOINT", help="same model shape")
    p.add_argument("--skip-malformed", action="store_true", help="skip and count bad lines")
    _posttrain_flags(p, "dpo")
    p.set_defaults(func=run_dpo)


def run_dpo(args: argparse.Namespace) -> int:
    from scratchlm.posttrain.dpo import DPOConfig
    from scratchlm.posttrain.dpo import run_dpo as dpo

    cfg = _stage_config(
        DPOConfig,
        args,
        policy=args.policy,
        data=args.data,
        out_dir=args.out,
        reference=args.reference,
        skip_malformed=args.skip_malformed or None,
    )
    _print_summary(dpo(cfg, resume=args.resume))
    return 0


def add_grpo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grpo",
        help="reinforcement learning from a verifiable reward (group relative policy optimisation)",
        description="Sample groups of answers from --policy to the task's prompts, score them with "
        "the task's reward, and push up the better ones of each group.",
    )
    p.add_argument("--policy", required=True, metavar="CHECKPOINT", help="usually the SFT output")
    p.add_argument("--task", default="default", metavar="NAME", help="task (default: default)")
    _posttrain_flags(p, "grpo")
    p.set_defaults(func=run_grpo)


def run_grpo(args: argparse.Namespace) -> int:
    from scratchlm.posttrain.grpo import GRPOConfig
    from scratchlm.posttrain.grpo import run_grpo as grpo

    cfg = _stage_config(GRPOConfig, args, policy=args.policy, task=args.task, out_dir=args.out)
    _print_summary(grpo(cfg, resume=args.resume))
    return 0


def add_task(sub: argparse._SubParsersAction) -> None:
    task = sub.add_parser("task", help="the offline default post-training task")
    task_sub = task.add_subparsers(dest="task_command", required=True, metavar="TASK_COMMAND")
    make = task_sub.add_parser(
        "make",
        help="write sft.jsonl and preference.jsonl for the default task",
        description="Seeded instructions with checkable constraints (stories that must name given "
        "words, small arithmetic): demonstrations for SFT and (chosen, rejected) pairs for DPO.",
    )
    make.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    make.add_argument("--n-sft", type=int, default=4000, help="SFT records (default 4000)")
    make.add_argument(
        "--n-preference", type=int, default=2000, help="preference pairs (default 2000)"
    )
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.set_defaults(func=run_task_make)
    ev = task_sub.add_parser(
        "eval",
        help="constraint-satisfaction rate of a checkpoint on the default task",
        description="Greedy answers to seeded held-out instructions, in the chat template; "
        "prints the fraction that meet every constraint.",
    )
    ev.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    ev.add_argument("--n", type=int, default=200, help="instructions (default 200)")
    ev.add_argument("--seed", type=int, default=None, help="instruction seed (default 1234)")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    ev.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the result")
    ev.set_defaults(func=run_task_eval)
    pairs = task_sub.add_parser(
        "pairs",
        help="preference pairs from a checkpoint's own answers (on-policy DPO data)",
        description="The checkpoint answers seeded task prompts greedily; a failed answer becomes "
        "the rejected side (a demonstration the chosen one), a correct answer the chosen side (a "
        "near miss the rejected one).",
    )
    pairs.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    pairs.add_argument("--out", type=Path, required=True, metavar="FILE", help="output .jsonl")
    pairs.add_argument("--task", default="default", help="default, arithmetic or story")
    pairs.add_argument("--n", type=int, default=1000, help="pairs (default 1000)")
    pairs.add_argument("--seed", type=int, default=0, help="prompt seed (default 0)")
    pairs.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    pairs.set_defaults(func=run_task_pairs)


def run_task_make(args: argparse.Namespace) -> int:
    from scratchlm.eval.tasks import write_task_files

    if args.n_sft < 1 or args.n_preference < 1:
        raise ValueError("--n-sft and --n-preference must be >= 1")
    paths = write_task_files(args.out, args.n_sft, args.n_preference, args.seed)
    print(f"wrote {paths['sft']} ({args.n_sft} records), {paths['preference']} "
          f"({args.n_preference} pairs)")  # fmt: skip
    return 0


def run_task_eval(args: argparse.Namespace) -> int:
    import json

    from scratchlm.eval.tasks import EVAL_SEED
    from scratchlm.posttrain.evaluate import evaluate_task

    seed = EVAL_SEED if args.seed is None else args.seed
    result = evaluate_task(args.checkpoint, args.n, seed, args.device)
    for sample in result["samples"]:
        print(f"Q: {sample['prompt']}\nA: {sample['answer']!r} (score {sample['score']:.2f})\n")
    kinds = ", ".join(f"{k[5:]} {v:.3f}" for k, v in result.items() if k.startswith("rate_"))
    print(f"satisfaction rate {result['rate']:.3f} ({kinds}) on {result['n']} instructions, "
          f"mean score {result['mean_score']:.3f}; {result['checkpoint']}")  # fmt: skip
    if args.json is not None:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


def run_task_pairs(args: argparse.Namespace) -> int:
    from scratchlm.posttrain.pairs import write_self_pairs

    result = write_self_pairs(args.checkpoint, args.out, args.task, args.n, args.seed, args.device)
    print(f"wrote {result['path']} ({result['pairs']} pairs from {result['checkpoint']})")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="pretrain a TransformerLM on token files",
        description="Pretrain the model of --config on its token files. Under torchrun each "
        "process takes one device; the global batch is batch_size x grad_accum x processes "
        "sequences. Ctrl-C (or SIGTERM) finishes the step, saves a checkpoint and exits.",
    )
    p.add_argument(
        "--config", required=True, metavar="FILE", help="YAML or JSON config (see configs/)"
    )
    p.add_argument(
        "--resume",
        default=None,
        metavar="latest|PATH",
        help="continue from the newest checkpoint of the run directory, or from a checkpoint dir",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="SECTION.KEY=VALUE",
        help="config overrides, e.g. training.steps=50 optimizer.lr=1e-3 training.device=cpu",
    )
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from scratchlm.config import load_config
    from scratchlm.train.pretrain import PretrainConfig, pretrain

    summary = pretrain(load_config(PretrainConfig, args.config, args.overrides), args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        numbers = ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, float))
        print(f"train finished at step {summary['step']}: {numbers}")
        print(f"run dir: {summary['run_dir']}; checkpoint: {summary['checkpoint']}")
    return 0


def _sampling_flags(p: argparse.ArgumentParser, max_new_tokens: int) -> None:
    """Flags shared by generate and chat."""
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely (default off)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus mass (default 0.95)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"per reply, at most the context left (default {max_new_tokens})",
    )
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default random)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a prompt with a checkpoint, streamed to the terminal",
        description="Continue --prompt with the model (KV-cached sampling) and print the text "
        "as it is generated. Stops at the end-of-text token, a --stop string or --max-new-tokens.",
    )
    _sampling_flags(p, max_new_tokens=256)
    p.add_argument("--prompt", required=True, help="text to continue ('' starts from scratch)")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT", help="stop string")
    p.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from scratchlm.inference.engine import Engine
    from scratchlm.serve.chat_cli import generate_to_terminal, sampling_from_args

    engine = Engine.from_checkpoint(args.checkpoint, args.device)
    sampling = sampling_from_args(args)
    return generate_to_terminal(engine, args.prompt, sampling, tuple(args.stop), args.seed)


def add_chat(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="multi-turn chat with a checkpoint in the terminal",
        description="A chat REPL: the chat template for a post-trained checkpoint, plain "
        "continuation for a base model. /reset forgets the conversation, /exit quits.",
    )
    _sampling_flags(p, max_new_tokens=200)
    p.add_argument("--system", default=None, help="a system message opening the conversation")
    p.set_defaults(func=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    from scratchlm.inference.engine import Engine
    from scratchlm.serve.chat_cli import chat_repl, sampling_from_args

    engine = Engine.from_checkpoint(args.checkpoint, args.device)
    return chat_repl(engine, sampling_from_args(args), args.system, args.seed)


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="OpenAI-compatible HTTP API and a chat page for a checkpoint",
        description="Serve /v1/completions, /v1/chat/completions (stream: true as server-sent "
        "events), /v1/models, /health, and a chat page at /. Binds 127.0.0.1 unless --host says "
        "otherwise.",
    )
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    p.add_argument("--max-tokens", type=int, default=1024, help="cap on max_tokens (1024)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from scratchlm.serve.http import ServerLimits, serve

    if args.max_tokens < 1:
        raise ValueError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    serve(args.checkpoint, args.host, args.port, args.device, ServerLimits(args.max_tokens))
    return 0


def add_export_hf(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-hf",
        help="write a checkpoint as a Hugging Face LlamaForCausalLM directory",
        description="Write safetensors weights, config.json (LlamaForCausalLM) and tokenizer "
        "files that transformers' AutoModelForCausalLM / AutoTokenizer load offline.",
    )
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="new output directory")
    p.set_defaults(func=run_export_hf)


def run_export_hf(args: argparse.Namespace) -> int:
    from scratchlm.export.hf import export_hf

    print(f"exported to {export_hf(args.checkpoint, args.out)}")
    return 0


def add_import_hf(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-hf",
        help="read a Hugging Face Llama directory (as export-hf writes) into a checkpoint",
    )
    p.add_argument("hf_dir", type=Path, metavar="HF_DIR", help="the Hugging Face model directory")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="new checkpoint dir")
    p.set_defaults(func=run_import_hf)


def run_import_hf(args: argparse.Namespace) -> int:
    from scratchlm.export.hf import import_hf

    print(f"checkpoint written to {import_hf(args.hf_dir, args.out)}")
    return 0


def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a checkpoint with lm-evaluation-harness (offline or harness tasks)",
        description="Run lm-eval tasks on the checkpoint with our model and tokenizer. Offline "
        "tasks: story_endings, story_perplexity; with internet any harness task (hellaswag, ...).",
    )
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    p.add_argument("--tasks", required=True, help="comma-separated task names")
    p.add_argument("--limit", type=int, default=None, help="at most N documents per task")
    p.add_argument("--batch-size", type=int, default=16, help="requests per forward (16)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (default auto)")
    p.add_argument("--apply-chat-template", action="store_true", help="chat checkpoints only")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="results JSON")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from scratchlm.harness.run import evaluate_checkpoint, harness_table

    results, out = evaluate_checkpoint(
        args.checkpoint, args.tasks.split(","), args.limit, args.batch_size, args.device,
        args.out, args.apply_chat_template,
    )  # fmt: skip
    print(harness_table(results))
    print(f"results: {out}")
    return 0


def add_export_gguf(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export-gguf",
        help="write a checkpoint as a GGUF file for llama.cpp",
        description="Write one GGUF file (llama architecture, our byte-level BPE tokenizer, the "
        "chat template of a chat checkpoint) that llama.cpp and its bindings load.",
    )
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint or run dir")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="new .gguf file")
    p.add_argument("--outtype", choices=["f32", "f16", "q8_0"], default="f16", help="(f16)")
    p.set_defaults(func=run_export_gguf)


def run_export_gguf(args: argparse.Namespace) -> int:
    from scratchlm.export.gguf import export_gguf

    print(f"exported to {export_gguf(args.checkpoint, args.out, args.outtype)}")
    return 0


def add_speedrun(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speedrun",
        help="the whole pipeline (data, tokenizer, pretraining, post-training, evaluation, report)",
        description="Runs every stage into --out and writes report.md there. A rerun skips "
        "finished stages and resumes an interrupted one. Overrides such as "
        "pretrain.training.steps=200 apply on top of the preset.",
    )
    p.add_argument(
        "--preset",
        default="cpu",
        choices=["cpu", "mini", "tinystories", "gpt2-owt"],
        help="cpu (default, ~11 min on 2 cores), mini (smoke test), tinystories (1 GPU), "
        "gpt2-owt (torchrun, several GPUs)",
    )
    p.add_argument("--out", type=Path, default=None, help="run directory (runs/speedrun-PRESET)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.set_defaults(func=run_speedrun)


def run_speedrun(args: argparse.Namespace) -> int:
    from scratchlm.speedrun import make_config, speedrun

    cfg = make_config(args.preset, args.overrides)
    home = Path(os.environ.get("SCRATCHLM_HOME", "runs"))
    out = args.out or home / f"speedrun-{args.preset}"
    report = speedrun(cfg, out)
    print(f"report: {report}")
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
    add_sft(sub)
    add_dpo(sub)
    add_grpo(sub)
    add_task(sub)
    add_train(sub)
    add_generate(sub)
    add_chat(sub)
    add_serve(sub)
    add_export_hf(sub)
    add_import_hf(sub)
    add_eval(sub)
    add_export_gguf(sub)
    add_speedrun(sub)
    del sub
    return parser
