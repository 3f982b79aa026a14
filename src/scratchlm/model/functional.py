"""Numerically stable `softmax` and `cross_entropy`, written out rather than borrowed from torch.

Both rest on one identity: for any constant m, softmax(x) = exp(x - m) / sum(exp(x - m)). Taking
m = max(x) makes every exponent <= 0 (no overflow) and the largest term exactly 1 (the sum cannot
underflow to 0), so the log of the sum is always finite.
"""

from typing import Literal

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along `dim`, computed as exp(x - max) / sum(exp(x - max)). Same shape and dtype as x.

    A slice that is entirely -inf has no defined softmax and yields NaN, as in torch.
    """
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim, keepdim=True)


# Rows per block in `_logsumexp_rows`: about 2**20 elements (4 MB of fp32) whatever the vocab.
_BLOCK_ELEMENTS = 2**20


def _logsumexp_rows(x: Tensor) -> Tensor:
    """log(sum(exp(x))) of each row of x (N, V) -> (N,), as m + log(sum(exp(x - m))), m = max.

    Rows go through in blocks, so the exp(x - m) scratch is a few MB that the allocator reuses
    rather than a fresh (N, V) buffer (for 2048 x 10000 logits on a CPU, about 2x faster).
    """
    rows = max(1, _BLOCK_ELEMENTS // x.shape[-1])
    out = []
    for block in x.split(rows):
        m = block.amax(dim=-1, keepdim=True)
        out.append((block - m).exp_().sum(dim=-1).log_() + m.squeeze(-1))
    return torch.cat(out)


class _TokenNLL(torch.autograd.Function):
    """Per-row NLL, -log softmax(x)[t] = logsumexp(x) - x[t], with a hand-written backward.

    Forward keeps only the logits (already alive) and one logsumexp per row. Backward uses
    d nll_i / d x_ij = softmax(x_i)_j - [j == t_i], computed in place in a single (N, V) buffer,
    instead of letting autograd keep a full log-softmax tensor. Rows where `valid` is False get
    loss 0 and zero gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
        lse = _logsumexp_rows(x)
        nll = (lse - x.gather(-1, targets[:, None]).squeeze(-1)) * valid
        ctx.save_for_backward(x, targets, valid, lse)
        return nll

    @staticmethod
    def backward(ctx, grad_nll: Tensor) -> tuple[Tensor, None, None]:
        x, targets, valid, lse = ctx.saved_tensors
        grad = (x - lse[:, None]).exp_()  # softmax(x)
        grad.scatter_add_(-1, targets[:, None], grad.new_full((x.shape[0], 1), -1.0))
        grad.mul_((grad_nll * valid)[:, None])
        return grad, None, None


def cross_entropy(
    logits: Tensor,
    targets: Tensor,
    ignore_index: int = -100,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Tensor:
    """Cross-entropy of integer targets under softmax(logits), like `F.cross_entropy`.

    logits: (..., V), any float dtype, computed in fp32 (fp64 stays fp64); targets: (...) int64,
    where a target equal to `ignore_index` (e.g. a masked prompt token or padding) contributes
    neither loss nor gradient. reduction "mean" averages over the non-ignored targets (NaN when
    every target is ignored, as in torch), "sum" adds them, "none" returns the per-target losses
    with shape (...) and 0 where ignored. A target outside [0, V) that is not ignore_index makes
    the gather raise.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    vocab_size = logits.shape[-1]
    x = logits.reshape(-1, vocab_size).to(torch.promote_types(logits.dtype, torch.float32))
    flat = targets.reshape(-1)
    valid = flat != ignore_index
    nll = _TokenNLL.apply(x, flat.where(valid, 0), valid.to(x.dtype))
    if reduction == "none":
        return nll.reshape(targets.shape)
    if reduction == "sum":
        return nll.sum()
    return nll.sum() / valid.sum()
