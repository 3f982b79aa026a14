"""The building blocks of SFT, DPO and GRPO: small functions on tensors, named as in CS336.

Layout. A batch is right-padded ids (B, T + 1); the model reads `input_ids` = ids[:, :-1] and
predicts `labels` = ids[:, 1:]; `response_mask` (B, T) is True on the labels that count (the
response or assistant tokens), so every per-token tensor below is (B, T), aligned with `labels`.

- Log-probs and entropy: `get_response_log_probs`, `compute_entropy`.
- Reductions under a mask: `masked_mean` (divide by the mask's count), `masked_normalize` (divide by
  a constant), `response_mean` (GRPO's "sequence" or "token" length normalisation).
- SFT: `sft_microbatch_train_step`.
- GRPO: `compute_group_normalized_rewards`, `compute_naive_policy_gradient_loss`,
  `compute_grpo_clip_loss`, `compute_policy_gradient_loss`, `grpo_microbatch_train_step`.
- DPO: `dpo_loss`, `pair_log_probs`, `per_instance_dpo_loss`.

The `*_microbatch_train_step` functions divide by the number of accumulation steps and call
`backward()`, so the gradients of several calls add up to those of one big batch. The stages
(`scratchlm.posttrain.sft`, `dpo`, `grpo`) are built from the pieces these are made of, since their
step loop calls `backward()` itself.
"""

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scratchlm.data.preference import PreferenceRecord, collate_pairs, render_pair
from scratchlm.data.sft import collate, shift_labels
from scratchlm.tokenizer.chat import BOS, chat_tokens
from scratchlm.tokenizer.tokenizer import Tokenizer

LossType = Literal["no_baseline", "reinforce_with_baseline", "grpo_clip"]
LOSS_TYPES: tuple[str, ...] = get_args(LossType)
LengthNormalization = Literal["sequence", "token"]


def compute_entropy(logits: Tensor) -> Tensor:
    """Entropy of the next-token distribution at each position, in nats.

    logits: (B, T, V). Returns (B, T) fp32, computed as logsumexp(z) - sum(p * z), which stays
    finite for logits of any size.
    """
    logits = logits.float()
    log_z = torch.logsumexp(logits, dim=-1)
    probs = torch.exp(logits - log_z.unsqueeze(-1))
    return log_z - (probs * logits).sum(dim=-1)


def masked_mean(tensor: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """sum(tensor * mask, dim) / sum(mask, dim); over every element when dim is None.

    tensor, mask: the same shape (mask bool or 0/1). An empty mask along `dim` gives NaN there
    (the 0 / 0 of the formula), not a clamped value.
    """
    mask = mask.to(tensor.dtype)
    if dim is None:
        return (tensor * mask).sum() / mask.sum()
    return (tensor * mask).sum(dim=dim) / mask.sum(dim=dim)


def masked_normalize(
    tensor: Tensor, mask: Tensor, dim: int | None = None, normalize_constant: float = 1.0
) -> Tensor:
    """sum(tensor * mask, dim) / normalize_constant; over every element when dim is None."""
    mask = mask.to(tensor.dtype)
    summed = (tensor * mask).sum() if dim is None else (tensor * mask).sum(dim=dim)
    return summed / normalize_constant


def response_mean(
    per_token: Tensor, response_mask: Tensor, length_normalization: LengthNormalization = "sequence"
) -> Tensor:
    """A per-token loss (B, T) reduced to a scalar.

    "sequence": each response's mean over its own tokens, then the mean over responses (every
    response weighs the same); "token": one mean over all response tokens of the batch (every
    token weighs the same, so long responses weigh more).
    """
    if length_normalization == "sequence":
        return masked_mean(per_token, response_mask, dim=-1).mean()
    if length_normalization == "token":
        return masked_mean(per_token, response_mask)
    raise ValueError(
        f"length_normalization must be 'sequence' or 'token', got {length_normalization!r}"
    )


def get_response_log_probs(
    model: nn.Module, input_ids: Tensor, labels: Tensor, return_token_entropy: bool = False
) -> dict[str, Tensor]:
    """log p(labels[b, t] | input_ids[b, :t + 1]) under `model` (a `TransformerLM`).

    input_ids, labels: (B, T) int64. Returns {"log_probs": (B, T) fp32} and, when asked,
    "token_entropy": (B, T) fp32, the entropy of each prediction (computed without gradient).
    """
    logits = model(input_ids).float()
    picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    out = {"log_probs": picked - torch.logsumexp(logits, dim=-1)}
    if return_token_entropy:
        with torch.no_grad():
            out["token_entropy"] = compute_entropy(logits)
    return out


def tokenize_prompt_and_output(
    prompt_strs: list[str], output_strs: list[str], tokenizer: Tokenizer
) -> dict[str, Tensor]:
    """Each prompt and output encoded separately, concatenated and right-padded with <|endoftext|>.

    Returns "input_ids" and "labels" (B, T) int64, the padded rows without their last / first
    token, and "response_mask" (B, T) bool, True where the label is an output token. T is the
    longest prompt + output, minus one.
    """
    if len(prompt_strs) != len(output_strs):
        raise ValueError(f"{len(prompt_strs)} prompts but {len(output_strs)} outputs")
    if BOS not in tokenizer.special_ids:
        raise ValueError(f"the tokenizer has no {BOS} token to pad with")
    examples = []
    for prompt, output in zip(prompt_strs, output_strs, strict=True):
        p, o = tokenizer.encode(prompt), tokenizer.encode(output)
        examples.append((p + o, [0] * len(p) + [1] * len(o)))
    input_ids, labels, response_mask = shift_labels(*collate(examples, tokenizer.special_ids[BOS]))
    return {"input_ids": input_ids, "labels": labels, "response_mask": response_mask}


def sft_microbatch_train_step(
    policy_log_probs: Tensor,
    response_mask: Tensor,
    gradient_accumulation_steps: int,
    normalize_constant: float = 1.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """-(each sequence's summed response log-probs / normalize_constant), averaged over the batch,
    / gradient_accumulation_steps; then `backward()`. Returns (loss, metadata).

    policy_log_probs, response_mask: (B, T). With normalize_constant = (response tokens) / B the
    loss is the mean negative log-likelihood per response token. metadata: "response_tokens".
    """
    per_sequence = masked_normalize(policy_log_probs, response_mask, -1, normalize_constant)
    loss = -per_sequence.mean() / gradient_accumulation_steps
    loss.backward()
    return loss, {"response_tokens": response_mask.sum().detach()}


def compute_group_normalized_rewards(
    reward_fn: Callable[[str, str], Any],
    rollout_responses: list[str],
    repeated_ground_truths: list[str],
    group_size: int,
    advantage_eps: float,
    normalize_by_std: bool,
) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Rewards of N = groups x group_size responses and their advantages within each group.

    reward_fn(response, ground_truth) returns a number, or a dict with a "reward" entry. Responses
    i * group_size .. (i + 1) * group_size - 1 answer the same prompt. The advantage is
    (r - group mean) / (group sample std + advantage_eps), or r - group mean when normalize_by_std
    is false. Returns advantages (N,), raw rewards (N,) fp32, and reward statistics.
    """
    if len(rollout_responses) != len(repeated_ground_truths):
        raise ValueError(
            f"{len(rollout_responses)} responses but {len(repeated_ground_truths)} ground truths"
        )
    if group_size < 1 or len(rollout_responses) % group_size:
        raise ValueError(
            f"{len(rollout_responses)} responses do not split into groups of {group_size}"
        )
    scores = [
        reward_fn(response, truth)
        for response, truth in zip(rollout_responses, repeated_ground_truths, strict=True)
    ]
    raw = torch.tensor([float(s["reward"] if isinstance(s, dict) else s) for s in scores])
    groups = raw.view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    if normalize_by_std:
        centred = centred / (groups.std(dim=1, keepdim=True) + advantage_eps)
    metadata = {
        "reward_mean": raw.mean().item(),
        "reward_std": raw.std().item() if raw.numel() > 1 else 0.0,
        "reward_max": raw.max().item(),
        "reward_min": raw.min().item(),
    }
    return centred.flatten(), raw, metadata


def compute_naive_policy_gradient_loss(
    raw_rewards_or_advantages: Tensor, policy_log_probs: Tensor
) -> Tensor:
    """Per-token -A * log p.

    raw_rewards_or_advantages: (B, 1); policy_log_probs: (B, T). Returns (B, T).
    """
    return -raw_rewards_or_advantages * policy_log_probs


def compute_grpo_clip_loss(
    advantages: Tensor, policy_log_probs: Tensor, old_log_probs: Tensor, cliprange: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token -min(ratio * A, clip(ratio, 1 - cliprange, 1 + cliprange) * A), ratio = p / p_old.

    advantages: (B, 1); policy_log_probs, old_log_probs: (B, T). Returns the loss (B, T) and
    {"clipped": (B, T) bool}, True where the clipped term is the smaller one (no gradient there).
    """
    ratio = torch.exp(policy_log_probs - old_log_probs)
    unclipped = ratio * advantages
    clipped = ratio.clamp(1.0 - cliprange, 1.0 + cliprange) * advantages
    return -torch.minimum(unclipped, clipped), {"clipped": clipped < unclipped}


def compute_policy_gradient_loss(
    policy_log_probs: Tensor,
    loss_type: LossType,
    raw_rewards: Tensor | None = None,
    advantages: Tensor | None = None,
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Per-token loss (B, T) of one of the three policy gradients, and its metadata.

    "no_baseline": -raw_rewards * log p; "reinforce_with_baseline": -advantages * log p;
    "grpo_clip": `compute_grpo_clip_loss`. raw_rewards, advantages: (B, 1); old_log_probs: (B, T).
    """
    needs = {
        "no_baseline": {"raw_rewards": raw_rewards},
        "reinforce_with_baseline": {"advantages": advantages},
        "grpo_clip": {
            "advantages": advantages,
            "old_log_probs": old_log_probs,
            "cliprange": cliprange,
        },
    }
    if loss_type not in needs:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss_type!r}")
    missing = [name for name, value in needs[loss_type].items() if value is None]
    if missing:
        raise ValueError(f"loss_type {loss_type!r} needs {', '.join(missing)}")
    if loss_type == "no_baseline":
        return compute_naive_policy_gradient_loss(raw_rewards, policy_log_probs), {}
    if loss_type == "reinforce_with_baseline":
        return compute_naive_policy_gradient_loss(advantages, policy_log_probs), {}
    return compute_grpo_clip_loss(advantages, policy_log_probs, old_log_probs, cliprange)


def grpo_microbatch_train_step(
    policy_log_probs: Tensor,
    response_mask: Tensor,
    gradient_accumulation_steps: int,
    loss_type: LossType,
    raw_rewards: Tensor | None = None,
    advantages: Tensor | None = None,
    old_log_probs: Tensor | None = None,
    cliprange: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """`compute_policy_gradient_loss`, each response's mean over its tokens, the mean over the
    batch, / gradient_accumulation_steps; then `backward()`. Returns (loss, metadata).

    policy_log_probs, response_mask, old_log_probs: (B, T); raw_rewards, advantages: (B, 1).
    """
    per_token, metadata = compute_policy_gradient_loss(
        policy_log_probs, loss_type, raw_rewards, advantages, old_log_probs, cliprange
    )
    loss = response_mean(per_token, response_mask, "sequence") / gradient_accumulation_steps
    loss.backward()
    return loss, metadata


def dpo_loss(pi_w: Tensor, pi_l: Tensor, ref_w: Tensor, ref_l: Tensor, beta: float) -> Tensor:
    """Mean of -log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).

    Each input: (B,) summed log-probs of the chosen (w) / rejected (l) response under the policy
    (pi) or the reference (ref). Returns a scalar.
    """
    return -F.logsigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l))).mean()


def pair_log_probs(model: nn.Module, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Summed response log-probs of a `collate_pairs` batch.

    ids, mask: (2B, T + 1), chosen rows first. Returns (chosen (B,), rejected (B,)).
    """
    input_ids, labels, response_mask = shift_labels(ids, mask)
    log_probs = get_response_log_probs(model, input_ids, labels)["log_probs"]
    summed = masked_normalize(log_probs, response_mask, dim=-1)
    half = ids.shape[0] // 2
    return summed[:half], summed[half:]


def per_instance_dpo_loss(
    model: nn.Module,
    ref_model: nn.Module,
    tokenizer: Tokenizer,
    beta: float,
    prompt: str,
    response_chosen: str,
    response_rejected: str,
) -> Tensor:
    """The DPO loss (a scalar) of one preference pair in our chat template.

    The prompt is the user turn, each response the assistant turn (`render_pair`); only response
    tokens and the closing <|end|> are scored. `tokenizer` must have the chat tokens; `ref_model`
    gets no gradient.
    """
    pair = render_pair(tokenizer, PreferenceRecord(prompt, response_chosen, response_rejected))
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in collate_pairs([pair], chat_tokens(tokenizer).end))
    with torch.no_grad():
        ref_w, ref_l = pair_log_probs(ref_model, ids, mask)
    pi_w, pi_l = pair_log_probs(model, ids, mask)
    return dpo_loss(pi_w, pi_l, ref_w, ref_l, beta)
