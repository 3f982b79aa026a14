"""Learning-rate schedules as pure functions of the step, and one function to apply them.

Each schedule maps a 0-based step t to a learning rate:
- `learning_rate_cosine`: linear warmup from 0, cosine decay to the minimum, then the minimum.
- `learning_rate_wsd`: warmup, stable at the maximum, decay to the minimum (linear or 1 - sqrt).
- `learning_rate_constant`: optional linear warmup, then constant.

A training loop calls one each step and hands the result to `set_learning_rate`, which works on
any torch optimizer and honours a per-group `lr_scale` (so Muon and AdamW groups keep their ratio).
"""

import math
from typing import Literal

from torch.optim import Optimizer


def check_warmup(t: int, max_learning_rate: float, warmup_iters: int) -> None:
    """Raise ValueError for a negative step, learning rate or warmup length."""
    if t < 0:
        raise ValueError(f"step t must be >= 0, got {t}")
    if max_learning_rate < 0:
        raise ValueError(f"max_learning_rate must be >= 0, got {max_learning_rate}")
    if warmup_iters < 0:
        raise ValueError(f"warmup_iters must be >= 0, got {warmup_iters}")


def check_floor(max_learning_rate: float, min_learning_rate: float) -> None:
    """Raise ValueError unless 0 <= min_learning_rate <= max_learning_rate."""
    if not 0 <= min_learning_rate <= max_learning_rate:
        raise ValueError(
            f"need 0 <= min_learning_rate <= max_learning_rate, got min {min_learning_rate} "
            f"and max {max_learning_rate}"
        )


def learning_rate_cosine(
    t: int,
    max_learning_rate: float,
    min_learning_rate: float,
    warmup_iters: int,
    cosine_cycle_iters: int,
) -> float:
    """Warmup + cosine schedule.

    t < warmup_iters:                        t / warmup_iters * max
    warmup_iters <= t <= cosine_cycle_iters: min + (1 + cos(pi * (t - warmup_iters) /
                                             (cosine_cycle_iters - warmup_iters))) / 2 * (max - min)
    t > cosine_cycle_iters:                  min
    """
    check_warmup(t, max_learning_rate, warmup_iters)
    check_floor(max_learning_rate, min_learning_rate)
    if cosine_cycle_iters <= warmup_iters:
        raise ValueError(
            f"cosine_cycle_iters ({cosine_cycle_iters}) must be greater than warmup_iters "
            f"({warmup_iters}): it is the step where the cosine reaches the minimum"
        )
    if t < warmup_iters:
        return t / warmup_iters * max_learning_rate
    if t <= cosine_cycle_iters:
        progress = (t - warmup_iters) / (cosine_cycle_iters - warmup_iters)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return min_learning_rate + cosine * (max_learning_rate - min_learning_rate)
    return min_learning_rate


def learning_rate_wsd(
    t: int,
    max_learning_rate: float,
    min_learning_rate: float,
    warmup_iters: int,
    stable_iters: int,
    decay_iters: int,
    decay_shape: Literal["linear", "1-sqrt"] = "linear",
) -> float:
    """Warmup-stable-decay schedule.

    t < w:                   t / w * max                        (w = warmup_iters)
    w <= t < w + s:          max                                (s = stable_iters)
    w + s <= t <= w + s + d: min + f(p) * (max - min), p = (t - w - s) / d   (d = decay_iters)
    t > w + s + d:           min

    f(p) = 1 - p for decay_shape="linear", 1 - sqrt(p) for "1-sqrt" (falls faster at first and
    flattens near the end).
    """
    check_warmup(t, max_learning_rate, warmup_iters)
    check_floor(max_learning_rate, min_learning_rate)
    if stable_iters < 0:
        raise ValueError(f"stable_iters must be >= 0, got {stable_iters}")
    if decay_iters < 1:
        raise ValueError(f"decay_iters must be >= 1, got {decay_iters}")
    if decay_shape not in ("linear", "1-sqrt"):
        raise ValueError(f"decay_shape must be 'linear' or '1-sqrt', got {decay_shape!r}")
    if t < warmup_iters:
        return t / warmup_iters * max_learning_rate
    decay_start = warmup_iters + stable_iters
    if t < decay_start:
        return max_learning_rate
    if t <= decay_start + decay_iters:
        progress = (t - decay_start) / decay_iters
        remaining = 1.0 - progress if decay_shape == "linear" else 1.0 - math.sqrt(progress)
        return min_learning_rate + remaining * (max_learning_rate - min_learning_rate)
    return min_learning_rate


def learning_rate_constant(t: int, max_learning_rate: float, warmup_iters: int = 0) -> float:
    """t / warmup_iters * max during warmup, then max."""
    check_warmup(t, max_learning_rate, warmup_iters)
    if t < warmup_iters:
        return t / warmup_iters * max_learning_rate
    return max_learning_rate


def set_learning_rate(optimizer: Optimizer, learning_rate: float) -> None:
    """Set every group's lr to learning_rate * group's `lr_scale` (1 when the group has none)."""
    for group in optimizer.param_groups:
        group["lr"] = learning_rate * group.get("lr_scale", 1.0)
