"""Talking to a checkpoint in the terminal: one streamed continuation, or a multi-turn chat REPL.

The REPL renders the whole conversation each turn (the chat template for a post-trained model,
plain continuation of the joined messages for a base model), drops the oldest turns when the
conversation no longer fits the context, and streams the reply as it is generated. Commands:
/reset forgets the conversation, /exit (or Ctrl-D) quits; Ctrl-C interrupts a reply.
"""

import sys
from dataclasses import replace
from typing import Any

from scratchlm.config import CHECKPOINT_ARG, DEVICE_ARG, Arg, Command, arg
from scratchlm.inference.engine import Engine
from scratchlm.model.generate import SamplingConfig


def fit_new_tokens(
    engine: Engine, prompt_ids: list[int], sampling: SamplingConfig
) -> SamplingConfig:
    """`sampling` with max_new_tokens lowered so the prompt and the reply fit the context."""
    room = engine.context_length - len(prompt_ids)
    if room < 1:
        raise ValueError(
            f"the prompt has {len(prompt_ids)} tokens and fills the model's context of "
            f"{engine.context_length}; shorten it"
        )
    return replace(sampling, max_new_tokens=min(sampling.max_new_tokens, room))


def generate_to_terminal(
    engine: Engine,
    prompt: str,
    sampling: SamplingConfig,
    stop: tuple[str, ...] = (),
    seed: int | None = None,
) -> int:
    """Print the prompt, then the continuation as it streams."""
    ids = engine.encode_text(prompt)
    pieces = engine.stream(ids, fit_new_tokens(engine, ids, sampling), stop, seed)
    print(prompt, end="", flush=True)
    for piece in pieces:
        print(piece, end="", flush=True)
    print()
    print(f"[{pieces.completion_tokens} tokens, {pieces.finish_reason}]", file=sys.stderr)
    return 0


def chat_repl(
    engine: Engine,
    sampling: SamplingConfig,
    system: str | None = None,
    seed: int | None = None,
) -> int:
    """A multi-turn chat on stdin/stdout until /exit or end of input."""
    mode = "chat template" if engine.chat else "base model: plain continuation"
    print(f"chatting with {engine.name} ({mode}); /reset forgets, /exit quits")
    opening = [{"role": "system", "content": system}] if system else []
    messages = list(opening)
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            messages = list(opening)
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        try:
            ids = _fitted_prompt(engine, messages, len(opening), sampling)
        except ValueError as exc:
            print(f"error: {exc}")
            messages.pop()
            continue
        print("model> ", end="", flush=True)
        reply = []
        pieces = engine.stream(ids, fit_new_tokens(engine, ids, sampling), seed=seed, chat=True)
        try:
            for piece in pieces:
                print(piece, end="", flush=True)
                reply.append(piece)
        except KeyboardInterrupt:
            print(" [interrupted]", end="")
        print()
        messages.append({"role": "assistant", "content": "".join(reply)})


def _fitted_prompt(
    engine: Engine, messages: list[dict[str, str]], keep: int, sampling: SamplingConfig
) -> list[int]:
    """The prompt ids, after dropping the oldest turns (past the first `keep` messages) until the
    prompt leaves room for a reply of max_new_tokens (or at least one token)."""
    want = min(sampling.max_new_tokens, engine.context_length // 2)
    ids = engine.encode_chat(messages)
    while len(ids) + want > engine.context_length and len(messages) > keep + 1:
        del messages[keep]
        ids = engine.encode_chat(messages)
    fit_new_tokens(engine, ids, sampling)  # raises when even the last message alone is too long
    return ids


def sampling_args(max_new_tokens: int) -> tuple[Arg, ...]:
    """What generate and chat take: checkpoint, device, seed and the SamplingConfig fields."""
    return (
        CHECKPOINT_ARG,
        arg("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)"),
        arg("--top-k", type=int, default=None, help="keep the k most likely (default off)"),
        arg("--top-p", type=float, default=0.95, help="nucleus mass (default 0.95)"),
        arg("--max-new-tokens", type=int, default=max_new_tokens,
            help=f"per reply, at most the context left (default {max_new_tokens})"),
        arg("--seed", type=int, default=None, help="sampling seed (default random)"),
        DEVICE_ARG,
    )  # fmt: skip


def run_generate(
    checkpoint: str, device: str, seed: int | None, prompt: str, stop: list[str], **sampling: Any
) -> None:
    """`scratchlm generate`; `sampling` holds the SamplingConfig fields of the flags."""
    engine = Engine.from_checkpoint(checkpoint, device)
    generate_to_terminal(engine, prompt, SamplingConfig(**sampling), tuple(stop), seed)


def run_chat(
    checkpoint: str, device: str, seed: int | None, system: str | None, **sampling: Any
) -> None:
    """`scratchlm chat`; `sampling` holds the SamplingConfig fields of the flags."""
    chat_repl(Engine.from_checkpoint(checkpoint, device), SamplingConfig(**sampling), system, seed)


GENERATE_COMMAND = Command(
    run=run_generate,
    description="Continue --prompt with the model (KV-cached sampling) and print the text "
    "as it is generated. Stops at the end-of-text token, a --stop string or --max-new-tokens.",
    args=(
        *sampling_args(max_new_tokens=256),
        arg("--prompt", required=True, help="text to continue ('' starts from scratch)"),
        arg("--stop", action="append", default=[], metavar="TEXT", help="stop string"),
    ),
)

CHAT_COMMAND = Command(
    run=run_chat,
    description="A chat REPL: the chat template for a post-trained checkpoint, plain "
    "continuation for a base model. /reset forgets the conversation, /exit quits.",
    args=(
        *sampling_args(max_new_tokens=200),
        arg("--system", default=None, help="a system message opening the conversation"),
    ),
)
