"""Muon for hidden weight matrices, AdamW for everything else, in one optimizer object.

Each parameter group carries `use_muon`. A Muon group holds only 2-D matrices W of shape
(rows, cols) = (out_features, in_features); each step does

    buf = momentum * buf + (1 - momentum) * g                     momentum as a moving average
    u   = (1 - momentum) * g + momentum * buf   (nesterov=True)   or u = buf
    O   = newton_schulz(u)                                        ~ U V^T, where u = U S V^T
    W   = W - lr * weight_decay * W - lr * sqrt(max(1, rows / cols)) * O

O has every singular value near 1, so each step moves W by the same amount in every direction the
gradient spans, however unevenly the gradient itself is spread. The shape factor
sqrt(max(1, rows / cols)) makes the entries of the update have RMS 1 / sqrt(cols) for wide and
tall matrices alike. A fused projection (e.g. q, k and v stacked in one weight) can name its row
blocks with the group key `split_sizes`: each block is then orthogonalised and scaled on its own,
as if it were a separate matrix. Groups with `use_muon=False` run the AdamW update of
`scratchlm.optimizers.adamw` (embeddings, the output head, norm gains, biases).

Every group has its own `lr`. Each group also gets `lr_scale` = its lr / the optimizer's base `lr`,
so `scratchlm.schedulers.set_learning_rate(opt, lr_t)` moves all groups together and keeps the
Muon : AdamW ratio.
"""

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from scratchlm.optimizers.adamw import (
    adamw_group_step,
    check_adamw_hyperparameters,
    evaluate_closure,
)

# Quintic Newton-Schulz coefficients: X <- a X + b (X X^T) X + c (X X^T)^2 X. They trade exactness
# for speed: five iterations bring the singular values into roughly [0.7, 1.2] rather than to
# exactly 1, which is all the update needs. A singular value grows about a = 3.4x per iteration, so
# one far below 1/100 of the largest (the gradient's noise floor) stays small.
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(matrix: Tensor, steps: int = 5, eps: float = 1e-7) -> Tensor:
    """Approximate orthogonalisation of a 2-D `matrix`: U V^T for matrix = U S V^T, roughly.

    matrix: (rows, cols). Returns (rows, cols) in the input dtype. The iteration runs in bfloat16
    on CUDA (fast, and precise enough for a loose iteration) and float32 elsewhere.
    """
    assert matrix.ndim == 2, f"newton_schulz expects a matrix, got shape {tuple(matrix.shape)}"
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    tall = x.size(0) > x.size(1)
    if tall:  # iterate on the wide side so X X^T is the smaller Gram matrix
        x = x.T
    x = x / (torch.linalg.matrix_norm(x) + eps)  # Frobenius norm >= spectral norm: all sv <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.T
    return x.to(matrix.dtype)


def muon_lr_scale(rows: int, cols: int) -> float:
    """Shape factor of the Muon step for a (rows, cols) matrix: sqrt(max(1, rows / cols))."""
    return max(1.0, rows / cols) ** 0.5


def orthogonal_update(
    direction: Tensor, ns_steps: int, split_sizes: tuple[int, ...] | None = None
) -> Tensor:
    """Muon's step direction for a (rows, cols) matrix: each row block orthogonalised and scaled.

    split_sizes: row counts of the blocks, summing to rows; None treats the matrix as one block.
    Returns (rows, cols).
    """
    blocks = direction.split(split_sizes) if split_sizes else (direction,)
    return torch.cat([newton_schulz(b, ns_steps) * muon_lr_scale(*b.shape) for b in blocks])


@torch.no_grad()
def muon_update_(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    ns_steps: int,
    weight_decay: float,
    split_sizes: tuple[int, ...] | None = None,
) -> None:
    """One Muon update, in place, of `param` and `momentum_buffer` (both (rows, cols) like grad)."""
    momentum_buffer.lerp_(grad, 1.0 - momentum)
    direction = grad.lerp(momentum_buffer, momentum) if nesterov else momentum_buffer
    if weight_decay != 0.0:
        param.mul_(1.0 - lr * weight_decay)
    param.add_(orthogonal_update(direction, ns_steps, split_sizes), alpha=-lr)


class Muon(Optimizer):
    """Muon on groups with `use_muon=True`, AdamW on groups with `use_muon=False`.

    Pass groups from `scratchlm.optimizers.muon_param_groups`, or dicts of your own with
    "params" and "use_muon". Keys a group leaves out take the defaults below: `lr` for AdamW
    groups and `muon_lr` for Muon groups; `weight_decay` for both; `momentum`, `nesterov` and
    `ns_steps` for Muon groups (and `split_sizes`, default None); `betas` and `eps` for AdamW
    groups. `lr` is the base that a schedule sets (each group's `lr_scale` is its lr / `lr`).
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        lr: float = 1e-3,
        muon_lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        check_adamw_hyperparameters(lr, betas, eps, weight_decay)
        if lr == 0:
            raise ValueError("lr must be > 0: group lr_scale values are relative to it")
        if muon_lr < 0:
            raise ValueError(f"muon_lr must be >= 0, got {muon_lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if ns_steps < 1:
            raise ValueError(f"ns_steps must be >= 1, got {ns_steps}")
        self.base_lr = lr
        self.muon_defaults = {
            "lr": muon_lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_steps": ns_steps,
            "weight_decay": weight_decay,
            "split_sizes": None,
        }
        self.adamw_defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
        }
        # Defaults depend on the group kind, so add_param_group fills them instead of torch.
        super().__init__(params, {})

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if not isinstance(param_group, dict) or "use_muon" not in param_group:
            raise ValueError(
                "Muon takes parameter groups with a 'use_muon' flag: build them with "
                "scratchlm.optimizers.muon_param_groups(model.named_parameters(), ...)"
            )
        use_muon = param_group["use_muon"]
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if use_muon and any(p.ndim != 2 for p in params):
            shapes = [tuple(p.shape) for p in params if p.ndim != 2]
            raise ValueError(f"Muon groups take only 2-D matrices; got shapes {shapes}")
        split_sizes = param_group.get("split_sizes")
        if split_sizes is not None and any(p.shape[0] != sum(split_sizes) for p in params):
            shapes = [tuple(p.shape) for p in params]
            raise ValueError(f"split_sizes {split_sizes} must sum to the rows of {shapes}")
        group = {**(self.muon_defaults if use_muon else self.adamw_defaults), **param_group}
        group["params"] = params
        group.setdefault("lr_scale", group["lr"] / self.base_lr)
        super().add_param_group(group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = evaluate_closure(closure)
        for group in self.param_groups:
            if not group["use_muon"]:
                adamw_group_step(group, self.state)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                muon_update_(
                    p,
                    p.grad,
                    state["momentum_buffer"],
                    lr=group["lr"],
                    momentum=group["momentum"],
                    nesterov=group["nesterov"],
                    ns_steps=group["ns_steps"],
                    weight_decay=group["weight_decay"],
                    split_sizes=group["split_sizes"],
                )
        return loss
