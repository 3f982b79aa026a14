"""GRPO: group-normalised advantages, the clipped token-level loss, and a short run."""

import json
from pathlib import Path

import pytest
import torch
from posttrain_helpers import make_base_checkpoint

from scratchlm.eval.tasks import Task
from scratchlm.posttrain.grpo import GRPOConfig, group_advantages, grpo_loss, run_grpo
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig


def test_advantages_are_zero_mean_unit_std_per_group() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.2, 0.4, 0.9, 0.1], [3.0, 3.0, 3.0, 3.0]])
    adv = group_advantages(rewards)
    torch.testing.assert_close(adv.mean(dim=1), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(adv[:2].std(dim=1, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert torch.equal(adv[2], torch.zeros(4))  # a group that all scores the same teaches nothing
    torch.testing.assert_close(adv[0], torch.tensor([1.0, -1.0, -1.0, 1.0]), atol=1e-4, rtol=0)
    centred = group_advantages(rewards, scale=False)
    torch.testing.assert_close(centred[1], rewards[1] - 0.4, atol=1e-6, rtol=0)


def test_on_policy_loss_is_token_weighted_policy_gradient() -> None:
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    adv = torch.tensor([2.0, -1.0])
    loss, stats = grpo_loss(logp, logp.detach(), adv, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx(-(2.0 + 2.0 - 1.0) / 3)  # ratio 1 everywhere, 3 tokens
    loss.backward()
    # d/dlogp of -ratio * A / n_tokens at ratio 1 is -A / 3 on masked tokens, 0 elsewhere
    expected = torch.tensor([[-2.0 / 3, -2.0 / 3, 0.0], [1.0 / 3, 0.0, 0.0]])
    torch.testing.assert_close(logp.grad, expected)
    assert stats["clip_frac"] == 0.0


def test_ratio_beyond_the_clip_gets_no_gradient() -> None:
    logp_old = torch.zeros(1, 2)
    logp = torch.tensor([[0.5, -0.5]], requires_grad=True)  # ratios e^0.5 = 1.65, e^-0.5 = 0.61
    loss, stats = grpo_loss(logp, logp_old, torch.tensor([1.0]), torch.ones(1, 2), clip_eps=0.2)
    loss.backward()
    # positive advantage: the raised token is clipped (no gradient); the lowered one still pushes up
    assert logp.grad[0, 0].item() == 0.0
    assert logp.grad[0, 1].item() == pytest.approx(-torch.exp(torch.tensor(-0.5)).item() / 2)
    assert stats["clip_frac"] == pytest.approx(1.0)


def test_kl_penalty_is_zero_at_the_reference_and_positive_away_from_it() -> None:
    logp = torch.tensor([[-1.0, -2.0]])
    mask = torch.ones(1, 2)
    adv = torch.zeros(1)
    _, at_ref = grpo_loss(logp, logp, adv, mask, 0.2, logp_ref=logp.clone(), kl_coef=0.1)
    loss, away = grpo_loss(logp, logp, adv, mask, 0.2, logp_ref=logp - 0.5, kl_coef=0.1)
    assert at_ref["kl"] == pytest.approx(0.0)
    assert away["kl"] > 0.0 and loss.item() == pytest.approx(0.1 * away["kl"])


def test_a_few_grpo_steps_raise_a_trivially_learnable_reward(
    tmp_path: Path, corpus_text: str
) -> None:
    # Reward: the share of the letter "a" in the completion. A random tiny model rarely writes it;
    # the policy gradient should move probability towards tokens made of a's within a few steps.
    def share_of_a(prompt: str, completion: str) -> float:
        return completion.count("a") / len(completion) if completion else 0.0

    task = Task(prompts=lambda n, seed: ["Say something."] * n, reward=share_of_a)
    base = make_base_checkpoint(tmp_path, corpus_text)
    cfg = GRPOConfig(
        policy=str(base),
        out_dir=str(tmp_path / "grpo"),
        group_size=8,
        max_new_tokens=8,
        eval_prompts=2,
        reuse=2,
        kl_coef=0.01,
        optimizer=OptimizerConfig(lr=1e-2, weight_decay=0.0),
        schedule=ScheduleConfig(name="constant", warmup_steps=0),
        training=TrainingConfig(
            steps=24,
            batch_size=4,
            device="cpu",
            eval_interval=100,
            log_interval=4,
            checkpoint_interval=100,
        ),  # fmt: skip
    )
    run_grpo(cfg, task=task)
    lines = (tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()
    rewards = [json.loads(line)["reward"] for line in lines if '"reward"' in line]
    assert len(rewards) == 6
    assert rewards[-1] > rewards[0] + 0.2, rewards
