"""The README's commands that write to a default location, run as a user runs them.

Each command is `scratchlm ...` in a process of its own (`cli_runner`), in a working directory
that starts empty, with the README's arguments and no others: `runs/` does not exist until a
command makes it. Two things stand in for what a user's checkout has, to keep this fast: the
README's config files are copied into `configs/` shrunk to a few steps of a tiny model (the
command lines stay the README's), and the token files of the Pretraining quick start are small
ones made from the shared sample text. The quick form of the main command, `scratchlm speedrun
--preset mini`, is run the same way in tests/test_speedrun.py (and by .ci/run).
"""

import shlex
from pathlib import Path

import pytest
import yaml
from cli_runner import ForkRunner
from conftest import SAMPLE_TEXT

from scratchlm.data.tokenfile import TokenFileWriter
from scratchlm.tokenizer import Tokenizer, train_bpe

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[1]
LOOP = {"steps": 2, "batch_size": 2, "eval_interval": 2, "log_interval": 1}
LOOP |= {"checkpoint_interval": 2}
PRETRAIN = {
    "model": {"num_layers": 1, "d_model": 32, "num_heads": 2},
    "schedule": {"warmup_steps": 1},
    "training": {
        "steps": 4,
        "batch_size": 2,
        "checkpoint_interval": 2,
        "eval_interval": 2,
        "sample_interval": 2,
        "log_interval": 2,
    },
    "eval": {"max_tokens": 256, "sample_tokens": 4},
}
SHRUNK = {
    "cpu-tiny": PRETRAIN,
    "cpu": PRETRAIN,
    "sft-cpu-tiny": {"training": LOOP, "schedule": {"warmup_steps": 0}},
    "dpo-cpu-tiny": {"training": LOOP, "schedule": {"warmup_steps": 0}},
    "grpo-cpu-tiny": {"training": LOOP, "group_size": 2, "max_new_tokens": 8, "eval_prompts": 2},
}

# The README's Pretraining quick start and Post-training commands, in its order; sft, dpo and
# grpo without the README's `--out runs/<stage>`, which is where they write by default.
COMMANDS = [
    ("train --config configs/cpu-tiny.yaml", "runs/cpu-tiny/checkpoints"),
    ("train --config configs/cpu-tiny.yaml --resume latest", "runs/cpu-tiny/checkpoints"),
    ("train --config configs/cpu.yaml", "runs/cpu/checkpoints"),
    ("task make --out data/task", "data/task/sft.jsonl"),
    ("sft --config configs/sft-cpu-tiny.yaml --base runs/cpu-tiny --data data/task/sft.jsonl",
     "runs/sft/checkpoints"),
    ("dpo --config configs/dpo-cpu-tiny.yaml --policy runs/sft --data data/task/preference.jsonl",
     "runs/dpo/checkpoints"),
    ("grpo --config configs/grpo-cpu-tiny.yaml --policy runs/sft --task default",
     "runs/grpo/checkpoints"),
    ("generate --checkpoint runs/cpu-tiny --prompt 'Once upon a time' --temperature 0.8 "
     "--top-p 0.95 --seed 0", None),
    ("export-hf --checkpoint runs/sft --out hf-model", "hf-model/model.safetensors"),
    ("import-hf hf-model --out runs/imported", "runs/imported/model.safetensors"),
]  # fmt: skip


def shrunk_configs(cwd: Path, vocab_size: int) -> None:
    """configs/NAME.yaml: the repository's file with the SHRUNK values written over it, and the
    tokenizer's vocab size (as the README's tokenizer has exactly cpu-tiny's 2,048)."""
    (cwd / "configs").mkdir()
    for name, changes in SHRUNK.items():
        config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        if name in ("cpu-tiny", "cpu"):
            config["model"]["vocab_size"] = vocab_size
        for key, value in changes.items():
            config[key] = {**config[key], **value} if isinstance(value, dict) else value
        (cwd / "configs" / f"{name}.yaml").write_text(yaml.safe_dump(config))


def quick_start_data(cwd: Path) -> int:
    """What the quick start's data commands leave in data/stories/, from a small corpus; returns
    the tokenizer's vocab size."""
    stories = cwd / "data" / "stories"
    stories.mkdir(parents=True)
    (stories / "train.txt").write_text(SAMPLE_TEXT * 8, encoding="utf-8")
    vocab, merges = train_bpe(stories / "train.txt", 400, ["<|endoftext|>"], num_processes=1)
    tokenizer = Tokenizer(vocab, merges, ["<|endoftext|>"])
    tokenizer.save(stories / "tokenizer")
    ids = tokenizer.encode(SAMPLE_TEXT * 8)
    for name, part in (("train", ids), ("valid", ids[: len(ids) // 4])):
        with TokenFileWriter(stories / f"{name}.npy", tokenizer.vocab_size) as out:
            out.write(part)
    return tokenizer.vocab_size


def test_the_readme_commands_from_an_empty_directory(tmp_path: Path, cli: ForkRunner) -> None:
    shrunk_configs(tmp_path, quick_start_data(tmp_path))
    assert not (tmp_path / "runs").exists()
    for command, made in COMMANDS:
        result = cli.run(shlex.split(command), tmp_path, timeout=600)
        assert result.returncode == 0, f"scratchlm {command}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        if made is not None:
            assert (tmp_path / made).exists(), f"scratchlm {command} did not write {made}"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "cpu", "cpu-tiny", "dpo", "grpo", "imported", "sft"
    ]  # fmt: skip
