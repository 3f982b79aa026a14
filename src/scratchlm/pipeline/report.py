"""report.md: the speedrun on one page, from the stages' typed results, with a loss plot per stage.

Sections: the system (versions, device, cores), a table of the stages (seconds, tokens, tokens/s,
a note each), the pretrained model's validation numbers (and its time budget, when it had one),
the loss curves, the default task's constraint-satisfaction rate per stage, and samples.
"""

import json
import os
import platform
from pathlib import Path

import torch

from scratchlm.pipeline.presets import SpeedrunConfig
from scratchlm.pipeline.results import (
    Corpus,
    Evaluation,
    HarnessTables,
    SelfPairs,
    StageResult,
    TokenFiles,
    Trained,
    TrainedTokenizer,
)
from scratchlm.train.budget import parse_duration
from scratchlm.train.metrics import plot_loss_curve, run_record

TRAINING_STAGES = ("pretrain", "sft", "dpo", "grpo")


def render_report(
    cfg: SpeedrunConfig, out: Path, results: dict[str, StageResult], device: torch.device
) -> str:
    """The markdown of report.md; writes `<stage>-loss.png` next to it for each training stage."""
    record = run_record(cfg.pretrain.training.seed, device, cfg.nproc_per_node)
    lines = ["# scratchlm speedrun report", ""]
    lines += ["## System", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in record.items() if k != "seed"]
    lines += [f"| cpu cores | {os.cpu_count()} |", f"| machine | {platform.machine()} |"]
    pretrain_run = out / "pretrain" / "run.json"  # the forward's dtype, as pretraining resolved it
    if pretrain_run.is_file():
        amp = json.loads(pretrain_run.read_text()).get("amp", "")
        lines += [f"| pretraining dtype | {amp.removeprefix('torch.')} |"]
    lines += [""]
    lines += stage_table(results)

    base = results.get("pretrain")
    if isinstance(base, Trained) and "val_loss" in base.metrics:
        lines += ["## Pretraining", "", pretraining_summary(base), ""]
    curves = plot_curves(out)
    if curves:
        lines += ["## Loss curves", ""] + [f"![{name}]({name})" for name in curves] + [""]

    evaluation = results.get("evaluate")
    if isinstance(evaluation, Evaluation) and evaluation.rates:
        lines += task_section(evaluation)
    harness = results.get("harness")
    if isinstance(harness, HarnessTables):
        lines += ["## Evaluation (lm-evaluation-harness)", ""]
        for stage, table in harness.tables.items():
            lines += [f"**{stage}** ({harness.files[stage]})", "", table]
    return "\n".join(lines) + "\n"


def stage_table(results: dict[str, StageResult]) -> list[str]:
    """One row per stage in the order they ran, and the total."""
    lines = ["## Stages", "", "| stage | seconds | tokens | tokens/s | notes |"]
    lines += ["|---|---|---|---|---|"]
    for name, r in results.items():
        tokens, rate = None, None
        if isinstance(r, TokenFiles):
            tokens, rate = r.tokens, r.tokens / r.seconds if r.seconds else None
        elif isinstance(r, Trained) and name == "pretrain":
            tokens, rate = r.tokens, r.metrics.get("tok_per_s")
        lines.append(
            f"| {name} | {r.seconds:.1f} | {fmt_int(tokens)} | {fmt_int(rate)} | "
            f"{stage_note(name, r)} |"
        )
    total = sum(r.seconds for r in results.values())
    return lines + [f"| **total** | {total:.1f} | | | |", ""]


def stage_note(name: str, r: StageResult) -> str:
    """What a stage made, in a few words."""
    if isinstance(r, Corpus):
        return f"{r.bytes / 1e6:.1f} MB of text"
    if isinstance(r, TrainedTokenizer):
        return f"vocab {r.vocab_size:,}"
    if isinstance(r, TokenFiles):
        return f"{r.train_bytes_per_token:.2f} bytes/token"
    if isinstance(r, SelfPairs):
        return f"{r.pairs:,} pairs on the SFT model's own answers"
    if not isinstance(r, Trained):
        return ""
    m, notes = r.metrics, []
    if "val_loss" in m:
        notes.append(f"{'val' if name == 'pretrain' else 'held-out'} loss {m['val_loss']:.3f}")
    if "val_accuracy" in m:
        notes.append(f"preference accuracy {m['val_accuracy']:.2f}")
    if "eval_reward" in m:
        notes.append(f"held-out reward {m['eval_reward']:.2f}")
    if r.time_budget is not None:
        notes.append(f"{r.time_budget} budget: {r.steps:,} steps")
    return ", ".join(notes)


def pretraining_summary(r: Trained) -> str:
    """Validation loss, perplexity and bits per byte, tokens, steps; the time budget if any."""
    m, nan = r.metrics, float("nan")
    text = (
        f"Validation loss **{m['val_loss']:.4f}**, perplexity {m.get('val_ppl', nan):.2f}, "
        f"bits per byte {m.get('val_bpb', nan):.4f} after {fmt_int(r.tokens)} training "
        f"tokens in {r.steps:,} steps ({fmt_int(r.params)} parameters)."
    )
    if r.time_budget is not None:
        text += (
            f" The time budget `{r.time_budget}` ({parse_duration(r.time_budget):.0f} s for the "
            f"updates and periodic evaluations) sized the run to {r.steps:,} steps; the stage took "
            f"{r.seconds:.1f} s in all, the final evaluation and checkpoint included."
        )
    return text


def task_section(evaluation: Evaluation) -> list[str]:
    """The rate table, then the pretrained model's story and the first two answers per stage."""
    lines = ["## Default task: constraint-satisfaction rate", ""]
    lines += ["| model | rate | stories | arithmetic | mean score |", "|---|---|---|---|---|"]
    for stage, r in evaluation.rates.items():
        lines.append(
            f"| {stage} | {r.rate:.2f} | {fmt_rate(r.rate_story)} | "
            f"{fmt_rate(r.rate_arithmetic)} | {r.mean_score:.3f} |"
        )
    n = next(iter(evaluation.rates.values())).n
    lines += ["", f"Greedy answers to the same {n} seeded instructions.", ""]
    lines += [
        "## Samples",
        "",
        "Pretrained model, story continuation:",
        "",
        quote(evaluation.base_story),
        "",
    ]
    stages = list(evaluation.rates)
    for i, first in enumerate(evaluation.rates[stages[0]].samples[:2]):
        lines += [f"Instruction: *{first.prompt}*", ""]
        for stage in stages:
            s = evaluation.rates[stage].samples[i]
            lines += [f"- **{stage}** (score {s.score:.2f}): {one_line(s.answer)}"]
        lines.append("")
    return lines


def plot_curves(out: Path) -> list[str]:
    """Plot each training stage's metrics.jsonl as <stage>-loss.png in `out`; returns the names."""
    names = []
    for stage in TRAINING_STAGES:
        metrics = out / stage / "metrics.jsonl"
        if metrics.exists():
            plot_loss_curve(metrics, out / f"{stage}-loss.png")
            names.append(f"{stage}-loss.png")
    return names


def fmt_int(value: float | None) -> str:
    return f"{value:,.0f}" if value else ""


def fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines())
