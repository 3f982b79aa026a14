"""What SFT, DPO and GRPO share: the policy in the chat template, and their default settings.

`load_chat_model` reads a checkpoint directory (a command resolves a run directory to its newest
checkpoint once, with `find_checkpoint`), adds the chat tokens to its tokenizer and grows the model
to match (`resize_token_embeddings`). `start_policy` does that on this process's device, wraps the
model for data parallelism under torchrun and builds its optimizer; the stage then hands everything
to `scratchlm.train.loop`, the loop pretraining runs too. Checkpoints carry the chat tokenizer, so
`scratchlm chat`, `serve` and the next post-training stage read them like any other.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scratchlm.config import to_dict
from scratchlm.folders import check_creatable
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain.vocab import resize_token_embeddings
from scratchlm.runtime import DistInfo, keep_freed_memory, seed_everything
from scratchlm.tokenizer.chat import add_chat_tokens
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainingConfig,
    build_optimizer,
    check_schedule,
)
from scratchlm.train.distributed import wrap_model
from scratchlm.train.loop import BatchSource, EvalFn, LossFn, Stage

# Post-training runs are short: fewer steps, smaller batches, one checkpoint kept.
POSTTRAIN_TRAINING = TrainingConfig(
    steps=200, batch_size=16, eval_interval=50, log_interval=10, checkpoint_interval=100,
    keep_last=1,
)  # fmt: skip


def default_training(**changes: int) -> Callable[[], TrainingConfig]:
    """A factory for `POSTTRAIN_TRAINING` with `changes` applied."""
    return lambda: replace(POSTTRAIN_TRAINING, **changes)


def default_optimizer(lr: float) -> Callable[[], OptimizerConfig]:
    """AdamW at `lr` without weight decay: fine-tuning should not pull weights towards zero."""
    return lambda: OptimizerConfig(name="adamw", lr=lr, weight_decay=0.0)


def default_schedule(min_lr: float, warmup_steps: int = 10) -> Callable[[], ScheduleConfig]:
    """Cosine from the optimizer's lr down to `min_lr` after a short warmup."""
    return lambda: ScheduleConfig(name="cosine", warmup_steps=warmup_steps, min_lr=min_lr)


def check_training(training: TrainingConfig, opt: OptimizerConfig, sched: ScheduleConfig) -> None:
    """Refuse settings post-training cannot run: a bad schedule, or FSDP."""
    check_schedule(opt, sched, training.steps, training.time_budget is not None)
    if training.parallel != "ddp":
        raise ValueError("post-training runs with training.parallel=ddp only")


@dataclass(frozen=True)
class Policy:
    """The model being trained (raw and wrapped), its chat tokenizer and its optimizer."""

    model: TransformerLM
    wrapped: nn.Module
    tokenizer: Tokenizer
    optimizer: torch.optim.Optimizer


def policy_stage(
    name: str,
    cfg: Any,
    policy: Policy,
    batches: BatchSource,
    loss_fn: LossFn,
    eval_fn: EvalFn,
) -> Stage:
    """The `Stage` of a post-training run of `policy` into `cfg.out_dir`.

    Its config.json (and every checkpoint's) holds the model's config and the stage's.
    """
    model = policy.model
    return Stage(
        name=name,
        run_dir=Path(cfg.out_dir),
        config={"model": model.config.to_dict(), "stage": name, **to_dict(cfg)},
        model=model,
        optimizer=policy.optimizer,
        batches=batches,
        loss_fn=loss_fn,
        wrapped=policy.wrapped,
        eval_fn=eval_fn,
        tokenizer=policy.tokenizer,
        flops_per_token=model.config.flops_per_token(),
    )


def load_chat_model(path: Path, device: torch.device) -> tuple[TransformerLM, Tokenizer]:
    """A checkpoint directory's model and tokenizer, with the chat tokens added and the model grown
    to fit."""
    if not (path / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"checkpoint {path} has no tokenizer/: pretrain with data.tokenizer_dir set"
        )
    model = ckpt.load_model(path, device).train()
    tokenizer = add_chat_tokens(Tokenizer.from_dir(path / "tokenizer"))
    if tokenizer.vocab_size > model.config.vocab_size:
        resize_token_embeddings(model, tokenizer.vocab_size)
    return model, tokenizer


def start_policy(
    source: Path, out_dir: str, training: TrainingConfig, opt: OptimizerConfig, info: DistInfo
) -> Policy:
    """Load `source` in the chat template on this rank's device, wrap it, build its optimizer.

    Every rank loads the same weights; under torchrun DDP keeps them equal from there on.
    """
    check_creatable(out_dir)  # fail now; the directory comes once the inputs have loaded
    seed_everything(training.seed)
    keep_freed_memory(info.device)  # on a CPU: no fresh zero-filled pages for each step
    model, tokenizer = load_chat_model(source, info.device)
    seed_everything(training.seed, info.rank)
    wrapped = wrap_model(model, "ddp", info.device, info.world_size, training.compile)
    return Policy(model, wrapped, tokenizer, build_optimizer(model, opt))


def load_reference(path: Path, policy: TransformerLM, device: torch.device) -> TransformerLM:
    """A frozen model of the policy's shape (DPO's reference, GRPO's KL anchor)."""
    reference, _ = load_chat_model(path, device)
    check_same_shape(policy, reference)
    return reference.eval().requires_grad_(False)


def check_same_shape(policy: TransformerLM, reference: TransformerLM) -> None:
    """Refuse a reference model whose config differs from the policy's (names the first field)."""
    mine, theirs = policy.config.to_dict(), reference.config.to_dict()
    for key in mine:
        if mine[key] != theirs[key]:
            raise ValueError(
                f"policy and reference differ in model.{key} ({mine[key]!r} vs {theirs[key]!r}); "
                "the reference must be the same model the policy started from"
            )
