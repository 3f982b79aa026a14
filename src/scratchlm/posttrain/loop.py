"""What SFT, DPO and GRPO share: loading a policy in the chat template, and the step loop.

`load_chat_model` reads a checkpoint (a checkpoint directory, or a run directory's newest one), adds
the chat tokens to its tokenizer and grows the model to match (`resize_token_embeddings`).

`train_loop` runs `for step in range(start, steps + 1)` like pretraining: evaluation and the
checkpoint come before the update, so the final step gets them too. A stage supplies `loss_fn(step)`
(the loss of update `step` plus numbers to log) and `eval_fn()` (held-out numbers). Checkpoints use
pretraining's format (`scratchlm.train.checkpoint`) with the chat tokenizer inside, so `scratchlm
chat`, `serve` and the next post-training stage read them like any other. Resume restores weights,
optimizer state and step; each stage derives its data order from (seed, step), so a resumed run
sees the batches an uninterrupted one would have.
"""

import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from scratchlm.config import to_dict
from scratchlm.folders import check_creatable
from scratchlm.model.transformer import TransformerLM
from scratchlm.optimizers import clip_grad_norm
from scratchlm.posttrain.vocab import resize_token_embeddings
from scratchlm.runtime import (
    autocast,
    autocast_dtype,
    keep_freed_memory,
    make_run_dir,
    pick_device,
    seed_everything,
)
from scratchlm.schedulers import set_learning_rate
from scratchlm.tokenizer.chat import add_chat_tokens
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.metrics import MetricsLog
from scratchlm.train.pretrain import (
    OptimizerConfig,
    ScheduleConfig,
    build_optimizer,
    catch_stop_signals,
    learning_rate,
)

log = logging.getLogger(__name__)

LossFn = Callable[[int], tuple[Tensor, dict[str, float]]]
EvalFn = Callable[[], dict[str, float]]


@dataclass(frozen=True)
class LoopConfig:
    """The step loop of a post-training stage; intervals count optimizer steps."""

    steps: int = 200
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    eval_interval: int = 50
    log_interval: int = 10
    checkpoint_interval: int = 100
    keep_last: int = 1

    def __post_init__(self) -> None:
        names = ("steps", "batch_size", "eval_interval", "log_interval", "checkpoint_interval",
                 "keep_last")  # fmt: skip
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")


def default_optimizer(lr: float) -> Callable[[], OptimizerConfig]:
    """AdamW at `lr` without weight decay: fine-tuning should not pull weights towards zero."""
    return lambda: OptimizerConfig(name="adamw", lr=lr, weight_decay=0.0)


def default_schedule(min_lr: float, warmup_steps: int = 10) -> Callable[[], ScheduleConfig]:
    """Cosine from the optimizer's lr down to `min_lr` after a short warmup."""
    return lambda: ScheduleConfig(name="cosine", warmup_steps=warmup_steps, min_lr=min_lr)


@dataclass(frozen=True)
class StageSetup:
    """Everything a stage's loop needs besides its loss: where, what, and how it started."""

    run_dir: Path
    device: torch.device
    amp_dtype: torch.dtype
    model: TransformerLM
    tokenizer: Tokenizer
    optimizer: torch.optim.Optimizer
    start: int
    config: dict[str, Any]

    def amp(self) -> contextlib.AbstractContextManager:
        """A fresh mixed-precision context for forward passes (bf16 on CUDA, none on CPU)."""
        return autocast(self.device, self.amp_dtype)


def load_chat_model(path: str | Path, device: torch.device) -> tuple[TransformerLM, Tokenizer]:
    """A checkpoint's model and tokenizer, with the chat tokens added and the model grown to fit."""
    path = ckpt.find_checkpoint(path)
    if not (path / "tokenizer").is_dir():
        raise FileNotFoundError(
            f"checkpoint {path} has no tokenizer/: pretrain with data.tokenizer_dir set"
        )
    model = ckpt.load_model(path, device).train()
    tokenizer = add_chat_tokens(Tokenizer.from_dir(path / "tokenizer"))
    if tokenizer.vocab_size > model.config.vocab_size:
        resize_token_embeddings(model, tokenizer.vocab_size)
    return model, tokenizer


def check_same_shape(policy: TransformerLM, reference: TransformerLM) -> None:
    """Refuse a reference model whose config differs from the policy's (names the first field)."""
    mine, theirs = policy.config.to_dict(), reference.config.to_dict()
    for key in mine:
        if mine[key] != theirs[key]:
            raise ValueError(
                f"policy and reference differ in model.{key} ({mine[key]!r} vs {theirs[key]!r}); "
                "the reference must be the same model the policy started from"
            )


def setup_stage(stage: str, cfg: Any, source: str, out_dir: str, resume: str | None) -> StageSetup:
    """Seed, pick the device, load the policy (from `source`, or from `resume`), build AdamW.

    `resume` is None (fresh), "latest" or a checkpoint path of this stage's run directory.
    Nothing is written yet: the stage checks its data, then calls `write_run_dir`, so a bad
    input leaves no run directory behind.
    """
    loop: LoopConfig = cfg.loop
    if cfg.schedule.name == "cosine" and cfg.schedule.warmup_steps >= loop.steps:
        raise ValueError(
            f"schedule.warmup_steps ({cfg.schedule.warmup_steps}) must be < loop.steps "
            f"({loop.steps})"
        )
    seed_everything(loop.seed)
    device = pick_device(loop.device)
    keep_freed_memory(device)  # on a CPU: no fresh zero-filled pages for each step
    run_dir = Path(out_dir)
    root = run_dir / "checkpoints"
    resume_path = ckpt.resolve_resume(resume, root) if resume else None
    if resume_path is None and ckpt.list_checkpoints(root):
        raise ValueError(
            f"{run_dir} already has checkpoints: pass --resume latest to continue, or choose "
            "another --out to start fresh"
        )
    check_creatable(run_dir)
    model, tokenizer = load_chat_model(resume_path or source, device)
    optimizer = build_optimizer(model, cfg.optimizer)
    start = 0
    if resume_path is not None:
        loaded = ckpt.load_checkpoint(resume_path)
        optimizer.load_state_dict(loaded.optim_state)
        start = loaded.state["step"]
        log.info("resumed %s from %s at step %d", stage, resume_path, start)
    config = {"model": model.config.to_dict(), "stage": stage, **to_dict(cfg)}
    amp_dtype = autocast_dtype(device, loop.dtype)
    return StageSetup(run_dir, device, amp_dtype, model, tokenizer, optimizer, start, config)


def write_run_dir(setup: StageSetup) -> None:
    """Create the run directory (and its missing parents) with config.json and tokenizer/."""
    run_dir, model = setup.run_dir, setup.model
    make_run_dir(run_dir.name, run_dir.parent)
    (run_dir / "config.json").write_text(json.dumps(setup.config, indent=2) + "\n")
    if not (run_dir / "tokenizer").is_dir():
        setup.tokenizer.save(run_dir / "tokenizer")
    log.info(
        "%s: %.2fM params, vocab %d, %d steps on %s | run dir %s", setup.config["stage"],
        model.config.num_params() / 1e6, model.config.vocab_size, setup.config["loop"]["steps"],
        setup.device, run_dir,
    )  # fmt: skip


def train_loop(
    setup: StageSetup,
    loop: LoopConfig,
    opt_cfg: OptimizerConfig,
    sched_cfg: ScheduleConfig,
    loss_fn: LossFn,
    eval_fn: EvalFn | None,
) -> dict[str, Any]:
    """Run updates `setup.start` .. `loop.steps` - 1; returns a summary of the last numbers."""
    model, optimizer, run_dir = setup.model, setup.optimizer, setup.run_dir
    stage = setup.config["stage"]
    root = run_dir / "checkpoints"
    tok_dir = run_dir / "tokenizer"
    tok_hash = ckpt.tokenizer_hash(tok_dir)
    metrics = MetricsLog(run_dir / "metrics.jsonl")
    last_train: dict[str, float] = {}
    last_eval: dict[str, float] = {}
    sums: dict[str, float] = {}
    interval_steps, interval_start = 0, time.perf_counter()
    saved: Path | None = None
    bar = tqdm(total=loop.steps, initial=setup.start, desc=stage, unit="step", disable=None)
    with catch_stop_signals() as stop, logging_redirect_tqdm():
        for step in range(setup.start, loop.steps + 1):
            last = step == loop.steps or stop.requested
            fresh = step > setup.start or setup.start == 0
            if eval_fn is not None and fresh and (last or step % loop.eval_interval == 0):
                model.eval()
                with torch.no_grad(), setup.amp():
                    last_eval = eval_fn()
                model.train()
                metrics.write({"step": step, **last_eval})
                log.info("step %d/%d | %s", step, loop.steps, _fmt(last_eval))
            if step > setup.start and (last or step % loop.checkpoint_interval == 0):
                state = {
                    "step": step,
                    "stage": stage,
                    "tokenizer_hash": tok_hash,
                    "metrics": {**last_train, **last_eval},
                }
                saved = ckpt.save_checkpoint(
                    root, step, model.state_dict(), optimizer.state_dict(), state,
                    {"ranks": [ckpt.rng_state()]}, setup.config, tok_dir,
                )  # fmt: skip
                ckpt.prune_checkpoints(root, loop.keep_last)
                log.info("saved %s", saved)
            if last:
                break
            lr = learning_rate(step, loop.steps, opt_cfg, sched_cfg)
            set_learning_rate(optimizer, lr)
            with setup.amp():
                loss, stats = loss_fn(step)
            loss.backward()
            if opt_cfg.grad_clip is not None:
                stats["grad_norm"] = float(clip_grad_norm(model.parameters(), opt_cfg.grad_clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            bar.update(1)
            for key, value in {"loss": loss.item(), **stats}.items():
                sums[key] = sums.get(key, 0.0) + value
            interval_steps += 1
            done = step + 1
            if done % loop.log_interval == 0 or done == loop.steps:
                last_train = {k: v / interval_steps for k, v in sums.items()}
                last_train["lr"] = lr
                last_train["s_per_step"] = (time.perf_counter() - interval_start) / interval_steps
                metrics.write({"step": done, **last_train})
                log.info("step %d/%d | %s", done, loop.steps, _fmt(last_train))
                bar.set_postfix(loss=f"{last_train['loss']:.3f}")
                sums, interval_steps, interval_start = {}, 0, time.perf_counter()
    bar.close()
    if saved is None and ckpt.list_checkpoints(root):  # resumed at the end: nothing new to save
        saved = ckpt.list_checkpoints(root)[-1]
    return {
        "stage": stage,
        "step": step,
        **last_train,
        **last_eval,
        "run_dir": str(run_dir),
        "checkpoint": str(saved) if saved else None,
    }


def _fmt(values: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.4g}" for k, v in values.items())
