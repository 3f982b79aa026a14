"""Exact resume through the CLI, for every stage of the one training loop.

N steps in one run must equal N/2 steps (`training.stop_after`), then `--resume latest` for the
rest, bit for bit on CPU: weights, optimizer state, the batch source (token sampler, example
order, GRPO's cached rollouts) and every RNG state travel in the checkpoint. N/2 is odd, so GRPO
(a rollout is used for two updates) resumes in the middle of a rollout's reuse.
"""

import json
from pathlib import Path

import pytest
import torch
from posttrain_helpers import make_base_checkpoint
from safetensors.torch import load_file

from scratchlm.cli import main

pytestmark = pytest.mark.slow

STEPS = 6
COMMON = [
    f"training.steps={STEPS}",
    "training.device=cpu",
    f"training.checkpoint_interval={STEPS}",
    "training.eval_interval=2",
    "training.log_interval=1",
    "schedule.name=cosine",
    "schedule.warmup_steps=1",
    "schedule.min_lr=1e-5",
]
NAMES, THINGS = ["Lily", "Tom", "Mia", "Ben", "Zoe", "Max"], ["ball", "kite", "book", "cake"]


def sft_data(path: Path) -> str:
    records = [{"prompt": f"Give {n} a {t}.", "response": f"Here is a {t}, {n}!"}
               for n in NAMES for t in THINGS]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def dpo_data(path: Path) -> str:
    records = [{"prompt": f"Give {n} a {t}.", "chosen": f"Here is a {t}, {n}!", "rejected": "No."}
               for n in NAMES for t in THINGS]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def stage_args(stage: str, tmp_path: Path, corpus_text: str, token_data: dict) -> list[str]:
    """The command line of a short run of `stage` (without --out)."""
    if stage == "train":
        return [
            f"model.vocab_size={token_data['vocab_size']}", "model.context_length=32",
            "model.num_layers=2", "model.d_model=32", "model.num_heads=2",
            f"data.train_path={token_data['train']}", f"data.val_path={token_data['valid']}",
            f"data.tokenizer_dir={token_data['tokenizer_dir']}", "training.batch_size=4",
            "training.grad_accum=2", "training.sample_interval=3", "eval.max_tokens=512",
        ]  # fmt: skip
    base = str(make_base_checkpoint(tmp_path, corpus_text, d_model=32))
    if stage == "sft":
        return ["--base", base, "--data", sft_data(tmp_path / "sft.jsonl"),
                "training.batch_size=4", "training.grad_accum=2"]  # fmt: skip
    if stage == "dpo":
        return ["--policy", base, "--data", dpo_data(tmp_path / "dpo.jsonl"),
                "training.batch_size=4", "held_out=0.2"]  # fmt: skip
    return ["--policy", base, "--task", "arithmetic", "training.batch_size=2",
            "group_size=4", "max_new_tokens=6", "eval_prompts=2", "reuse=2"]  # fmt: skip


def command(stage: str, out: Path, args: list[str], *extra: str) -> list[str]:
    """`stage`, its run directory, `extra` flags, then `args` (flags, then overrides)."""
    if stage == "train":
        return ["train", *extra, *args, f"logging.out_dir={out}"]
    return [stage, "--out", str(out), *extra, *args]


def final_state(run: Path) -> tuple[dict, dict]:
    path = run / "checkpoints" / f"step_{STEPS:08d}"
    optim = torch.load(path / "optimizer.pt", weights_only=True)
    return load_file(str(path / "model.safetensors")), optim


def assert_same(a: object, b: object) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("stage", ["train", "sft", "dpo", "grpo"])
def test_half_then_resume_latest_equals_one_run(stage, tmp_path, corpus_text, token_data) -> None:
    check_resume(stage, stage_args(stage, tmp_path, corpus_text, token_data) + COMMON, tmp_path)


def test_pretraining_with_dropout_resumes_exactly(tmp_path, corpus_text, token_data) -> None:
    # Dropout draws a new mask from torch's RNG at every step: its state travels in the checkpoint.
    args = stage_args("train", tmp_path, corpus_text, token_data) + COMMON + ["model.dropout=0.2"]
    check_resume("train", args, tmp_path)


def check_resume(stage: str, args: list[str], tmp_path: Path) -> None:
    """STEPS steps straight, and STEPS / 2 then `--resume latest`, end in the same state."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(command(stage, straight, args)) == 0
    half = STEPS // 2
    main(command(stage, split, args + [f"training.stop_after={half}"]))
    assert (split / "checkpoints" / f"step_{half:08d}").is_dir()
    assert main(command(stage, split, args, "--resume", "latest")) == 0
    weights_a, optim_a = final_state(straight)
    weights_b, optim_b = final_state(split)
    assert_same(weights_a, weights_b)
    assert_same(optim_a, optim_b)
    rows = [json.loads(line) for line in (split / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if "loss" in r]
    assert train_steps == list(range(1, STEPS + 1))  # each step once, after the resume too
    for row in rows:
        if "loss" in row:
            assert {"loss", "lr", "grad_norm", "tok_per_s", "elapsed_s", "tokens"} <= row.keys()
