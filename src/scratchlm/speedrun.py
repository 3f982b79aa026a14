"""`scratchlm speedrun`: every stage of the pipeline into one run directory, then `report.md`.

Stages, in order (each writes `stages/<name>.json` when it finishes; a rerun skips finished stages,
and an interrupted pretraining or post-training stage resumes from its latest checkpoint):

    corpus     synthetic stories (offline) or a downloaded corpus -> corpus/{train,valid}.txt
    tokenizer  byte-level BPE on the training text                -> tokenizer/
    tokenize   both splits                                         -> tokens/{train,valid}.npy
    pretrain   the TransformerLM                                   -> pretrain/
    task       the default task's SFT and preference data          -> task/
    sft        supervised fine-tuning on the task's conversations  -> sft/
    pairs      (dpo_pairs=self) preference pairs from the SFT model's own answers -> pairs/
    dpo, grpo  preference tuning and/or reinforcement on the reward -> dpo/, grpo/
    evaluate   constraint-satisfaction rate after each stage, samples before and after
    report     report.md (always rewritten)

Presets are plain functions returning a `SpeedrunConfig`; `section.key=value` overrides apply on
top (e.g. `pretrain.training.steps=200`). The resolved config is saved as `speedrun.json`; a rerun
with a different config into the same directory is refused.
"""

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import torch

from scratchlm.config import apply_overrides, from_dict, save_config, to_dict
from scratchlm.data.download import download
from scratchlm.data.prepare import tokenize_file
from scratchlm.data.synth import write_corpus
from scratchlm.eval.tasks import TASKS, write_task_files
from scratchlm.folders import make_dirs
from scratchlm.model.config import ModelConfig
from scratchlm.model.generate import SamplingConfig, generate
from scratchlm.posttrain.common import default_training, load_chat_model
from scratchlm.posttrain.dpo import DPOConfig, run_dpo
from scratchlm.posttrain.evaluate import evaluate_task
from scratchlm.posttrain.grpo import GRPOConfig, run_grpo
from scratchlm.posttrain.pairs import write_self_pairs
from scratchlm.posttrain.sft import SFTConfig, run_sft
from scratchlm.runtime import pick_device
from scratchlm.tokenizer import Tokenizer, train_bpe
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.config import OptimizerConfig, ScheduleConfig, TrainingConfig
from scratchlm.train.loop import LoopResult
from scratchlm.train.metrics import plot_loss_curve, run_record
from scratchlm.train.pretrain import (
    DataConfig,
    EvalConfig,
    PretrainConfig,
    pretrain,
)

log = logging.getLogger(__name__)

SEPARATOR = "<|endoftext|>"
# Real corpora: the files `download` fetches, as (train, valid).
DOWNLOADED = {
    "tinystories": ("TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt"),
    "owt-sample": ("owt_train.txt", "owt_valid.txt"),
}


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
class SpeedrunConfig:
    """The whole pipeline. Paths inside `pretrain`, `sft`, `dpo` and `grpo` are set by the run."""

    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    tokenizer: TokenizerStageConfig = field(default_factory=TokenizerStageConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    posttrain: PosttrainStageConfig = field(default_factory=PosttrainStageConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    nproc_per_node: int = 1


def cpu() -> SpeedrunConfig:
    """The default: the whole pipeline on a 2-core CPU (9.5 min measured, idle)."""
    model = ModelConfig(vocab_size=2048, context_length=256, num_layers=4, d_model=192, num_heads=6)
    return SpeedrunConfig(
        corpus=CorpusConfig(source="synth", size_mb=8.0),
        tokenizer=TokenizerStageConfig(vocab_size=2048),
        pretrain=PretrainConfig(
            model=model,
            optimizer=OptimizerConfig(name="adamw", lr=3e-3, weight_decay=0.1),
            schedule=ScheduleConfig(name="cosine", warmup_steps=50, min_lr=3e-4),
            training=TrainingConfig(
                steps=1000,
                batch_size=8,
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
        sft=SFTConfig(training=default_training(steps=400, batch_size=16, eval_interval=200)()),
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


def make_config(preset: str, overrides: list[str]) -> SpeedrunConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return apply_overrides(PRESETS[preset](), overrides)


# ---------------------------------------------------------------- stages


def stage_corpus(cfg: SpeedrunConfig, out: Path) -> dict[str, Any]:
    c = cfg.corpus
    if c.source == "synth":
        s = write_corpus(out / "corpus", size_mb=c.size_mb, seed=c.seed)
        train, valid = s.out / "train.txt", s.out / "valid.txt"
    else:
        root = Path(c.download_dir or Path(os.environ.get("SCRATCHLM_HOME", "runs")) / "data")
        paths = download(c.source, root / c.source)
        names = [p.name for p in paths]
        train, valid = (paths[names.index(n)] for n in DOWNLOADED[c.source])
    return {
        "train": str(train),
        "valid": str(valid),
        "bytes": train.stat().st_size + valid.stat().st_size,
    }


def stage_tokenizer(cfg: SpeedrunConfig, out: Path, corpus: dict[str, Any]) -> dict[str, Any]:
    t = cfg.tokenizer
    vocab, merges = train_bpe(corpus["train"], t.vocab_size, [SEPARATOR], t.num_processes)
    tokenizer = Tokenizer(vocab, merges, [SEPARATOR])
    tokenizer.save(out / "tokenizer")
    return {
        "dir": str(out / "tokenizer"),
        "vocab_size": tokenizer.vocab_size,
        "bytes": Path(corpus["train"]).stat().st_size,
    }


def stage_tokenize(cfg: SpeedrunConfig, out: Path, corpus: dict[str, Any]) -> dict[str, Any]:
    (out / "tokens").mkdir(exist_ok=True)
    result: dict[str, Any] = {"tokens": 0}
    for split in ("train", "valid"):
        s = tokenize_file(
            corpus[split],
            out / "tokens" / f"{split}.npy",
            out / "tokenizer",
            num_processes=cfg.tokenizer.num_processes,
        )
        result[split] = str(s.output_path)
        result[f"{split}_tokens"] = s.num_tokens
        result["tokens"] += s.num_tokens
        result[f"{split}_bytes_per_token"] = round(s.bytes_per_token, 3)
    return result


def pretrain_config(cfg: SpeedrunConfig, out: Path, vocab_size: int) -> PretrainConfig:
    p = cfg.pretrain
    return replace(
        p,
        model=replace(p.model, vocab_size=vocab_size),
        data=DataConfig(
            train_path=str(out / "tokens" / "train.npy"),
            val_path=str(out / "tokens" / "valid.npy"),
            tokenizer_dir=str(out / "tokenizer"),
        ),
        logging=replace(p.logging, run_name="pretrain", out_dir=str(out / "pretrain")),
    )


def stage_pretrain(cfg: SpeedrunConfig, out: Path, vocab_size: int) -> dict[str, Any]:
    pcfg = pretrain_config(cfg, out, vocab_size)
    resume = "latest" if ckpt.list_checkpoints(out / "pretrain" / "checkpoints") else None
    if cfg.nproc_per_node > 1:
        run_torchrun(pcfg, out, cfg.nproc_per_node, resume)
        ensure_finished(out / "pretrain", pcfg.training.steps)
    else:
        ensure_done(pretrain(pcfg, resume=resume))
    return {
        **last_metrics(out / "pretrain" / "metrics.jsonl"),
        "params": pcfg.model.num_params(),
        "checkpoint": str(ckpt.find_checkpoint(out / "pretrain")),
    }


def run_torchrun(pcfg: PretrainConfig, out: Path, nproc: int, resume: str | None) -> None:
    """Pretrain in `nproc` processes: `torchrun -m scratchlm train` on the resolved config."""
    path = out / "pretrain-config.json"
    save_config(pcfg, path)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "-m",
        "scratchlm",
        "train",
        "--config",
        str(path),
    ]
    if resume:
        command += ["--resume", resume]
    log.info("running %s", " ".join(command))
    if subprocess.run(command).returncode != 0:
        raise ValueError("distributed pretraining failed (see its output above); rerun to resume")


def last_metrics(path: Path) -> dict[str, Any]:
    """The last training row's loss/tok/s/tokens and the last validation row of a metrics.jsonl."""
    train: dict[str, Any] = {}
    val: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "val_loss" in row:
            val = row
        elif "loss" in row:
            train = row
    keep = ("loss", "tokens", "tok_per_s", "elapsed_s", "step")
    return {
        **{k: train[k] for k in keep if k in train},
        **{k: v for k, v in val.items() if k.startswith("val_")},
    }


def stage_task(cfg: SpeedrunConfig, out: Path) -> dict[str, Any]:
    p = cfg.posttrain
    files = write_task_files(out / "task", p.sft_examples, p.preference_pairs, p.seed)
    return {name: str(path) for name, path in files.items()}


def stage_pairs(cfg: SpeedrunConfig, out: Path, policy: str) -> dict[str, Any]:
    p = cfg.posttrain
    return write_self_pairs(
        policy, out / "pairs" / "preference.jsonl", p.self_pairs_task, p.self_pairs, p.seed + 2,
        cfg.pretrain.training.device,
    )  # fmt: skip


def ensure_finished(run_dir: Path, steps: int) -> None:
    """A loop stopped by SIGINT/SIGTERM saves and returns early: then the stage is not done."""
    step = json.loads((ckpt.find_checkpoint(run_dir) / "state.json").read_text())["step"]
    if step < steps:
        log.info("%s stopped at step %d of %d; rerun to resume", run_dir.name, step, steps)
        raise KeyboardInterrupt


def ensure_done(result: LoopResult) -> dict[str, Any]:
    """A stopped stage is not done (rerun to resume); a finished one's summary as plain data."""
    if result.stopped:
        log.info("%s stopped at step %d of %d; rerun to resume", result.stage, result.step,
                 result.steps)  # fmt: skip
        raise KeyboardInterrupt
    checkpoint = str(result.checkpoint) if result.checkpoint else None
    return {"step": result.step, **result.metrics, "run_dir": str(result.run_dir),
            "checkpoint": checkpoint}  # fmt: skip


def resume_flag(run_dir: Path) -> str | None:
    return "latest" if ckpt.list_checkpoints(run_dir / "checkpoints") else None


def stage_sft(cfg: SpeedrunConfig, out: Path, source: str, data: str) -> dict[str, Any]:
    scfg = replace(cfg.sft, base=source, data=data, out_dir=str(out / "sft"))
    return ensure_done(run_sft(scfg, resume=resume_flag(out / "sft")))


def stage_dpo(cfg: SpeedrunConfig, out: Path, source: str, data: str) -> dict[str, Any]:
    dcfg = replace(cfg.dpo, policy=source, data=data, out_dir=str(out / "dpo"))
    return ensure_done(run_dpo(dcfg, resume=resume_flag(out / "dpo")))


def stage_grpo(cfg: SpeedrunConfig, out: Path, source: str) -> dict[str, Any]:
    gcfg = replace(cfg.grpo, policy=source, out_dir=str(out / "grpo"))
    return ensure_done(run_grpo(gcfg, resume=resume_flag(out / "grpo")))


def stage_evaluate(cfg: SpeedrunConfig, out: Path, models: dict[str, str]) -> dict[str, Any]:
    """The task's satisfaction rate of each model, and samples: a story before, answers after."""
    n = cfg.posttrain.eval_instructions
    new_tokens = cfg.posttrain.eval_max_new_tokens
    rates = {
        stage: evaluate_task(path, n=n, max_new_tokens=new_tokens) for stage, path in models.items()
    }
    device = pick_device(cfg.pretrain.training.device)
    model, tokenizer = load_chat_model(models["pretrain"], device)
    prompt = tokenizer.encode(cfg.pretrain.eval.sample_prompt)
    sampling = SamplingConfig(
        max_new_tokens=min(
            cfg.pretrain.eval.sample_tokens, model.config.context_length - len(prompt)
        ),
        temperature=0.7,
        top_k=50,
        stop_ids=(tokenizer.encode(SEPARATOR)[0],),
    )
    generator = torch.Generator(device=device).manual_seed(0)
    ids = generate(model.eval(), [prompt], sampling, generator=generator)[0]
    return {
        "rates": {
            stage: {k: v for k, v in r.items() if k != "samples"} for stage, r in rates.items()
        },
        "samples": {stage: r["samples"] for stage, r in rates.items()},
        "base_story": tokenizer.decode(prompt + ids),
    }


# ---------------------------------------------------------------- the run


def speedrun(cfg: SpeedrunConfig, out: Path) -> Path:
    """Run every unfinished stage into `out`; returns the path of report.md."""
    out = Path(out)
    make_dirs(out / "stages")
    check_same_config(cfg, out / "speedrun.json")
    results: dict[str, dict[str, Any]] = {}

    def run(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        marker = out / "stages" / f"{name}.json"
        if marker.exists():
            log.info("== %s: done earlier, skipped", name)
            results[name] = json.loads(marker.read_text())
            return results[name]
        log.info("== %s", name)
        start = time.perf_counter()
        result = {**fn(), "seconds": round(time.perf_counter() - start, 2)}
        write_json(marker, result)
        results[name] = result
        log.info("== %s: done in %.1f s", name, result["seconds"])
        return result

    corpus = run("corpus", lambda: stage_corpus(cfg, out))
    tok = run("tokenizer", lambda: stage_tokenizer(cfg, out, corpus))
    run("tokenize", lambda: stage_tokenize(cfg, out, corpus))
    base = run("pretrain", lambda: stage_pretrain(cfg, out, tok["vocab_size"]))
    models = {"pretrain": base["checkpoint"]}
    method = cfg.posttrain.method
    if method != "none":
        task = run("task", lambda: stage_task(cfg, out))
        models["sft"] = run("sft", lambda: stage_sft(cfg, out, models["pretrain"], task["sft"]))[
            "checkpoint"
        ]
        policy = models["sft"]
        if method in ("dpo", "both"):
            pairs = task["preference"]
            if cfg.posttrain.dpo_pairs == "self":
                pairs = run("pairs", lambda: stage_pairs(cfg, out, policy))["path"]
            result = run("dpo", lambda: stage_dpo(cfg, out, policy, pairs))
            models["dpo"] = policy = result["checkpoint"]
        if method in ("grpo", "both"):
            models["grpo"] = run("grpo", lambda: stage_grpo(cfg, out, policy))["checkpoint"]
    run("evaluate", lambda: stage_evaluate(cfg, out, models))
    report = out / "report.md"
    write_text(report, render_report(cfg, out, results))
    return report


def check_same_config(cfg: SpeedrunConfig, path: Path) -> None:
    """Save the resolved config, or refuse one that differs from the config saved earlier."""
    if path.exists():
        saved = from_dict(SpeedrunConfig, json.loads(path.read_text()))
        if saved != cfg:
            mine, theirs = flatten(to_dict(cfg)), flatten(to_dict(saved))
            key = next(k for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k))
            raise ValueError(
                f"{path.parent} was started with {key}={theirs.get(key)!r}, not "
                f"{mine.get(key)!r}: rerun with the same settings to resume, or use another --out"
            )
        return
    write_text(path, json.dumps(to_dict(cfg), indent=2) + "\n")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- report.md


def render_report(cfg: SpeedrunConfig, out: Path, results: dict[str, dict[str, Any]]) -> str:
    """report.md: system, stage table, validation numbers, curves, task rates, samples."""
    record = run_record(
        cfg.pretrain.training.seed, pick_device(cfg.pretrain.training.device), cfg.nproc_per_node
    )
    lines = ["# scratchlm speedrun report", ""]
    lines += ["## System", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in record.items() if k != "seed"]
    lines += [f"| cpu cores | {os.cpu_count()} |", f"| machine | {platform.machine()} |", ""]

    lines += ["## Stages", "", "| stage | seconds | tokens | tokens/s | notes |"]
    lines += ["|---|---|---|---|---|"]
    for name, r in results.items():
        tokens = r.get("tokens") if name in ("tokenize", "pretrain") else None
        rate = tokens / r["seconds"] if tokens and r.get("seconds") else None
        if name == "pretrain" and "tok_per_s" in r:
            rate = r["tok_per_s"]
        lines.append(
            f"| {name} | {r.get('seconds', 0):.1f} | {fmt_int(tokens)} | {fmt_int(rate)} | "
            f"{stage_note(name, r)} |"
        )
    total = sum(r.get("seconds", 0) for r in results.values())
    lines += [f"| **total** | {total:.1f} | | | |", ""]

    base = results.get("pretrain", {})
    if "val_loss" in base:
        lines += [
            "## Pretraining",
            "",
            f"Validation loss **{base['val_loss']:.4f}**, perplexity "
            f"{base.get('val_ppl', float('nan')):.2f}, bits per byte "
            f"{base.get('val_bpb', float('nan')):.4f} after {fmt_int(base.get('tokens'))} "
            f"training tokens ({fmt_int(base.get('params'))} parameters).",
            "",
        ]
    curves = copy_curves(out)
    if curves:
        lines += ["## Loss curves", ""] + [f"![{name}]({name})" for name in curves] + [""]

    evaluation = results.get("evaluate")
    if evaluation:
        lines += ["## Default task: constraint-satisfaction rate", ""]
        lines += ["| model | rate | stories | arithmetic | mean score |", "|---|---|---|---|---|"]
        for stage, r in evaluation["rates"].items():
            lines.append(
                f"| {stage} | {r['rate']:.2f} | {r.get('rate_story', float('nan')):.2f} | "
                f"{r.get('rate_arithmetic', float('nan')):.2f} | {r['mean_score']:.3f} |"
            )
        n = next(iter(evaluation["rates"].values()))["n"]
        lines += ["", f"Greedy answers to the same {n} seeded instructions.", ""]
        lines += [
            "## Samples",
            "",
            "Pretrained model, story continuation:",
            "",
            quote(evaluation["base_story"]),
            "",
        ]
        stages = list(evaluation["samples"])
        for i, first in enumerate(evaluation["samples"][stages[0]][:2]):
            lines += [f"Instruction: *{first['prompt']}*", ""]
            for stage in stages:
                s = evaluation["samples"][stage][i]
                lines += [f"- **{stage}** (score {s['score']:.2f}): {one_line(s['answer'])}"]
            lines.append("")
    return "\n".join(lines) + "\n"


def stage_note(name: str, r: dict[str, Any]) -> str:
    if name == "corpus":
        return f"{r['bytes'] / 1e6:.1f} MB of text"
    if name == "tokenizer":
        return f"vocab {r['vocab_size']:,}"
    if name == "tokenize":
        return f"{r['train_bytes_per_token']:.2f} bytes/token"
    if name == "pretrain":
        return f"val loss {r['val_loss']:.3f}" if "val_loss" in r else ""
    if name == "pairs":
        return f"{r['pairs']:,} pairs on the SFT model's own answers"
    if "val_loss" in r:
        return f"held-out loss {r['val_loss']:.3f}"
    if "eval_accuracy" in r:
        return f"held-out preference accuracy {r['eval_accuracy']:.2f}"
    return ""


def copy_curves(out: Path) -> list[str]:
    """Plot each stage's metrics.jsonl as <stage>-loss.png next to report.md; returns the names."""
    names = []
    for stage in ("pretrain", "sft", "dpo", "grpo"):
        metrics = out / stage / "metrics.jsonl"
        if metrics.exists():
            plot_loss_curve(metrics, out / f"{stage}-loss.png")
            names.append(f"{stage}-loss.png")
    return names


def fmt_int(value: float | None) -> str:
    return f"{value:,.0f}" if value else ""


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines())
