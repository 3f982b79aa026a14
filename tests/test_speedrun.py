"""`scratchlm speedrun` on the miniature preset: every stage, reruns skip, interruptions resume."""

import json
from pathlib import Path

import pytest
from cli_runner import ForkRunner

import scratchlm.speedrun as sr

pytestmark = pytest.mark.slow

STAGES = ["corpus", "tokenizer", "tokenize", "pretrain", "task", "sft", "pairs", "dpo", "grpo",
          "evaluate"]  # fmt: skip


def test_speedrun_end_to_end_then_rerun_skips(tmp_path: Path, cli: ForkRunner) -> None:
    # As the README's quick form runs it: in an empty directory, into the default location.
    result = cli.run(["speedrun", "--preset", "mini"], tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "runs" / "speedrun-mini"
    assert result.stdout.strip().endswith(f"report: {Path('runs/speedrun-mini/report.md')}")
    assert sorted(p.stem for p in (out / "stages").glob("*.json")) == sorted(STAGES)
    report = (out / "report.md").read_text()
    for stage in STAGES:
        assert f"| {stage} |" in report
    assert "Validation loss" in report and "constraint-satisfaction rate" in report
    for stage in ("pretrain", "sft", "dpo", "grpo"):
        assert (out / f"{stage}-loss.png").stat().st_size > 1000
        assert f"| {stage} | " in report.split("constraint-satisfaction rate")[1]
    # The mini preset's DPO trains on pairs built from the SFT model's own answers.
    pairs = (out / "pairs" / "preference.jsonl").read_text().splitlines()
    dpo_data = json.loads((out / "dpo" / "config.json").read_text())["data"]
    assert len(pairs) == 24 and dpo_data == str(Path("runs/speedrun-mini/pairs/preference.jsonl"))

    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    assert cli.run(["speedrun", "--preset", "mini"], tmp_path).returncode == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()} == before

    # Another config into the same directory is refused, naming the key that differs.
    result = cli.run(["speedrun", "--preset", "mini", "tokenizer.vocab_size=300"], tmp_path)
    assert result.returncode == 2 and "tokenizer.vocab_size=320" in result.stderr

    # A bad setting is refused before any stage runs.
    bad = ["speedrun", "--preset", "mini", "--out", "bad", "posttrain.self_pairs_task=nope"]
    result = cli.run(bad, tmp_path)
    assert result.returncode == 2 and "posttrain.self_pairs_task must be one of" in result.stderr
    assert not (tmp_path / "bad").exists()


def test_interrupted_pretraining_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    real_pretrain = sr.pretrain

    def interrupted(cfg: sr.PretrainConfig, resume: str | None = None) -> dict:
        """What SIGINT/SIGTERM at step 3 does: a checkpoint, then a normal return."""
        stopped = sr.replace(cfg, training=sr.replace(cfg.training, stop_after=3))
        return real_pretrain(stopped, resume=resume)

    cfg = sr.make_config("mini", ["posttrain.method=none"])
    monkeypatch.setattr(sr, "pretrain", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sr.speedrun(cfg, out)
    assert not (out / "stages" / "pretrain.json").exists()
    monkeypatch.setattr(sr, "pretrain", real_pretrain)
    sr.speedrun(cfg, out)
    rows = [
        json.loads(line) for line in (out / "pretrain" / "metrics.jsonl").read_text().splitlines()
    ]
    train_steps = [r["step"] for r in rows if "loss" in r]
    assert train_steps == [2, 4, 6]  # steps 1-3 before the stop, 4-6 after the resume
    assert json.loads((out / "stages" / "pretrain.json").read_text())["step"] == 6
