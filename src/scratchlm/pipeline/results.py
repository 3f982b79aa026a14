"""What each speedrun stage leaves: a typed, frozen result, kept as JSON in `stages/<name>.json`.

The marker file is the result's fields (`to_dict`) plus the stage's wall-clock `seconds`; reading
it back (`read_marker`) builds the same dataclass, so the report and the later stages see one type
whether a stage ran now or in an earlier run.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from scratchlm.config import from_dict, to_dict


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """Common to every stage: its wall-clock seconds (set by the runner)."""

    seconds: float = 0.0


@dataclass(frozen=True)
class Corpus(StageResult):
    """The text the tokenizer and pretraining read; `bytes` of both splits."""

    train: str
    valid: str
    bytes: int


@dataclass(frozen=True)
class TrainedTokenizer(StageResult):
    """The BPE tokenizer's directory; `bytes` of training text it was trained on."""

    dir: str
    vocab_size: int
    bytes: int


@dataclass(frozen=True)
class TokenFiles(StageResult):
    """Both splits as .npy token files."""

    train: str
    valid: str
    train_tokens: int
    valid_tokens: int
    train_bytes_per_token: float
    valid_bytes_per_token: float

    @property
    def tokens(self) -> int:
        return self.train_tokens + self.valid_tokens


@dataclass(frozen=True)
class Trained(StageResult):
    """A finished training stage (pretrain, sft, dpo or grpo): where it ended and its last numbers.

    steps: the run's length (fixed by the loop when it was sized by `time_budget`); tokens: the
    tokens it trained on; metrics: the loop's last training and held-out numbers (loss, tok_per_s,
    val_loss, ...); params: the model's parameters (pretraining).
    """

    checkpoint: str
    run_dir: str
    step: int
    steps: int
    tokens: int
    metrics: dict[str, float]
    params: int | None = None
    time_budget: str | None = None


@dataclass(frozen=True)
class TaskFiles(StageResult):
    """The default task's SFT demonstrations and preference pairs (JSONL)."""

    sft: str
    preference: str


@dataclass(frozen=True)
class SelfPairs(StageResult):
    """Preference pairs graded on `checkpoint`'s own answers (JSONL at `path`)."""

    path: str
    pairs: int
    checkpoint: str


@dataclass(frozen=True)
class Answer:
    """One greedy answer to an instruction of the default task, and its score in [0, 1]."""

    prompt: str
    answer: str
    score: float


@dataclass(frozen=True)
class TaskRate:
    """A checkpoint's constraint-satisfaction rate on `n` seeded instructions (and per kind)."""

    checkpoint: str
    seed: int
    n: int
    rate: float
    mean_score: float
    rate_story: float | None = None
    rate_arithmetic: float | None = None
    samples: tuple[Answer, ...] = ()


@dataclass(frozen=True)
class Evaluation(StageResult):
    """Each stage's model graded on the same instructions, and a story from the pretrained one."""

    rates: dict[str, TaskRate]
    base_story: str


@dataclass(frozen=True)
class HarnessTables(StageResult):
    """lm-evaluation-harness results of each stage's model, as markdown tables, and their JSON."""

    tables: dict[str, str]
    files: dict[str, str]


R = TypeVar("R", bound=StageResult)


def write_marker(path: Path, result: StageResult) -> None:
    """Write `result` as JSON to `path` (through a temporary file, so a marker is never partial)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(to_dict(result), indent=2) + "\n")
    os.replace(tmp, path)


def read_marker(path: Path, kind: type[R]) -> R:
    """The `kind` result a finished stage wrote to `path`."""
    try:
        return from_dict(kind, json.loads(path.read_text()))
    except ValueError as exc:  # also json.JSONDecodeError
        raise ValueError(
            f"{path} is not a {kind.__name__} record ({exc}): delete it to rerun that stage"
        ) from None
