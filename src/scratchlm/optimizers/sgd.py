"""Plain SGD whose step size decays as lr / sqrt(t + 1).

t counts the updates a parameter has already received (0 for its first), so the first step uses the
full `lr`, the fourth lr / 2, the hundredth lr / 10. No momentum and no weight decay: this is the
baseline the other optimizers are compared with.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from scratchlm.optimizers.adamw import evaluate_closure


def sgd_step_size(lr: float, t: int) -> float:
    """Step size of update number `t` (0-based): lr / sqrt(t + 1)."""
    return lr / math.sqrt(t + 1)


class SGD(Optimizer):
    """p <- p - lr / sqrt(t + 1) * grad, with t the per-parameter update count starting at 0."""

    def __init__(self, params: Iterable[Tensor] | Iterable[dict[str, Any]], lr: float = 1e-3):
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                t = state.get("t", 0)
                p.add_(p.grad, alpha=-sgd_step_size(group["lr"], t))
                state["t"] = t + 1
        return loss
