"""`Engine`: a checkpoint's model and tokenizer behind text in, text out (streamed).

`Engine.from_checkpoint(DIR)` reads only what inference needs from a checkpoint directory (or the
newest checkpoint of a run directory): config.json's model section, model.safetensors and the
tokenizer/ subdirectory. Prompts are plain text (continued as is) or a conversation, rendered with
the chat template when the tokenizer has the chat tokens (a post-trained model) and otherwise
joined into plain text for a base model to continue. Decoding stops on the end-of-text token (and,
for chat, on the end-of-turn and other role tokens), on a stop string, or after max_new_tokens.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from scratchlm.inference.text import TextAssembler
from scratchlm.model.generate import SamplingConfig, decode_layout, stream
from scratchlm.model.transformer import TransformerLM
from scratchlm.runtime import pick_device
from scratchlm.tokenizer.chat import CHAT_SPECIAL_TOKENS, has_chat_tokens, render_prompt
from scratchlm.tokenizer.tokenizer import END_OF_TEXT, Tokenizer
from scratchlm.train.checkpoint import find_checkpoint, load_model

log = logging.getLogger(__name__)


class TextStream:
    """The text pieces of one generation, in order; iterate once.

    Afterwards `finish_reason` is "stop" (a stop id or stop string ended it) or "length"
    (max_new_tokens), and `completion_tokens` counts the ids generated, the stop id included.
    """

    def __init__(
        self,
        steps: Iterator[list[int | None]],
        vocab: dict[int, bytes],
        stop_ids: tuple[int, ...],
        stop: tuple[str, ...],
    ) -> None:
        self._steps, self._vocab, self._stop_ids, self._stop = steps, vocab, set(stop_ids), stop
        self.finish_reason: str | None = None
        self.completion_tokens = 0

    def __iter__(self) -> Iterator[str]:
        text = TextAssembler(self._stop)
        self.finish_reason = "length"
        for (token,) in self._steps:
            assert token is not None  # a single row: the stream ends once it stops
            self.completion_tokens += 1
            if token in self._stop_ids:
                self.finish_reason = "stop"
                break
            piece = text.push(self._vocab[token])
            if piece:
                yield piece
            if text.stopped:
                self.finish_reason = "stop"
                break
        tail = text.finish()
        if tail:
            yield tail


@dataclass(frozen=True)
class Completion:
    """A whole generation: its text, why it ended ("stop" or "length") and the token counts."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class Engine:
    """A model and its tokenizer; every method takes ids or text and returns text."""

    def __init__(self, model: TransformerLM, tokenizer: Tokenizer, name: str = "scratchlm") -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.device = next(model.parameters()).device
        self.chat = has_chat_tokens(tokenizer)
        ids = tokenizer.special_ids
        chat_stops = CHAT_SPECIAL_TOKENS if self.chat else (END_OF_TEXT,)
        self.chat_stop_ids = tuple(ids[t] for t in chat_stops if t in ids)
        self.text_stop_ids = tuple(ids[t] for t in (END_OF_TEXT,) if t in ids)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "Engine":
        """Load a checkpoint directory, or the newest checkpoint of a run directory (weights in
        `decode_layout`: this model only generates)."""
        ckpt = find_checkpoint(path)
        tokenizer_dir = ckpt / "tokenizer"
        if not tokenizer_dir.is_dir():
            raise FileNotFoundError(f"checkpoint {ckpt} has no tokenizer/ directory")
        model = decode_layout(load_model(ckpt, pick_device(device)))
        tokenizer = Tokenizer.from_dir(tokenizer_dir)
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ValueError(
                f"checkpoint {ckpt}: tokenizer has {tokenizer.vocab_size} ids but the model only "
                f"{model.config.vocab_size}; the tokenizer does not belong to this model"
            )
        ckpt = ckpt.resolve()
        run = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else None
        engine = cls(model, tokenizer, name=f"{run}/{ckpt.name}" if run else ckpt.name)
        log.info("loaded %s on %s (chat template: %s)", ckpt, engine.device, engine.chat)
        return engine

    @property
    def context_length(self) -> int:
        return self.model.config.context_length

    def encode_text(self, text: str) -> list[int]:
        """Ids of a plain-text prompt; an empty one becomes the end-of-text id (a fresh start)."""
        ids = self.tokenizer.encode(text)
        return ids or list(self.text_stop_ids[:1])

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Ids of a conversation ending where the assistant's reply starts.

        With chat tokens: the chat template. Without (a base model): the contents joined by
        newlines, continued as plain text.
        """
        if self.chat:
            return render_prompt(self.tokenizer, messages)
        return self.encode_text("\n".join(m["content"] for m in messages) + "\n")

    def stream(
        self,
        prompt_ids: list[int],
        sampling: SamplingConfig,
        stop: Sequence[str] = (),
        seed: int | None = None,
        chat: bool = False,
    ) -> TextStream:
        """Generate after prompt_ids, as text pieces; see `TextStream`.

        sampling.stop_ids is extended with the end-of-text id (chat=True: every chat special token).
        stop: strings that end the generation; they are not part of the text.
        """
        stop_ids = self.chat_stop_ids if chat else self.text_stop_ids
        sampling = replace(sampling, stop_ids=tuple(sampling.stop_ids) + stop_ids)
        generator = torch.Generator(device=self.device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        steps = stream(self.model, [prompt_ids], sampling, generator)  # checks the length now
        return TextStream(steps, self.tokenizer.vocab, sampling.stop_ids, tuple(stop))

    def complete(
        self,
        prompt_ids: list[int],
        sampling: SamplingConfig,
        stop: Sequence[str] = (),
        seed: int | None = None,
        chat: bool = False,
    ) -> Completion:
        """The whole generation at once."""
        pieces = self.stream(prompt_ids, sampling, stop, seed, chat)
        text = "".join(pieces)
        return Completion(
            text, pieces.finish_reason or "length", len(prompt_ids), pieces.completion_tokens
        )
