"""Direct Preference Optimisation (Rafailov et al., 2023) against a frozen reference model.

Each record is a prompt with a chosen (w) and a rejected (l) response. With summed log-probabilities
over the response tokens only, the loss is

    -log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l)))

so it is log 2 when the policy equals the reference and falls as the policy raises the chosen
response relative to the rejected one more than the reference does.
"""

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scratchlm.data.preference import collate_pairs, load_preference_pairs
from scratchlm.data.sft import shuffled_batches, split_held_out
from scratchlm.posttrain.logprobs import masked_logprobs
from scratchlm.posttrain.loop import (
    LoopConfig,
    check_same_shape,
    default_optimizer,
    default_schedule,
    load_chat_model,
    setup_stage,
    train_loop,
    write_run_dir,
)
from scratchlm.tokenizer.chat import chat_tokens
from scratchlm.train.pretrain import OptimizerConfig, ScheduleConfig

log = logging.getLogger(__name__)


def dpo_loss(pi_w: Tensor, pi_l: Tensor, ref_w: Tensor, ref_l: Tensor, beta: float) -> Tensor:
    """Mean DPO loss. Each input: (B,) summed log-probs of the chosen / rejected response."""
    return -F.logsigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).mean()


def dpo_stats(
    pi_w: Tensor, pi_l: Tensor, ref_w: Tensor, ref_l: Tensor, beta: float
) -> dict[str, float]:
    """Implicit rewards beta * (pi - ref): their mean margin and how often chosen beats rejected."""
    reward_w = beta * (pi_w - ref_w)
    reward_l = beta * (pi_l - ref_l)
    return {
        "reward_margin": (reward_w - reward_l).mean().item(),
        "accuracy": (reward_w > reward_l).float().mean().item(),
    }


@dataclass(frozen=True)
class DPOConfig:
    """policy: the checkpoint to train (usually the SFT output); data: preference JSONL.

    The reference is a frozen copy of the starting policy unless `reference` names another
    checkpoint, which must have the same model shape. nll_coef > 0 adds that multiple of the
    chosen responses' mean per-token negative log-likelihood to the loss, which keeps DPO from
    lowering the probability of the chosen answers along with the rejected ones.
    """

    policy: str = ""
    data: str = ""
    out_dir: str = "runs/dpo"
    reference: str | None = None
    beta: float = 0.1
    nll_coef: float = 1.0
    held_out: float = 0.05
    skip_malformed: bool = False
    optimizer: OptimizerConfig = field(default_factory=default_optimizer(1e-4))
    schedule: ScheduleConfig = field(default_factory=default_schedule(1e-5))
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(batch_size=8))

    def __post_init__(self) -> None:
        if self.beta <= 0 or self.nll_coef < 0:
            raise ValueError(
                f"beta must be > 0 and nll_coef >= 0, got {self.beta}, {self.nll_coef}"
            )
        if not 0 < self.held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {self.held_out}")


def pair_logprobs(model: nn.Module, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Summed response log-probs of a `collate_pairs` batch: (chosen (B,), rejected (B,))."""
    summed = masked_logprobs(model, ids, mask).sum(dim=1)
    half = ids.shape[0] // 2
    return summed[:half], summed[half:]


def run_dpo(cfg: DPOConfig, resume: str | None = None) -> dict[str, Any]:
    """Train `cfg.policy` on preference pairs; returns a summary (loss, margin, accuracy, paths)."""
    if not cfg.policy or not cfg.data:
        raise ValueError("dpo needs a policy checkpoint and a data file: --policy DIR --data FILE")
    setup = setup_stage("dpo", cfg, cfg.policy, cfg.out_dir, resume)
    model, device, loop = setup.model, setup.device, cfg.loop
    reference, _ = load_chat_model(cfg.reference or cfg.policy, device)
    check_same_shape(model, reference)
    reference.eval().requires_grad_(False)
    context = model.config.context_length
    pairs = load_preference_pairs(cfg.data, setup.tokenizer, context, cfg.skip_malformed)
    train, held = split_held_out(pairs, cfg.held_out, loop.seed)
    pad_id = chat_tokens(setup.tokenizer).end
    log.info("dpo data: %d train / %d held-out pairs, beta %g", len(train), len(held), cfg.beta)
    generator = torch.Generator().manual_seed(loop.seed)
    batches = shuffled_batches(train, loop.batch_size, generator)
    batches = itertools.islice(batches, setup.start, None)  # resume: skip the batches already used

    def scores(batch: list) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Summed log-probs (policy chosen, rejected, reference chosen, rejected), chosen tokens."""
        ids, mask = (t.to(device) for t in collate_pairs(batch, pad_id))
        with torch.no_grad():
            ref_w, ref_l = pair_logprobs(reference, ids, mask)
        pi_w, pi_l = pair_logprobs(model, ids, mask)
        return pi_w, pi_l, ref_w, ref_l, mask[: len(batch), 1:].sum()

    def loss_fn(step: int) -> tuple[Tensor, dict[str, float]]:
        *logps, chosen_tokens = scores(next(batches))
        loss = dpo_loss(*logps, cfg.beta)
        if cfg.nll_coef > 0:
            loss = loss - cfg.nll_coef * logps[0].sum() / chosen_tokens
        return loss, dpo_stats(*logps, cfg.beta)

    def eval_fn() -> dict[str, float]:
        size = loop.batch_size
        logps = [scores(held[i : i + size]) for i in range(0, len(held), size)]
        pi_w, pi_l, ref_w, ref_l = (
            torch.cat(parts) for parts in list(zip(*logps, strict=True))[:4]
        )
        stats = dpo_stats(pi_w, pi_l, ref_w, ref_l, cfg.beta)
        return {
            "val_loss": dpo_loss(pi_w, pi_l, ref_w, ref_l, cfg.beta).item(),
            "val_reward_margin": stats["reward_margin"],
            "val_accuracy": stats["accuracy"],
        }

    write_run_dir(setup)  # the data has been read: now the run directory
    return train_loop(setup, loop, cfg.optimizer, cfg.schedule, loss_fn, eval_fn)
