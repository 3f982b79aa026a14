"""Pretraining: `PretrainConfig` and `pretrain(cfg)`, the loop behind `scratchlm train`.

One optimizer step consumes the global batch: training.batch_size sequences x training.grad_accum
micro-steps x world_size ranks, each of model.context_length tokens. Gradients of the micro-steps
are summed locally (DDP's all-reduce runs only on the last one), averaged across ranks, clipped, and
applied with the learning rate of the schedule at that step.

The loop runs `for step in range(start, steps + 1)`: evaluation, the text sample and the checkpoint
come before the update, so the final step (step == steps, after the last update) gets them too. A
checkpoint at step s holds the state after s updates; resuming from it continues with update s + 1
and draws exactly the batches an uninterrupted run would have drawn.
"""

import json
import logging
import math
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from scratchlm.config import to_dict
from scratchlm.data.loader import TokenSampler, eval_batches, open_tokens
from scratchlm.eval.loss import eval_metrics, loss_sums
from scratchlm.folders import check_creatable
from scratchlm.model.config import ModelConfig, tiny
from scratchlm.model.functional import cross_entropy
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.transformer import TransformerLM
from scratchlm.optimizers import SGD, AdamW, Muon, clip_grad_norm, muon_param_groups, param_groups
from scratchlm.runtime import (
    DistInfo,
    autocast,
    autocast_dtype,
    base_dir,
    enable_tf32,
    init_distributed,
    keep_freed_memory,
    make_run_dir,
    seed_everything,
    teardown_distributed,
)
from scratchlm.schedulers import (
    learning_rate_constant,
    learning_rate_cosine,
    learning_rate_wsd,
    set_learning_rate,
)
from scratchlm.tokenizer import Tokenizer
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.distributed import (
    all_reduce,
    full_state,
    gather_objects,
    grad_sync,
    load_full_state,
    wrap_model,
)
from scratchlm.train.metrics import (
    MetricsLog,
    mfu,
    open_wandb,
    peak_flops,
    plot_loss_curve,
    run_record,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataConfig:
    """Token files (.npy from `scratchlm tokenize`) and the tokenizer that made them.

    Without val_path there is no evaluation; without tokenizer_dir no bits per byte and no samples.
    """

    train_path: str = "data/train.npy"
    val_path: str | None = None
    tokenizer_dir: str | None = None


@dataclass(frozen=True)
class OptimizerConfig:
    """lr is the peak learning rate of the schedule; muon_lr applies to Muon's hidden matrices."""

    name: Literal["adamw", "sgd", "muon"] = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    muon_lr: float = 0.02
    grad_clip: float | None = 1.0


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning rate per step: warmup, then cosine or WSD decay to min_lr, or constant.

    For WSD the last decay_fraction of the steps decay to min_lr.
    """

    name: Literal["cosine", "wsd", "constant"] = "cosine"
    warmup_steps: int = 100
    min_lr: float = 1e-4
    decay_fraction: float = 0.2


@dataclass(frozen=True)
class TrainingConfig:
    """The step loop. batch_size is per rank and micro-step (see the module docstring).

    stop_after ends the run early, with a checkpoint, at that step (e.g. to fit a job's time slot);
    the schedule still follows `steps`.
    """

    steps: int = 1000
    batch_size: int = 32
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    compile: bool = False
    parallel: Literal["ddp", "fsdp"] = "ddp"
    checkpoint_interval: int = 500
    keep_last: int = 2
    stop_after: int | None = None


@dataclass(frozen=True)
class EvalConfig:
    """Validation every `interval` steps over the first max_tokens of val_path (None: all of it)."""

    interval: int = 200
    batch_size: int | None = None
    max_tokens: int | None = None
    sample_interval: int = 500
    sample_prompt: str = "Once upon a time"
    sample_tokens: int = 48
    temperature: float = 0.8


@dataclass(frozen=True)
class LoggingConfig:
    """The run directory is out_dir, else $SCRATCHLM_HOME/<run_name> (default ./runs/<run_name>)."""

    run_name: str = "run"
    out_dir: str | None = None
    log_interval: int = 10
    wandb: bool = False
    wandb_project: str = "scratchlm"


@dataclass(frozen=True)
class PretrainConfig:
    model: ModelConfig = field(default_factory=tiny)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def __post_init__(self) -> None:
        t = self.training
        for name in ("steps", "batch_size", "grad_accum", "checkpoint_interval", "keep_last"):
            if getattr(t, name) < 1:
                raise ValueError(f"training.{name} must be >= 1, got {getattr(t, name)}")
        for name, value in (("eval.interval", self.eval.interval),
                            ("eval.sample_interval", self.eval.sample_interval),
                            ("logging.log_interval", self.logging.log_interval)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, value in (("eval.max_tokens", self.eval.max_tokens),
                            ("eval.batch_size", self.eval.batch_size)):  # fmt: skip
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or null (the default), got {value}")
        if t.stop_after is not None and not 1 <= t.stop_after <= t.steps:
            raise ValueError(
                f"training.stop_after must be between 1 and training.steps ({t.steps}), or null "
                f"to run every step; got {t.stop_after}"
            )
        if self.optimizer.lr <= 0:
            raise ValueError(f"optimizer.lr must be > 0, got {self.optimizer.lr}")
        if not 0 <= self.schedule.min_lr <= self.optimizer.lr:
            raise ValueError(
                f"schedule.min_lr ({self.schedule.min_lr}) must be between 0 and optimizer.lr "
                f"({self.optimizer.lr})"
            )
        if self.schedule.name == "cosine" and self.schedule.warmup_steps >= t.steps:
            raise ValueError(
                f"schedule.warmup_steps ({self.schedule.warmup_steps}) must be < training.steps "
                f"({t.steps})"
            )
        if not 0 < self.schedule.decay_fraction <= 1:
            raise ValueError("schedule.decay_fraction must be in (0, 1]")
        if self.optimizer.name != "adamw" and t.parallel == "fsdp":
            raise ValueError(
                "training.parallel=fsdp works with optimizer.name=adamw only (Muon needs whole "
                "matrices; SGD's state has no tensors to shard)"
            )

    def tokens_per_step(self, world_size: int) -> int:
        """Global batch in tokens: batch_size x grad_accum x world_size x context_length."""
        t = self.training
        return t.batch_size * t.grad_accum * world_size * self.model.context_length


def learning_rate(step: int, total: int, opt: OptimizerConfig, sched: ScheduleConfig) -> float:
    """The schedule's learning rate before update `step` (0-based) of `total`."""
    if sched.name == "cosine":
        return learning_rate_cosine(step, opt.lr, sched.min_lr, sched.warmup_steps, total)
    if sched.name == "wsd":
        decay = max(1, round(total * sched.decay_fraction))
        warmup = min(sched.warmup_steps, total - decay)
        stable = total - decay - warmup
        return learning_rate_wsd(step, opt.lr, sched.min_lr, warmup, stable, decay)
    return learning_rate_constant(step, opt.lr, min(sched.warmup_steps, total))


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    """AdamW or Muon, decaying only matrices (`scratchlm.optimizers.param_groups`), or SGD."""
    named = list(model.named_parameters())
    if cfg.name == "sgd":
        return SGD([p for _, p in named], lr=cfg.lr)
    if cfg.name == "muon":
        groups = muon_param_groups(named, cfg.weight_decay)
        return Muon(groups, lr=cfg.lr, muon_lr=cfg.muon_lr, betas=cfg.betas, eps=cfg.eps,
                    weight_decay=cfg.weight_decay)  # fmt: skip
    groups = param_groups(named, cfg.weight_decay)
    return AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


class StopRequest:
    """Set by SIGINT/SIGTERM: the loop finishes its step, saves and exits."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.requested = True


@contextmanager
def catch_stop_signals() -> Iterator[StopRequest]:
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class Progress:
    """What the loop has done so far; saved in each checkpoint's state.json."""

    step: int = 0
    tokens_seen: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    last_train: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)


def pretrain(cfg: PretrainConfig, resume: str | None = None) -> dict[str, Any]:
    """Train `cfg.model` on `cfg.data` (joining a torchrun group when launched by torchrun).

    resume: None (fresh run), "latest" (newest checkpoint of this run directory) or a checkpoint
    path. Returns a summary: final step, tokens seen, last train and val metrics, run directory and
    last checkpoint.
    """
    info = init_distributed(cfg.training.device)
    try:
        return _pretrain(cfg, resume, info)
    finally:
        teardown_distributed()


def _pretrain(cfg: PretrainConfig, resume: str | None, info: DistInfo) -> dict[str, Any]:
    t, m, device = cfg.training, cfg.model, info.device
    enable_tf32()
    keep_freed_memory(device)  # on a CPU: no fresh zero-filled pages for each step
    amp_dtype = autocast_dtype(device, t.dtype)
    amp = autocast(device, amp_dtype)

    tokenizer_dir = Path(cfg.data.tokenizer_dir) if cfg.data.tokenizer_dir else None
    tokenizer = load_tokenizer(tokenizer_dir, m.vocab_size)
    byte_lengths = None
    if tokenizer is not None:
        lengths = tokenizer.token_byte_lengths() + [0] * (m.vocab_size - tokenizer.vocab_size)
        byte_lengths = torch.tensor(lengths, dtype=torch.int64, device=device)
    train_data = open_tokens(cfg.data.train_path, m.vocab_size, m.context_length)
    val_data = open_tokens(cfg.data.val_path, m.vocab_size, 1) if cfg.data.val_path else None

    run_dir = Path(cfg.logging.out_dir or base_dir() / cfg.logging.run_name)
    ckpt_root = run_dir / "checkpoints"
    resume_path = ckpt.resolve_resume(resume, ckpt_root) if resume else None
    if resume_path is None and ckpt.list_checkpoints(ckpt_root):
        raise ValueError(
            f"{run_dir} already has checkpoints: pass --resume latest to continue, or set another "
            "logging.run_name to start fresh"
        )
    check_creatable(run_dir)  # fail now; the directory itself comes once the inputs have loaded

    seed_everything(t.seed)  # the same initial weights on every rank (FSDP does not broadcast)
    model = TransformerLM.from_config(m, device=device)
    seed_everything(t.seed, info.rank)
    wrapped = wrap_model(model, t.parallel, device, info.world_size, t.compile)
    optimizer = build_optimizer(model, cfg.optimizer)  # after FSDP swapped in sharded parameters
    sampler = TokenSampler(
        train_data, t.batch_size, m.context_length, device, t.seed, info.rank, info.world_size
    )
    tok_hash = ckpt.tokenizer_hash(tokenizer_dir)
    progress = Progress()
    if resume_path is not None:
        progress = restore(resume_path, model, optimizer, sampler, cfg, tok_hash, info)

    tokens_per_step = cfg.tokens_per_step(info.world_size)
    config_dict = to_dict(cfg)
    metrics_log = None
    if info.is_main:
        make_run_dir(run_dir.name, run_dir.parent)
        metrics_log = start_run_record(
            cfg, config_dict, run_dir, device, amp_dtype, info.world_size
        )
        if tokenizer is None:
            log.info("no data.tokenizer_dir: no bits per byte and no text samples")
    peak = peak_flops(device)
    sample_generator = torch.Generator(device=device).manual_seed(t.seed)
    start = progress.step
    last_ckpt: Path | None = None
    loss_sum = torch.zeros((), device=device)
    grad_norm = torch.zeros((), device=device)
    interval_start, interval_steps, run_start = time.perf_counter(), 0, time.perf_counter()
    bar = tqdm(total=t.steps, initial=start, desc="train", unit="step",
               disable=None if info.is_main else True)  # fmt: skip

    with catch_stop_signals() as stop, logging_redirect_tqdm(), bar:
        for step in range(start, t.steps + 1):
            progress.step = step
            pause_start = time.perf_counter()  # evaluation and saving are left out of tok/s
            stopping = agree_to_stop(stop.requested, device) or step == t.stop_after
            last = step == t.steps or stopping
            new_step = step > start or resume_path is None  # a resumed step was already evaluated

            if val_data is not None and new_step and (last or step % cfg.eval.interval == 0):
                progress.last_val = validate(model, val_data, cfg, byte_lengths, amp, info)
                if info.is_main:
                    metrics_log.write({"step": step, **progress.last_val})
                    values = " | ".join(f"{k} {v:.4f}" for k, v in progress.last_val.items())
                    log.info("step %d/%d | %s", step, t.steps, values)

            if (
                tokenizer is not None
                and step > start
                and (last or step % cfg.eval.sample_interval == 0)
            ):
                log.info("sample: %r", text_sample(model, tokenizer, cfg.eval, sample_generator))

            if step > start and (last or step % t.checkpoint_interval == 0):
                saved = save(ckpt_root, model, optimizer, sampler, progress, cfg, config_dict,
                             tok_hash, tokenizer_dir, info)  # fmt: skip
                last_ckpt = saved or last_ckpt

            if last:
                break
            interval_start += time.perf_counter() - pause_start

            lr = learning_rate(step, t.steps, cfg.optimizer, cfg.schedule)
            set_learning_rate(optimizer, lr)
            loss, grad_norm = train_step(
                wrapped, model, optimizer, sampler, cfg, amp, info.world_size
            )
            loss_sum += loss
            progress.tokens_seen += tokens_per_step
            interval_steps += 1
            bar.update(1)

            done = step + 1
            if done % cfg.logging.log_interval == 0 or done == t.steps:
                stats = all_reduce(
                    torch.stack([loss_sum / interval_steps, grad_norm.float()]), "mean"
                )
                mean_loss, mean_norm = stats.tolist()
                if not math.isfinite(mean_loss):
                    raise ValueError(
                        f"training loss became {mean_loss} by step {done}: lower optimizer.lr, "
                        "keep optimizer.grad_clip on, or resume from an earlier checkpoint"
                    )
                tok_s = interval_steps * tokens_per_step / (time.perf_counter() - interval_start)
                progress.last_train = {
                    "loss": mean_loss,
                    "lr": lr,
                    "grad_norm": mean_norm,
                    "tok_per_s": tok_s,
                }
                if peak is not None:
                    progress.last_train["mfu"] = mfu(
                        tok_s, m.flops_per_token(), peak * info.world_size
                    )
                if info.is_main:
                    elapsed = time.perf_counter() - run_start
                    metrics_log.write({"step": done, "tokens": progress.tokens_seen,
                                       **progress.last_train, "elapsed_s": elapsed})  # fmt: skip
                    log.info(status_line(done, t.steps, progress.last_train))
                    bar.set_postfix(loss=f"{mean_loss:.3f}", lr=f"{lr:.1e}", tok_s=f"{tok_s:.0f}")
                loss_sum.zero_()
                interval_start, interval_steps = time.perf_counter(), 0

    if info.is_main:
        metrics_log.close()
        plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss.png")
    return {
        "step": progress.step,
        "tokens_seen": progress.tokens_seen,
        **progress.last_train,
        **progress.last_val,
        "run_dir": str(run_dir),
        "checkpoint": str(last_ckpt) if last_ckpt else None,
    }


def load_tokenizer(tokenizer_dir: Path | None, vocab_size: int) -> Tokenizer | None:
    """The run's tokenizer, checked to fit in the model's vocabulary (None without a directory)."""
    if tokenizer_dir is None:
        return None
    tokenizer = Tokenizer.from_dir(tokenizer_dir)
    if tokenizer.vocab_size > vocab_size:
        raise ValueError(
            f"the tokenizer in {tokenizer_dir} has {tokenizer.vocab_size} tokens but "
            f"model.vocab_size is {vocab_size}; set model.vocab_size={tokenizer.vocab_size}"
        )
    return tokenizer


def validate(
    model: torch.nn.Module,
    val_data: np.ndarray,
    cfg: PretrainConfig,
    byte_lengths: Tensor | None,
    amp: AbstractContextManager,
    info: DistInfo,
) -> dict[str, float]:
    """Validation loss, perplexity and bits per byte over the validation tokens (all ranks call).

    Under DDP the batches are split across ranks and the sums all-reduced. Under FSDP every forward
    is a collective, so each rank runs the whole pass on the same batches.
    """
    split = cfg.training.parallel == "ddp"
    rank, world = (info.rank, info.world_size) if split else (0, 1)
    batch_size = cfg.eval.batch_size or cfg.training.batch_size
    batches = eval_batches(val_data, batch_size, cfg.model.context_length, info.device,
                           cfg.eval.max_tokens, rank, world)  # fmt: skip
    sums = loss_sums(model, batches, byte_lengths, amp)
    return eval_metrics(all_reduce(sums) if split else sums)


def text_sample(
    model: TransformerLM, tokenizer: Tokenizer, cfg: EvalConfig, generator: torch.Generator
) -> str:
    """The sample prompt continued by the model (KV-cache sampling, stops at <|endoftext|>)."""
    prompt = tokenizer.encode(cfg.sample_prompt)[-model.config.context_length :]
    room = model.config.context_length - len(prompt) + 1
    eot = tokenizer.special_ids.get("<|endoftext|>")
    sampling = SamplingConfig(
        max_new_tokens=max(0, min(cfg.sample_tokens, room)),
        temperature=cfg.temperature,
        stop_ids=() if eot is None else (eot,),
    )
    was_training = model.training
    model.eval()
    new = generate(model, [prompt], sampling, generator)[0]
    model.train(was_training)
    return cfg.sample_prompt + tokenizer.decode(new)


def train_step(
    wrapped: torch.nn.Module,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: TokenSampler,
    cfg: PretrainConfig,
    amp: AbstractContextManager,
    world_size: int,
) -> tuple[Tensor, Tensor]:
    """One optimizer update over grad_accum micro-batches.

    Returns the mean micro-batch loss and the gradient norm before clipping, as 0-d tensors left on
    the device (reading them would make the host wait for the GPU every step).
    """
    accum = cfg.training.grad_accum
    total = torch.zeros((), device=model_device(model))
    for micro in range(accum):
        inputs, targets = sampler.next_batch()
        with grad_sync(wrapped, enabled=micro == accum - 1):
            with amp:
                logits = wrapped(inputs)
            loss = cross_entropy(logits, targets) / accum
            loss.backward()
        total += loss.detach()
    grad_norm = torch.zeros((), device=total.device)
    clip = cfg.optimizer.grad_clip
    if clip is not None and cfg.training.parallel == "fsdp" and world_size > 1:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)  # sharded grads
    elif clip is not None:
        grad_norm = clip_grad_norm(model.parameters(), clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def agree_to_stop(requested: bool, device: torch.device) -> bool:
    """True when any rank caught a stop signal, so that all ranks stop at the same step."""
    if not torch.distributed.is_initialized():
        return requested
    flag = torch.tensor(float(requested), device=device)
    return all_reduce(flag, "max").item() > 0


def status_line(step: int, total: int, metrics: dict[str, float]) -> str:
    """`step 120/5000 | loss 3.412 | lr 6.0e-04 | 41.2k tok/s | mfu 38.1%`."""
    line = (
        f"step {step}/{total} | loss {metrics['loss']:.4f} | lr {metrics['lr']:.1e} | "
        f"{metrics['tok_per_s'] / 1e3:.1f}k tok/s"
    )
    if "mfu" in metrics:
        line += f" | mfu {100 * metrics['mfu']:.1f}%"
    return line


def start_run_record(
    cfg: PretrainConfig,
    config_dict: dict[str, Any],
    run_dir: Path,
    device: torch.device,
    amp_dtype: torch.dtype,
    world_size: int,
) -> MetricsLog:
    """Write config.json and run.json into the run directory and open the metrics sinks (rank 0)."""
    t, m = cfg.training, cfg.model
    tokens_per_step = cfg.tokens_per_step(world_size)
    (run_dir / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n")
    record = run_record(t.seed, device, world_size)
    record.update(num_params=m.num_params(), tokens_per_step=tokens_per_step, amp=str(amp_dtype))
    (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    wandb_run = None
    if cfg.logging.wandb:
        wandb_run = open_wandb(
            cfg.logging.wandb_project, cfg.logging.run_name, config_dict, run_dir
        )
    log.info(
        "model %.2fM params | %d steps x %d tokens (batch %d x accum %d x %d ranks x T %d) | "
        "%s %s | %s",
        m.num_params() / 1e6, t.steps, tokens_per_step, t.batch_size, t.grad_accum, world_size,
        m.context_length, device, str(amp_dtype).removeprefix("torch."), run_dir,
    )  # fmt: skip
    return MetricsLog(run_dir / "metrics.jsonl", wandb_run)


def restore(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: TokenSampler,
    cfg: PretrainConfig,
    tok_hash: str | None,
    info: DistInfo,
) -> Progress:
    """Load a checkpoint into the model, optimizer, sampler and RNGs; return the saved progress."""
    loaded = ckpt.load_checkpoint(path)
    ckpt.check_compatible(loaded, cfg.model.to_dict(), tok_hash, cfg.training.parallel)
    load_full_state(model, optimizer, loaded.model_state, loaded.optim_state, cfg.training.parallel)
    sampler.load_state_dict(loaded.rng["sampler"])
    ranks = loaded.rng["ranks"]
    if len(ranks) == info.world_size:
        ckpt.set_rng_state(ranks[info.rank])
    else:
        log.warning("checkpoint has RNG states of %d ranks, this run has %d: kept fresh seeds",
                    len(ranks), info.world_size)  # fmt: skip
    s = loaded.state
    log.info("resumed from %s at step %d", path, s["step"])
    metrics = s.get("metrics", {})
    return Progress(
        step=s["step"],
        tokens_seen=s["tokens_seen"],
        best_val_loss=s.get("best_val_loss"),
        best_step=s.get("best_step"),
        last_train={k: v for k, v in metrics.items() if not k.startswith("val_")},
        last_val={k: v for k, v in metrics.items() if k.startswith("val_")},
    )


def save(
    root: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: TokenSampler,
    progress: Progress,
    cfg: PretrainConfig,
    config_dict: dict[str, Any],
    tok_hash: str | None,
    tokenizer_dir: Path | None,
    info: DistInfo,
) -> Path | None:
    """Checkpoint the run at `progress.step` (every rank calls; rank 0 writes) and prune old ones.

    The newest `training.keep_last` checkpoints stay, plus the best by validation loss.
    """
    val_loss = progress.last_val.get("val_loss")
    if val_loss is not None and (
        progress.best_val_loss is None or val_loss < progress.best_val_loss
    ):
        progress.best_val_loss, progress.best_step = val_loss, progress.step
    model_state, optim_state = full_state(model, optimizer, cfg.training.parallel)
    rng_ranks = gather_objects(ckpt.rng_state())
    if not info.is_main:
        return None
    t = cfg.training
    state = {
        "step": progress.step,
        "tokens_seen": progress.tokens_seen,
        "best_val_loss": progress.best_val_loss,
        "best_step": progress.best_step,
        "schedule": {
            "name": cfg.schedule.name,
            "total_steps": t.steps,
            "next_lr": learning_rate(
                min(progress.step, t.steps), t.steps, cfg.optimizer, cfg.schedule
            ),
        },
        "world_size": info.world_size,
        "parallel": t.parallel,
        "tokenizer_hash": tok_hash,
        "metrics": {**progress.last_train, **progress.last_val},
    }
    rng = {"ranks": rng_ranks, "sampler": sampler.state_dict()}
    path = ckpt.save_checkpoint(root, progress.step, model_state, optim_state, state, rng,
                                config_dict, tokenizer_dir)  # fmt: skip
    best = ckpt.checkpoint_dir(root, progress.best_step) if progress.best_step is not None else None
    ckpt.prune_checkpoints(root, t.keep_last, best)
    log.info("saved %s", path)
    return path
