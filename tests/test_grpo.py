"""GRPO: the KL estimate, the settings, and short runs (the losses: test_posttrain_functional)."""

import json
from pathlib import Path

import pytest
import torch
from posttrain_helpers import make_base_checkpoint

from scratchlm.eval.tasks import Task
from scratchlm.posttrain.grpo import GRPOConfig, kl_penalty, run_grpo
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig


def test_kl_penalty_by_hand() -> None:
    policy = torch.tensor([[-1.0, -2.0, -0.5]])
    ref = torch.tensor([[-1.0, -1.5, -1.0]])
    r = ref - policy  # 0, 0.5, -0.5
    expected = torch.exp(r) - r - 1.0
    torch.testing.assert_close(kl_penalty(policy, ref), expected)
    assert kl_penalty(policy, ref)[0, 0].item() == 0.0
    assert (kl_penalty(policy, ref)[0, 1:] > 0).all()


@pytest.mark.parametrize(
    "bad",
    [{"loss_type": "ppo"}, {"length_normalization": "tokens"}, {"group_size": 1}, {"reuse": 0}],
)
def test_bad_grpo_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        GRPOConfig(**bad)


def test_grpo_defaults_follow_the_definition() -> None:
    cfg = GRPOConfig()
    assert (cfg.loss_type, cfg.normalize_by_std, cfg.length_normalization) == (
        "grpo_clip", True, "sequence",
    )  # fmt: skip


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


@pytest.mark.parametrize(
    "variant",
    [
        {"loss_type": "no_baseline", "length_normalization": "token"},
        {"loss_type": "reinforce_with_baseline", "normalize_by_std": False},
    ],
)
def test_the_other_loss_types_run(tmp_path: Path, corpus_text: str, variant: dict) -> None:
    task = Task(prompts=lambda n, seed: ["Say something."] * n, reward=lambda p, c: len(c) / 8)
    base = make_base_checkpoint(tmp_path, corpus_text)
    cfg = GRPOConfig(
        policy=str(base), out_dir=str(tmp_path / "grpo"), group_size=2, max_new_tokens=4,
        eval_prompts=1,
        training=TrainingConfig(steps=2, batch_size=2, device="cpu", log_interval=1),
        **variant,
    )  # fmt: skip
    summary = run_grpo(cfg, task=task)
    assert summary.step == 2 and "clip_frac" not in summary.metrics
    assert summary.metrics["entropy"] > 0
