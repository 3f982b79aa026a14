"""Group Relative Policy Optimisation: sample a group per prompt, score, push up the better ones.

For each prompt the policy samples `group_size` completions; a verifiable reward scores each one.
The advantage of a completion is its reward minus the group's mean, divided by the group's sample
standard deviation (`normalize_by_std`; a group whose completions all score the same teaches
nothing). `loss_type` picks the per-token loss: "grpo_clip" (the clipped importance-ratio objective
of PPO, the default), "reinforce_with_baseline" (-advantage * log p) or "no_baseline" (-reward *
log p); see `scratchlm.posttrain.functional`. `length_normalization` "sequence" averages each
completion over its own tokens and then over completions (the GRPO definition); "token" takes one
mean over all completion tokens of the batch (long completions weigh more). An optional KL penalty
to the reference model uses the non-negative estimator exp(r) - r - 1, r = logp_ref - logp.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from scratchlm.config import Command, Flag
from scratchlm.data.sft import collate, shift_labels
from scratchlm.eval.tasks import EVAL_SEED, Task, get_task, greedy_answers
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain.common import (
    check_training,
    default_optimizer,
    default_training,
    load_reference,
    policy_stage,
    start_policy,
)
from scratchlm.posttrain.functional import (
    LOSS_TYPES,
    LengthNormalization,
    LossType,
    compute_group_normalized_rewards,
    compute_policy_gradient_loss,
    get_response_log_probs,
    masked_mean,
    response_mean,
)
from scratchlm.runtime import DistInfo, process_group
from scratchlm.tokenizer.chat import chat_tokens, render_prompt
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import find_checkpoint
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.loop import LoopResult, train_loop

ADVANTAGE_EPS = 1e-6


def kl_penalty(policy_log_probs: Tensor, ref_log_probs: Tensor) -> Tensor:
    """Per-token KL estimate exp(r) - r - 1 >= 0, r = ref - policy. Inputs, output: (B, T)."""
    log_r = ref_log_probs - policy_log_probs
    return torch.exp(log_r) - log_r - 1.0


@dataclass(frozen=True)
class GRPOConfig:
    """policy: the checkpoint to improve; task: a name in `scratchlm.eval.tasks.TASKS`.

    Each micro-step samples `training.batch_size` prompts (per rank) x `group_size` completions; a
    rollout is used for `reuse` consecutive updates (with "grpo_clip" the importance ratio is
    clipped from the second on; the other loss types ignore that the samples came from an older
    policy). kl_coef > 0 keeps a frozen copy of the starting policy (or of `reference`) to
    penalise drifting from it.
    loss_type, normalize_by_std and length_normalization: see the module docstring.
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
    loss_type: LossType = "grpo_clip"
    normalize_by_std: bool = True
    length_normalization: LengthNormalization = "sequence"
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
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(
                f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}"
            )
        if self.length_normalization not in ("sequence", "token"):
            raise ValueError(
                "length_normalization must be 'sequence' or 'token', "
                f"got {self.length_normalization!r}"
            )


@dataclass
class Rollout:
    """Sampled completions of one step, N = prompts x group_size rows.

    input_ids, labels, response_mask: (N, T), the mask True on completion tokens; rewards,
    advantages: (N, 1); old_log_probs, ref_log_probs: (N, T) once computed.
    """

    input_ids: Tensor
    labels: Tensor
    response_mask: Tensor
    rewards: Tensor
    advantages: Tensor
    group_size: int
    lengths: list[int]
    old_log_probs: Tensor | None = None
    ref_log_probs: Tensor | None = None


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
    texts = [tokenizer.decode([i for i in c if i != end]) for c in completions]
    advantages, rewards, _ = compute_group_normalized_rewards(
        lambda response, prompt: task.reward(prompt, response),
        texts, [p for p in prompts for _ in range(cfg.group_size)], cfg.group_size,
        ADVANTAGE_EPS, cfg.normalize_by_std,
    )  # fmt: skip
    examples = [
        (p + c, [0] * len(p) + [1] * len(c)) for p, c in zip(repeated, completions, strict=True)
    ]
    input_ids, labels, response_mask = shift_labels(*collate(examples, pad_id=end))
    return Rollout(
        input_ids, labels, response_mask, rewards.unsqueeze(1), advantages.unsqueeze(1),
        cfg.group_size, [len(c) for c in completions],
    )  # fmt: skip


def rollout_stats(rollout: Rollout) -> dict[str, float]:
    """Mean reward, pass@k (a group with at least one full-reward completion), mean length."""
    rewards = rollout.rewards.view(-1, rollout.group_size)
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
            for name in ("input_ids", "labels", "response_mask", "rewards", "advantages"):
                setattr(rollout, name, getattr(rollout, name).to(device))
            if self.reference is not None:
                with torch.no_grad():
                    rollout.ref_log_probs = get_response_log_probs(
                        self.reference, rollout.input_ids, rollout.labels
                    )["log_probs"]
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
    with process_group(cfg.training.device) as info:
        return _run_grpo(cfg, resume, task, info)


def _run_grpo(cfg: GRPOConfig, resume: str | None, task: Task, info: DistInfo) -> LoopResult:
    t, device = cfg.training, info.device
    source = find_checkpoint(cfg.policy)
    policy = start_policy(source, cfg.out_dir, t, cfg.optimizer, info)
    model, tokenizer = policy.model, policy.tokenizer
    reference = None
    if cfg.kl_coef > 0:
        reference_path = find_checkpoint(cfg.reference) if cfg.reference else source
        reference = load_reference(reference_path, model, device)
    eval_prompts = task.prompts(cfg.eval_prompts, EVAL_SEED)

    def loss_fn(module: nn.Module, rollout: Rollout) -> tuple[Tensor, dict]:
        mask = rollout.response_mask
        scored = get_response_log_probs(module, rollout.input_ids, rollout.labels, True)
        log_probs = scored["log_probs"]
        if rollout.old_log_probs is None:  # first update on this rollout: sampled by this policy
            rollout.old_log_probs = log_probs.detach()
        per_token, metadata = compute_policy_gradient_loss(
            log_probs, cfg.loss_type, rollout.rewards, rollout.advantages,
            rollout.old_log_probs, cfg.clip_eps,
        )  # fmt: skip
        stats = {"entropy": masked_mean(scored["token_entropy"], mask)}
        if "clipped" in metadata:
            stats["clip_frac"] = masked_mean(metadata["clipped"].float(), mask)
        if rollout.ref_log_probs is not None and cfg.kl_coef > 0:
            kl = kl_penalty(log_probs, rollout.ref_log_probs)
            per_token = per_token + cfg.kl_coef * kl
            stats["kl"] = masked_mean(kl.detach(), mask)
        loss = response_mean(per_token, mask, cfg.length_normalization)
        numbers = {"tokens": rollout.input_ids.numel(), **rollout_stats(rollout), **stats}
        return loss, numbers

    def eval_fn() -> dict[str, float]:
        answers = greedy_answers(model, tokenizer, eval_prompts, cfg.max_new_tokens)
        rewards = [task.reward(p, a) for p, a in zip(eval_prompts, answers, strict=True)]
        return {
            "eval_reward": sum(rewards) / len(rewards),
            "eval_rate": sum(r >= 1.0 for r in rewards) / len(rewards),
        }

    stage = policy_stage(
        "grpo",
        cfg,
        policy,
        RolloutSource(model, tokenizer, task, cfg, reference, info),
        loss_fn,
        eval_fn,
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
