"""DPO: the loss against hand-computed values, its statistics, a short run, shape checks."""

import json
import math
from pathlib import Path

import pytest
import torch
from posttrain_helpers import make_base_checkpoint

from scratchlm.posttrain.dpo import DPOConfig, dpo_stats, run_dpo
from scratchlm.posttrain.functional import dpo_loss
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig


def test_dpo_stats_by_hand() -> None:
    pi_w, pi_l = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    ref_w, ref_l = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -2.0])
    # implicit reward margins: 0.5 * (0.5 + 0.5) = 0.5 and 0.5 * (-1 - 1) = -1.0
    stats = dpo_stats(pi_w, pi_l, ref_w, ref_l, 0.5)
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


def preference_file(path: Path) -> Path:
    names, things = ["Lily", "Tom", "Mia", "Ben", "Zoe", "Max"], ["ball", "kite", "book", "cake"]
    records = [
        {"prompt": f"Give {n} a {t}.", "chosen": f"Here is a {t}, {n}!", "rejected": "No."}
        for n in names
        for t in things
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def dpo_config(tmp_path: Path, policy: Path, **kw) -> DPOConfig:
    loop = TrainingConfig(steps=12, batch_size=8, device="cpu", eval_interval=12, log_interval=4,
                      checkpoint_interval=12)  # fmt: skip
    return DPOConfig(
        policy=str(policy),
        data=str(preference_file(tmp_path / "pref.jsonl")),
        out_dir=str(tmp_path / "dpo"),
        held_out=0.25,
        optimizer=OptimizerConfig(lr=3e-3, weight_decay=0.0),
        schedule=ScheduleConfig(name="constant", warmup_steps=0),
        training=loop,
        **kw,
    )


def test_short_dpo_run_prefers_the_chosen_answers(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    summary = run_dpo(dpo_config(tmp_path, base))
    lines = (tmp_path / "dpo" / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(line) for line in lines if "val_loss" in line]
    assert evals[0]["val_loss"] == pytest.approx(math.log(2.0), abs=1e-5)  # policy == reference
    assert evals[-1]["val_loss"] < 0.5 and evals[-1]["val_accuracy"] == 1.0
    assert summary.metrics["val_reward_margin"] > 0


def test_policy_and_reference_of_different_shapes_are_refused(
    tmp_path: Path, corpus_text: str
) -> None:
    policy = make_base_checkpoint(tmp_path, corpus_text, d_model=64)
    reference = make_base_checkpoint(tmp_path, corpus_text, d_model=32)
    with pytest.raises(ValueError, match=r"differ in model\.d_model \(64 vs 32\)"):
        run_dpo(dpo_config(tmp_path, policy, reference=str(reference)))


@pytest.mark.parametrize("bad", [{"beta": 0.0}, {"nll_coef": -1.0}, {"held_out": 1.0}])
def test_bad_dpo_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        DPOConfig(**bad)
