"""Global-L2 gradient clipping.

All gradients are treated as one long vector: its L2 norm is measured, and when it exceeds
`max_norm` every gradient is multiplied by the same factor max_norm / (norm + eps), so the
direction of the update is kept and only its length shrinks. Call it after the gradients are
complete (after the all-reduce under DDP) and before `optimizer.step()`.
"""

from collections.abc import Iterable

import torch
from torch import Tensor


def global_grad_norm(grads: list[Tensor]) -> Tensor:
    """L2 norm of all `grads` taken together, as a 0-d fp32 tensor (0 for an empty list)."""
    if not grads:
        return torch.zeros(())
    per_tensor = torch._foreach_norm(grads)
    return torch.linalg.vector_norm(torch.stack([n.float() for n in per_tensor]))


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale the gradients of `parameters` in place so their global L2 norm is at most `max_norm`.

    Parameters without a gradient are skipped. Returns the norm measured before clipping (a 0-d
    tensor), which is what training logs report.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}; to disable clipping, skip it")
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = global_grad_norm(grads)
    # Multiplying by exactly 1.0 leaves a gradient unchanged, so clamping the factor replaces an
    # `if` that would make the GPU wait for the norm.
    scale = (max_norm / (total_norm + eps)).clamp(max=1.0)
    if grads:
        torch._foreach_mul_(grads, scale.to(grads[0].device))
    return total_norm
