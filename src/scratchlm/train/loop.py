"""The training loop every stage runs: pretraining, SFT, DPO and GRPO.

A stage hands `train_loop` a `Stage`: the raw model and the module the step calls (DDP or compiled),
an optimizer, a batch source with `next_batch()` / `state_dict()` / `load_state_dict()`, a
`loss_fn(model, batch) -> (loss, metrics)`, and optionally an `eval_fn` (held-out numbers, every
rank calls it) and a `sample_fn` (a text sample, rank 0 only). The loop owns the rest, for every
stage alike:

- `for step in range(start, steps + 1)`: evaluation, the sample and the checkpoint come before the
  update, so the final step (after the last update) gets them too;
- the learning-rate schedule, gradient accumulation (DDP's all-reduce only on the last micro-step),
  clipping after the all-reduce, autocast;
- stopping on SIGINT/SIGTERM or at `training.stop_after`, agreed across ranks so all stop together;
- checkpoints in one format (`scratchlm.train.checkpoint`) with one set of `state.json` keys, and
  exact resume: weights, optimizer, batch source and every rank's RNG states;
- metrics.jsonl rows with the same fields for every stage (loss, lr, grad_norm, tok_per_s, mfu on
  CUDA, elapsed_s, tokens, plus the stage's own numbers), a progress bar, one status line per
  `training.log_interval`, and loss.png at the end.

A checkpoint at step s holds the state after s updates; resuming from it continues with update
s + 1 and draws exactly the batches an uninterrupted run would have drawn.
"""

import itertools
import json
import logging
import math
import signal
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from scratchlm.optimizers import clip_grad_norm
from scratchlm.runtime import DistInfo, autocast, autocast_dtype
from scratchlm.schedulers import set_learning_rate
from scratchlm.tokenizer import Tokenizer
from scratchlm.train import checkpoint as ckpt
from scratchlm.train.budget import (
    OVERRUN,
    PROBE_SHARE,
    PROBE_SKIP,
    PROBE_STEPS,
    PROBE_TOTAL,
    RESIZE_SHARE,
    parse_duration,
    steps_in_budget,
)
from scratchlm.train.config import (
    OptimizerConfig,
    ScheduleConfig,
    TrainingConfig,
    learning_rate,
    plateau_end,
)
from scratchlm.train.distributed import (
    all_reduce,
    full_state,
    gather_objects,
    grad_sync,
    load_full_state,
)
from scratchlm.train.metrics import MetricsLog, mfu, peak_flops, plot_loss_curve, run_record

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    """Where a stage's batches come from; its state goes into every checkpoint."""

    def next_batch(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# loss_fn(model, batch) -> (loss, metrics). `model` is the module to call for the update (DDP or
# compiled); metrics are 0-d tensors or numbers, averaged over micro-steps, steps and ranks, except
# "tokens" (the tokens this micro-batch fed the model), which is summed.
LossFn = Callable[[nn.Module, Any], tuple[Tensor, dict[str, Tensor | float]]]
EvalFn = Callable[[], dict[str, float]]
SampleFn = Callable[[], str]


@dataclass
class Stage:
    """Everything a stage brings to the loop besides the shared settings.

    config: the resolved config as plain data, saved as config.json and in every checkpoint; its
    "model" entry is the model's config. The tokenizer goes into every checkpoint: from
    `tokenizer_dir`, or `tokenizer` saved once into the run directory.
    """

    name: str
    run_dir: Path
    config: dict[str, Any]
    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: BatchSource
    loss_fn: LossFn
    wrapped: nn.Module | None = None
    eval_fn: EvalFn | None = None
    sample_fn: SampleFn | None = None
    tokenizer_dir: Path | None = None
    tokenizer: Tokenizer | None = None
    flops_per_token: float | None = None
    wandb: Callable[[dict[str, Any], Path], Any] | None = None


@dataclass
class Progress:
    """What the loop has done so far; saved in each checkpoint's state.json."""

    step: int = 0
    total_steps: int | None = None  # None until a time-budgeted run has sized itself
    budget_spent_s: float = 0.0  # of training.time_budget, by earlier runs of this training
    tokens_seen: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    last_train: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopResult:
    """How a run ended: at `step` of `steps`; stopped early when step < steps, by `stop_signal`
    (SIGINT or SIGTERM) or, when that is 0, at training.stop_after."""

    stage: str
    step: int
    steps: int
    tokens_seen: int
    metrics: dict[str, float]
    run_dir: Path
    checkpoint: Path | None
    stop_signal: int = 0

    @property
    def stopped(self) -> bool:
        return self.step < self.steps

    @property
    def exit_status(self) -> int:
        """0, or 128 + the signal that stopped the run early.

        A stop by SIGINT/SIGTERM is not a finished run: 130 and 143, as a shell reports a process
        ended by that signal, keep `scratchlm train ... && next-step` from going on. A stop at
        training.stop_after was asked for: 0.
        """
        return 128 + self.stop_signal if self.stop_signal else 0

    def __str__(self) -> str:
        """What the training commands print at the end: how the run ended and where it is."""
        if not self.stopped:
            numbers = ", ".join(f"{k} {v:.4g}" for k, v in self.metrics.items())
            end = f"{self.stage} finished at step {self.step}: {numbers}"
        elif self.checkpoint is not None:
            end = f"{self.stage} stopped at step {self.step}; continue with --resume latest"
        else:
            end = (
                f"{self.stage} stopped at step {self.step} before its first checkpoint; start again"
            )
        return f"{end}\nrun dir: {self.run_dir}; checkpoint: {self.checkpoint}"


class StopRequest:
    """Set by SIGINT/SIGTERM: the loop finishes its step, saves and exits. signum: 0 until then."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = signum


@contextmanager
def catch_stop_signals() -> Iterator[StopRequest]:
    stop = StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def train_loop(
    stage: Stage,
    training: TrainingConfig,
    optimizer_cfg: OptimizerConfig,
    schedule: ScheduleConfig,
    info: DistInfo,
    resume: str | None = None,
) -> LoopResult:
    """Run updates start .. training.steps - 1 of `stage` (every rank calls).

    resume: None (fresh run), "latest" (newest checkpoint of the run directory) or a checkpoint
    path. A fresh run refuses a run directory that already has checkpoints.
    """
    run_dir = stage.run_dir
    resume_path = None
    if info.is_main:  # rank 0 alone locks and writes; every rank resumes from what it chose
        hint = "use another run directory to start fresh"
        resume_path = ckpt.claim_run_dir(run_dir, resume, hint)
    resume_path = gather_objects(resume_path)[0]
    try:
        return run_steps(stage, training, optimizer_cfg, schedule, info, resume_path)
    finally:
        ckpt.unlock_run(run_dir)


def run_steps(
    stage: Stage,
    t: TrainingConfig,
    optimizer_cfg: OptimizerConfig,
    schedule: ScheduleConfig,
    info: DistInfo,
    resume_path: Path | None,
) -> LoopResult:
    """`train_loop` once the run directory is claimed (locked, tidied, created)."""
    device, run_dir, root = info.device, stage.run_dir, stage.run_dir / "checkpoints"
    amp_dtype = autocast_dtype(device, t.dtype)
    amp = autocast(device, amp_dtype)
    wrapped = stage.wrapped or stage.model
    progress = Progress()
    tokenizer_dir = stage.tokenizer_dir
    if tokenizer_dir is None and stage.tokenizer is not None:
        tokenizer_dir = run_dir / "tokenizer"
        if info.is_main and not tokenizer_dir.is_dir():
            stage.tokenizer.save(tokenizer_dir)
    if torch.distributed.is_initialized():
        torch.distributed.barrier()  # the run directory and its tokenizer exist for every rank
    tok_hash = ckpt.tokenizer_hash(tokenizer_dir)
    if resume_path is not None:
        progress = restore(resume_path, stage, tok_hash, t.parallel, info)
    if info.is_main:
        ckpt.start_branch(run_dir, resume_path, progress.step)

    metrics_log = None
    if info.is_main:
        metrics_log = start_run_record(stage, t, amp_dtype, info.world_size)
    peak = peak_flops(device)
    start = progress.step
    budget = parse_duration(t.time_budget) if t.time_budget is not None else None
    if budget is None:
        progress.total_steps = t.steps
    elif progress.total_steps is None:
        log.info("time budget %.0f s: timing %d+ updates (%.0f%% of it) to size the run", budget,
                 PROBE_STEPS, 100 * PROBE_SHARE)  # fmt: skip
    total = progress.total_steps
    spent_before = progress.budget_spent_s
    last_ckpt: Path | None = resume_path
    stop_signal = 0
    sums: dict[str, Tensor | float] = {}
    grad_norm = torch.zeros((), device=device)
    interval_start, interval_steps, run_start = perf_counter(), 0, perf_counter()
    probe = Probe()
    resizing = False  # a run that sized itself follows the clock until its plateau ends
    bar = tqdm(total=total, initial=start, desc=stage.name, unit="step",
               disable=None if info.is_main else True)  # fmt: skip

    with catch_stop_signals() as stop, logging_redirect_tqdm(), bar:
        for step in itertools.count(start):
            progress.step = step
            pause_start = perf_counter()  # evaluation and saving are left out of tok/s
            # The slowest rank's clock, so that every rank ends at the same step.
            stop_signal, spent = agree_to_stop(stop.signum, spent_before + pause_start - run_start,
                                               device)  # fmt: skip
            if (
                budget is not None
                and total is not None
                and step < total
                and spent > budget * OVERRUN
            ):
                log.warning("time budget overrun at step %d of %d: ending here", step, total)
                total = progress.total_steps = step
            last = step == total or stop_signal != 0 or step == t.stop_after
            new_step = step > start or resume_path is None  # a resumed step was already evaluated
            val_loss = None  # of an evaluation at this very step

            if stage.eval_fn is not None and new_step and (last or step % t.eval_interval == 0):
                eval_start = perf_counter()
                progress.last_val = evaluate(stage, amp)
                probe.eval_s = perf_counter() - eval_start
                val_loss = progress.last_val.get("val_loss")
                if info.is_main:
                    metrics_log.write({"step": step, **progress.last_val})
                    log.info(
                        "step %d/%s | %s", step, total or "?", format_numbers(progress.last_val)
                    )

            if (
                stage.sample_fn is not None
                and info.is_main
                and step > start
                and (last or step % t.sample_interval == 0)
            ):
                log.info("sample: %r", stage.sample_fn())

            if step > start and (last or step % t.checkpoint_interval == 0):
                progress.budget_spent_s = spent if budget is not None else 0.0
                saved = save(root, stage, progress, val_loss, t, optimizer_cfg, schedule,
                             tok_hash, tokenizer_dir, info)  # fmt: skip
                last_ckpt = saved or last_ckpt

            if last:
                break
            probe.paused_s += perf_counter() - pause_start
            interval_start += perf_counter() - pause_start

            lr = learning_rate(step, total or PROBE_TOTAL, optimizer_cfg, schedule)
            set_learning_rate(stage.optimizer, lr)
            grad_norm = train_step(stage, wrapped, t.grad_accum, optimizer_cfg.grad_clip, amp,
                                   t.parallel, info.world_size, sums)  # fmt: skip
            interval_steps += 1
            bar.update(1)

            done = step + 1
            if total is None and done == start + PROBE_SKIP:
                probe.mark(done - start, device)
            elif total is None and probe.ready(done - start, budget, device):
                probe.mark(done - start, device)
                elapsed = spent_before + perf_counter() - run_start
                total = probe.size(budget, elapsed, done, t, schedule, device)
                progress.total_steps = bar.total = total
                resizing = done < plateau_end(total, schedule)
                bar.refresh()
            elif resizing and (done - start) % PROBE_STEPS == 0 and done >= schedule.warmup_steps:
                assert budget is not None and total is not None
                if done < plateau_end(total, schedule):
                    probe.mark(done - start, device)
                    elapsed = spent_before + perf_counter() - run_start
                    total = probe.resize(budget, elapsed, done, total, t, schedule, device)
                    progress.total_steps = bar.total = total
                if done >= plateau_end(total, schedule):
                    resizing = False
                    log.info("time budget: %d updates, the decay from update %d",
                             total, plateau_end(total, schedule))  # fmt: skip
            if budget is not None and info.is_main:
                left = budget - spent_before - (perf_counter() - run_start)
                bar.set_postfix_str(f"{max(0.0, left):.0f}s left", refresh=False)
            if done % t.log_interval == 0 or done == total:
                numbers = reduce_interval(sums, interval_steps, grad_norm)
                tokens = int(numbers.pop("tokens", 0))
                progress.tokens_seen += tokens
                seconds = perf_counter() - interval_start
                numbers = {"loss": numbers.pop("loss"), "lr": lr, **numbers}
                numbers["tok_per_s"] = tokens / seconds
                if peak is not None and stage.flops_per_token:
                    numbers["mfu"] = mfu(
                        numbers["tok_per_s"], stage.flops_per_token, peak * info.world_size
                    )
                if not math.isfinite(numbers["loss"]):
                    raise ValueError(
                        f"training loss became {numbers['loss']} by step {done}: lower "
                        "optimizer.lr, keep optimizer.grad_clip on, or resume from an earlier "
                        "checkpoint"
                    )
                progress.last_train = numbers
                if info.is_main:
                    elapsed = perf_counter() - run_start
                    metrics_log.write({"step": done, "tokens": progress.tokens_seen, **numbers,
                                       "elapsed_s": elapsed})  # fmt: skip
                    log.info(status_line(done, total, numbers))
                    bar.set_postfix(loss=f"{numbers['loss']:.3f}", lr=f"{lr:.1e}",
                                    tok_s=f"{numbers['tok_per_s']:.0f}")  # fmt: skip
                sums.clear()
                interval_start, interval_steps = perf_counter(), 0

    if info.is_main:
        metrics_log.close()
        plot_loss_curve(run_dir / "metrics.jsonl", run_dir / "loss.png")
    return LoopResult(
        stage=stage.name,
        step=progress.step,
        steps=total if total is not None else progress.step + 1,
        tokens_seen=progress.tokens_seen,
        metrics={**progress.last_train, **progress.last_val},
        run_dir=run_dir,
        checkpoint=last_ckpt,
        stop_signal=stop_signal if progress.step != total else 0,
    )


@dataclass
class Probe:
    """Timings of a time-budgeted run's updates, for `scratchlm.train.budget`."""

    marks: dict[int, float] = field(default_factory=dict)  # updates done -> the clock less pauses
    paused_s: float = 0.0  # evaluation, samples and saving since the first mark
    eval_s: float = 0.0  # the latest evaluation

    def mark(self, updates: int, device: torch.device) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # queued kernels are part of the updates' time
        if not self.marks:
            self.paused_s = 0.0
        self.marks[updates] = perf_counter() - self.paused_s

    def ready(self, updates: int, budget: float, device: torch.device) -> bool:
        """Whether the probe has measured enough: `PROBE_STEPS` updates after the skipped ones,
        taking at least `PROBE_SHARE` of the budget (pauses left out), on every rank. Each rank
        reads its own clock, so they agree here (every rank calls this at every probe step) and
        then size the run at the same step."""
        if not self.marks:  # still in the skipped updates, on every rank alike
            return False
        first, t0 = min(self.marks.items())
        measured = perf_counter() - self.paused_s - t0
        enough = updates - first >= PROBE_STEPS and measured >= PROBE_SHARE * budget
        if not torch.distributed.is_initialized():
            return enough
        return bool(all_reduce(torch.tensor(float(enough), device=device), "min").item())

    def size(
        self,
        budget: float,
        elapsed: float,
        done: int,
        training: TrainingConfig,
        schedule: ScheduleConfig,
        device: torch.device,
    ) -> int:
        """The run's total updates, the fewest any rank measured; refuses a budget too short for
        the schedule's warmup."""
        total, step_s = self.measure(budget, elapsed, done, training, device)
        if schedule.name == "cosine" and schedule.warmup_steps >= total:
            raise ValueError(
                f"training.time_budget={training.time_budget} fits {total} updates, not more than "
                f"schedule.warmup_steps ({schedule.warmup_steps}): raise the budget or lower the "
                "warmup"
            )
        log.info(
            "time budget %.0f s: %.3f s per update, %.2f s per evaluation: %d updates",
            budget, step_s, self.eval_s, total,
        )  # fmt: skip
        return total

    def resize(
        self,
        budget: float,
        elapsed: float,
        done: int,
        total: int,
        training: TrainingConfig,
        schedule: ScheduleConfig,
        device: torch.device,
    ) -> int:
        """The total re-measured after `done` updates of a run now planned for `total`, whose
        plateau has not ended (`plateau_end`): from the time per update over the last
        `RESIZE_SHARE` of the budget, and never so few that the updates done would lie past the
        plateau of the new total (their learning rates are then those of a run planned for it
        from the start)."""
        measured, _ = self.measure(budget, elapsed, done, training, device, RESIZE_SHARE * budget)
        # plateau_end grows with the total: the fewest updates whose plateau reaches `done`.
        candidates = range(done, total + 1)
        shortest = candidates[bisect_left(candidates, done, key=lambda n: plateau_end(n, schedule))]
        return max(measured, shortest)

    def measure(
        self,
        budget: float,
        elapsed: float,
        done: int,
        training: TrainingConfig,
        device: torch.device,
        window_s: float | None = None,
    ) -> tuple[int, float]:
        """The updates that fit in the budget at the time per update up to the last mark (pauses
        left out), the fewest any rank measured; and this rank's time per update. Timed from the
        first mark, or with `window_s` from the latest mark at least `window_s` and
        `PROBE_STEPS` updates before the last one (the marks before it are dropped)."""
        last, t1 = max(self.marks.items())
        first, t0 = min(self.marks.items())
        if window_s is not None:
            earlier = [(n, t) for n, t in self.marks.items()
                       if last - n >= PROBE_STEPS and t1 - t >= window_s]  # fmt: skip
            first, t0 = max(earlier, default=(first, t0))
            self.marks = {n: t for n, t in self.marks.items() if n >= first}
        step_s = (t1 - t0) / (last - first)
        total = steps_in_budget(budget, elapsed, done, step_s, self.eval_s, training.eval_interval)
        return int(all_reduce(torch.tensor(total, device=device), "min").item()), step_s


def train_step(
    stage: Stage,
    wrapped: nn.Module,
    grad_accum: int,
    grad_clip: float | None,
    amp: AbstractContextManager,
    parallel: str,
    world_size: int,
    sums: dict[str, Tensor | float],
) -> Tensor:
    """One optimizer update over `grad_accum` micro-batches; adds its numbers into `sums`.

    Each micro-batch's loss is divided by grad_accum, so the update follows the mean over the
    micro-batches. Returns the gradient norm before clipping as a 0-d tensor left on the device
    (reading it, like reading the loss, would make the host wait for the GPU every step).
    """
    device = next(stage.model.parameters()).device
    for micro in range(grad_accum):
        batch = stage.batches.next_batch()
        with grad_sync(wrapped, enabled=micro == grad_accum - 1):
            with amp:
                loss, metrics = stage.loss_fn(wrapped, batch)
            (loss / grad_accum).backward()
        add_numbers(sums, {"loss": loss.detach(), **metrics}, 1.0 / grad_accum)
    grad_norm = torch.zeros((), device=device)
    if grad_clip is not None and parallel == "fsdp" and world_size > 1:
        grad_norm = torch.nn.utils.clip_grad_norm_(stage.model.parameters(), grad_clip)
    elif grad_clip is not None:
        grad_norm = clip_grad_norm(stage.model.parameters(), grad_clip)
    stage.optimizer.step()
    stage.optimizer.zero_grad(set_to_none=True)
    return grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm


def add_numbers(
    sums: dict[str, Tensor | float], numbers: dict[str, Tensor | float], weight: float
) -> None:
    """sums[k] += weight * numbers[k] (tokens: += numbers[k]).

    Tensors stay tensors on their device and plain numbers stay Python numbers, so a step adds no
    host-to-device copy and no wait for the device.
    """
    for key, value in numbers.items():
        value = value.detach().float() if isinstance(value, Tensor) else float(value)
        value = value if key == "tokens" else value * weight
        sums[key] = sums[key] + value if key in sums else value


def reduce_interval(
    sums: dict[str, Tensor | float], steps: int, grad_norm: Tensor
) -> dict[str, float]:
    """Means over the interval's steps and all ranks (tokens: the total), read in one transfer."""
    keys = sorted(sums)
    device = grad_norm.device
    parts = [torch.as_tensor(sums[k], dtype=torch.float32, device=device) for k in keys]
    stacked = torch.stack(parts + [grad_norm.float()])
    all_reduce(stacked, "sum")
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    values = stacked.tolist()
    pairs = zip(keys, values[:-1], strict=True)
    numbers = {k: v if k == "tokens" else v / (steps * world) for k, v in pairs}
    numbers["grad_norm"] = values[-1] / world
    return numbers


def evaluate(stage: Stage, amp: AbstractContextManager) -> dict[str, float]:
    """The stage's held-out numbers, with the model in eval mode and without gradients."""
    was_training = stage.model.training
    stage.model.eval()
    with torch.no_grad(), amp:
        numbers = stage.eval_fn()
    stage.model.train(was_training)
    return numbers


def agree_to_stop(signum: int, spent_s: float, device: torch.device) -> tuple[int, float]:
    """The stop signal any rank caught (0: none) and the most budget any rank has spent, so that
    all ranks stop at the same step."""
    if not torch.distributed.is_initialized():
        return signum, spent_s
    both = all_reduce(torch.tensor([float(signum), spent_s], device=device), "max").tolist()
    return int(both[0]), both[1]


def format_numbers(values: dict[str, float]) -> str:
    return " | ".join(f"{k} {v:.4g}" for k, v in values.items())


def status_line(step: int, total: int | None, metrics: dict[str, float]) -> str:
    """`step 120/5000 | loss 3.412 | lr 6.0e-04 | 41.2k tok/s | mfu 38.1%`, then stage numbers."""
    line = (
        f"step {step}/{total or '?'} | loss {metrics['loss']:.4f} | lr {metrics['lr']:.1e} | "
        f"{metrics['tok_per_s'] / 1e3:.1f}k tok/s"
    )
    if "mfu" in metrics:
        line += f" | mfu {100 * metrics['mfu']:.1f}%"
    shared = {"loss", "lr", "tok_per_s", "mfu", "grad_norm"}
    extra = {k: v for k, v in metrics.items() if k not in shared}
    return line + (" | " + format_numbers(extra) if extra else "")


def start_run_record(
    stage: Stage, training: TrainingConfig, amp_dtype: torch.dtype, world_size: int
) -> MetricsLog:
    """Write config.json and run.json into the run directory and open the metrics sinks (rank 0)."""
    run_dir = stage.run_dir
    (run_dir / "config.json").write_text(json.dumps(stage.config, indent=2) + "\n")
    device = next(stage.model.parameters()).device
    record = run_record(training.seed, device, world_size)
    num_params = sum(p.numel() for p in stage.model.parameters())
    record.update(stage=stage.name, num_params=num_params, amp=str(amp_dtype))
    (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    wandb_run = stage.wandb(stage.config, run_dir) if stage.wandb is not None else None
    log.info(
        "%s: %.2fM params | %d steps of batch %d x accum %d x %d ranks | %s %s | %s",
        stage.name, num_params / 1e6, training.steps, training.batch_size, training.grad_accum,
        world_size, device, str(amp_dtype).removeprefix("torch."), run_dir,
    )  # fmt: skip
    return MetricsLog(run_dir / "metrics.jsonl", wandb_run)


def restore(
    path: Path, stage: Stage, tok_hash: str | None, parallel: str, info: DistInfo
) -> Progress:
    """Load a checkpoint into the model, optimizer, batch source and RNGs; return its progress."""
    loaded = ckpt.load_checkpoint(path)
    ckpt.check_compatible(loaded, stage.config["model"], tok_hash, parallel)
    load_full_state(stage.model, stage.optimizer, loaded.model_state, loaded.optim_state, parallel)
    stage.batches.load_state_dict(loaded.rng["batches"])
    ranks = loaded.rng["ranks"]
    if len(ranks) == info.world_size:
        ckpt.set_rng_state(ranks[info.rank])
    else:
        log.warning("checkpoint has RNG states of %d ranks, this run has %d: kept fresh seeds",
                    len(ranks), info.world_size)  # fmt: skip
    s = loaded.state
    log.info("resumed %s from %s at step %d", stage.name, path, s["step"])
    metrics = s.get("metrics", {})
    return Progress(
        step=s["step"],
        total_steps=s["schedule"]["total_steps"],
        budget_spent_s=s.get("budget_spent_s", 0.0),
        tokens_seen=s["tokens_seen"],
        best_val_loss=s.get("best_val_loss"),
        best_step=s.get("best_step"),
        last_train={k: v for k, v in metrics.items() if not k.startswith("val_")},
        last_val={k: v for k, v in metrics.items() if k.startswith("val_")},
    )


def save(
    root: Path,
    stage: Stage,
    progress: Progress,
    val_loss: float | None,
    training: TrainingConfig,
    optimizer_cfg: OptimizerConfig,
    schedule: ScheduleConfig,
    tok_hash: str | None,
    tokenizer_dir: Path | None,
    info: DistInfo,
) -> Path | None:
    """Checkpoint the run at `progress.step` (every rank calls; rank 0 writes) and prune old ones.

    The newest `training.keep_last` checkpoints stay, plus the best by validation loss; val_loss
    is the loss of the evaluation at this step (None without one), never an older one.
    """
    best = ckpt.best_after((progress.best_val_loss, progress.best_step), progress.step, val_loss)
    progress.best_val_loss, progress.best_step = best
    model_state, optim_state = full_state(stage.model, stage.optimizer, training.parallel)
    rng_ranks = gather_objects(ckpt.rng_state())
    if not info.is_main:
        return None
    total = progress.total_steps or PROBE_TOTAL
    state = {
        "stage": stage.name,
        "step": progress.step,
        "tokens_seen": progress.tokens_seen,
        "val_loss": val_loss,
        "best_val_loss": progress.best_val_loss,
        "best_step": progress.best_step,
        "schedule": {
            "name": schedule.name,
            "total_steps": progress.total_steps,
            "next_lr": learning_rate(progress.step, total, optimizer_cfg, schedule),
        },
        "budget_spent_s": progress.budget_spent_s,
        "world_size": info.world_size,
        "parallel": training.parallel,
        "tokenizer_hash": tok_hash,
        "metrics": {**progress.last_train, **progress.last_val},
    }
    # A batch source's state is the global position in its data, the same on every rank.
    rng = {"ranks": rng_ranks, "batches": stage.batches.state_dict()}
    path = ckpt.save_checkpoint(root, progress.step, model_state, optim_state, state,
                                rng, stage.config, tokenizer_dir)  # fmt: skip
    best = ckpt.checkpoint_dir(root, progress.best_step) if progress.best_step is not None else None
    ckpt.prune_checkpoints(root, training.keep_last, best)
    log.info("saved %s", path)
    return path
