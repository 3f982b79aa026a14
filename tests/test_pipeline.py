"""`scratchlm.pipeline` without training: typed stage results and their marker files, the stage
runner's skips and reruns, the config-diff guard, `--budget`, the run directory and the report."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import scratchlm.pipeline as pipeline
from scratchlm.cli import main
from scratchlm.pipeline.presets import PRESETS, make_config, mini
from scratchlm.pipeline.report import render_report
from scratchlm.pipeline.results import (
    Answer,
    Corpus,
    Evaluation,
    SelfPairs,
    TaskFiles,
    TaskRate,
    TokenFiles,
    Trained,
    TrainedTokenizer,
    read_marker,
    write_marker,
)
from scratchlm.pipeline.runner import StageRunner, check_same_config, make_out_dir
from scratchlm.pipeline.stages import resume_flag, saved_result, trained
from scratchlm.train.loop import LoopResult

RATE = TaskRate(
    checkpoint="c",
    seed=1234,
    n=4,
    rate=0.25,
    mean_score=0.5,
    rate_story=None,
    rate_arithmetic=0.5,
    samples=(Answer("What is 1 + 1?", "1 + 1 = 2.", 1.0),),
)
PRETRAINED = Trained(
    checkpoint="p/checkpoints/step_00000006",
    run_dir="p",
    step=6,
    steps=6,
    tokens=3072,
    metrics={"loss": 5.9, "tok_per_s": 900.0, "val_loss": 5.8},
    params=36960,
    seconds=17.0,
)
RESULTS = [
    Corpus(train="c/train.txt", valid="c/valid.txt", bytes=200_000, seconds=0.1),
    TrainedTokenizer(dir="tok", vocab_size=320, bytes=196_000, seconds=0.2),
    TokenFiles(
        train="t/train.npy",
        valid="t/valid.npy",
        train_tokens=120_000,
        valid_tokens=4_616,
        train_bytes_per_token=1.61,
        valid_bytes_per_token=1.6,
        seconds=1.1,
    ),
    PRETRAINED,
    TaskFiles(sft="task/sft.jsonl", preference="task/preference.jsonl"),
    SelfPairs(path="pairs/preference.jsonl", pairs=24, checkpoint="sft/checkpoints/step_4"),
    Evaluation(rates={"pretrain": RATE, "sft": replace(RATE, rate=0.5)}, base_story="Once"),
]


@pytest.mark.parametrize("result", RESULTS, ids=lambda r: type(r).__name__)
def test_marker_round_trip(tmp_path: Path, result: object) -> None:
    path = tmp_path / "stage.json"
    write_marker(path, result)
    assert read_marker(path, type(result)) == result
    assert not list(tmp_path.glob(".*.tmp"))


def test_marker_json_reads_as_its_dataclass(tmp_path: Path) -> None:
    """A marker as it lies on disk (written out here by hand) becomes the typed result."""
    path = tmp_path / "evaluate.json"
    rate = {
        "checkpoint": "sft/step_4",
        "seed": 1234,
        "n": 2,
        "rate": 0.5,
        "mean_score": 0.75,
        "rate_story": None,
        "rate_arithmetic": 1.0,
        "samples": [{"prompt": "What is 2 + 2?", "answer": "2 + 2 = 4.", "score": 1.0}],
    }
    path.write_text(json.dumps({"seconds": 3.5, "rates": {"sft": rate}, "base_story": "Once"}))
    result = read_marker(path, Evaluation)
    assert result.seconds == 3.5 and result.base_story == "Once"
    assert result.rates["sft"].samples == (Answer("What is 2 + 2?", "2 + 2 = 4.", 1.0),)
    assert result.rates["sft"].rate_story is None and result.rates["sft"].n == 2

    path.write_text(json.dumps({"seconds": 1, "train": "a", "valid": "b", "bytes": "many"}))
    with pytest.raises(ValueError, match=r"corpus.json is not a Corpus record .*bytes must be"):
        read_marker(path.rename(tmp_path / "corpus.json"), Corpus)


def test_runner_skips_finished_stages_and_reruns_an_interrupted_one(tmp_path: Path) -> None:
    (tmp_path / "stages").mkdir()
    calls: list[str] = []
    corpus = Corpus(train="train.txt", valid="valid.txt", bytes=10)

    def make_corpus() -> Corpus:
        calls.append("corpus")
        return corpus

    def interrupted() -> TaskFiles:
        calls.append("task")
        raise KeyboardInterrupt

    first = StageRunner(tmp_path)
    done = first.run("corpus", Corpus, make_corpus)
    assert done == replace(corpus, seconds=done.seconds) and done.seconds >= 0
    with pytest.raises(KeyboardInterrupt):
        first.run("task", TaskFiles, interrupted)
    assert sorted(p.name for p in (tmp_path / "stages").iterdir()) == ["corpus.json"]

    second = StageRunner(tmp_path)
    assert second.run("corpus", Corpus, make_corpus) == done  # read back, seconds included
    files = TaskFiles(sft="sft.jsonl", preference="preference.jsonl")
    second.run("task", TaskFiles, lambda: files)
    assert calls == ["corpus", "task"]
    assert list(second.results) == ["corpus", "task"]
    assert read_marker(tmp_path / "stages" / "task.json", TaskFiles).sft == "sft.jsonl"


def test_training_stage_resumes_and_a_stopped_loop_is_not_done(tmp_path: Path) -> None:
    run_dir = tmp_path / "sft"
    assert resume_flag(run_dir) is None
    (run_dir / "checkpoints" / "step_00000002").mkdir(parents=True)
    assert resume_flag(run_dir) == "latest"

    loop = LoopResult(
        stage="sft",
        step=2,
        steps=4,
        tokens_seen=100,
        metrics={"loss": 1.0},
        run_dir=run_dir,
        checkpoint=run_dir / "checkpoints" / "step_00000002",
    )
    with pytest.raises(KeyboardInterrupt):
        trained(loop)
    result = trained(replace(loop, step=4), time_budget="90s")
    assert (result.step, result.steps, result.tokens, result.time_budget) == (4, 4, 100, "90s")
    assert result.checkpoint == str(run_dir / "checkpoints" / "step_00000002")


def test_a_run_in_other_processes_is_read_from_its_newest_checkpoint(tmp_path: Path) -> None:
    """What the speedrun learns about a torchrun pretraining from the state.json it left."""
    state = {"stage": "train", "step": 8, "tokens_seen": 4096, "metrics": {"loss": 2.5},
             "schedule": {"name": "cosine", "total_steps": 8, "next_lr": 0.0}}  # fmt: skip
    for step in (4, 8):
        path = tmp_path / "checkpoints" / f"step_{step:08d}"
        path.mkdir(parents=True)
        (path / "state.json").write_text(json.dumps({**state, "step": step}))
    result = trained(saved_result(tmp_path), params=10, time_budget=None)
    assert (result.step, result.steps, result.tokens, result.metrics) == (8, 8, 4096, {"loss": 2.5})
    assert result.checkpoint == str(tmp_path / "checkpoints" / "step_00000008")
    # Stopped while a time-budgeted run was still sizing itself: not finished.
    state["schedule"]["total_steps"] = None
    (tmp_path / "checkpoints" / "step_00000008" / "state.json").write_text(json.dumps(state))
    with pytest.raises(KeyboardInterrupt):
        trained(saved_result(tmp_path))


def test_config_guard_names_the_first_key_that_differs(tmp_path: Path) -> None:
    cfg = make_config("mini", [])
    check_same_config(cfg, tmp_path / "speedrun.json")
    check_same_config(cfg, tmp_path / "speedrun.json")  # the same settings resume
    other = make_config("mini", ["sft.training.steps=5"])
    with pytest.raises(ValueError, match=r"was started with sft.training.steps=4, not 5"):
        check_same_config(other, tmp_path / "speedrun.json")
    # Through speedrun: refused before any stage runs.
    with pytest.raises(ValueError, match=r"sft.training.steps=4, not 5"):
        pipeline.speedrun(other, tmp_path)
    assert not list((tmp_path / "stages").iterdir())


def test_budget_sets_pretraining_time_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    plain = make_config("mini", [])
    assert plain.pretrain.training.time_budget is None
    budgeted = make_config("mini", ["pretrain.training.steps=7"], budget="90s")
    assert budgeted.pretrain.training == replace(
        plain.pretrain.training, steps=7, time_budget="90s"
    )
    assert replace(budgeted, pretrain=plain.pretrain) == plain  # nothing else changes
    same = make_config("mini", ["pretrain.training.time_budget=90s"], budget="90s")
    assert same.pretrain.training.time_budget == "90s"
    with pytest.raises(ValueError, match="--budget 10m and pretrain.training.time_budget=90s"):
        make_config("mini", ["pretrain.training.time_budget=90s"], budget="10m")
    with pytest.raises(ValueError, match="--budget must be a duration"):
        make_config("mini", [], budget="soon")

    # A preset may carry its own budget; --budget replaces it.
    def timed() -> pipeline.SpeedrunConfig:
        cfg = mini()
        return replace(
            cfg,
            pretrain=replace(
                cfg.pretrain, training=replace(cfg.pretrain.training, time_budget="5m")
            ),
        )

    monkeypatch.setitem(PRESETS, "mini", timed)
    assert make_config("mini", []).pretrain.training.time_budget == "5m"
    assert make_config("mini", [], budget="1h").pretrain.training.time_budget == "1h"

    # The command line: --budget reaches the config handed to speedrun.
    seen = []
    monkeypatch.setattr(pipeline, "speedrun", lambda cfg, out: seen.append((cfg, out)) or out)
    assert main(["speedrun", "--preset", "mini", "--budget", "10m", "--out", str(tmp_path)]) == 0
    assert seen[0][0].pretrain.training.time_budget == "10m" and seen[0][1] == tmp_path
    assert main(["speedrun", "--preset", "mini", "--budget", "0s", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: --budget must be a duration like 90s, 10m, 1h or 600 (seconds), got '0s'"
    ]


def test_run_directory_and_its_missing_parents_are_created(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    make_out_dir(tmp_path / "a" / "b" / "run")
    assert (tmp_path / "a" / "b" / "run" / "stages").is_dir()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError, match=r"cannot create .*file/run/stages: .*file is not a folder"):
        make_out_dir(tmp_path / "file" / "run")
    assert main(["speedrun", "--preset", "mini", "--out", str(tmp_path / "file" / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot create {tmp_path / 'file' / 'run'}")
    assert err[0].endswith("file is not a folder")


def test_report_shows_every_stage_and_the_time_budget(tmp_path: Path) -> None:
    names = ["corpus", "tokenizer", "tokenize", "pretrain", "task", "pairs", "evaluate"]
    results = dict(zip(names, RESULTS, strict=True))
    results["dpo"] = Trained(
        checkpoint="d",
        run_dir="d",
        step=4,
        steps=4,
        tokens=800,
        metrics={"loss": 0.6, "val_loss": 0.619, "val_accuracy": 1.0},
    )
    cfg = make_config("mini", [])
    report = render_report(cfg, tmp_path, results, torch.device("cpu"))
    assert "| tokenize | 1.1 | 124,616 | 113,287 | 1.61 bytes/token |" in report
    assert "| pretrain | 17.0 | 3,072 | 900 | val loss 5.800 |" in report
    assert "| pairs | 0.0 |  |  | 24 pairs on the SFT model's own answers |" in report
    assert "| dpo | 0.0 |  |  | held-out loss 0.619, preference accuracy 1.00 |" in report
    assert "| **total** | 18.4 |" in report
    assert "after 3,072 training tokens in 6 steps (36,960 parameters)." in report
    assert "| pretrain | 0.25 | - | 0.50 | 0.500 |" in report
    assert "| sft | 0.50 | - | 0.50 | 0.500 |" in report
    assert "- **sft** (score 1.00): 1 + 1 = 2." in report and "time budget" not in report

    results["pretrain"] = replace(PRETRAINED, steps=40, step=40, time_budget="90s")
    report = render_report(cfg, tmp_path, results, torch.device("cpu"))
    assert "| pretrain | 17.0 | 3,072 | 900 | val loss 5.800, 90s budget: 40 steps |" in report
    assert (
        "The time budget `90s` (90 s for the updates and periodic evaluations) sized the run "
        "to 40 steps; the stage took 17.0 s in all" in report
    )
