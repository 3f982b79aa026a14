"""Conversations for supervised fine-tuning: JSONL records -> (ids, loss mask) -> padded batches.

One record per line, either `{"messages": [{"role": ..., "content": ...}, ...]}` or the short form
`{"prompt": ..., "response": ...}` (one user turn, one assistant turn). A malformed line is an error
naming its line number, unless `skip_malformed` is set: then it is skipped and counted. Each record
renders through the chat template (`scratchlm.tokenizer.chat`); a conversation longer than
`context_length + 1` tokens is cut at the end, with one warning that counts them.

Batches are padded, not packed: each row holds one conversation, so no token ever attends across
two conversations; padding positions have loss mask 0.
"""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scratchlm.tokenizer.chat import render_conversation
from scratchlm.tokenizer.tokenizer import Tokenizer

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]  # ids and loss mask of one rendered conversation


def read_jsonl(
    path: str | Path, parse: Callable[[Any], Any], skip_malformed: bool = False
) -> tuple[list[Any], int]:
    """Records of a JSONL file, each converted by `parse` (which raises ValueError on bad input).

    Blank lines are ignored. Returns (records, number skipped); skipping happens only with
    `skip_malformed`, otherwise the first bad line raises ValueError with its line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    records, skipped = [], 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                records.append(parse(json.loads(_utf8(raw))))
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                if not skip_malformed:
                    raise ValueError(
                        f"{path}:{number}: {exc} (pass --skip-malformed to skip bad lines)"
                    ) from None
                skipped += 1
    if skipped:
        log.warning("skipped %d malformed line(s) in %s", skipped, path)
    if not records:
        raise ValueError(f"{path}: no usable records")
    return records, skipped


def _utf8(raw: bytes) -> str:
    """One line of a JSONL file as text; a line that is not UTF-8 is a ValueError."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
            "convert the file to UTF-8"
        ) from None


def parse_conversation(record: Any) -> list[dict[str, str]]:
    """A `{"messages": [...]}` or `{"prompt", "response"}` record as a list of messages."""
    if not isinstance(record, dict):
        raise ValueError("each line must be a JSON object")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not any(
            isinstance(m, dict) and m.get("role") == "assistant" for m in messages
        ):
            raise ValueError("'messages' must be a list with at least one assistant message")
        return messages
    if isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str):
        return [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["response"]},
        ]
    raise ValueError('expected {"messages": [...]} or {"prompt": str, "response": str}')


def truncate(examples: list[Example], max_tokens: int, what: str) -> list[Example]:
    """Cut each example to `max_tokens` ids (and mask), warning once with how many were cut."""
    cut = sum(len(ids) > max_tokens for ids, _ in examples)
    if cut:
        n = len(examples)
        log.warning("%d of %d %s longer than %d tokens: truncated", cut, n, what, max_tokens)
    return [(ids[:max_tokens], mask[:max_tokens]) for ids, mask in examples]


def load_sft_examples(
    path: str | Path, tokenizer: Tokenizer, context_length: int, skip_malformed: bool = False
) -> list[Example]:
    """Rendered conversations from a JSONL file, each at most `context_length + 1` tokens.

    Conversations are checked against the tokenizer as they are read, so a bad message (unknown
    role, non-string content) also reports its line number.
    """

    def parse(record: Any) -> Example:
        return render_conversation(tokenizer, parse_conversation(record))

    examples, _ = read_jsonl(path, parse, skip_malformed)
    examples = truncate(examples, context_length + 1, "conversations")
    return [(ids, mask) for ids, mask in examples if sum(mask[1:]) > 0]


def collate(examples: list[Example], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest example: ids (B, T) int64 and loss mask (B, T) float32."""
    width = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.int64)
    mask = torch.zeros((len(examples), width), dtype=torch.float32)
    for row, (seq, m) in enumerate(examples):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.int64)
        mask[row, : len(m)] = torch.tensor(m, dtype=torch.float32)
    return ids, mask


def shift_labels(ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """A padded batch (B, T + 1) as the model reads it: input_ids, labels (B, T), response_mask.

    The model reads `ids[:, :-1]` and predicts `ids[:, 1:]`; a mask value belongs to the token it
    marks, so `mask[:, 1:]` (as bool) says which labels count.
    """
    return ids[:, :-1], ids[:, 1:], mask[:, 1:].bool()


class ShuffledBatches:
    """Endless batches of `items`, a fresh seeded permutation every pass, resumable.

    Each `next_batch()` takes the next `world_size * batch_size` items of the permutation (the
    global batch, the same on every rank) and returns this rank's `batch_size` of them together
    with the whole global batch, so a loss can be normalised over the global batch. The state is
    the number of global batches drawn; loading it replays the permutations up to there.
    """

    def __init__(
        self, items: list[Any], batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if world_size * batch_size > len(items):
            raise ValueError(
                f"a global batch of {world_size} x {batch_size} needs at least "
                f"{world_size * batch_size} records, got {len(items)}: lower training.batch_size"
            )
        self.items, self.batch_size, self.seed = items, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.drawn = 0
        self._restart()

    def _restart(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        self.order: list[int] = []

    def next_batch(self) -> tuple[list[Any], list[Any]]:
        """(this rank's batch_size items, the global batch)."""
        size = self.world_size * self.batch_size
        if len(self.order) < size:  # a new pass; the rest of the old one is dropped
            self.order = torch.randperm(len(self.items), generator=self.generator).tolist()
        picked, self.order = self.order[:size], self.order[size:]
        self.drawn += 1
        everyone = [self.items[i] for i in picked]
        mine = everyone[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
        return mine, everyone

    def state_dict(self) -> dict[str, int]:
        return {"drawn": self.drawn}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._restart()
        self.drawn = 0
        for _ in range(state["drawn"]):
            self.next_batch()


def split_held_out(examples: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded (train, held-out) split; the held-out part has at least one record."""
    if len(examples) < 2:
        raise ValueError("need at least 2 records to hold some out for evaluation")
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    n_held = min(len(examples) - 1, max(1, round(fraction * len(examples))))
    held = [examples[i] for i in order[:n_held]]
    return [examples[i] for i in order[n_held:]], held
