"""AdamW: Adam with bias correction and decoupled weight decay.

For a parameter p with gradient g at step t (1 for its first update):

    m = beta1 * m + (1 - beta1) * g              first moment
    v = beta2 * v + (1 - beta2) * g**2           second moment
    p = p - lr * weight_decay * p                decay, applied to p before this step's update
    p = p - lr * m_hat / (sqrt(v_hat) + eps)     m_hat = m / (1 - beta1**t)
                                                 v_hat = v / (1 - beta2**t)

The decay is decoupled: it shrinks p directly instead of being added to g, so it never passes
through the adaptive scaling. eps is added after bias-correcting v. The update runs as
torch._foreach_* calls: over a whole group at once on a GPU, one tensor at a time on a CPU.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer


def check_adamw_hyperparameters(
    lr: float, betas: tuple[float, float], eps: float, weight_decay: float
) -> None:
    """Raise ValueError for a learning rate, beta, eps or weight decay that cannot work."""
    if lr < 0:
        raise ValueError(f"lr must be >= 0, got {lr}")
    if not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must each be in [0, 1), got {betas}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")


def evaluate_closure(closure: Callable[[], float] | None) -> float | None:
    """Run an optimizer's `closure` (re-computes the loss) with gradients on; None without one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def bias_corrections(step: int, beta1: float, beta2: float) -> tuple[float, float]:
    """(1 - beta1**step, sqrt(1 - beta2**step)) for a 1-based `step`."""
    return 1.0 - beta1**step, math.sqrt(1.0 - beta2**step)


@torch.no_grad()
def adamw_update_(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    steps: list[int],
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamW update, in place, of `params`, `exp_avgs` (m) and `exp_avg_sqs` (v).

    The lists line up index by index; `steps` holds each parameter's 1-based step count,
    already incremented for this update. Nothing outside the given tensors is read or written.
    """
    torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta1)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1.0 - beta2)
    if weight_decay != 0.0:
        torch._foreach_mul_(params, 1.0 - lr * weight_decay)
    # m_hat / (sqrt(v_hat) + eps) = (c2 / c1) * m / (sqrt(v) + eps * c2), with c1 = 1 - beta1**t
    # and c2 = sqrt(1 - beta2**t): the same value with one pass over v fewer.
    corrections = [bias_corrections(t, beta1, beta2) for t in steps]
    denoms = torch._foreach_sqrt(exp_avg_sqs)
    torch._foreach_add_(denoms, [eps * c2 for _, c2 in corrections])
    step_sizes = [-lr * c2 / c1 for c1, c2 in corrections]
    torch._foreach_addcdiv_(params, exp_avgs, denoms, step_sizes)


def adamw_group_step(group: dict[str, Any], state: dict[Tensor, dict[str, Any]]) -> None:
    """Apply `adamw_update_` to every parameter of `group` that has a gradient.

    `state` is the optimizer's per-parameter state; this creates (step, exp_avg, exp_avg_sq) on
    a parameter's first update.
    """
    params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise ValueError("AdamW does not support sparse gradients; use a dense Embedding")
        s = state[p]
        if not s:
            s["step"] = 0
            s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            s["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        s["step"] += 1
        params.append(p)
        grads.append(p.grad)
        exp_avgs.append(s["exp_avg"])
        exp_avg_sqs.append(s["exp_avg_sq"])
        steps.append(s["step"])
    if not params:
        return
    beta1, beta2 = group["betas"]
    # On a GPU one foreach call per operation covers the whole group (few kernel launches). On a
    # CPU, updating one tensor at a time keeps it in cache across the update's passes instead.
    size = 1 if params[0].device.type == "cpu" else len(params)
    for i in range(0, len(params), size):
        s = slice(i, i + size)
        adamw_update_(
            params[s],
            grads[s],
            exp_avgs[s],
            exp_avg_sqs[s],
            steps[s],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
        )


class AdamW(Optimizer):
    """AdamW with per-group lr, betas, eps and weight_decay (see the module docstring for the math).

    Build decay / no-decay groups with `scratchlm.optimizers.param_groups`.
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        check_adamw_hyperparameters(lr, betas, eps, weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            adamw_group_step(group, self.state)
        return loss
