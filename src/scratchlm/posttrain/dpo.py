"""Direct Preference Optimisation (Rafailov et al., 2023) against a frozen reference model.

Each record is a prompt with a chosen (w) and a rejected (l) response. With summed log-probabilities
over the response tokens only, the loss is

    -log sigmoid(beta * ((pi_w - ref_w) - (pi_l - ref_l)))

so it is log 2 when the policy equals the reference and falls as the policy raises the chosen
response relative to the rejected one more than the reference does.
"""

import torch.nn.functional as F
from torch import Tensor


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
