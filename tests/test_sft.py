"""SFT: JSONL reading and its errors, masked batches, the masked loss, and a short run."""

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from posttrain_helpers import make_base_checkpoint
from safetensors.torch import load_file

from scratchlm.cli import main
from scratchlm.config import load_config
from scratchlm.data.sft import collate, load_sft_examples, parse_conversation, read_jsonl
from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain.dpo import DPOConfig
from scratchlm.posttrain.grpo import GRPOConfig
from scratchlm.posttrain.loop import LoopConfig
from scratchlm.posttrain.sft import SFTConfig, masked_cross_entropy, run_sft
from scratchlm.posttrain.vocab import resize_token_embeddings
from scratchlm.tokenizer.chat import add_chat_tokens, render_conversation
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.pretrain import OptimizerConfig, ScheduleConfig

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


def test_masked_cross_entropy_matches_torch_on_the_kept_positions() -> None:
    logits = torch.randn(2, 5, 11)
    targets = torch.randint(0, 11, (2, 5))
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    keep = mask.bool()
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(masked_cross_entropy(logits, targets, mask), expected)


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
        loop=LoopConfig(
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
    assert summary["val_loss"] == val[1]
    saved = Tokenizer.from_dir(Path(summary["checkpoint"]) / "tokenizer")
    base_size = Tokenizer.from_dir(base / "tokenizer").vocab_size
    assert saved.special_ids["<|end|>"] == base_size + 3  # system, user, assistant, end appended


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path: Path, corpus_text: str) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())

    def config(out: str, steps: int) -> SFTConfig:
        loop = LoopConfig(steps=8, batch_size=4, device="cpu", eval_interval=100,
                          checkpoint_interval=steps, log_interval=2, keep_last=2)  # fmt: skip
        schedule = ScheduleConfig(warmup_steps=2, min_lr=1e-5)
        return SFTConfig(base=str(base), data=str(data), out_dir=str(tmp_path / out),
                         schedule=schedule, loop=loop)  # fmt: skip

    straight = run_sft(config("straight", 8))
    run_sft(config("split", 4), resume=None)  # saves at step 4 (and 8)
    shutil.rmtree(tmp_path / "split" / "checkpoints" / "step_00000008")
    resumed = run_sft(config("split", 4), resume=str(tmp_path / "split/checkpoints/step_00000004"))
    a = load_file(str(Path(straight["checkpoint"]) / "model.safetensors"))
    b = load_file(str(Path(resumed["checkpoint"]) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_sft_command_line(tmp_path: Path, corpus_text: str, capsys) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    data = write_jsonl(tmp_path / "sft.jsonl", greeting_records())
    args = ["sft", "--base", str(base), "--data", str(data), "--out", str(tmp_path / "run")]
    overrides = ["loop.steps=2", "loop.device=cpu", "loop.batch_size=4", "schedule.warmup_steps=0"]
    assert main(args + overrides) == 0
    assert "sft finished at step 2" in capsys.readouterr().out
    assert main(args + ["loop.stepz=2"]) == 2
    assert "unknown config key 'loop.stepz'" in capsys.readouterr().err
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
    cfg = load_config(cls, path, ["loop.steps=7"])
    assert cfg.loop.steps == 7 and cfg.optimizer.weight_decay == 0.0
