"""Supervised fine-tuning: next-token cross-entropy on the assistant's tokens only.

`scratchlm sft --base CHECKPOINT --data FILE.jsonl` reads conversations (see `scratchlm.data.sft`),
holds out a seeded fraction for evaluation, and trains with the loss

    sum over masked positions of -log p(token) / number of masked positions

so user turns, role tokens and padding teach nothing; the model learns to write the assistant's
words and to end its turn with `<|end|>`.
"""

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from scratchlm.data.sft import Example, collate, load_sft_examples, shuffled_batches, split_held_out
from scratchlm.posttrain.logprobs import masked_logprobs, token_logprobs
from scratchlm.posttrain.loop import (
    LoopConfig,
    default_optimizer,
    default_schedule,
    setup_stage,
    train_loop,
    write_run_dir,
)
from scratchlm.tokenizer.chat import chat_tokens
from scratchlm.train.pretrain import OptimizerConfig, ScheduleConfig

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
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        if not 0 < self.held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {self.held_out}")


def masked_cross_entropy(logits: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Mean of -log p(target) over positions where mask is 1.

    logits: (B, T, V); targets, mask: (B, T). Returns a scalar (0 when the mask is empty).
    """
    mask = mask.to(torch.float32)
    return -(token_logprobs(logits, targets) * mask).sum() / mask.sum().clamp(min=1.0)


def sft_loss(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """`masked_cross_entropy` of the model's next-token predictions. ids, mask: (B, T)."""
    return masked_cross_entropy(model(ids[:, :-1]), ids[:, 1:], mask[:, 1:])


def held_out_loss(
    model: nn.Module, examples: list[Example], batch_size: int, pad_id: int, device: torch.device
) -> float:
    """Token-weighted mean masked loss over every held-out example."""
    total, count = 0.0, 0.0
    for start in range(0, len(examples), batch_size):
        ids, mask = collate(examples[start : start + batch_size], pad_id)
        ids, mask = ids.to(device), mask.to(device)
        total -= masked_logprobs(model, ids, mask).sum().item()
        count += mask[:, 1:].sum().item()
    return total / max(count, 1.0)


def run_sft(cfg: SFTConfig, resume: str | None = None) -> dict[str, Any]:
    """Fine-tune `cfg.base` on `cfg.data`; returns a summary (last loss, held-out loss, paths)."""
    if not cfg.base or not cfg.data:
        raise ValueError("sft needs a base checkpoint and a data file: --base DIR --data FILE")
    setup = setup_stage("sft", cfg, cfg.base, cfg.out_dir, resume)
    model, device, loop = setup.model, setup.device, cfg.loop
    context = model.config.context_length
    examples = load_sft_examples(cfg.data, setup.tokenizer, context, cfg.skip_malformed)
    train, held = split_held_out(examples, cfg.held_out, loop.seed)
    pad_id = chat_tokens(setup.tokenizer).end
    log.info("sft data: %d train / %d held-out conversations", len(train), len(held))
    generator = torch.Generator().manual_seed(loop.seed)
    batches = shuffled_batches(train, loop.batch_size, generator)
    batches = itertools.islice(batches, setup.start, None)  # resume: skip the batches already used

    def loss_fn(step: int) -> tuple[Tensor, dict[str, float]]:
        ids, mask = collate(next(batches), pad_id)
        ids, mask = ids.to(device), mask.to(device)
        return sft_loss(model, ids, mask), {"tokens": mask[:, 1:].sum().item()}

    def eval_fn() -> dict[str, float]:
        return {"val_loss": held_out_loss(model, held, loop.batch_size, pad_id, device)}

    write_run_dir(setup)  # the data has been read: now the run directory
    return train_loop(setup, loop, cfg.optimizer, cfg.schedule, loss_fn, eval_fn)
