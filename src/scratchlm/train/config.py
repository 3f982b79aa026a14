"""What every training stage shares: the optimizer, the schedule, the loop's settings.

Pretraining, SFT, DPO and GRPO each have a config with the sections `optimizer`, `schedule` and
`training` of these types, so `training.steps=300` or `optimizer.lr=1e-4` mean the same thing on
every command. `build_optimizer` and `learning_rate` turn the first two into objects and numbers.
"""

from dataclasses import dataclass
from typing import Literal

import torch

from scratchlm.optimizers import (
    SGD,
    AdamW,
    Muon,
    is_embedding,
    muon_param_groups,
    param_groups,
)
from scratchlm.schedulers import learning_rate_constant, learning_rate_cosine, learning_rate_wsd
from scratchlm.train.budget import parse_duration


@dataclass(frozen=True)
class OptimizerConfig:
    """lr is the peak learning rate of the schedule; muon_lr applies to Muon's hidden matrices.

    embedding_lr_scale multiplies lr for the embedding tables (the parameters whose name contains
    "embed", `scratchlm.optimizers.is_embedding`) under adamw and muon: an embedding row starts at
    std 1, a hidden matrix at std ~0.1, so at the same lr the rows move ten times less relative to
    their size. 1 keeps one lr for every AdamW-side parameter, in the same groups as without it.
    """

    name: Literal["adamw", "sgd", "muon"] = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    muon_lr: float = 0.02
    grad_clip: float | None = 1.0
    embedding_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optimizer.lr must be > 0, got {self.lr}")
        if self.embedding_lr_scale <= 0:
            raise ValueError(
                f"optimizer.embedding_lr_scale must be > 0, got {self.embedding_lr_scale}"
            )
        if self.name == "sgd" and self.embedding_lr_scale != 1:
            raise ValueError(
                "optimizer.embedding_lr_scale applies to adamw and muon; sgd takes one lr "
                "(drop the setting or pick optimizer.name=adamw)"
            )


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning rate per step: warmup, then cosine or WSD decay to min_lr, or constant.

    For WSD the last decay_fraction of the steps decay to min_lr.
    """

    name: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_steps: int = 100
    min_lr: float = 1e-4
    decay_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.warmup_steps < 0:
            raise ValueError(f"schedule.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0 < self.decay_fraction <= 1:
            raise ValueError("schedule.decay_fraction must be in (0, 1]")


@dataclass(frozen=True)
class TrainingConfig:
    """The step loop (`scratchlm.train.loop`). Intervals count optimizer steps.

    One step consumes batch_size sequences (per rank and micro-step) x grad_accum micro-steps x
    the number of ranks. stop_after ends the run early, with a checkpoint, at that step (e.g. to fit
    a job's time slot); the schedule still follows `steps`. time_budget (`90s`, `10m`, `1h`, or
    seconds) replaces `steps`: the run measures its first updates and sizes itself to the budget
    (`scratchlm.train.budget`). dtype is the forward pass's autocast dtype
    (`scratchlm.runtime.autocast_dtype`): auto (bf16 on CUDA, else fp32), fastest (bf16 also on a
    CPU with bf16 instructions), or a dtype by name.
    """

    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    dtype: Literal["auto", "fastest", "float32", "bfloat16", "float16"] = "auto"
    compile: bool = False
    parallel: Literal["ddp", "fsdp"] = "ddp"
    checkpoint_interval: int = 500
    keep_last: int = 2
    stop_after: int | None = None
    eval_interval: int = 200
    sample_interval: int = 500
    log_interval: int = 10
    time_budget: str | None = None

    def __post_init__(self) -> None:
        names = ("steps", "batch_size", "grad_accum", "checkpoint_interval", "keep_last",
                 "eval_interval", "sample_interval", "log_interval")  # fmt: skip
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.steps:
            raise ValueError(
                f"training.stop_after must be between 1 and training.steps ({self.steps}), or "
                f"null to run every step; got {self.stop_after}"
            )
        if self.time_budget is not None:
            parse_duration(self.time_budget)


def check_schedule(
    opt: OptimizerConfig, sched: ScheduleConfig, steps: int, sized_by_time: bool = False
) -> None:
    """Refuse a schedule that cannot run over `steps` updates at `opt.lr`.

    A run sized by its time budget checks its warmup once it knows its step count.
    """
    if not 0 <= sched.min_lr <= opt.lr:
        raise ValueError(
            f"schedule.min_lr ({sched.min_lr}) must be between 0 and optimizer.lr ({opt.lr})"
        )
    if sched.name == "cosine" and sched.warmup_steps >= steps and not sized_by_time:
        raise ValueError(
            f"schedule.warmup_steps ({sched.warmup_steps}) must be < training.steps ({steps})"
        )


def learning_rate(step: int, total: int, opt: OptimizerConfig, sched: ScheduleConfig) -> float:
    """The schedule's learning rate before update `step` (0-based) of `total`."""
    if sched.name == "cosine":
        return learning_rate_cosine(step, opt.lr, sched.min_lr, sched.warmup_steps, total)
    if sched.name == "wsd":
        decay = wsd_decay_steps(total, sched)
        warmup = min(sched.warmup_steps, total - decay)
        stable = total - decay - warmup
        return learning_rate_wsd(step, opt.lr, sched.min_lr, warmup, stable, decay)
    return learning_rate_constant(step, opt.lr, min(sched.warmup_steps, total))


def wsd_decay_steps(total: int, sched: ScheduleConfig) -> int:
    """The updates of `total` that a WSD schedule spends decaying: its last share, at least 1."""
    return max(1, round(total * sched.decay_fraction))


def plateau_end(total: int, sched: ScheduleConfig) -> int:
    """The updates before this one get the same learning rate from `learning_rate` for any total
    that keeps them before it: WSD's warmup and plateau (the decay starts here), every update of a
    constant schedule (`total`), none of a cosine's after its warmup (0). A run sized by its time
    budget may change its total while it has not reached this update (`scratchlm.train.budget`).
    """
    if sched.name == "cosine":
        return 0
    if sched.name == "wsd":
        return total - wsd_decay_steps(total, sched)
    return total


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW or Muon, decaying only matrices (`scratchlm.optimizers.param_groups`), or SGD.

    With embedding_lr_scale != 1 the embedding tables get a last group of their own (no decay,
    lr and `lr_scale` scaled, which `set_learning_rate` keeps through the schedule).
    """
    named = list(model.named_parameters())
    if cfg.name == "sgd":
        return SGD([p for _, p in named], lr=cfg.lr)
    embeddings: list[tuple[str, torch.Tensor]] = []
    if cfg.embedding_lr_scale != 1:
        embeddings = [(n, p) for n, p in named if p.requires_grad and is_embedding(n)]
        named = [(n, p) for n, p in named if not is_embedding(n)]
    muon = cfg.name == "muon"
    groups: list[dict] = []
    if not embeddings or any(p.requires_grad for _, p in named):  # else only the embeddings train
        groups = (muon_param_groups if muon else param_groups)(named, cfg.weight_decay)
    if embeddings:
        scale = cfg.embedding_lr_scale
        group = {"params": [p for _, p in embeddings], "weight_decay": 0.0,
                 "lr": cfg.lr * scale, "lr_scale": scale}  # fmt: skip
        groups.append({**group, "use_muon": False} if muon else group)
    if muon:
        return Muon(groups, lr=cfg.lr, muon_lr=cfg.muon_lr, betas=cfg.betas, eps=cfg.eps,
                    weight_decay=cfg.weight_decay)  # fmt: skip
    return AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
