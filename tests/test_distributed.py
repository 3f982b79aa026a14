"""Data parallelism on CPU: two gloo processes under torchrun match one process with the same global
batch.

Both runs draw the same global batches (the sampler slices one global draw per rank), so they differ
only in where the gradient sum is split: float rounding, hence a small tolerance. DDP runs with SGD,
whose update is linear in the gradients. FSDP needs AdamW; its eps is raised to 1e-3 so the update
g / (sqrt(v) + eps) stays smooth where |g| is tiny (with eps 1e-8 the first step is about
lr * sign(g), and rounding can flip the sign of a near-zero gradient).
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from scratchlm.config import load_config, save_config
from scratchlm.train.pretrain import PretrainConfig

pytestmark = [pytest.mark.dist, pytest.mark.slow]


def write_config(
    token_data: dict, path, out_dir, batch_size: int, parallel: str, optimizer: str, *extra: str
) -> None:
    overrides = [
        f"model.vocab_size={token_data['vocab_size']}",
        "model.context_length=32",
        "model.num_layers=2",
        "model.d_model=32",
        "model.num_heads=2",
        f"data.train_path={token_data['train']}",
        f"data.val_path={token_data['valid']}",
        f"optimizer.name={optimizer}",
        f"optimizer.lr={0.5 if optimizer == 'sgd' else 1e-2}",
        "optimizer.eps=1e-3",
        "optimizer.grad_clip=0.5",
        "schedule.name=constant",
        "schedule.warmup_steps=0",
        "schedule.min_lr=0",
        "training.steps=4",
        f"training.batch_size={batch_size}",
        "training.grad_accum=2",
        "training.device=cpu",
        f"training.parallel={parallel}",
        "training.eval_interval=4",
        f"logging.out_dir={out_dir}",
        *extra,
    ]
    save_config(load_config(PretrainConfig, None, overrides), path)


def run(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize(("parallel", "optimizer"), [("ddp", "sgd"), ("fsdp", "adamw")])
def test_two_gloo_ranks_match_one_process(token_data, tmp_path, parallel, optimizer) -> None:
    write_config(token_data, tmp_path / "one.json", tmp_path / "one", 4, parallel, optimizer)
    write_config(token_data, tmp_path / "two.json", tmp_path / "two", 2, parallel, optimizer)
    run(sys.executable, "-m", "scratchlm", "train", "--config", str(tmp_path / "one.json"))
    run(
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "scratchlm", "train", "--config", str(tmp_path / "two.json"),
    )  # fmt: skip
    one = load_file(str(tmp_path / "one" / "checkpoints" / "step_00000004" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoints" / "step_00000004" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=1e-5)


def test_a_time_budget_ends_every_rank_at_the_same_step(token_data, tmp_path) -> None:
    """Each rank times the probe on its own clock; they agree on when it has timed enough (3% of
    10 s: many of these millisecond updates), on the fewest updates and on when the budget is
    overrun, so no rank waits forever in an all-reduce the others have left."""
    write_config(token_data, tmp_path / "two.json", tmp_path / "two", 2, "ddp", "sgd",
                 "training.time_budget=10s", "training.eval_interval=100000",
                 "training.checkpoint_interval=100000")  # fmt: skip
    run(
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "scratchlm", "train", "--config", str(tmp_path / "two.json"),
    )  # fmt: skip
    (last,) = (tmp_path / "two" / "checkpoints").glob("step_*")
    state = json.loads((last / "state.json").read_text())
    assert int(last.name.removeprefix("step_")) == state["schedule"]["total_steps"] > 10


def posttrain_command(stage: str, base: str, data: str, out, batch_size: int) -> list[str]:
    """A short SGD run of `stage` with global batch 2 x batch_size x processes."""
    flags = {"sft": ["--base", base, "--data", data], "dpo": ["--policy", base, "--data", data],
             "grpo": ["--policy", base, "--task", "arithmetic"]}[stage]  # fmt: skip
    overrides = [
        "optimizer.name=sgd", "optimizer.lr=0.5", "optimizer.grad_clip=0.5",
        "schedule.name=constant", "schedule.warmup_steps=0", "schedule.min_lr=0",
        "training.steps=4", f"training.batch_size={batch_size}", "training.grad_accum=2",
        "training.device=cpu", "training.eval_interval=4", "training.checkpoint_interval=4",
        "training.log_interval=1",
    ]  # fmt: skip
    if stage == "grpo":
        overrides += ["group_size=2", "max_new_tokens=4", "eval_prompts=2"]
    return ["-m", "scratchlm", stage, "--out", str(out), *flags, *overrides]


@pytest.mark.parametrize("stage", ["sft", "dpo"])
def test_post_training_two_gloo_ranks_match_one_process(stage, tmp_path, corpus_text) -> None:
    from posttrain_helpers import make_base_checkpoint

    base = str(make_base_checkpoint(tmp_path, corpus_text, d_model=32))
    names, things = ["Lily", "Tom", "Mia", "Ben", "Zoe", "Max"], ["ball", "kite", "book", "cake"]
    pairs = [(f"Give {n} a {t}.", f"Here is a {t}, {n}!") for n in names for t in things]
    if stage == "sft":
        records = [{"prompt": p, "response": r} for p, r in pairs]
    else:
        records = [{"prompt": p, "chosen": r, "rejected": "No."} for p, r in pairs]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    run(sys.executable, *posttrain_command(stage, base, str(data), tmp_path / "one", 4))
    run(
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        *posttrain_command(stage, base, str(data), tmp_path / "two", 2),
    )  # fmt: skip
    one = load_file(str(tmp_path / "one" / "checkpoints" / "step_00000004" / "model.safetensors"))
    two = load_file(str(tmp_path / "two" / "checkpoints" / "step_00000004" / "model.safetensors"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=1e-5)


def test_grpo_runs_data_parallel(tmp_path, corpus_text) -> None:
    """GRPO under torchrun: each rank samples its own prompts' groups, DDP averages the updates."""
    from posttrain_helpers import make_base_checkpoint

    base = str(make_base_checkpoint(tmp_path, corpus_text, d_model=32))
    run(
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        *posttrain_command("grpo", base, "", tmp_path / "two", 2),
    )  # fmt: skip
    weights = load_file(
        str(tmp_path / "two" / "checkpoints" / "step_00000004" / "model.safetensors")
    )
    assert all(torch.isfinite(w).all() for w in weights.values())
    rows = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert sum('"reward"' in row for row in rows) == 4  # one row per step, from rank 0 only
