"""Group Relative Policy Optimisation: sample a group per prompt, score, push up the better ones.

For each prompt the policy samples `group_size` completions; a verifiable reward scores each one.
The advantage of a completion is its reward minus the group's mean, divided by the group's standard
deviation (so a group whose completions all score the same teaches nothing). The loss is the
clipped importance-ratio objective of PPO, normalised per token over the whole batch (every
completion token weighs the same, however long its completion), with an optional KL penalty to the
reference model using the non-negative estimator exp(r) - r - 1, r = logp_ref - logp.
"""

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from scratchlm.data.sft import collate
from scratchlm.eval.tasks import EVAL_SEED, Task, get_task, greedy_answers
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain.logprobs import masked_logprobs
from scratchlm.posttrain.loop import (
    LoopConfig,
    check_same_shape,
    default_optimizer,
    load_chat_model,
    setup_stage,
    train_loop,
    write_run_dir,
)
from scratchlm.tokenizer.chat import chat_tokens, render_prompt
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.pretrain import OptimizerConfig, ScheduleConfig


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
) -> tuple[Tensor, dict[str, float]]:
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
    stats = {"clip_frac": (outside.sum() / n_tokens).item()}
    if logp_ref is not None and kl_coef > 0.0:
        log_r = logp_ref - logp
        kl = torch.exp(log_r) - log_r - 1.0
        per_token = per_token + kl_coef * kl
        stats["kl"] = ((kl * mask).sum() / n_tokens).item()
    return (per_token * mask).sum() / n_tokens, stats


@dataclass(frozen=True)
class GRPOConfig:
    """policy: the checkpoint to improve; task: a name in `scratchlm.eval.tasks.TASKS`.

    Each step samples `loop.batch_size` prompts x `group_size` completions; a rollout is used for
    `reuse` consecutive updates (the importance ratio is clipped from the second on). kl_coef > 0
    keeps a frozen copy of the starting policy (or of `reference`) to penalise drifting from it.
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
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(batch_size=8))

    def __post_init__(self) -> None:
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


def run_grpo(
    cfg: GRPOConfig, resume: str | None = None, task: Task | None = None
) -> dict[str, Any]:
    """Improve `cfg.policy` on `cfg.task` (or on `task` when given); returns a summary."""
    if not cfg.policy:
        raise ValueError("grpo needs a policy checkpoint: --policy DIR")
    task = task or get_task(cfg.task)
    setup = setup_stage("grpo", cfg, cfg.policy, cfg.out_dir, resume)
    model, tokenizer, device, loop = setup.model, setup.tokenizer, setup.device, cfg.loop
    reference = None
    if cfg.kl_coef > 0:
        reference, _ = load_chat_model(cfg.reference or cfg.policy, device)
        check_same_shape(model, reference)
        reference.eval().requires_grad_(False)
    eval_prompts = task.prompts(cfg.eval_prompts, EVAL_SEED)
    state: dict[str, Rollout] = {}

    def loss_fn(step: int) -> tuple[Tensor, dict[str, float]]:
        if step % cfg.reuse == 0 or "rollout" not in state:
            # Prompts and samples depend only on (seed, step), so a resumed run repeats them.
            prompts = task.prompts(loop.batch_size, loop.seed * 1_000_003 + step)
            generator = torch.Generator(device=device).manual_seed(loop.seed + step)
            rollout = sample_rollout(model, tokenizer, prompts, task, cfg, generator)
            rollout.ids, rollout.mask = rollout.ids.to(device), rollout.mask.to(device)
            if reference is not None:
                with torch.no_grad():
                    rollout.logp_ref = masked_logprobs(reference, rollout.ids, rollout.mask)
            state["rollout"] = rollout
        rollout = state["rollout"]
        logp = masked_logprobs(model, rollout.ids, rollout.mask)
        if (
            rollout.logp_old is None
        ):  # first update on this rollout: the sampling policy is this one
            rollout.logp_old = logp.detach()
        loss, stats = grpo_loss(
            logp, rollout.logp_old, rollout.advantages.to(device), rollout.mask[:, 1:],
            cfg.clip_eps, rollout.logp_ref, cfg.kl_coef,
        )  # fmt: skip
        return loss, {**rollout_stats(rollout), **stats}

    def eval_fn() -> dict[str, float]:
        answers = greedy_answers(model, tokenizer, eval_prompts, cfg.max_new_tokens)
        rewards = [task.reward(p, a) for p, a in zip(eval_prompts, answers, strict=True)]
        return {
            "eval_reward": sum(rewards) / len(rewards),
            "eval_rate": sum(r >= 1.0 for r in rewards) / len(rewards),
        }

    write_run_dir(setup)  # the data has been read: now the run directory
    return train_loop(setup, loop, cfg.optimizer, cfg.schedule, loss_fn, eval_fn)
