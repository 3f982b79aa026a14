"""Bad input through the real CLI: one `error: ...` line, exit status 2, no traceback, nothing left.

Each case runs the command line `scratchlm ...` in a process of its own, in an empty working
directory (as a user would type it), after its `prepare` step has put the inputs there (a copied
checkpoint with a truncated file, a text file in Latin-1, ...). Nothing may appear in that
directory: no run directory, no output folder, no temporary file. `expect` is a regular
expression the error line must match, so a case also fails when it is refused for the wrong
reason.

The cases run as forks of one interpreter that imported torch once (`cli_runner.ForkRunner`),
which `test_the_fork_runner_is_a_real_run` checks against plain `python -m scratchlm` processes.
"""

import json
import random
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import ForkRunner, Result, run_process
from conftest import SAMPLE_TEXT
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.config import load_config
from scratchlm.data.tokenfile import TokenFileWriter
from scratchlm.eval.tasks import preference_records, sft_records, write_jsonl
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.pretrain import PretrainConfig, pretrain

Prepare = Callable[[Path, dict[str, Path]], None]
Damage = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """argv: the command line after `scratchlm`, with {name} standing for a path of `inputs`."""

    argv: str
    expect: str
    prepare: Prepare | None = None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good inputs, built once, outside every case's working directory."""
    root = tmp_path_factory.mktemp("inputs")
    paths = {
        "base": write_tiny_checkpoint(root / "base"),
        "postnorm": write_tiny_checkpoint(root / "postnorm", post_norm=True),
        "wide": write_tiny_checkpoint(root / "wide", d_model=64),
        "tok": root / "base" / "tokenizer",
        "text": root / "text.txt",
        "sft": root / "sft.jsonl",
        "pref": root / "pref.jsonl",
        "train": root / "train.npy",
        "config": root / "pretrain.json",
    }
    paths["text"].write_text(SAMPLE_TEXT, encoding="utf-8")
    write_jsonl(paths["sft"], sft_records(8, seed=0))
    write_jsonl(paths["pref"], preference_records(8, seed=0))
    tokenizer = Tokenizer.from_dir(paths["tok"])
    with TokenFileWriter(paths["train"], tokenizer.vocab_size) as out:
        out.write(tokenizer.encode(SAMPLE_TEXT * 4))
    config = {
        "model": {"vocab_size": tokenizer.vocab_size, "context_length": 16, "num_layers": 1,
                  "d_model": 32, "num_heads": 2},
        "data": {"train_path": str(paths["train"]), "val_path": str(paths["train"]),
                 "tokenizer_dir": str(paths["tok"])},
        "schedule": {"warmup_steps": 0, "min_lr": 1e-4},
        "training": {"steps": 2, "batch_size": 2, "device": "cpu", "checkpoint_interval": 1,
                     "eval_interval": 1, "sample_interval": 1, "log_interval": 1},
        "eval": {"max_tokens": 64, "sample_tokens": 4},
        "logging": {"out_dir": "run"},  # relative: inside the case's cwd
    }  # fmt: skip
    paths["config"].write_text(json.dumps(config))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = root / "run"
        pretrain(load_config(PretrainConfig, paths["config"], [f"logging.out_dir={run}"]))
    finally:
        torch.set_num_threads(threads)
    assert (run / "checkpoints" / "step_00000002").is_dir()
    paths["run"] = run
    return paths


# ---------------------------------------------------------------- inputs a case puts in its cwd


def files(contents: dict[str, str | bytes]) -> Prepare:
    """Write each path: content into the working directory (a path ending in / is a folder)."""

    def prepare(cwd: Path, inputs: dict[str, Path]) -> None:
        for name, content in contents.items():
            path = cwd / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if name.endswith("/"):
                path.mkdir()
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    return prepare


def checkpoint(damage: Damage | None = None, source: str = "base") -> Prepare:
    """The tiny checkpoint copied to ./ckpt, then damaged."""

    def prepare(cwd: Path, inputs: dict[str, Path]) -> None:
        shutil.copytree(inputs[source], cwd / "ckpt")
        if damage is not None:
            damage(cwd / "ckpt")

    return prepare


def run_dir(damage: Damage | None = None) -> Prepare:
    """The pretraining run copied to ./run (the config's logging.out_dir); its newest checkpoint,
    ./run/checkpoints/step_00000002, damaged."""

    def prepare(cwd: Path, inputs: dict[str, Path]) -> None:
        shutil.copytree(inputs["run"], cwd / "run")
        if damage is not None:
            damage(cwd / "run" / "checkpoints" / "step_00000002")

    return prepare


def truncated(name: str) -> Damage:
    def damage(ckpt: Path) -> None:
        data = (ckpt / name).read_bytes()
        (ckpt / name).write_bytes(data[: len(data) // 2])

    return damage


def replaced(name: str, content: str | bytes) -> Damage:
    def damage(ckpt: Path) -> None:
        if isinstance(content, bytes):
            (ckpt / name).write_bytes(content)
        else:
            (ckpt / name).write_text(content)

    return damage


def edited(name: str, edit: Callable[[dict], dict]) -> Damage:
    def damage(ckpt: Path) -> None:
        (ckpt / name).write_text(json.dumps(edit(json.loads((ckpt / name).read_text()))))

    return damage


def removed(name: str) -> Damage:
    def damage(ckpt: Path) -> None:
        if (ckpt / name).is_dir():
            shutil.rmtree(ckpt / name)
        else:
            (ckpt / name).unlink()

    return damage


def pickled_code(ckpt: Path) -> None:
    torch.save({"state": {}, "param_groups": [], "trap": random.Random()}, ckpt / "optimizer.pt")


def token_file(ids: list[int], dtype: str) -> Prepare:
    def prepare(cwd: Path, inputs: dict[str, Path]) -> None:
        np.save(cwd / "ids.npy", np.array(ids, dtype=dtype))

    return prepare


def without(key: str) -> Callable[[dict], dict]:
    return lambda d: {k: v for k, v in d.items() if k != key}


def model_field(key: str, value: object) -> Callable[[dict], dict]:
    return lambda d: {**d, "model": {**d["model"], key: value}}


LATIN1 = "caf\xe9 au lait".encode("latin-1")
BLOCKER = files({"f.txt": "a file where a folder would go"})
CHAT = '{"prompt": "Hi", "response": "Hello"}\n'
TRAIN = "train --config {config}"
SFT = (
    "sft --base {base} --data {sft} training.steps=2 training.batch_size=2 schedule.warmup_steps=0"
)
DPO = (
    "dpo --policy {base} --data {pref} training.steps=2 training.batch_size=2 "
    "schedule.warmup_steps=0"
)
GRPO = "grpo --policy {base} training.steps=2 training.batch_size=2 group_size=2"
RESUME = f"{TRAIN} --resume run/checkpoints/step_00000002"


def swap(command: str, setting: str) -> str:
    """`command` with one of its flags (`--data x`) or overrides (`key=x`) given another value: a
    key given two values on one command line is an error of its own."""
    key, sep, value = setting.partition(" ") if setting.startswith("--") else setting.partition("=")
    return re.sub(rf"{re.escape(key + sep)}\S+", lambda _: setting, command)


DAMAGED_WEIGHTS = r"model.safetensors is damaged \(.*\); pass (another|an intact) checkpoint"

CASES: dict[str, Case] = {
    # data synth / prepare
    "synth size 0": Case("data synth --out corpus --size-mb 0", "--size-mb must be a positive"),
    "synth size nan": Case("data synth --out corpus --size-mb nan", "--size-mb must be a positive"),
    "synth negative seed": Case("data synth --out corpus --seed -1", "--seed must be >= 0"),
    "synth out under a file": Case(
        "data synth --out f.txt/corpus --size-mb 0.01", "f.txt is not a folder", BLOCKER
    ),
    "prepare missing input": Case("data prepare nope.txt --out data", "nope.txt"),
    "prepare valid fraction": Case(
        "data prepare {text} --out data --valid-fraction 1.5", "valid fraction must be in"
    ),
    "prepare malformed jsonl": Case(
        "data prepare bad.jsonl --out data",
        "bad.jsonl:2: malformed JSON",
        files({"bad.jsonl": '{"text": "ok"}\n{not json}\n'}),
    ),
    "prepare latin-1": Case(
        "data prepare bad.txt --out data", "not valid UTF-8", files({"bad.txt": LATIN1})
    ),
    "prepare unsupported format": Case(
        "data prepare x.csv --out data", "unsupported format", files({"x.csv": "a,b\n"})
    ),
    # train-tokenizer
    "tokenizer missing data": Case(
        "train-tokenizer --data-path nope.txt --output-dir tok", "not found"
    ),
    "tokenizer empty data": Case(
        "train-tokenizer --data-path e.txt --output-dir tok", "empty", files({"e.txt": ""})
    ),
    "tokenizer latin-1": Case(
        "train-tokenizer --data-path bad.txt --output-dir tok",
        "not valid UTF-8",
        files({"bad.txt": LATIN1}),
    ),
    "tokenizer vocab too small": Case(
        "train-tokenizer --data-path {text} --output-dir tok --vocab-size 100", "vocab.size|256"
    ),
    "tokenizer output under a file": Case(
        "train-tokenizer --data-path {text} --output-dir f.txt/tok",
        "f.txt is not a folder",
        BLOCKER,
    ),
    "tokenizer output is a file": Case(
        "train-tokenizer --data-path {text} --output-dir f.txt",
        "exists and is not a directory",
        BLOCKER,
    ),
    # tokenize
    "tokenize missing dataset": Case(
        "tokenize --dataset-path nope.txt --output-path t.npy --tokenizer-dir {tok}",
        "dataset not found",
    ),
    "tokenize empty dataset": Case(
        "tokenize --dataset-path e.txt --output-path t.npy --tokenizer-dir {tok}",
        "is empty",
        files({"e.txt": ""}),
    ),
    "tokenize missing tokenizer": Case(
        "tokenize --dataset-path {text} --output-path t.npy --tokenizer-dir nope",
        "tokenizer directory",
    ),
    "tokenize unknown separator": Case(
        "tokenize --dataset-path {text} --output-path t.npy --tokenizer-dir {tok} "
        "--special-tokens '<|nope|>'",
        "not special tokens of this tokenizer",
    ),
    "tokenize latin-1": Case(
        "tokenize --dataset-path bad.txt --output-path new/t.npy --tokenizer-dir {tok}",
        "UTF-8",
        files({"bad.txt": LATIN1}),
    ),
    "tokenize output is a folder": Case(
        "tokenize --dataset-path {text} --output-path out_dir --tokenizer-dir {tok}",
        "is a directory",
        files({"out_dir/": ""}),
    ),
    "tokenize output under a file": Case(
        "tokenize --dataset-path {text} --output-path f.txt/t.npy --tokenizer-dir {tok}",
        "f.txt is not a folder",
        BLOCKER,
    ),
    "tokenize chunk size 0": Case(
        "tokenize --dataset-path {text} --output-path t.npy --tokenizer-dir {tok} --chunk-size 0",
        "chunk_size must be >= 1",
    ),
    # train: config
    "train missing config": Case("train --config nope.yaml", "nope.yaml"),
    "train unknown key": Case(f"{TRAIN} model.d_modle=64", "unknown config key 'model.d_modle'"),
    "train bad value": Case(f"{TRAIN} training.steps=many", "training.steps must be an integer"),
    "train steps 0": Case(f"{TRAIN} training.steps=0", "training.steps must be >= 1"),
    "train eval.max_tokens 0": Case(f"{TRAIN} eval.max_tokens=0", "eval.max_tokens must be >= 1"),
    "train stop_after -1": Case(
        f"{TRAIN} training.stop_after=-1", "training.stop_after must be between 1 and"
    ),
    "train stop_after past the end": Case(
        f"{TRAIN} training.stop_after=3", "training.stop_after must be between 1 and"
    ),
    "train warmup too long": Case(f"{TRAIN} schedule.warmup_steps=5", "warmup_steps"),
    "train fsdp with sgd": Case(f"{TRAIN} training.parallel=fsdp optimizer.name=sgd", "adamw only"),
    "train unknown device": Case(f"{TRAIN} training.device=nope", "unknown device"),
    "train run dir under a file": Case(f"{TRAIN} logging.out_dir=f.txt/run", "f.txt", BLOCKER),
    # train: token files
    "train missing token file": Case(
        f"{TRAIN} data.train_path=nope.npy", "token file not found: nope.npy"
    ),
    "train id beyond the vocab": Case(
        f"{TRAIN} data.train_path=ids.npy data.tokenizer_dir=null",
        "contains token id 999 but the model's vocab_size is",
        token_file([1, 2, 999] * 10, "uint16"),
    ),
    "train negative id": Case(
        f"{TRAIN} data.train_path=ids.npy",
        "negative token id -1",
        token_file([1, 2, -1] * 10, "int32"),
    ),
    "train token file too short": Case(
        f"{TRAIN} data.train_path=ids.npy",
        "fewer than context_length",
        token_file([1, 2, 3], "uint16"),
    ),
    "train float token file": Case(
        f"{TRAIN} data.train_path=ids.npy", "not 1-D token ids", token_file([1.0] * 40, "float32")
    ),
    "train token file not npy": Case(
        f"{TRAIN} data.train_path=ids.npy", "not a readable .npy", files({"ids.npy": "hello"})
    ),
    "train tokenizer larger than the model": Case(
        f"{TRAIN} model.vocab_size=300", "model.vocab_size"
    ),
    # train: resume
    "train resume without checkpoints": Case(f"{TRAIN} --resume latest", "no checkpoint under"),
    "train checkpoints without resume": Case(TRAIN, "already has checkpoints", run_dir()),
    "train resume truncated weights": Case(
        RESUME, DAMAGED_WEIGHTS, run_dir(truncated("model.safetensors"))
    ),
    "train resume empty weights": Case(
        RESUME, DAMAGED_WEIGHTS, run_dir(replaced("model.safetensors", b""))
    ),
    "train resume latest, truncated weights": Case(
        f"{TRAIN} --resume latest", "model.safetensors", run_dir(truncated("model.safetensors"))
    ),
    "train resume truncated optimizer": Case(
        RESUME, "optimizer.pt is damaged", run_dir(truncated("optimizer.pt"))
    ),
    "train resume empty optimizer": Case(
        RESUME, "optimizer.pt is damaged", run_dir(replaced("optimizer.pt", b""))
    ),
    "train resume pickled code": Case(RESUME, "refusing to load", run_dir(pickled_code)),
    "train resume state is a list": Case(
        RESUME, "state.json is damaged .*a JSON list", run_dir(replaced("state.json", "[1, 2]"))
    ),
    "train resume state not JSON": Case(
        RESUME, "state.json is damaged .*not valid JSON", run_dir(replaced("state.json", "{"))
    ),
    "train resume state without step": Case(
        RESUME, "state.json is damaged .*'step'", run_dir(edited("state.json", without("step")))
    ),
    "train resume without rng.pt": Case(
        RESUME, "rng.pt is missing: checkpoint .* is incomplete", run_dir(removed("rng.pt"))
    ),
    "train resume other model shape": Case(
        f"{RESUME} model.num_layers=2",
        "has model.num_layers=1 but this run has model.num_layers=2",
        run_dir(),
    ),
    "train resume another run's damaged checkpoint": Case(
        f"{RESUME} logging.out_dir=fresh", DAMAGED_WEIGHTS, run_dir(truncated("model.safetensors"))
    ),
    "train resume not a checkpoint": Case(f"{TRAIN} --resume nope", "not a checkpoint directory"),
    # generate, chat, serve, export, import
    "generate missing checkpoint": Case(
        "generate --checkpoint nope --prompt hi", "neither a checkpoint directory"
    ),
    "generate truncated weights": Case(
        "generate --checkpoint ckpt --prompt hi",
        DAMAGED_WEIGHTS,
        checkpoint(truncated("model.safetensors")),
    ),
    "generate empty weights": Case(
        "generate --checkpoint ckpt --prompt hi",
        DAMAGED_WEIGHTS,
        checkpoint(replaced("model.safetensors", b"")),
    ),
    "generate config.json a list": Case(
        "generate --checkpoint ckpt --prompt hi",
        "config.json is damaged",
        checkpoint(replaced("config.json", "[]")),
    ),
    "generate weights of another shape": Case(
        "generate --checkpoint ckpt --prompt hi",
        "model.safetensors does not match .*config.json",
        checkpoint(edited("config.json", model_field("d_model", 64))),
    ),
    "generate no tokenizer": Case(
        "generate --checkpoint ckpt --prompt hi", "no tokenizer", checkpoint(removed("tokenizer"))
    ),
    "generate unknown device": Case(
        "generate --checkpoint {base} --prompt hi --device nope", "unknown device"
    ),
    "generate negative temperature": Case(
        "generate --checkpoint {base} --prompt hi --temperature -1", "temperature"
    ),
    "generate top-p 0": Case("generate --checkpoint {base} --prompt hi --top-p 0", "top_p"),
    "generate negative max-new-tokens": Case(
        "generate --checkpoint {base} --prompt hi --max-new-tokens -3", "max_new_tokens"
    ),
    "chat truncated weights": Case(
        "chat --checkpoint ckpt", DAMAGED_WEIGHTS, checkpoint(truncated("model.safetensors"))
    ),
    "serve truncated weights": Case(
        "serve --checkpoint ckpt", DAMAGED_WEIGHTS, checkpoint(truncated("model.safetensors"))
    ),
    "serve max-tokens 0": Case("serve --checkpoint {base} --max-tokens 0", "--max-tokens"),
    "export truncated weights": Case(
        "export-hf --checkpoint ckpt --out hf",
        DAMAGED_WEIGHTS,
        checkpoint(truncated("model.safetensors")),
    ),
    "export not a llama": Case(
        "export-hf --checkpoint {postnorm} --out hf", "cannot export .* post_norm=True"
    ),
    "export out exists": Case(
        "export-hf --checkpoint {base} --out hf_dir", "already exists", files({"hf_dir/": ""})
    ),
    "export out under a file": Case(
        "export-hf --checkpoint {base} --out f.txt/hf", "f.txt is not a folder", BLOCKER
    ),
    "import missing folder": Case("import-hf nope --out imported", "has no config.json"),
    "import not a llama": Case(
        "import-hf hf --out imported",
        "import-hf reads Llama models",
        files({"hf/config.json": '{"model_type": "gpt2"}'}),
    ),
    # post-training
    "sft missing data": Case(swap(SFT, "--data nope.jsonl"), "data file not found"),
    "sft malformed line": Case(
        swap(SFT, "--data bad.jsonl"), "bad.jsonl:2: ", files({"bad.jsonl": CHAT + "{not json}\n"})
    ),
    "sft latin-1 line": Case(
        swap(SFT, "--data bad.jsonl"),
        "bad.jsonl:2: not valid UTF-8",
        files({"bad.jsonl": CHAT.encode() + b'{"prompt": "caf\xe9", "response": "x"}\n'}),
    ),
    "sft no assistant turn": Case(
        swap(SFT, "--data bad.jsonl"),
        "bad.jsonl:1: 'messages' must be a list with at least one assistant",
        files({"bad.jsonl": '{"messages": [{"role": "user", "content": "hi"}]}\n'}),
    ),
    "sft not an object": Case(
        swap(SFT, "--data bad.jsonl"),
        "bad.jsonl:1: each line must be a JSON object",
        files({"bad.jsonl": "[1, 2]\n"}),
    ),  # fmt: skip
    "sft empty data": Case(
        swap(SFT, "--data e.jsonl"), "no usable records", files({"e.jsonl": "\n"})
    ),
    "sft held_out 2": Case(f"{SFT} held_out=2", "held_out must be in"),
    "sft steps 0": Case(swap(SFT, "training.steps=0"), "training.steps must be >= 1"),
    "sft unknown key": Case(f"{SFT} training.stepz=3", "unknown config key"),
    "sft warmup too long": Case(f"{SFT} schedule.warmup_steps=5", "warmup_steps"),
    "sft missing base": Case(swap(SFT, "--base nope"), "neither a checkpoint directory"),
    "sft truncated base": Case(
        swap(SFT, "--base ckpt"), DAMAGED_WEIGHTS, checkpoint(truncated("model.safetensors"))
    ),
    "sft empty base weights": Case(
        swap(SFT, "--base ckpt"), DAMAGED_WEIGHTS, checkpoint(replaced("model.safetensors", b""))
    ),
    "sft resume without checkpoints": Case(f"{SFT} --resume latest", "no checkpoint under"),
    "sft out under a file": Case(f"{SFT} --out f.txt/sft", "f.txt is not a folder", BLOCKER),
    "dpo missing data": Case(swap(DPO, "--data nope.jsonl"), "data file not found"),
    "dpo pair without rejected": Case(
        swap(DPO, "--data bad.jsonl"),
        "bad.jsonl:1: ",
        files({"bad.jsonl": '{"prompt": "p", "chosen": "c"}\n'}),
    ),  # fmt: skip
    "dpo beta 0": Case(f"{DPO} beta=0", "beta must be > 0"),
    "dpo reference of another shape": Case(
        f"{DPO} --reference {{wide}}", "policy and reference differ in model.d_model"
    ),
    "dpo truncated policy": Case(
        swap(DPO, "--policy ckpt"), DAMAGED_WEIGHTS, checkpoint(truncated("model.safetensors"))
    ),
    "grpo unknown task": Case(f"{GRPO} --task nope", "unknown task 'nope'"),
    "grpo group size 1": Case(swap(GRPO, "group_size=1"), "group_size must be >= 2"),
    "grpo truncated policy": Case(
        swap(GRPO, "--policy ckpt"), DAMAGED_WEIGHTS, checkpoint(truncated("model.safetensors"))
    ),
    # task
    "task make n 0": Case("task make --out task --n-sft 0", "--n-sft and --n-preference"),
    "task make out under a file": Case(
        "task make --out f.txt/task", "f.txt is not a folder", BLOCKER
    ),
    "task eval missing checkpoint": Case(
        "task eval --checkpoint nope", "neither a checkpoint directory"
    ),
    "task eval truncated weights": Case(
        "task eval --checkpoint ckpt --n 2 --json out/r.json",
        DAMAGED_WEIGHTS,
        checkpoint(truncated("model.safetensors")),
    ),
    "task pairs out is a folder": Case(
        "task pairs --checkpoint {base} --out out_dir --n 2",
        "is a directory",
        files({"out_dir/": ""}),
    ),
    "task pairs unknown task": Case(
        "task pairs --checkpoint {base} --out p.jsonl --task nope --n 2", "unknown task 'nope'"
    ),
    "task pairs n 0": Case("task pairs --checkpoint {base} --out p.jsonl --n 0", "must be >= 1"),
    # speedrun (its default output, runs/speedrun-mini, must not appear)
    "speedrun unknown key": Case(
        "speedrun --preset mini pretrain.training.stepz=3", "unknown config key"
    ),
    "speedrun bad setting": Case(
        "speedrun --preset mini posttrain.self_pairs_task=nope",
        "posttrain.self_pairs_task must be one of",
    ),
    "speedrun out under a file": Case(
        "speedrun --preset mini --out f.txt/run", "f.txt is not a folder", BLOCKER
    ),
}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_case(name: str, inputs: dict[str, Path], tmp_path: Path, run: Callable) -> Result:
    """Prepare the case in an empty directory, run it with `run`, check it left nothing there."""
    case = CASES[name]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    if case.prepare is not None:
        case.prepare(cwd, inputs)
    before = tree(cwd)
    argv = shlex.split(case.argv.format(**{k: str(v) for k, v in inputs.items()}))
    result = run(argv, cwd)
    assert tree(cwd) == before, f"left behind: {sorted(tree(cwd) - before)}"
    shutil.rmtree(cwd)
    return result


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name: str, inputs: dict[str, Path], cli: ForkRunner, tmp_path: Path) -> None:
    result = run_case(name, inputs, tmp_path, cli.run)
    err = result.stderr
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, err
    assert "Traceback" not in err, err
    assert len(errors) == 1, err
    assert re.search(CASES[name].expect, errors[0]), errors[0]


@pytest.mark.parametrize("name", ["train resume state without step", "sft latin-1 line"])
def test_the_fork_runner_is_a_real_run(
    name: str, inputs: dict[str, Path], cli: ForkRunner, tmp_path: Path
) -> None:
    """A forked case prints and exits exactly as `python -m scratchlm` does."""
    forked = run_case(name, inputs, tmp_path, cli.run)
    real = run_case(name, inputs, tmp_path, run_process)
    assert (forked.returncode, forked.stdout) == (real.returncode, real.stdout)
    assert forked.stderr.splitlines()[-1] == real.stderr.splitlines()[-1]
    crash = ["generate", "--checkpoint", str(inputs["base"]), "--prompt", "hi", "--top-k", "x"]
    assert cli.run(crash, tmp_path).returncode == run_process(crash, tmp_path).returncode == 2
