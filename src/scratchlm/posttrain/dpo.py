"""Direct Preference Optimisation (Rafailov et al., 2023) against a frozen reference model.

Each record is a prompt with a chosen (w) and a rejected (l) response. With summed log-probabilities
over the response tokens only, the loss is

    -log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l)))

so it is log 2 when the policy equals the reference and falls as the policy raises the chosen
response relative to the rejected one more than the reference does.
"""

import logging
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from scratchlm.config import Command, Flag
from scratchlm.data.preference import collate_pairs, load_preference_pairs
from scratchlm.data.sft import ShuffledBatches, split_held_out
from scratchlm.posttrain.common import (
    check_training,
    default_optimizer,
    default_schedule,
    default_training,
    load_reference,
    policy_stage,
    start_policy,
)
from scratchlm.posttrain.functional import dpo_loss, pair_log_probs
from scratchlm.runtime import DistInfo, process_group
from scratchlm.tokenizer.chat import chat_tokens
from scratchlm.train.checkpoint import find_checkpoint
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.loop import LoopResult, train_loop

log = logging.getLogger(__name__)


def dpo_stats(
    pi_w: Tensor, pi_l: Tensor, ref_w: Tensor, ref_l: Tensor, beta: float
) -> dict[str, Tensor]:
    """Implicit rewards beta * (pi - ref): their mean margin and how often chosen beats rejected."""
    reward_w = beta * (pi_w - ref_w)
    reward_l = beta * (pi_l - ref_l)
    return {
        "reward_margin": (reward_w - reward_l).detach().mean(),
        "accuracy": (reward_w > reward_l).float().mean(),
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
    training: TrainingConfig = field(default_factory=default_training(batch_size=8))

    def __post_init__(self) -> None:
        check_training(self.training, self.optimizer, self.schedule)
        if self.beta <= 0 or self.nll_coef < 0:
            raise ValueError(
                f"beta must be > 0 and nll_coef >= 0, got {self.beta}, {self.nll_coef}"
            )
        if not 0 < self.held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {self.held_out}")


def run_dpo(cfg: DPOConfig, resume: str | None = None) -> LoopResult:
    """Train `cfg.policy` on preference pairs (data parallel under torchrun)."""
    if not cfg.policy or not cfg.data:
        raise ValueError("dpo needs a policy checkpoint and a data file: --policy DIR --data FILE")
    with process_group(cfg.training.device) as info:
        return _run_dpo(cfg, resume, info)


def _run_dpo(cfg: DPOConfig, resume: str | None, info: DistInfo) -> LoopResult:
    t, device = cfg.training, info.device
    source = find_checkpoint(cfg.policy)
    policy = start_policy(source, cfg.out_dir, t, cfg.optimizer, info)
    model, tokenizer = policy.model, policy.tokenizer
    reference_path = find_checkpoint(cfg.reference) if cfg.reference else source
    reference = load_reference(reference_path, model, device)
    context = model.config.context_length
    pairs = load_preference_pairs(cfg.data, tokenizer, context, cfg.skip_malformed)
    train, held = split_held_out(pairs, cfg.held_out, t.seed)
    pad_id = chat_tokens(tokenizer).end
    log.info("dpo data: %d train / %d held-out pairs, beta %g", len(train), len(held), cfg.beta)
    batches = ShuffledBatches(train, t.batch_size, t.seed, info.rank, info.world_size)

    def scores(module: nn.Module, batch: list) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Summed log-probs (policy chosen, rejected, reference chosen, rejected), chosen tokens."""
        ids, mask = (x.to(device) for x in collate_pairs(batch, pad_id))
        with torch.no_grad():
            ref_w, ref_l = pair_log_probs(reference, ids, mask)
        pi_w, pi_l = pair_log_probs(module, ids, mask)
        return pi_w, pi_l, ref_w, ref_l, mask[: len(batch), 1:].sum()

    def loss_fn(module: nn.Module, batch: tuple[list, list]) -> tuple[Tensor, dict]:
        mine, everyone = batch
        *logps, _ = scores(module, mine)
        loss = dpo_loss(*logps, cfg.beta)
        if cfg.nll_coef > 0:  # per chosen token of the global batch (DDP averages over ranks)
            chosen_tokens = sum(sum(chosen[1][1:]) for chosen, _ in everyone) / info.world_size
            loss = loss - cfg.nll_coef * logps[0].sum() / chosen_tokens
        width = max(max(len(w[0]), len(r[0])) for w, r in mine)
        return loss, {"tokens": 2 * len(mine) * width, **dpo_stats(*logps, cfg.beta)}

    def eval_fn() -> dict[str, float]:
        size = t.batch_size
        logps = [scores(model, held[i : i + size]) for i in range(0, len(held), size)]
        pi_w, pi_l, ref_w, ref_l = (
            torch.cat(parts) for parts in list(zip(*logps, strict=True))[:4]
        )
        stats = dpo_stats(pi_w, pi_l, ref_w, ref_l, cfg.beta)
        return {
            "val_loss": dpo_loss(pi_w, pi_l, ref_w, ref_l, cfg.beta).item(),
            "val_reward_margin": stats["reward_margin"].item(),
            "val_accuracy": stats["accuracy"].item(),
        }

    stage = policy_stage("dpo", cfg, policy, batches, loss_fn, eval_fn)
    return train_loop(stage, t, cfg.optimizer, cfg.schedule, info, resume)


COMMAND = Command(
    run=run_dpo,
    config=DPOConfig,
    resume=True,
    description='Train --policy on preference pairs, one per line: {"prompt": ..., "chosen": '
    '..., "rejected": ...}, against a frozen reference (the starting policy unless '
    "--reference is given).",
    flags={
        "--policy": Flag("policy", "checkpoint to train, usually the SFT output", "CHECKPOINT"),
        "--data": Flag("data", "preference records", "FILE.jsonl"),
        "--reference": Flag("reference", "reference checkpoint, same model shape", "CHECKPOINT"),
        "--out": Flag("out_dir", "run directory", "DIR"),
        "--skip-malformed": Flag("skip_malformed", "skip and count bad lines"),
    },
)
