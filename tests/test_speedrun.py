"""`scratchlm speedrun` on the miniature preset: every stage, reruns skip, interruptions resume."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import scratchlm.pipeline.stages as stages
from scratchlm.cli import main
from scratchlm.pipeline import make_config, speedrun
from scratchlm.train.loop import LoopResult
from scratchlm.train.pretrain import PretrainConfig

pytestmark = pytest.mark.slow

STAGES = ["corpus", "tokenizer", "tokenize", "pretrain", "task", "sft", "pairs", "dpo", "grpo",
          "evaluate"]  # fmt: skip


def test_speedrun_end_to_end_then_rerun_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a user runs it: in an empty directory, without --out, into runs/speedrun-mini.
    env = {k: v for k, v in os.environ.items() if k != "SCRATCHLM_HOME"}
    command = [sys.executable, "-m", "scratchlm", "speedrun", "--preset", "mini"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {Path('runs/speedrun-mini/report.md')}"
    out = tmp_path / "runs" / "speedrun-mini"
    assert sorted(p.stem for p in (out / "stages").glob("*.json")) == sorted(STAGES)
    report = (out / "report.md").read_text()
    for stage in STAGES:
        assert f"| {stage} |" in report
    assert "Validation loss" in report and "constraint-satisfaction rate" in report
    assert "in 6 steps" in report and "time budget" not in report
    assert "| pretraining dtype | float32 |" in report  # mini keeps dtype auto: fp32 on a CPU
    for stage in ("pretrain", "sft", "dpo", "grpo"):
        assert (out / f"{stage}-loss.png").stat().st_size > 1000
        assert f"| {stage} | " in report.split("constraint-satisfaction rate")[1]
    # The mini preset's DPO trains on pairs built from the SFT model's own answers.
    pairs = (out / "pairs" / "preference.jsonl").read_text().splitlines()
    dpo_data = json.loads((out / "dpo" / "config.json").read_text())["data"]
    assert len(pairs) == 24 and dpo_data == str(Path("runs/speedrun-mini/pairs/preference.jsonl"))

    # The same command again, in-process: every stage is skipped, report.md is rewritten.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCRATCHLM_HOME", raising=False)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    capsys.readouterr()
    assert main(["speedrun", "--preset", "mini"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()} == before
    assert (out / "report.md").read_text() == report  # rebuilt from the markers alone

    # Another config into the same directory is refused, naming the key that differs.
    code = main(["speedrun", "--preset", "mini", "tokenizer.vocab_size=300"])
    assert code == 2
    assert "tokenizer.vocab_size=320" in capsys.readouterr().err
    code = main(["speedrun", "--preset", "mini", "--budget", "90s"])
    assert code == 2
    assert "pretrain.training.time_budget=None, not '90s'" in capsys.readouterr().err

    # A bad setting is refused before any stage runs.
    code = main(["speedrun", "--preset", "mini", "--out", str(tmp_path / "bad"),
                 "posttrain.self_pairs_task=nope"])  # fmt: skip
    assert code == 2 and "posttrain.self_pairs_task must be one of" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_interrupted_pretraining_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    real_pretrain = stages.pretrain

    def interrupted(cfg: PretrainConfig, resume: str | None = None) -> LoopResult:
        """What SIGINT/SIGTERM at step 3 does: a checkpoint, then a normal return."""
        stopped = replace(cfg, training=replace(cfg.training, stop_after=3))
        return real_pretrain(stopped, resume=resume)

    cfg = make_config("mini", ["posttrain.method=none"])
    monkeypatch.setattr(stages, "pretrain", interrupted)
    with pytest.raises(KeyboardInterrupt):
        speedrun(cfg, out)
    assert not (out / "stages" / "pretrain.json").exists()
    monkeypatch.setattr(stages, "pretrain", real_pretrain)
    speedrun(cfg, out)
    rows = [
        json.loads(line) for line in (out / "pretrain" / "metrics.jsonl").read_text().splitlines()
    ]
    train_steps = [r["step"] for r in rows if "loss" in r]
    assert train_steps == [2, 4, 6]  # steps 1-3 before the stop, 4-6 after the resume
    marker = json.loads((out / "stages" / "pretrain.json").read_text())
    assert marker["step"] == marker["steps"] == 6
    assert marker["checkpoint"] == str(out / "pretrain" / "checkpoints" / "step_00000006")


@pytest.mark.slow
def test_speedrun_with_a_harness_stage_reports_its_table(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    out = tmp_path / "run"
    # The mini model's 128-token context is too short for story_endings' continuations.
    overrides = ["posttrain.method=none", "harness.tasks=['story_perplexity']", "harness.limit=4"]
    assert main(["speedrun", "--preset", "mini", "--out", str(out), *overrides]) == 0
    report = (out / "report.md").read_text()
    assert "## Evaluation (lm-evaluation-harness)" in report
    assert "| story_perplexity | bits_per_byte |" in report
    results = json.loads((out / "harness" / "pretrain.json").read_text())
    assert set(results["results"]) == {"story_perplexity"}
