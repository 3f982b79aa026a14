"""The stage runner: `speedrun(cfg, out)` runs every unfinished stage into `out`, then report.md.

Each stage that finishes writes `stages/<name>.json`, its typed result; a rerun reads finished
stages back instead of running them again, and a stage that was interrupted (no marker) runs again,
a training stage resuming from its newest checkpoint. The resolved config is saved as
`speedrun.json`, and a rerun into the same directory with a different config is refused, naming
the first key that differs.
"""

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from scratchlm.config import from_dict, to_dict
from scratchlm.folders import make_dirs
from scratchlm.pipeline.presets import SpeedrunConfig
from scratchlm.pipeline.report import render_report
from scratchlm.pipeline.results import (
    Corpus,
    Evaluation,
    HarnessTables,
    R,
    SelfPairs,
    StageResult,
    TaskFiles,
    TokenFiles,
    Trained,
    TrainedTokenizer,
    read_marker,
    write_marker,
)
from scratchlm.pipeline.stages import (
    stage_corpus,
    stage_dpo,
    stage_evaluate,
    stage_grpo,
    stage_harness,
    stage_pairs,
    stage_pretrain,
    stage_sft,
    stage_task,
    stage_tokenize,
    stage_tokenizer,
)
from scratchlm.runtime import pick_device

log = logging.getLogger(__name__)


class StageRunner:
    """Runs named stages once: a finished stage's result is read back from its marker file."""

    def __init__(self, out: Path) -> None:
        self.markers = out / "stages"
        self.results: dict[str, StageResult] = {}  # in the order the stages ran

    def run(self, name: str, kind: type[R], stage: Callable[[], R]) -> R:
        """`stage()`'s result, timed and saved as stages/<name>.json, or the one saved earlier.

        A stage that raises (KeyboardInterrupt included) leaves no marker: the next run repeats it.
        """
        marker = self.markers / f"{name}.json"
        if marker.exists():
            log.info("== %s: done earlier, skipped", name)
            result = read_marker(marker, kind)
        else:
            log.info("== %s", name)
            start = time.perf_counter()
            result = replace(stage(), seconds=round(time.perf_counter() - start, 2))
            write_marker(marker, result)
            log.info("== %s: done in %.1f s", name, result.seconds)
        self.results[name] = result
        return result


def speedrun(cfg: SpeedrunConfig, out: Path) -> Path:
    """Run every unfinished stage into `out` (made with its parents); returns report.md's path."""
    out = Path(out)
    device = pick_device(cfg.pretrain.training.device)  # resolved once, for the whole run
    make_out_dir(out)
    check_same_config(cfg, out / "speedrun.json")
    runner = StageRunner(out)
    run = runner.run

    corpus = run("corpus", Corpus, lambda: stage_corpus(cfg.corpus, out))
    tok = run("tokenizer", TrainedTokenizer, lambda: stage_tokenizer(cfg.tokenizer, out, corpus))
    run("tokenize", TokenFiles, lambda: stage_tokenize(cfg.tokenizer, out, corpus))
    base = run("pretrain", Trained, lambda: stage_pretrain(cfg, out, tok.vocab_size))
    models = {"pretrain": base.checkpoint}
    post = cfg.posttrain
    if post.method != "none":
        task = run("task", TaskFiles, lambda: stage_task(post, out))
        sft = run("sft", Trained, lambda: stage_sft(cfg.sft, out, base.checkpoint, task.sft))
        models["sft"] = policy = sft.checkpoint
        if post.method in ("dpo", "both"):
            pairs = task.preference
            if post.dpo_pairs == "self":
                own = run("pairs", SelfPairs, lambda: stage_pairs(post, out, policy, device))
                pairs = own.path
            dpo = run("dpo", Trained, lambda: stage_dpo(cfg.dpo, out, policy, pairs))
            models["dpo"] = policy = dpo.checkpoint
        if post.method in ("grpo", "both"):
            grpo = run("grpo", Trained, lambda: stage_grpo(cfg.grpo, out, policy))
            models["grpo"] = grpo.checkpoint
    run("evaluate", Evaluation, lambda: stage_evaluate(cfg, models, device))
    if cfg.harness.tasks:
        run("harness", HarnessTables, lambda: stage_harness(cfg.harness, models, out, device))
    report = out / "report.md"
    write_text(report, render_report(cfg, out, runner.results, device))
    return report


def make_out_dir(out: Path) -> None:
    """Create `out`, its missing parents and its stages/ folder; refuse an unwritable place."""
    make_dirs(out / "stages")
    if not (os.access(out, os.W_OK) and os.access(out / "stages", os.W_OK)):
        raise OSError(f"{out} is not writable: choose a writable --out")


def check_same_config(cfg: SpeedrunConfig, path: Path) -> None:
    """Save the resolved config, or refuse one that differs from the config saved earlier."""
    if path.exists():
        try:
            saved = from_dict(SpeedrunConfig, json.loads(path.read_text()))
        except ValueError as exc:
            raise ValueError(f"{path} cannot be read back ({exc}): use another --out") from None
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
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, so `path` is never half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
