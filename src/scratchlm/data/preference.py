"""Preference pairs for DPO: `{"prompt", "chosen", "rejected"}` JSONL -> paired, masked batches.

Each response renders as the assistant turn after the prompt's user turn, through the chat template,
so the loss mask covers the response tokens and its `<|end|>` only. A pair longer than
`context_length + 1` tokens is cut at the end (with one warning). Chosen and rejected rows go into
one padded batch, chosen first, so one forward pass scores both.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from scratchlm.data.sft import Example, collate, read_jsonl, truncate
from scratchlm.tokenizer.chat import render_conversation
from scratchlm.tokenizer.tokenizer import Tokenizer


@dataclass(frozen=True)
class PreferenceRecord:
    prompt: str
    chosen: str
    rejected: str


def parse_preference(record: Any) -> PreferenceRecord:
    """A `{"prompt": str, "chosen": str, "rejected": str}` record."""
    keys = ("prompt", "chosen", "rejected")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in keys):
        raise ValueError('expected {"prompt": str, "chosen": str, "rejected": str}')
    return PreferenceRecord(record["prompt"], record["chosen"], record["rejected"])


def render_pair(tokenizer: Tokenizer, record: PreferenceRecord) -> tuple[Example, Example]:
    """(chosen, rejected) as rendered conversations with masks on the response tokens."""
    user = {"role": "user", "content": record.prompt}
    return (
        render_conversation(tokenizer, [user, {"role": "assistant", "content": record.chosen}]),
        render_conversation(tokenizer, [user, {"role": "assistant", "content": record.rejected}]),
    )


def load_preference_pairs(
    path: str | Path, tokenizer: Tokenizer, context_length: int, skip_malformed: bool = False
) -> list[tuple[Example, Example]]:
    """Rendered (chosen, rejected) pairs from a JSONL file, each side at most context + 1 tokens."""

    def parse(record: Any) -> tuple[Example, Example]:
        return render_pair(tokenizer, parse_preference(record))

    pairs, _ = read_jsonl(path, parse, skip_malformed)
    chosen = truncate([c for c, _ in pairs], context_length + 1, "chosen responses")
    rejected = truncate([r for _, r in pairs], context_length + 1, "rejected responses")
    return [
        (c, r) for c, r in zip(chosen, rejected, strict=True) if sum(c[1][1:]) and sum(r[1][1:])
    ]


def collate_pairs(pairs: list[tuple[Example, Example]], pad_id: int) -> tuple[Tensor, Tensor]:
    """ids and mask (2B, T): rows 0..B-1 are the chosen responses, rows B..2B-1 the rejected."""
    return collate([c for c, _ in pairs] + [r for _, r in pairs], pad_id)
