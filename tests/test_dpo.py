"""DPO: the loss against hand-computed values, and its statistics."""

import math

import pytest
import torch

from scratchlm.posttrain.dpo import dpo_loss, dpo_stats


def test_dpo_loss_matches_hand_computation() -> None:
    pi_w, pi_l = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    ref_w, ref_l = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -2.0])
    beta = 0.5
    # row 0: 0.5 * ((-1 + 1.5) - (-2 + 1.5)) = 0.5; row 1: 0.5 * ((-3 + 2) - (-1 + 2)) = -1.0
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.0))) / 2
    assert dpo_loss(pi_w, pi_l, ref_w, ref_l, beta).item() == pytest.approx(expected, rel=1e-6)
    stats = dpo_stats(pi_w, pi_l, ref_w, ref_l, beta)
    assert stats["reward_margin"] == pytest.approx((0.5 - 1.0) / 2)
    assert stats["accuracy"] == pytest.approx(0.5)


def test_dpo_loss_is_log2_when_policy_equals_reference() -> None:
    logp_w, logp_l = torch.randn(8) * 5, torch.randn(8) * 5
    loss = dpo_loss(logp_w, logp_l, logp_w.clone(), logp_l.clone(), beta=0.1)
    assert loss.item() == pytest.approx(math.log(2.0), rel=1e-6)


def test_dpo_gradient_raises_chosen_and_lowers_rejected() -> None:
    pi_w = torch.tensor([-2.0], requires_grad=True)
    pi_l = torch.tensor([-2.0], requires_grad=True)
    dpo_loss(pi_w, pi_l, torch.tensor([-2.0]), torch.tensor([-2.0]), beta=1.0).backward()
    assert pi_w.grad.item() == pytest.approx(-0.5)  # d/dx -log sigmoid(x) at 0 = -1/2
    assert pi_l.grad.item() == pytest.approx(0.5)
