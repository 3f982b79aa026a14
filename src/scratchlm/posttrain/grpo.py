"""Group Relative Policy Optimisation: sample a group per prompt, score, push up the better ones.

For each prompt the policy samples `group_size` completions; a verifiable reward scores each one.
The advantage of a completion is its reward minus the group's mean, divided by the group's standard
deviation (so a group whose completions all score the same teaches nothing). The loss is the
clipped importance-ratio objective of PPO, normalised per token over the whole batch (every
completion token weighs the same, however long its completion), with an optional KL penalty to the
reference model using the non-negative estimator exp(r) - r - 1, r = logp_ref - logp.
"""

import torch
from torch import Tensor


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
