"""Time budgets: duration parsing, the sizing formula, and a budgeted run on a fake clock.

No test here reads the real clock: the loop's clock is replaced by one that advances only when an
update (0.5 s) or an evaluation (2 s) runs, so the step count a budget buys is known exactly.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from scratchlm.config import load_config
from scratchlm.train import loop
from scratchlm.train.budget import (
    PROBE_SHARE,
    PROBE_SKIP,
    PROBE_STEPS,
    parse_duration,
    steps_in_budget,
)
from scratchlm.train.pretrain import PretrainConfig, pretrain


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("10m", 600.0), ("1h", 3600.0), ("600", 600.0), ("1.5m", 90.0), (" 2M ", 120)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5s", "10 minutes", "1d", "m", "1e3"])
def test_bad_durations_name_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="training.time_budget must be a positive duration"):
        parse_duration(text)


def test_steps_in_budget_by_hand() -> None:
    # 8 updates done in 6 s of 30; each more costs 0.5 s + 2 s / 10 of evaluation = 0.7 s:
    # floor(24 / 0.7) = 34 more.
    assert steps_in_budget(30.0, 6.0, 8, 0.5, 2.0, 10) == 42
    assert steps_in_budget(30.0, 6.0, 8, 0.5, 0.0, 10) == 8 + 48
    assert steps_in_budget(30.0, 31.0, 8, 0.5, 2.0, 10) == 8  # spent: end now


class FakeClock:
    """perf_counter for the loop: time passes only inside updates and evaluations.

    An update takes 0.5 s, except the first `slow_updates`, which take 3 s (a warm-up), and those
    after update `slower_from`, which take 1 s (the machine got busier)."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        slow_updates: int = 0,
        slower_from: int | None = None,
    ) -> None:
        self.now = 0.0
        self.updates = 0
        real_step, real_eval = loop.train_step, loop.evaluate

        def train_step(*args, **kwargs):
            self.updates += 1
            if self.updates <= slow_updates:
                self.now += 3.0
            else:
                self.now += 1.0 if slower_from is not None and self.updates > slower_from else 0.5
            return real_step(*args, **kwargs)

        def evaluate(*args, **kwargs):
            self.now += 2.0
            return real_eval(*args, **kwargs)

        monkeypatch.setattr(loop, "perf_counter", lambda: self.now)
        monkeypatch.setattr(loop, "train_step", train_step)
        monkeypatch.setattr(loop, "evaluate", evaluate)


def lrs_of(run_dir) -> list[float]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["lr"] for r in rows if "lr" in r]


def budget_config(token_data: dict, out_dir, *overrides: str) -> PretrainConfig:
    base = [
        f"model.vocab_size={token_data['vocab_size']}", "model.context_length=16",
        "model.num_layers=1", "model.d_model=16", "model.num_heads=2",
        f"data.train_path={token_data['train']}", f"data.val_path={token_data['valid']}",
        "schedule.warmup_steps=4", "schedule.min_lr=1e-4", "training.batch_size=2",
        "training.device=cpu", "training.time_budget=30s", "training.eval_interval=10",
        "training.checkpoint_interval=1000", "eval.max_tokens=64", f"logging.out_dir={out_dir}",
    ]  # fmt: skip
    return load_config(PretrainConfig, None, base + list(overrides))


def test_a_budgeted_run_sizes_itself_and_resumes_on_the_same_schedule(
    token_data, tmp_path, monkeypatch
) -> None:
    clock = FakeClock(monkeypatch)
    # Step 0 evaluates (2 s); updates take 0.5 s each. The probe skips 2 updates, times 8 more
    # (4 s, more than 3% of 30 s): 7 s spent at update 10, 0.5 s per update measured, 2 s per
    # evaluation every 10 updates, so floor(23 / 0.7) = 32 more: 42 updates in all.
    result = pretrain(budget_config(token_data, tmp_path / "one"))
    assert (PROBE_SKIP, PROBE_STEPS, PROBE_SHARE) == (2, 8, 0.03)
    assert result.step == result.steps == 42 and not result.stopped
    # Training ended at 6 + 34 x 0.5 + 4 evaluations x 2 = 31 s: within 5% of the budget.
    assert clock.now == pytest.approx(31.0 + 2.0)  # plus the final evaluation, outside it
    state = json.loads((tmp_path / "one/checkpoints/step_00000042/state.json").read_text())
    assert state["schedule"]["total_steps"] == 42
    lrs = lrs_of(tmp_path / "one")
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)  # the cosine decayed over the 42 updates

    # Stopped at 20 and resumed, the run keeps the 42 steps its checkpoint recorded (the clock of
    # the second part would buy another count) and ends where the uninterrupted run ended.
    FakeClock(monkeypatch)
    pretrain(budget_config(token_data, tmp_path / "two", "training.stop_after=20"))
    FakeClock(monkeypatch).now = 500.0
    resumed = pretrain(budget_config(token_data, tmp_path / "two"), resume="latest")
    assert resumed.step == resumed.steps == 42
    a = load_file(str(tmp_path / "one/checkpoints/step_00000042/model.safetensors"))
    b = load_file(str(tmp_path / "two/checkpoints/step_00000042/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_budget_too_short_for_the_warmup_is_refused(token_data, tmp_path, monkeypatch) -> None:
    FakeClock(monkeypatch)
    cfg = budget_config(token_data, tmp_path / "run", "training.time_budget=8s",
                        "schedule.warmup_steps=20")  # fmt: skip
    with pytest.raises(ValueError, match="fits 11 updates, not more than schedule.warmup_steps"):
        pretrain(cfg)


def test_the_probe_skips_the_warm_up_updates(token_data, tmp_path, monkeypatch) -> None:
    clock = FakeClock(monkeypatch, slow_updates=2)
    # Step 0 evaluates (2 s), updates 1-2 take 3 s each, the rest 0.5 s. Timed from update 2 (8 s)
    # to update 10 (12 s): 0.5 s per update; floor((60 - 12) / 0.7) = 68 more: 78 updates, and
    # training ends at 12 + 68 x 0.5 + 7 evaluations x 2 = 60 s, the whole budget and no more.
    # (Timing the second update too, as the first probe did, measured 0.86 s per update: training
    # then ended at 44 s, a quarter of the budget unused.)
    result = pretrain(budget_config(token_data, tmp_path / "run", "training.time_budget=60s"))
    assert result.step == result.steps == 78
    assert clock.now == pytest.approx(60.0 + 2.0)  # plus the final evaluation


@pytest.mark.parametrize(("budget", "timed"), [(1000.0, 60), (10.0, PROBE_STEPS)])
def test_the_probe_times_its_share_of_the_budget(monkeypatch, budget, timed) -> None:
    # 0.5 s per update: 3% of 1000 s is 30 s, 60 updates; of 10 s it is 0.3 s, less than the
    # minimum of 8 updates.
    now = 0.0
    monkeypatch.setattr(loop, "perf_counter", lambda: now)
    probe = loop.Probe()
    assert not probe.ready(1, budget, torch.device("cpu"))  # nothing marked yet
    probe.mark(PROBE_SKIP, torch.device("cpu"))
    updates = PROBE_SKIP
    while not probe.ready(updates, budget, torch.device("cpu")):
        updates += 1
        now += 0.5
    assert updates - PROBE_SKIP == timed


def test_a_wsd_run_follows_a_machine_that_slows_down(token_data, tmp_path, monkeypatch) -> None:
    wsd = ("schedule.name=wsd", "schedule.decay_fraction=0.4", "training.time_budget=60s",
           "training.log_interval=1")  # fmt: skip
    clock = FakeClock(monkeypatch, slower_from=20)
    # The probe measures 0.5 s per update: 7 s spent at update 10, floor(53 / 0.7) = 75 more, 85
    # in all, the decay from update 85 - 34 = 51. From update 20 on each update takes 1 s: counted
    # again every 8 updates from the time per update over the last 6 s (10% of the budget), the
    # plan shrinks while the plateau lasts (to 57 updates, the decay from update 34), and the
    # training part ends at the budget.
    result = pretrain(budget_config(token_data, tmp_path / "wsd", *wsd))
    total = result.steps
    assert result.step == total == 57 and not result.stopped
    assert 57.0 <= clock.now - 2.0 <= 60.0 * 1.05  # the training part, within 5% of the budget
    decay = round(total * 0.4)
    lrs = lrs_of(tmp_path / "wsd")
    assert len(lrs) == total  # one row per update (log_interval 1)
    # The rates are those of a WSD schedule planned for `total` updates from the start: warmup 4,
    # the peak, then a linear decay over the last `decay` updates to min_lr.
    peak, floor = 1e-3, 1e-4
    for t, lr in enumerate(lrs):
        if t < 4:
            expected = peak * t / 4
        elif t < total - decay:
            expected = peak
        else:
            expected = floor + (1 - (t - (total - decay)) / decay) * (peak - floor)
        assert lr == pytest.approx(expected), t
    state = json.loads((tmp_path / f"wsd/checkpoints/step_{total:08d}/state.json").read_text())
    assert state["schedule"]["total_steps"] == total

    # A cosine depends on the total from its first steps: it keeps the probe's 85 and the overrun
    # guard ends it once 5% past the budget, at update 61, still at about 3x min_lr.
    FakeClock(monkeypatch, slower_from=20)
    cosine = pretrain(budget_config(token_data, tmp_path / "cos", *wsd[2:]))
    assert cosine.step == cosine.steps == 61
    assert lrs_of(tmp_path / "cos")[-1] > 2 * floor
