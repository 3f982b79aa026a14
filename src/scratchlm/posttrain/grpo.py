"""Group Relative Policy Optimisation: sample a group per prompt, score, push up the better ones.

For each prompt the policy samples `group_size` completions; a verifiable reward scores each one.
The advantage of a completion is its reward minus the group's mean, divided by the group's standard
deviation (so a group whose completions all score the same teaches nothing). The loss is the
clipped importance-ratio objective of PPO, normalised per token over the whole batch (every
completion token weighs the same, however long its completion), with an optional KL penalty to the
reference model using the non-negative estimator exp(r) - r - 1, r = logp_ref - logp.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scratchlm.config import Command, Flag, to_dict
from scratchlm.data.sft import collate
from scratchlm.eval.tasks import EVAL_SEED, Task, get_task, greedy_answers
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain.common import (
    check_training,
    default_optimizer,
    default_training,
    load_reference,
    start_policy,
)
from scratchlm.posttrain.logprobs import masked_logprobs
from scratchlm.runtime import DistInfo, init_distributed, teardown_distributed
from scratchlm.tokenizer.chat import chat_tokens, render_prompt
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.loop import LoopResult, Stage, train_loop


def group_advantages(rewards: Tensor, scale: bool = True, eps: float = 1e-6) -> Tensor:
    """Rewards (G, K) for G prompts with K completions each -> advantages (G, K), zero mean per row.

    `scale` divides by the row's standard deviation (plus eps); without it only the mean is removed.
    """
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True, unbiased=False) + eps)


def grpo_loss(
    logp: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float,
    logp_ref: Tensor | None = None,
    kl_coef: float = 0.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Clipped policy-gradient loss with token-level normalisation.

    logp, logp_old, logp_ref, mask: (N, T) per completion token (logp_old and logp_ref carry no
    gradient); advantages: (N,). Returns the scalar loss and stats (clip fraction, KL).
    """
    mask = mask.to(logp.dtype)
    n_tokens = mask.sum().clamp(min=1.0)
    ratio = torch.exp(logp - logp_old)
    adv = advantages.unsqueeze(1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv
    per_token = -torch.minimum(unclipped, clipped)
    outside = ((ratio - 1.0).abs() > clip_eps).to(mask.dtype) * mask
    stats = {"clip_frac": (outside.sum() / n_tokens).detach()}
    if logp_ref is not None and kl_coef > 0.0:
        log_r = logp_ref - logp
        kl = torch.exp(log_r) - log_r - 1.0
        per_token = per_token + kl_coef * kl
        stats["kl"] = ((kl * mask).sum() / n_tokens).detach()
    return (per_token * mask).sum() / n_tokens, stats


@dataclass(frozen=True)
class GRPOConfig:
    """policy: the checkpoint to improve; task: a name in `scratchlm.eval.tasks.TASKS`.

    Each micro-step samples `training.batch_size` prompts (per rank) x `group_size` completions;
    a rollout is used for `reuse` consecutive updates (the importance ratio is clipped from the
    second on). kl_coef > 0 keeps a frozen copy of the starting policy (or of `reference`) to
    penalise drifting from it.
    """

    policy: str = ""
    task: str = "default"
    out_dir: str = "runs/grpo"
    reference: str | None = None
    group_size: int = 8
    max_new_tokens: int = 96
    temperature: float = 1.0
    top_k: int | None = None
    clip_eps: float = 0.2
    kl_coef: float = 0.0
    reuse: int = 2
    scale_advantages: bool = True
    eval_prompts: int = 32
    optimizer: OptimizerConfig = field(default_factory=default_optimizer(5e-5))
    schedule: ScheduleConfig = field(
        default_factory=lambda: ScheduleConfig(name="constant", warmup_steps=0, min_lr=0.0)
    )
    training: TrainingConfig = field(default_factory=default_training(batch_size=8))

    def __post_init__(self) -> None:
        check_training(self.training, self.optimizer, self.schedule)
        for name in ("group_size", "max_new_tokens", "reuse", "eval_prompts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: advantages compare completions of a prompt")
        if self.clip_eps <= 0 or self.kl_coef < 0:
            raise ValueError("clip_eps must be > 0 and kl_coef >= 0")


@dataclass
class Rollout:
    """Sampled completions of one step. ids, mask: (N, T), mask 1 on completion tokens."""

    ids: Tensor
    mask: Tensor
    rewards: Tensor  # (G, K)
    advantages: Tensor  # (N,)
    lengths: list[int]
    logp_old: Tensor | None = None
    logp_ref: Tensor | None = None


@torch.no_grad()
def sample_rollout(
    model: TransformerLM,
    tokenizer: Tokenizer,
    prompts: list[str],
    task: Task,
    cfg: GRPOConfig,
    generator: torch.Generator,
) -> Rollout:
    """`cfg.group_size` completions per prompt, scored by the task, with group advantages."""
    end = chat_tokens(tokenizer).end
    prompt_ids = [render_prompt(tokenizer, [{"role": "user", "content": p}]) for p in prompts]
    room = model.config.context_length - max(len(p) for p in prompt_ids) + 1
    if room < 1:
        raise ValueError("a task prompt fills the whole context: use a model with a longer one")
    sampling = SamplingConfig(
        min(cfg.max_new_tokens, room), cfg.temperature, cfg.top_k, stop_ids=(end,)
    )
    repeated = [p for p in prompt_ids for _ in range(cfg.group_size)]
    was_training = model.training
    model.eval()
    completions = generate(model, repeated, sampling, generator)
    model.train(was_training)
    rewards = [
        task.reward(prompts[row // cfg.group_size], tokenizer.decode([i for i in c if i != end]))
        for row, c in enumerate(completions)
    ]
    rewards_t = torch.tensor(rewards, dtype=torch.float32).view(len(prompts), cfg.group_size)
    advantages = group_advantages(rewards_t, cfg.scale_advantages).flatten()
    examples = [
        (p + c, [0] * len(p) + [1] * len(c)) for p, c in zip(repeated, completions, strict=True)
    ]
    ids, mask = collate(examples, pad_id=end)
    return Rollout(ids, mask, rewards_t, advantages, [len(c) for c in completions])


def rollout_stats(rollout: Rollout) -> dict[str, float]:
    """Mean reward, pass@k (a group with at least one full-reward completion), mean length."""
    rewards = rollout.rewards
    return {
        "reward": rewards.mean().item(),
        "pass_at_k": (rewards >= 1.0).any(dim=1).float().mean().item(),
        "length": sum(rollout.lengths) / len(rollout.lengths),
    }


class RolloutSource:
    """GRPO's batches: rollouts of this rank's share of seeded prompts, each used `reuse` times.

    Micro-batch m of update k samples `batch_size` prompts per rank from seed (seed, k, m) with a
    generator seeded the same way, so the rollouts depend only on the step and the weights. A
    rollout is reused for the next `reuse - 1` updates; the cached rollouts (with the log-probs
    of the policy that sampled them) are the state, so a resumed run continues exactly.
    """

    def __init__(
        self,
        model: TransformerLM,
        tokenizer: Tokenizer,
        task: Task,
        cfg: "GRPOConfig",
        reference: TransformerLM | None,
        info: DistInfo,
    ) -> None:
        self.model, self.tokenizer, self.task, self.cfg = model, tokenizer, task, cfg
        self.reference, self.info = reference, info
        self.calls = 0
        self.cache: dict[int, Rollout] = {}

    def next_batch(self) -> Rollout:
        t, info = self.cfg.training, self.info
        step, micro = divmod(self.calls, t.grad_accum)
        self.calls += 1
        if step % self.cfg.reuse == 0 or micro not in self.cache:
            key = (t.seed * 1_000_003 + step) * t.grad_accum + micro
            prompts = self.task.prompts(t.batch_size * info.world_size, key)
            mine = prompts[info.rank * t.batch_size : (info.rank + 1) * t.batch_size]
            device = info.device
            generator = torch.Generator(device=device).manual_seed(key * 64 + info.rank)
            rollout = sample_rollout(self.model, self.tokenizer, mine, self.task, self.cfg,
                                     generator)  # fmt: skip
            rollout.ids, rollout.mask = rollout.ids.to(device), rollout.mask.to(device)
            rollout.advantages = rollout.advantages.to(device)
            if self.reference is not None:
                with torch.no_grad():
                    rollout.logp_ref = masked_logprobs(self.reference, rollout.ids, rollout.mask)
            self.cache[micro] = rollout
        return self.cache[micro]

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "cache": {m: asdict(r) for m, r in self.cache.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = state["calls"]
        device = self.info.device
        self.cache = {
            m: Rollout(**{k: v.to(device) if isinstance(v, Tensor) else v for k, v in r.items()})
            for m, r in state["cache"].items()
        }


def run_grpo(cfg: GRPOConfig, resume: str | None = None, task: Task | None = None) -> LoopResult:
    """Improve `cfg.policy` on `cfg.task` (or on `task` when given); data parallel on torchrun."""
    if not cfg.policy:
        raise ValueError("grpo needs a policy checkpoint: --policy DIR")
    task = task or get_task(cfg.task)
    info = init_distributed(cfg.training.device)
    try:
        return _run_grpo(cfg, resume, task, info)
    finally:
        teardown_distributed()


def _run_grpo(cfg: GRPOConfig, resume: str | None, task: Task, info: DistInfo) -> LoopResult:
    t, device = cfg.training, info.device
    policy = start_policy(cfg.policy, t, cfg.optimizer, info)
    model, tokenizer = policy.model, policy.tokenizer
    reference = None
    if cfg.kl_coef > 0:
        reference = load_reference(cfg.reference or cfg.policy, model, device)
    eval_prompts = task.prompts(cfg.eval_prompts, EVAL_SEED)

    def loss_fn(module: nn.Module, rollout: Rollout) -> tuple[Tensor, dict]:
        logp = masked_logprobs(module, rollout.ids, rollout.mask)
        if rollout.logp_old is None:  # first update on this rollout: the sampling policy is this
            rollout.logp_old = logp.detach()
        loss, stats = grpo_loss(
            logp, rollout.logp_old, rollout.advantages, rollout.mask[:, 1:],
            cfg.clip_eps, rollout.logp_ref, cfg.kl_coef,
        )  # fmt: skip
        return loss, {"tokens": rollout.ids.numel(), **rollout_stats(rollout), **stats}

    def eval_fn() -> dict[str, float]:
        answers = greedy_answers(model, tokenizer, eval_prompts, cfg.max_new_tokens)
        rewards = [task.reward(p, a) for p, a in zip(eval_prompts, answers, strict=True)]
        return {
            "eval_reward": sum(rewards) / len(rewards),
            "eval_rate": sum(r >= 1.0 for r in rewards) / len(rewards),
        }

    stage = Stage(
        name="grpo",
        run_dir=Path(cfg.out_dir),
        config={"model": model.config.to_dict(), "stage": "grpo", **to_dict(cfg)},
        model=model,
        optimizer=policy.optimizer,
        batches=RolloutSource(model, tokenizer, task, cfg, reference, info),
        loss_fn=loss_fn,
        wrapped=policy.wrapped,
        eval_fn=eval_fn,
        tokenizer=tokenizer,
        flops_per_token=model.config.flops_per_token(),
    )
    return train_loop(stage, t, cfg.optimizer, cfg.schedule, info, resume)


COMMAND = Command(
    run=run_grpo,
    config=GRPOConfig,
    resume=True,
    description="Sample groups of answers from --policy to the task's prompts, score them with "
    "the task's reward, and push up the better ones of each group.",
    flags={
        "--policy": Flag("policy", "checkpoint to improve, usually the SFT output", "CHECKPOINT"),
        "--task": Flag("task", "task name: default, arithmetic or story", "NAME"),
        "--out": Flag("out_dir", "run directory", "DIR"),
    },
)
