"""Supervised fine-tuning: next-token cross-entropy on the assistant's tokens only.

`scratchlm sft --base CHECKPOINT --data FILE.jsonl` reads conversations (see `scratchlm.data.sft`),
holds out a seeded fraction for evaluation, and trains with the loss

    sum over masked positions of -log p(token) / number of masked positions

so user turns, role tokens and padding teach nothing; the model learns to write the assistant's
words and to end its turn with `<|end|>`.
"""

import logging
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from scratchlm.config import Command, Flag
from scratchlm.data.sft import (
    Example,
    ShuffledBatches,
    collate,
    load_sft_examples,
    shift_labels,
    split_held_out,
)
from scratchlm.posttrain.common import (
    check_training,
    default_optimizer,
    default_schedule,
    default_training,
    policy_stage,
    start_policy,
)
from scratchlm.posttrain.functional import get_response_log_probs, masked_normalize
from scratchlm.runtime import DistInfo, process_group
from scratchlm.tokenizer.chat import chat_tokens
from scratchlm.train.checkpoint import find_checkpoint
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.loop import LoopResult, train_loop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SFTConfig:
    """base: the checkpoint to fine-tune; data: a JSONL of conversations; out_dir: the run dir."""

    base: str = ""
    data: str = ""
    out_dir: str = "runs/sft"
    held_out: float = 0.05
    skip_malformed: bool = False
    optimizer: OptimizerConfig = field(default_factory=default_optimizer(1e-3))
    schedule: ScheduleConfig = field(default_factory=default_schedule(1e-4, warmup_steps=20))
    training: TrainingConfig = field(default_factory=default_training())

    def __post_init__(self) -> None:
        check_training(self.training, self.optimizer, self.schedule)
        if not 0 < self.held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {self.held_out}")


def batch_loss(model: nn.Module, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Summed negative log-likelihood of the masked tokens of a `collate` batch, and their count.

    ids, mask: (B, T + 1). Returns two 0-dim tensors.
    """
    input_ids, labels, response_mask = shift_labels(ids, mask)
    log_probs = get_response_log_probs(model, input_ids, labels)["log_probs"]
    return -masked_normalize(log_probs, response_mask), response_mask.sum()


def held_out_loss(
    model: nn.Module, examples: list[Example], batch_size: int, pad_id: int, device: torch.device
) -> float:
    """Token-weighted mean masked loss over every held-out example."""
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        ids, mask = collate(examples[start : start + batch_size], pad_id)
        nll, tokens = batch_loss(model, ids.to(device), mask.to(device))
        total, count = total + nll.item(), count + tokens.item()
    return total / max(count, 1)


def run_sft(cfg: SFTConfig, resume: str | None = None) -> LoopResult:
    """Fine-tune `cfg.base` on `cfg.data` (data parallel under torchrun)."""
    if not cfg.base or not cfg.data:
        raise ValueError("sft needs a base checkpoint and a data file: --base DIR --data FILE")
    with process_group(cfg.training.device) as info:
        return _run_sft(cfg, resume, info)


def _run_sft(cfg: SFTConfig, resume: str | None, info: DistInfo) -> LoopResult:
    t, device = cfg.training, info.device
    policy = start_policy(find_checkpoint(cfg.base), cfg.out_dir, t, cfg.optimizer, info)
    model, tokenizer = policy.model, policy.tokenizer
    examples = load_sft_examples(cfg.data, tokenizer, model.config.context_length,
                                 cfg.skip_malformed)  # fmt: skip
    train, held = split_held_out(examples, cfg.held_out, t.seed)
    pad_id = chat_tokens(tokenizer).end
    log.info("sft data: %d train / %d held-out conversations", len(train), len(held))
    batches = ShuffledBatches(train, t.batch_size, t.seed, info.rank, info.world_size)

    def loss_fn(module: nn.Module, batch: tuple[list[Example], list[Example]]) -> tuple:
        mine, everyone = batch
        ids, mask = (x.to(device) for x in collate(mine, pad_id))
        nll, response_tokens = batch_loss(module, ids, mask)
        # Per response token of the whole global batch (DDP then averages over the ranks).
        total = sum(sum(m[1:]) for _, m in everyone) / info.world_size
        return nll / max(total, 1.0), {"tokens": ids.numel(), "response_tokens": response_tokens}

    def eval_fn() -> dict[str, float]:
        return {"val_loss": held_out_loss(model, held, t.batch_size, pad_id, device)}

    stage = policy_stage("sft", cfg, policy, batches, loss_fn, eval_fn)
    return train_loop(stage, t, cfg.optimizer, cfg.schedule, info, resume)


COMMAND = Command(
    run=run_sft,
    config=SFTConfig,
    resume=True,
    description='Fine-tune --base on conversations, one per line: {"messages": [{"role": ..., '
    '"content": ...}, ...]} or {"prompt": ..., "response": ...}. The loss covers the '
    "assistant's tokens only. The chat tokens are added and the model grows to match.",
    flags={
        "--base": Flag("base", "checkpoint or run dir to fine-tune", "CHECKPOINT"),
        "--data": Flag("data", "chat records", "FILE.jsonl"),
        "--out": Flag("out_dir", "run directory", "DIR"),
        "--skip-malformed": Flag("skip_malformed", "skip and count bad lines"),
    },
)
