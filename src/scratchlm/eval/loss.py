"""Validation loss, perplexity and bits per byte over a sequential pass of a token file.

Bits per byte divides the summed loss (converted from nats to bits) by the number of UTF-8 bytes the
target tokens stand for, so models with different tokenizers can be compared on the same text:
bpb = sum_i loss_i / (ln 2 * sum_i bytes(target_i)). Special tokens count 0 bytes.
"""

import contextlib
import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from scratchlm.model.functional import cross_entropy


@torch.no_grad()
def loss_sums(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    byte_lengths: Tensor | None = None,
    amp: contextlib.AbstractContextManager | None = None,
) -> Tensor:
    """Sum of per-token losses (nats), number of target tokens and of target bytes over `batches`.

    batches: (inputs, targets) pairs, each (B, T) int64. byte_lengths: (V,) bytes per token id on
    the targets' device, or None (the byte total is then 0). Returns a float64 tensor [loss_sum,
    tokens, bytes] on the targets' device, ready to be all-reduced.
    """
    was_training = model.training
    model.eval()
    totals = None
    for inputs, targets in batches:
        if totals is None:
            totals = torch.zeros(3, dtype=torch.float64, device=targets.device)
        with amp or contextlib.nullcontext():
            logits = model(inputs)
        totals[0] += cross_entropy(logits, targets, reduction="sum").double()
        totals[1] += targets.numel()
        if byte_lengths is not None:
            totals[2] += byte_lengths[targets].sum().double()
    model.train(was_training)
    return totals if totals is not None else torch.zeros(3, dtype=torch.float64)


def eval_metrics(sums: Tensor) -> dict[str, float]:
    """`val_loss`, `val_ppl` and (when bytes were counted) `val_bpb` from `loss_sums`' totals."""
    loss_sum, tokens, n_bytes = (float(v) for v in sums)
    if tokens == 0:
        raise ValueError("the validation pass saw no tokens: the validation file is too short")
    loss = loss_sum / tokens
    metrics = {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0))}
    if n_bytes > 0:
        metrics["val_bpb"] = bits_per_byte(loss_sum, n_bytes)
    return metrics


def bits_per_byte(loss_sum_nats: float, n_bytes: float) -> float:
    """Total loss in nats over a span of text, as bits per UTF-8 byte of that text."""
    return loss_sum_nats / (math.log(2) * n_bytes)
