"""Schedules vs hand-computed values and torch's CosineAnnealingLR; applying them to optimizers."""

import pytest
import torch
from torch import nn

from scratchlm.optimizers import Muon, muon_param_groups
from scratchlm.schedulers import (
    learning_rate_constant,
    learning_rate_cosine,
    learning_rate_wsd,
    set_learning_rate,
)

# max 1.0, min 0.1, warmup 10, cosine reaches the minimum at step 110.
COSINE_CASES = [
    (0, 0.0),  # warmup starts from 0
    (4, 0.4),
    (10, 1.0),  # end of warmup: the maximum
    (35, 0.868198051534),  # a quarter of the way: 0.1 + 0.9 * (1 + cos(pi / 4)) / 2
    (60, 0.55),  # halfway: the midpoint of max and min
    (85, 0.231801948466),  # three quarters: 0.1 + 0.9 * (1 - cos(pi / 4)) / 2
    (110, 0.1),  # end of the cycle: the minimum
    (111, 0.1),  # floor
    (10_000, 0.1),
]


@pytest.mark.parametrize(("t", "expected"), COSINE_CASES)
def test_cosine_hand_computed(t: int, expected: float) -> None:
    assert learning_rate_cosine(t, 1.0, 0.1, 10, 110) == pytest.approx(expected, abs=1e-10)


def test_cosine_phase_matches_torch_cosine_annealing() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=3e-3)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=90, eta_min=3e-4)
    for t in range(20, 111):
        assert learning_rate_cosine(t, 3e-3, 3e-4, 20, 110) == pytest.approx(
            optimizer.param_groups[0]["lr"], rel=1e-9, abs=1e-12
        )
        optimizer.step()
        reference.step()


# max 1.0, min 0.1, warmup 10, stable 50, decay 20 (steps 60..80).
WSD_CASES = [
    (0, 0.0, 0.0),
    (5, 0.5, 0.5),
    (10, 1.0, 1.0),
    (59, 1.0, 1.0),  # last stable step
    (60, 1.0, 1.0),  # decay starts at progress 0
    (65, 0.775, 0.55),  # progress 1/4: 0.1 + 0.9 * 3/4, and 0.1 + 0.9 * (1 - 1/2)
    (80, 0.1, 0.1),
    (81, 0.1, 0.1),
]


@pytest.mark.parametrize(("t", "linear", "one_minus_sqrt"), WSD_CASES)
def test_wsd_hand_computed(t: int, linear: float, one_minus_sqrt: float) -> None:
    assert learning_rate_wsd(t, 1.0, 0.1, 10, 50, 20) == pytest.approx(linear, abs=1e-12)
    got = learning_rate_wsd(t, 1.0, 0.1, 10, 50, 20, decay_shape="1-sqrt")
    assert got == pytest.approx(one_minus_sqrt, abs=1e-12)


def test_constant_with_warmup() -> None:
    assert [learning_rate_constant(t, 2.0, warmup_iters=4) for t in (0, 1, 4, 999)] == [
        0.0,
        0.5,
        2.0,
        2.0,
    ]
    assert learning_rate_constant(0, 2.0) == 2.0


@pytest.mark.parametrize(
    ("schedule", "match"),
    [
        (lambda: learning_rate_cosine(0, 1.0, 0.1, 20, 10), "greater than warmup_iters"),
        (lambda: learning_rate_cosine(0, 1.0, 0.1, 10, 10), "greater than warmup_iters"),
        (lambda: learning_rate_cosine(0, 0.1, 1.0, 10, 100), "min_learning_rate"),
        (lambda: learning_rate_cosine(-1, 1.0, 0.1, 10, 100), "step t"),
        (lambda: learning_rate_cosine(0, 1.0, 0.1, -1, 100), "warmup_iters"),
        (lambda: learning_rate_wsd(0, 1.0, 0.1, 10, 50, 0), "decay_iters"),
        (lambda: learning_rate_wsd(0, 1.0, 0.1, 10, -1, 20), "stable_iters"),
        (lambda: learning_rate_wsd(0, 1.0, 0.1, 10, 50, 20, decay_shape="cosine"), "decay_shape"),
        (lambda: learning_rate_constant(0, -1.0), "max_learning_rate"),
    ],
)
def test_invalid_arguments_raise(schedule, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schedule()


def test_set_learning_rate_keeps_group_ratios() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 4))
    muon = Muon(muon_param_groups(model.named_parameters(), 0.1), lr=1e-3, muon_lr=0.02)
    set_learning_rate(muon, 5e-4)
    assert [g["lr"] for g in muon.param_groups] == pytest.approx([0.01, 5e-4])
    plain = torch.optim.AdamW(model.parameters(), lr=1.0)
    set_learning_rate(plain, 5e-4)
    assert plain.param_groups[0]["lr"] == 5e-4
