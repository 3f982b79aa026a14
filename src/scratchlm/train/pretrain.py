"""Pretraining: `PretrainConfig` and `pretrain(cfg)`, the stage behind `scratchlm train`.

What is pretraining's own: random windows of a token file (`TokenSampler`), next-token
cross-entropy, validation loss / perplexity / bits per byte over a fixed slice of the validation
tokens, and a text sample. The step loop, checkpoints and resume are `scratchlm.train.loop`'s.

One optimizer step consumes the global batch: training.batch_size sequences x training.grad_accum
micro-steps x world_size ranks, each of model.context_length tokens.
"""

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from scratchlm.config import Command, to_dict
from scratchlm.data.loader import TokenSampler, eval_batches, open_tokens
from scratchlm.eval.loss import eval_metrics, loss_sums
from scratchlm.folders import check_creatable
from scratchlm.model.config import ModelConfig, tiny
from scratchlm.model.functional import cross_entropy
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.model.transformer import TransformerLM
from scratchlm.runtime import (
    DistInfo,
    autocast,
    autocast_dtype,
    base_dir,
    enable_tf32,
    keep_freed_memory,
    process_group,
    seed_everything,
)
from scratchlm.tokenizer import END_OF_TEXT, Tokenizer
from scratchlm.train.config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainingConfig,
    build_optimizer,
    check_schedule,
)
from scratchlm.train.distributed import all_reduce, wrap_model
from scratchlm.train.loop import LoopResult, Stage, train_loop
from scratchlm.train.metrics import open_wandb

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
class EvalConfig:
    """Validation over the first max_tokens of val_path (None: all of it), every
    training.eval_interval steps; a text sample every training.sample_interval steps."""

    batch_size: int | None = None
    max_tokens: int | None = None
    sample_prompt: str = "Once upon a time"
    sample_tokens: int = 48
    temperature: float = 0.8

    def __post_init__(self) -> None:
        for name, value in (("eval.max_tokens", self.max_tokens),
                            ("eval.batch_size", self.batch_size)):  # fmt: skip
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or null (the default), got {value}")


@dataclass(frozen=True)
class LoggingConfig:
    """The run directory is out_dir, else $SCRATCHLM_HOME/<run_name> (default ./runs/<run_name>)."""

    run_name: str = "run"
    out_dir: str | None = None
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
        check_schedule(
            self.optimizer,
            self.schedule,
            self.training.steps,
            self.training.time_budget is not None,
        )
        if self.optimizer.name != "adamw" and self.training.parallel == "fsdp":
            raise ValueError(
                "training.parallel=fsdp works with optimizer.name=adamw only (Muon needs whole "
                "matrices; SGD's state has no tensors to shard)"
            )

    def tokens_per_step(self, world_size: int) -> int:
        """Global batch in tokens: batch_size x grad_accum x world_size x context_length."""
        t = self.training
        return t.batch_size * t.grad_accum * world_size * self.model.context_length

    def run_dir(self) -> Path:
        return Path(self.logging.out_dir or base_dir() / self.logging.run_name)


def pretrain(cfg: PretrainConfig, resume: str | None = None) -> LoopResult:
    """Train `cfg.model` on `cfg.data` (joining a torchrun group when launched by torchrun).

    resume: None (fresh run), "latest" (newest checkpoint of this run directory) or a checkpoint
    path.
    """
    with process_group(cfg.training.device) as info:
        return _pretrain(cfg, resume, info)


def _pretrain(cfg: PretrainConfig, resume: str | None, info: DistInfo) -> LoopResult:
    t, m, device = cfg.training, cfg.model, info.device
    enable_tf32()
    keep_freed_memory(device)  # on a CPU: no fresh zero-filled pages for each step
    amp = autocast(device, autocast_dtype(device, t.dtype))

    check_creatable(cfg.run_dir())  # fail now; the directory comes once the inputs have loaded
    tokenizer_dir = Path(cfg.data.tokenizer_dir) if cfg.data.tokenizer_dir else None
    tokenizer = load_tokenizer(tokenizer_dir, m.vocab_size)
    byte_lengths = None
    if tokenizer is not None:
        lengths = tokenizer.token_byte_lengths() + [0] * (m.vocab_size - tokenizer.vocab_size)
        byte_lengths = torch.tensor(lengths, dtype=torch.int64, device=device)
    else:
        log.info("no data.tokenizer_dir: no bits per byte and no text samples")
    train_data = open_tokens(cfg.data.train_path, m.vocab_size, m.context_length)
    val_data = open_tokens(cfg.data.val_path, m.vocab_size, 1) if cfg.data.val_path else None

    seed_everything(t.seed)  # the same initial weights on every rank (FSDP does not broadcast)
    model = TransformerLM.from_config(m, device=device)
    seed_everything(t.seed, info.rank)
    wrapped = wrap_model(model, t.parallel, device, info.world_size, t.compile)
    optimizer = build_optimizer(model, cfg.optimizer)  # after FSDP swapped in sharded parameters
    sampler = TokenSampler(
        train_data, t.batch_size, m.context_length, device, t.seed, info.rank, info.world_size
    )
    sample_generator = torch.Generator(device=device).manual_seed(t.seed)
    config = to_dict(cfg)

    def loss_fn(module: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict]:
        inputs, targets = batch
        return cross_entropy(module(inputs), targets), {"tokens": targets.numel()}

    def eval_fn() -> dict[str, float]:
        return validate(model, val_data, cfg, byte_lengths, amp, info)

    def sample_fn() -> str:
        return text_sample(model, tokenizer, cfg.eval, sample_generator)

    def wandb(config: dict[str, Any], run_dir: Path) -> Any:
        return open_wandb(cfg.logging.wandb_project, cfg.logging.run_name, config, run_dir)

    stage = Stage(
        name="train",
        run_dir=cfg.run_dir(),
        config=config,
        model=model,
        optimizer=optimizer,
        batches=sampler,
        loss_fn=loss_fn,
        wrapped=wrapped,
        eval_fn=eval_fn if val_data is not None else None,
        sample_fn=sample_fn if tokenizer is not None else None,
        tokenizer_dir=tokenizer_dir,
        flops_per_token=m.flops_per_token(),
        wandb=wandb if cfg.logging.wandb else None,
    )
    return train_loop(stage, t, cfg.optimizer, cfg.schedule, info, resume)


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
    eot = tokenizer.special_ids.get(END_OF_TEXT)
    sampling = SamplingConfig(
        max_new_tokens=max(0, min(cfg.sample_tokens, room)),
        temperature=cfg.temperature,
        stop_ids=() if eot is None else (eot,),
    )
    was_training = model.training
    model.eval()
    new = generate(model, [prompt], sampling, generator)[0]
    model.train(was_training)
    # A model wider than its tokenizer (model.vocab_size padded up) may sample an id without text.
    return cfg.sample_prompt + tokenizer.decode([i for i in new if i < tokenizer.vocab_size])


COMMAND = Command(
    run=pretrain,
    config=PretrainConfig,
    resume=True,
    description="Pretrain the config's model on its token files (see configs/). Under torchrun "
    "each process takes one device; the global batch is batch_size x grad_accum x processes "
    "sequences. Ctrl-C (or SIGTERM) finishes the step, saves a checkpoint and exits with status "
    "130 (143); --resume latest continues.",
)
