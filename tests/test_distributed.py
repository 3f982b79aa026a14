"""Data parallelism on CPU: two gloo processes under torchrun match one process with the same global
batch.

Both runs draw the same global batches (the sampler slices one global draw per rank), so they differ
only in where the gradient sum is split: float rounding, hence a small tolerance. DDP runs with SGD,
whose update is linear in the gradients. FSDP needs AdamW; its eps is raised to 1e-3 so the update
g / (sqrt(v) + eps) stays smooth where |g| is tiny (with eps 1e-8 the first step is about
lr * sign(g), and rounding can flip the sign of a near-zero gradient).
"""

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
    token_data: dict, path, out_dir, batch_size: int, parallel: str, optimizer: str
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
