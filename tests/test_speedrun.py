"""`scratchlm speedrun` on the miniature preset: every stage, reruns skip, interruptions resume."""

import json
from pathlib import Path

import pytest

import scratchlm.speedrun as sr
from scratchlm.cli import main

pytestmark = pytest.mark.slow

STAGES = ["corpus", "tokenizer", "tokenize", "pretrain", "task", "sft", "pairs", "dpo", "grpo",
          "evaluate"]  # fmt: skip


def test_speedrun_end_to_end_then_rerun_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    assert main(["speedrun", "--preset", "mini", "--out", str(out)]) == 0
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
    assert len(pairs) == 24 and dpo_data == str(out / "pairs" / "preference.jsonl")

    before = {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()}
    capsys.readouterr()
    assert main(["speedrun", "--preset", "mini", "--out", str(out)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "stages").iterdir()} == before

    # Another config into the same directory is refused, naming the key that differs.
    code = main(["speedrun", "--preset", "mini", "--out", str(out), "tokenizer.vocab_size=300"])
    assert code == 2
    assert "tokenizer.vocab_size=320" in capsys.readouterr().err

    # A bad setting is refused before any stage runs.
    code = main(["speedrun", "--preset", "mini", "--out", str(tmp_path / "bad"),
                 "posttrain.self_pairs_task=nope"])  # fmt: skip
    assert code == 2 and "posttrain.self_pairs_task must be one of" in capsys.readouterr().err
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
