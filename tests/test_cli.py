"""The dispatcher: every command's help, --print-config, precedence, conflicts and typos."""

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from posttrain_helpers import make_base_checkpoint

from scratchlm.cli import COMMANDS, main
from scratchlm.config import load_config
from scratchlm.data.prepare import TokenizeConfig
from scratchlm.posttrain.dpo import DPOConfig
from scratchlm.posttrain.grpo import GRPOConfig
from scratchlm.posttrain.sft import SFTConfig
from scratchlm.tokenizer.bpe import TrainTokenizerConfig
from scratchlm.train.config import TrainingConfig
from scratchlm.train.pretrain import DataConfig, PretrainConfig

CONFIGS = {
    "train": PretrainConfig,
    "sft": SFTConfig,
    "dpo": DPOConfig,
    "grpo": GRPOConfig,
    "train-tokenizer": TrainTokenizerConfig,
    "tokenize": TokenizeConfig,
}


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory (and SCRATCHLM_HOME inside it), to see what a command creates."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRATCHLM_HOME", str(tmp_path / "home"))
    return tmp_path


def test_top_level_help_lists_every_command_and_imports_no_stage() -> None:
    code = (
        "import sys; from scratchlm.cli import build_parser; "
        "print(build_parser([]).format_help()); print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.startswith("usage: scratchlm")
    for name in {name.split()[0] for name in COMMANDS}:
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name
    assert out.strip().endswith("False")  # no stage module (and so no torch) was imported


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*name.split(), "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: scratchlm {name}")
    assert len(out.split("\n\n")[1]) > 40  # the description
    if name in CONFIGS:
        assert "--config FILE" in out and "--print-config" in out and "KEY=VALUE" in out
        assert ("--resume" in out) == (name in ("train", "sft", "dpo", "grpo"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["train", "training.steps=300", "optimizer.lr=0.002", "data.val_path=v.npy"],
            replace(
                PretrainConfig(),
                training=replace(TrainingConfig(), steps=300),
                optimizer=replace(PretrainConfig().optimizer, lr=0.002),
                data=DataConfig(val_path="v.npy"),
            ),
        ),
        (
            ["sft", "--base", "b", "--data", "d.jsonl", "--out", "o", "--skip-malformed",
             "training.steps=50"],
            replace(SFTConfig(), base="b", data="d.jsonl", out_dir="o", skip_malformed=True,
                    training=replace(SFTConfig().training, steps=50)),
        ),
        (
            ["dpo", "--policy", "p", "--data", "d.jsonl", "--reference", "r", "beta=0.2"],
            replace(DPOConfig(), policy="p", data="d.jsonl", reference="r", beta=0.2),
        ),
        (
            ["grpo", "--policy", "p", "--task", "arithmetic", "--out", "o", "group_size=4"],
            replace(GRPOConfig(), policy="p", task="arithmetic", out_dir="o", group_size=4),
        ),
        (
            ["train-tokenizer", "--data-path", "a.txt", "--output-dir", "tok", "--vocab-size",
             "300", "--special-tokens", "<|endoftext|>", "<|pad|>", "--num-processes", "1"],
            TrainTokenizerConfig("a.txt", "tok", 300, ("<|endoftext|>", "<|pad|>"), 1),
        ),
        (
            ["tokenize", "--dataset-path", "a.txt", "--output-path", "a.npy", "--tokenizer-dir",
             "tok", "--special-tokens", "<|endoftext|>", "--queue-size", "3", "chunk_size=1000"],
            TokenizeConfig("a.txt", "a.npy", "tok", ("<|endoftext|>",), None, 3, 1000),
        ),
    ],
)  # fmt: skip
def test_print_config_loads_back_and_creates_nothing(
    argv: list[str], expected: object, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--print-config"]) == 0
    out = capsys.readouterr().out
    assert sorted(empty_cwd.iterdir()) == []  # no run directory, no output file
    assert list(yaml.safe_load(out)) == [f.name for f in dataclasses.fields(expected)]
    path = empty_cwd / "printed.yaml"
    path.write_text(out)
    assert load_config(type(expected), path) == expected


def test_precedence_defaults_then_file_then_flags_and_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "tok.yaml"
    file.write_text("data_path: from-file.txt\nvocab_size: 500\nnum_processes: 2\n")
    argv = ["train-tokenizer", "--config", str(file), "--vocab-size", "300", "num_processes=1"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == {"data_path": "from-file.txt", "output_dir": "", "vocab_size": 300,
                       "special_tokens": ["<|endoftext|>"], "num_processes": 1}  # fmt: skip

    file = tmp_path / "sft.yaml"
    file.write_text("out_dir: from-file\ntraining:\n  steps: 300\n  eval_interval: 100\n")
    argv = ["sft", "--config", str(file), "--out", "from-flag", "training.steps=40"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["out_dir"] == "from-flag" and printed["training"]["steps"] == 40
    assert printed["training"]["eval_interval"] == 100  # the file's, over the default 50
    assert printed["training"]["batch_size"] == 16  # the default


def test_overrides_may_follow_flags_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sft", "--base", "b", "training.steps=50", "--out", "o", "training.batch_size=4"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["training"]["steps"] == 50 and printed["training"]["batch_size"] == 4
    argv = ["train-tokenizer", "--special-tokens", "<|endoftext|>", "<|a|>", "vocab_size=300"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["special_tokens"] == ["<|endoftext|>", "<|a|>"] and printed["vocab_size"] == 300


@pytest.mark.parametrize(
    ("argv", "first", "second"),
    [
        (["train-tokenizer", "--vocab-size", "300", "vocab_size=400"], "--vocab-size 300",
         "vocab_size=400"),
        (["sft", "training.steps=3", "training.steps=4"], "training.steps=3", "training.steps=4"),
        (["dpo", "--policy", "a", "policy=b"], "--policy a", "policy=b"),
        (["train", "optimizer.lr=1e-3", "optimizer.lr=2e-3"], "optimizer.lr=1e-3",
         "optimizer.lr=2e-3"),
        (["speedrun", "--preset", "mini", "--out", "run", "pretrain.training.steps=2",
          "pretrain.training.steps=3"], "pretrain.training.steps=2", "pretrain.training.steps=3"),
    ],
)  # fmt: skip
def test_one_key_with_two_values_is_an_error_naming_both(
    argv: list[str], first: str, second: str, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert f"as {first} and as {second}" in err
    assert sorted(empty_cwd.iterdir()) == []


def test_the_same_value_twice_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train-tokenizer", "--vocab-size", "300", "vocab_size=300", "--print-config"]
    assert main(argv) == 0
    assert yaml.safe_load(capsys.readouterr().out)["vocab_size"] == 300
    assert main(["train", "training.steps=1e3", "training.steps=1000", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["training"]["steps"] == 1000


def test_a_flag_twice_with_two_values_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train-tokenizer", "--vocab-size", "300", "--vocab-size", "400", "--print-config"])
    assert exit_info.value.code == 2
    assert "--vocab-size is given twice, as 300 and as 400" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_typo_names_the_valid_keys(
    name: str, empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cls = CONFIGS[name]
    assert main([name, "nosuch=1"]) == 2
    err = capsys.readouterr().err
    valid = ", ".join(f.name for f in dataclasses.fields(cls))
    assert err == f"error: unknown config key 'nosuch'; valid keys under the top level: {valid}\n"
    if "training" in [f.name for f in dataclasses.fields(cls)]:
        assert main([name, "training.stepz=1"]) == 2
        valid = ", ".join(f.name for f in dataclasses.fields(TrainingConfig))
        assert f"unknown config key 'training.stepz'; valid keys under training: {valid}\n" in (
            capsys.readouterr().err
        )
    assert sorted(empty_cwd.iterdir()) == []


def test_bad_values_and_missing_inputs_are_one_line_errors(
    empty_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["train", "training.steps=many", "--print-config"], "training.steps must be an integer"),
        (["train-tokenizer", "--vocab-size", "lots"], "vocab_size must be an integer"),
        (["train-tokenizer", "--output-dir", "tok"], "train-tokenizer needs --data-path"),
        (["tokenize", "--dataset-path", "a.txt"], "tokenize needs --dataset-path"),
        (["sft", "--data", "d.jsonl"], "sft needs a base checkpoint"),
        (["train", "--config", "missing.yaml"], "config file not found: missing.yaml"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, argv
    assert sorted(empty_cwd.iterdir()) == []


def test_unknown_arguments_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["train-tokenizer", "--vocab-sise", "3"], ["data", "synth", "x=1", "--out", "d"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.slow
def test_dpo_and_grpo_command_lines_run_stop_and_resume(
    tmp_path: Path, corpus_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_base_checkpoint(tmp_path, corpus_text)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(
        json.dumps({"prompt": f"Give {n} a ball.", "chosen": f"Here, {n}!", "rejected": "No."})
        + "\n" for n in ("Lily", "Tom", "Mia", "Ben", "Zoe", "Max")
    ))  # fmt: skip
    quick = ["training.device=cpu", "training.batch_size=2", "schedule.warmup_steps=0"]
    dpo = ["dpo", "--policy", str(base), "--data", str(pairs), "--out", str(tmp_path / "dpo")]
    assert main([*dpo, *quick, "training.steps=2", "training.stop_after=1"]) == 0
    assert "dpo stopped at step 1; continue with --resume latest" in capsys.readouterr().out
    assert main([*dpo, *quick, "training.steps=2", "--resume", "latest"]) == 0
    assert "dpo finished at step 2" in capsys.readouterr().out

    grpo = ["grpo", "--policy", str(base), "--task", "arithmetic", "--out", str(tmp_path / "g")]
    grpo += [*quick, "training.steps=1", "group_size=2", "max_new_tokens=4", "eval_prompts=1"]
    assert main(grpo) == 0
    assert "grpo finished at step 1" in capsys.readouterr().out
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["task"] == "arithmetic" and config["policy"] == str(base)
