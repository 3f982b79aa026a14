"""The speedrun's settings: `SpeedrunConfig`, one plain function per preset, `make_config`.

A preset is a function returning a whole `SpeedrunConfig`; `section.key=value` overrides apply on
top (e.g. `pretrain.training.steps=200`), and `budget` sets pretraining's `training.time_budget`
(a preset may carry its own). Paths inside `pretrain`, `sft`, `dpo` and `grpo` are set by the run.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from scratchlm.config import apply_overrides
from scratchlm.eval.tasks import TASKS
from scratchlm.model.config import ModelConfig
from scratchlm.posttrain.common import default_optimizer, default_training
from scratchlm.posttrain.dpo import DPOConfig
from scratchlm.posttrain.grpo import GRPOConfig
from scratchlm.posttrain.sft import SFTConfig
from scratchlm.train.budget import parse_duration
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.pretrain import EvalConfig, PretrainConfig

BUDGET_KEY = "pretrain.training.time_budget"


@dataclass(frozen=True)
class CorpusConfig:
    """synth: `size_mb` of generated stories; otherwise a corpus downloaded into download_dir."""

    source: Literal["synth", "tinystories", "owt-sample"] = "synth"
    size_mb: float = 8.0
    seed: int = 0
    download_dir: str | None = None


@dataclass(frozen=True)
class TokenizerStageConfig:
    vocab_size: int = 2048
    num_processes: int | None = None


@dataclass(frozen=True)
class PosttrainStageConfig:
    """Which stages follow SFT, how much task data to make, and how many instructions to grade."""

    method: Literal["dpo", "grpo", "both", "none"] = "dpo"
    sft_examples: int = 2000
    preference_pairs: int = 2000
    dpo_pairs: Literal["task", "self"] = "task"  # self: on-policy pairs from the SFT model
    self_pairs: int = 1000
    self_pairs_task: str = "default"
    eval_instructions: int = 100
    eval_max_new_tokens: int = 96
    seed: int = 0

    def __post_init__(self) -> None:
        if self.self_pairs_task not in TASKS:  # fail here, not after pretraining
            raise ValueError(
                f"posttrain.self_pairs_task must be one of {', '.join(TASKS)}, "
                f"got {self.self_pairs_task!r}"
            )


@dataclass(frozen=True)
class HarnessStageConfig:
    """lm-evaluation-harness tasks run on every stage's model after the task evaluation (none by
    default): e.g. `harness.tasks=['story_endings','story_perplexity']` offline, or `['hellaswag']`
    with internet. limit: at most that many documents per task."""

    tasks: tuple[str, ...] = ()
    limit: int | None = None
    batch_size: int = 16


@dataclass(frozen=True)
class SpeedrunConfig:
    """The whole pipeline. Paths inside `pretrain`, `sft`, `dpo` and `grpo` are set by the run."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerStageConfig = field(default_factory=TokenizerStageConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    posttrain: PosttrainStageConfig = field(default_factory=PosttrainStageConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    harness: HarnessStageConfig = field(default_factory=HarnessStageConfig)
    nproc_per_node: int = 1


def cpu() -> SpeedrunConfig:
    """The default: the whole pipeline on a 2-core CPU (8 min measured in bf16, idle)."""
    model = ModelConfig(vocab_size=2048, context_length=256, num_layers=4, d_model=192, num_heads=6)
    return SpeedrunConfig(
        corpus=CorpusConfig(source="synth", size_mb=8.0),
        tokenizer=TokenizerStageConfig(vocab_size=2048),
        pretrain=PretrainConfig(
            model=model,
            optimizer=OptimizerConfig(
                name="adamw", lr=3e-3, weight_decay=0.1, embedding_lr_scale=30
            ),  # embeddings at 30x: configs/cpu.yaml's, docs/ablations.md
            schedule=ScheduleConfig(name="cosine", warmup_steps=50, min_lr=3e-4),
            training=TrainingConfig(
                steps=1250,
                batch_size=8,
                dtype="fastest",
                checkpoint_interval=250,
                eval_interval=250,
                sample_interval=500,
                log_interval=25,
            ),  # fmt: skip
            eval=EvalConfig(max_tokens=131072, sample_tokens=120),
        ),
        posttrain=PosttrainStageConfig(
            method="dpo",
            sft_examples=3000,
            preference_pairs=1500,
            dpo_pairs="self",
            self_pairs_task="arithmetic",
            eval_instructions=200,
        ),
        sft=SFTConfig(
            optimizer=default_optimizer(2e-3)(),
            training=default_training(steps=800, batch_size=16, eval_interval=400)(),
        ),
        dpo=DPOConfig(training=default_training(steps=300, batch_size=8, eval_interval=150)()),
    )


def mini() -> SpeedrunConfig:
    """A smoke test of every stage in well under a minute (used by the test suite)."""
    model = ModelConfig(vocab_size=320, context_length=128, num_layers=1, d_model=32, num_heads=2)
    tiny_loop = default_training(steps=4, batch_size=4, eval_interval=2, checkpoint_interval=2)()
    return SpeedrunConfig(
        corpus=CorpusConfig(source="synth", size_mb=0.2),
        tokenizer=TokenizerStageConfig(vocab_size=320, num_processes=1),
        pretrain=PretrainConfig(
            model=model,
            schedule=ScheduleConfig(warmup_steps=2),
            training=TrainingConfig(
                steps=6,
                batch_size=4,
                checkpoint_interval=3,
                eval_interval=3,
                sample_interval=6,
                log_interval=2,
            ),  # fmt: skip
            eval=EvalConfig(max_tokens=4096, sample_tokens=8),
        ),
        posttrain=PosttrainStageConfig(
            method="both",
            sft_examples=40,
            preference_pairs=40,
            dpo_pairs="self",
            self_pairs=24,
            eval_instructions=4,
            eval_max_new_tokens=12,
        ),
        sft=SFTConfig(training=tiny_loop, schedule=quick_warmup(SFTConfig().schedule)),
        dpo=DPOConfig(training=tiny_loop, schedule=quick_warmup(DPOConfig().schedule)),
        grpo=GRPOConfig(
            training=replace(tiny_loop, steps=2, batch_size=2),
            group_size=2,
            max_new_tokens=8,
            eval_prompts=2,
            schedule=quick_warmup(GRPOConfig().schedule),
        ),
    )


def quick_warmup(schedule: ScheduleConfig) -> ScheduleConfig:
    return replace(schedule, warmup_steps=1)


def tinystories() -> SpeedrunConfig:
    """The CS336 TinyStories shape on one GPU: 10K vocab, ~327.68M tokens (target val loss 1.45)."""
    model = ModelConfig(
        vocab_size=10000, context_length=256, num_layers=4, d_model=512, num_heads=16, d_ff=1344
    )
    return SpeedrunConfig(
        corpus=CorpusConfig(source="tinystories"),
        tokenizer=TokenizerStageConfig(vocab_size=10000),
        pretrain=PretrainConfig(
            model=model,
            optimizer=OptimizerConfig(name="adamw", lr=3e-3, weight_decay=0.1),
            schedule=ScheduleConfig(name="cosine", warmup_steps=200, min_lr=3e-4),
            training=TrainingConfig(
                steps=10000,
                batch_size=128,
                compile=True,
                checkpoint_interval=1000,
                eval_interval=500,
                sample_interval=1000,
                log_interval=50,
            ),  # fmt: skip
            eval=EvalConfig(max_tokens=2_000_000),
        ),
        posttrain=PosttrainStageConfig(method="both", sft_examples=5000, preference_pairs=3000),
        sft=SFTConfig(training=default_training(steps=500, batch_size=32)()),
        dpo=DPOConfig(training=default_training(steps=200, batch_size=16)()),
        grpo=GRPOConfig(training=default_training(steps=100, batch_size=16)()),
    )


def gpt2_owt() -> SpeedrunConfig:
    """GPT-2 small on the OpenWebText sample, for `torchrun` on several GPUs (nproc_per_node)."""
    model = ModelConfig(
        vocab_size=32000, context_length=1024, num_layers=12, d_model=768, num_heads=12
    )
    return SpeedrunConfig(
        corpus=CorpusConfig(source="owt-sample"),
        tokenizer=TokenizerStageConfig(vocab_size=32000),
        pretrain=PretrainConfig(
            model=model,
            optimizer=OptimizerConfig(name="adamw", lr=6e-4, weight_decay=0.1),
            schedule=ScheduleConfig(name="cosine", warmup_steps=700, min_lr=6e-5),
            training=TrainingConfig(
                steps=20000,
                batch_size=16,
                grad_accum=4,
                compile=True,
                checkpoint_interval=2000,
                eval_interval=1000,
                sample_interval=2000,
                log_interval=50,
            ),  # fmt: skip
            eval=EvalConfig(max_tokens=5_000_000),
        ),
        posttrain=PosttrainStageConfig(method="both", sft_examples=5000, preference_pairs=3000),
        sft=SFTConfig(training=default_training(steps=500, batch_size=32)()),
        dpo=DPOConfig(training=default_training(steps=200, batch_size=16)()),
        grpo=GRPOConfig(training=default_training(steps=100, batch_size=16)()),
        nproc_per_node=8,
    )


PRESETS: dict[str, Callable[[], SpeedrunConfig]] = {
    "cpu": cpu,
    "mini": mini,
    "tinystories": tinystories,
    "gpt2-owt": gpt2_owt,
}


def make_config(preset: str, overrides: list[str], budget: str | None = None) -> SpeedrunConfig:
    """The preset's config with `overrides` applied; `budget` (e.g. `10m`) sets pretraining's
    `training.time_budget`, replacing the preset's own budget or its step count.

    Giving the budget both as `budget` and as a different `pretrain.training.time_budget=...`
    override is refused rather than letting one of them win silently.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if budget is not None:
        try:
            parse_duration(budget)
        except ValueError:
            raise ValueError(
                f"--budget must be a duration like 90s, 10m, 1h or 600 (seconds), got {budget!r}"
            ) from None
        for item in overrides:
            key, _, value = item.partition("=")
            if key.strip() == BUDGET_KEY and value.strip() != budget:
                raise ValueError(f"--budget {budget} and {item} disagree: give the budget once")
        overrides = [*overrides, f"{BUDGET_KEY}={budget}"]
    return apply_overrides(PRESETS[preset](), overrides)
