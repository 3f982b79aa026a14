"""Per-token log-probabilities of the tokens a sequence actually contains, under a loss mask.

SFT, DPO and GRPO all score a sequence the same way: run the model on `ids[:, :-1]`, read the
log-probability of each next token `ids[:, 1:]`, and keep only the positions the mask marks (the
assistant's tokens). A mask value belongs to the token it marks, so `mask[:, 1:]` lines up with the
targets.
"""

import torch
from torch import Tensor, nn


def token_logprobs(logits: Tensor, targets: Tensor) -> Tensor:
    """log p(target) at every position.

    logits: (B, T, V); targets: (B, T) int64. Returns (B, T) fp32.
    """
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def masked_logprobs(model: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """Log-probabilities of `ids[:, 1:]` given their prefixes, zero where the mask is 0.

    ids, mask: (B, T). Returns (B, T - 1) fp32; sum over dim 1 for a sequence log-probability.
    """
    logits = model(ids[:, :-1])
    return token_logprobs(logits, ids[:, 1:]) * mask[:, 1:].to(torch.float32)
