"""SFT: JSONL reading and its errors, masked batches, the masked loss, and a short run."""

import json
import logging
import shutil
import signal
from pathlib import Path

import pytest
import torch
from lock_holder import locked_by_another_process
from posttrain_helpers import make_base_checkpoint
from safetensors.torch import load_file

from scratchlm.cli import main
from scratchlm.config import load_config
from scratchlm.data.sft import collate, load_sft_examples, parse_conversation, read_jsonl
from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain import sft as sft_module
from scratchlm.posttrain.dpo import DPOConfig
from scratchlm.posttrain.grpo import GRPOConfig
from scratchlm.posttrain.sft import SFTConfig, run_sft
from scratchlm.posttrain.vocab import resize_token_embeddings
from scratchlm.tokenizer.chat import add_chat_tokens, render_conversation
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig

NAMES = ["Lily", "Tom", "Mia", "Ben", "Zoe", "Max", "Sam", "Ana"]
THINGS = ["ball", "kite", "book", "cake", "dog", "tree", "boat", "star"]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def greeting_records() -> list[str]:
    return [
        json.dumps({"prompt": f"Give {name} a {thing}.", "response": f"Here is a {thing}, {name}!"})
        for name in NAMES
        for thing in THINGS
    ]


def test_malformed_line_is_reported_with_its_number(tmp_path: Path) -> None:
    good = json.dumps({"prompt": "hi", "response": "hello"})
    path = write_jsonl(tmp_path / "d.jsonl", [good, "", good, '{"prompt": "hi"', good])
    with pytest.raises(ValueError, match=r"d\.jsonl:4: .*--skip-malformed"):
        read_jsonl(path, parse_conversation)
    records, skipped = read_jsonl(path, parse_conversation, skip_malformed=True)
    assert (len(records), skipped) == (3, 1)


@pytest.mark.parametrize(
    "record",
    [
        [1, 2],
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"prompt": "hi"},
        {"messages": "hello"},
    ],
)
def test_records_without_an_assistant_turn_are_refused(record) -> None:
    with pytest.raises(ValueError):
        parse_conversation(record)


def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_jsonl(tmp_path / "nope.jsonl", parse_conversation)


def test_long_conversations_are_truncated_with_a_warning(
    tmp_path: Path, corpus_text: str, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = make_base_checkpoint(tmp_path, corpus_text)
    tokenizer = add_chat_tokens(Tokenizer.from_dir(ckpt / "tokenizer"))
    long = json.dumps(
        {"prompt": "Tell a story.", "response": corpus_text[:2000].replace("<|endoftext|>", " ")}
    )
    path = write_jsonl(tmp_path / "d.jsonl", [long] + greeting_records()[:3])
    with caplog.at_level(logging.WARNING):
        examples = load_sft_examples(path, tokenizer, context_length=64)
    assert "1 of 4 conversations longer than 65 tokens: truncated" in caplog.text
    assert max(len(ids) for ids, _ in examples) == 65
    ids, mask = collate(examples, pad_id=0)
    assert ids.shape == mask.shape == (4, 65)
    short_ids, short_mask = render_conversation(
        tokenizer, parse_conversation(json.loads(greeting_records()[0]))
    )
    assert ids[1, : len(short_ids)].tolist() == short_ids
    assert mask[1].tolist() == short_mask + [0.0] * (65 - len(short_mask))  # padding is masked


def test_short_sft_run_lowers_held_out_loss(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    cfg = SFTConfig(
        base=str(base),
        data=str(data),
        out_dir=str(tmp_path / "sft"),
        held_out=0.125,
        optimizer=OptimizerConfig(lr=3e-3, weight_decay=0.0),
        schedule=ScheduleConfig(warmup_steps=2, min_lr=3e-4),
        training=TrainingConfig(
            steps=30,
            batch_size=8,
            device="cpu",
            eval_interval=30,
            log_interval=10,
            checkpoint_interval=30,
        ),  # fmt: skip
    )
    summary = run_sft(cfg)
    evals = [
        json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()
    ]
    val = [e["val_loss"] for e in evals if "val_loss" in e]
    assert len(val) == 2 and val[1] < 0.7 * val[0]
    assert summary.metrics["val_loss"] == val[1]
    saved = Tokenizer.from_dir(summary.checkpoint / "tokenizer")
    base_size = Tokenizer.from_dir(base / "tokenizer").vocab_size
    assert saved.special_ids["<|end|>"] == base_size + 3  # system, user, assistant, end appended


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())

    def config(out: str, steps: int) -> SFTConfig:
        loop = TrainingConfig(steps=8, batch_size=4, device="cpu", eval_interval=100,
                          checkpoint_interval=steps, log_interval=2, keep_last=2)  # fmt: skip
        schedule = ScheduleConfig(warmup_steps=2, min_lr=1e-5)
        return SFTConfig(base=str(base), data=str(data), out_dir=str(tmp_path / out),
                         schedule=schedule, training=loop)  # fmt: skip

    straight = run_sft(config("straight", 8))
    run_sft(config("split", 4), resume=None)  # saves at step 4 (and 8)
    shutil.rmtree(tmp_path / "split" / "checkpoints" / "step_00000008")
    resumed = run_sft(config("split", 4), resume=str(tmp_path / "split/checkpoints/step_00000004"))
    a = load_file(str(straight.checkpoint / "model.safetensors"))
    b = load_file(str(resumed.checkpoint / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sft_command_line(tmp_path: Path, corpus_text: str, capsys) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    args = ["sft", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "run")]
    overrides = [
        "training.steps=2",
        "training.device=cpu",
        "training.batch_size=4",
        "schedule.warmup_steps=0",
    ]
    assert main(args + overrides) == 0
    assert "sft finished at step 2" in capsys.readouterr().out
    assert main(args + ["training.stepz=2"]) == 2
    assert "unknown config key 'training.stepz'" in capsys.readouterr().err
    assert main(args + overrides) == 2  # the run directory already has checkpoints
    assert "--resume latest" in capsys.readouterr().err


@pytest.mark.parametrize("tied", [False, True])
def test_resize_keeps_old_logits_and_adds_mean_rows(tied: bool) -> None:
    torch.manual_seed(0)
    config = ModelConfig(50, 16, num_layers=1, d_model=32, num_heads=4, tie_embeddings=tied)
    model = TransformerLM.from_config(config)
    ids = torch.randint(0, 50, (2, 7))
    before = model(ids).detach()
    old_embeddings = model.token_embeddings.weight.detach().clone()
    resize_token_embeddings(model, 54)
    after = model(ids).detach()
    assert model.config.vocab_size == 54 and after.shape == (2, 7, 54)
    # The same weights, but the head is now a (54, C) matrix: a GEMM of another shape may sum in
    # another order, so the old logits agree to rounding, not bit for bit.
    torch.testing.assert_close(after[..., :50], before, rtol=0, atol=1e-6)
    new_rows = model.token_embeddings.weight[50:]
    torch.testing.assert_close(new_rows, old_embeddings.mean(0).expand(4, -1))
    # a new token's logit is the mean of the old logits (its head row is the mean row)
    torch.testing.assert_close(after[..., 50], before.mean(-1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="cannot shrink"):
        resize_token_embeddings(model, 40)


@pytest.mark.parametrize(
    ("name", "cls"), [("sft", SFTConfig), ("dpo", DPOConfig), ("grpo", GRPOConfig)]
)
def test_post_training_configs_load(name: str, cls: type) -> None:
    path = Path(__file__).parents[1] / "configs" / f"{name}-cpu-tiny.yaml"
    cfg = load_config(cls, path, ["training.steps=70"])
    assert cfg.training.steps == 70 and cfg.optimizer.weight_decay == 0.0


def metrics_steps(run: Path, key: str) -> list[int]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if key in r]


@pytest.mark.slow
def test_sft_resumed_from_an_older_checkpoint_branches_and_latest_follows_the_branch(
    tmp_path: Path, corpus_text: str, capsys, caplog, monkeypatch
) -> None:
    caplog.set_level("INFO")
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    run, ref = tmp_path / "run", tmp_path / "ref"
    loop = ["training.steps=8", "training.batch_size=4", "training.device=cpu",
            "training.checkpoint_interval=2", "training.keep_last=4", "training.eval_interval=4",
            "training.log_interval=1", "schedule.warmup_steps=2"]  # fmt: skip

    def sft(out: Path, *args: str) -> int:
        return main(["sft", "--base", str(base), "--data", str(data), "--out", str(out), *args,
                     *loop])  # fmt: skip

    assert sft(run) == 0
    root = run / "checkpoints"
    shutil.copytree(root / "step_00000004", ref / "checkpoints" / "step_00000004")
    capsys.readouterr()

    real_loss, calls = sft_module.batch_loss, {"n": 0}

    def interrupted_loss(*args):  # Ctrl-C during the second update after the resume
        calls["n"] += 1
        if calls["n"] == 2:
            signal.raise_signal(signal.SIGINT)
        return real_loss(*args)

    monkeypatch.setattr(sft_module, "batch_loss", interrupted_loss)
    status = sft(run, "--resume", str(root / "step_00000004"), "optimizer.lr=3e-4")
    assert status == 128 + signal.SIGINT
    assert "sft stopped at step 6; continue with --resume latest" in capsys.readouterr().out
    [branch] = (run / "branches").iterdir()
    assert sorted(p.name for p in (branch / "checkpoints").iterdir()) == [
        "step_00000006", "step_00000008"
    ]  # fmt: skip
    assert metrics_steps(branch, "loss") == [5, 6, 7, 8]
    assert f"moved step_00000006, step_00000008 and 5 metrics rows to {branch}" in caplog.text

    monkeypatch.setattr(sft_module, "batch_loss", real_loss)
    assert sft(run, "--resume", "latest", "optimizer.lr=3e-4") == 0
    assert "sft finished at step 8" in capsys.readouterr().out
    assert f"resumed sft from {root / 'step_00000006'} at step 6" in caplog.text
    assert metrics_steps(run, "loss") == list(range(1, 9))  # each step once
    assert metrics_steps(run, "val_loss") == [0, 4, 6, 8]  # 6: the stop's own evaluation

    assert sft(ref, "--resume", "latest", "optimizer.lr=3e-4") == 0  # 4 -> 8 without a stop
    a = load_file(str(root / "step_00000008" / "model.safetensors"))
    b = load_file(str(ref / "checkpoints" / "step_00000008" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sft_resume_latest_with_a_damaged_newest_names_the_newest_intact(
    tmp_path: Path, corpus_text: str, capsys
) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    args = ["sft", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "run"),
            "training.steps=4", "training.device=cpu", "training.batch_size=4",
            "training.checkpoint_interval=2", "training.keep_last=2",
            "schedule.warmup_steps=0"]  # fmt: skip
    assert main(args) == 0
    step_2, step_4 = sorted((tmp_path / "run" / "checkpoints").iterdir())
    (step_4 / "model.safetensors").write_bytes(b"")
    capsys.readouterr()
    assert main([*args, "--resume", "latest"]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{step_4 / 'model.safetensors'} is damaged" in err
    assert err.endswith(f"--resume {step_2}") and len(err.splitlines()) == 1


@pytest.mark.parametrize("stage", ["sft", "dpo", "grpo"])
def test_post_training_refuses_a_run_directory_another_process_holds(
    tmp_path: Path, corpus_text: str, capsys, stage: str
) -> None:
    base = str(make_base_checkpoint(tmp_path, corpus_text))
    sft_data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    pairs = [json.loads(r) for r in greeting_records()]
    dpo_data = write_jsonl(
        tmp_path / "dpo.jsonl",
        [
            json.dumps({"prompt": r["prompt"], "chosen": r["response"], "rejected": "No."})
            for r in pairs
        ],
    )
    command = {
        "sft": ["sft", "--base", base, "--data", str(sft_data)],
        "dpo": ["dpo", "--policy", base, "--data", str(dpo_data)],
        "grpo": ["grpo", "--policy", base],
    }[stage]  # fmt: skip
    run = tmp_path / "run"
    with locked_by_another_process(run) as pid:
        assert main([*command, "--out", str(run), "training.device=cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run} is in use by process {pid} ")
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
