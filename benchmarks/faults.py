"""Fault suite: interrupt training runs through the CLI and check that nothing is lost.

Every start is a subprocess of the public CLI (`python -m scratchlm train|sft|dpo|grpo`, the same
entry point as the `scratchlm` command) on a tiny model (2 layers, d_model 32, context 64, one
thread) and tiny data the suite makes itself with the CLI (`data synth`, `train-tokenizer`,
`tokenize`, `task make`). Every config checkpoints each step, so kills often land in a write. Each
stage first runs its config uninterrupted (the reference; run twice unless --quick, to show that
two runs agree bitwise), then one trial per interruption:

- kill -9: SIGKILL at a random moment of a random step.
- kill -9 in a write: SIGKILL as soon as a `.tmp-step_*` folder (a checkpoint being written)
  appears.
- SIGTERM, SIGINT: the signal at a random moment; the run should stop at a step and say so.
- corrupt weights, corrupt state.json: a run stopped with SIGTERM has its newest checkpoint's
  file cut in half; `--resume latest` must fail with one line naming the damaged file and the
  newest intact checkpoint, and `--resume` from the one it names must complete.
- branch: a copy of the reference resumed from an older checkpoint with another lr and stopped
  with SIGTERM; the newer checkpoints and their metrics rows must stay somewhere in the run
  directory, and `--resume latest` must continue the new branch (its reference: the reference
  cut back to that checkpoint and resumed once, uninterrupted, with the new lr).
- two processes: the same run started again with `--resume latest` while the first is paused
  (SIGSTOP); the second must be refused with one line naming the first's pid.

After the interruption the run goes on with `--resume latest` until it reaches its last step. A
trial *survived* when the run completed; it is *bitwise equal* when the tensors of its final
model.safetensors equal the reference's. It *lost data* when metrics.jsonl holds a row twice,
misses a row the reference has or has an unreadable line, when one of the newest checkpoints an
uninterrupted run keeps is missing, or (branch) when a checkpoint or metrics row of the abandoned
branch is found nowhere in the run directory. *Other faults*: stale `.tmp-*`/`.old-*` folders, an
error that is not one line or does not name what it should, a second process that was not refused,
no "stopped at step" message after a stop signal.

    python benchmarks/faults.py                             # all stages, 4 kills each
    python benchmarks/faults.py --quick --kills 1 --stages pretrain
    python benchmarks/faults.py --out runs/faults --seed 3  # keep the run directories and logs

Prints a line per trial as it goes, then the table and what went wrong in each failed trial. Exit
status 1 when any trial failed a check (or the references disagree), 0 when every one passed.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

STAGES = ("pretrain", "sft", "dpo", "grpo")
KEEP_LAST = 6  # checkpoints each run keeps; the branch scenario resumes from the oldest of them
BRANCH_LR = {"pretrain": "1.5e-3", "sft": "5e-4", "dpo": "5e-4", "grpo": "5e-4"}
POLL_S = 0.002
TIMEOUT_S = 600
CHECKPOINT = re.compile(r"step_(\d{8})")


@dataclass
class Trial:
    """What one interrupted run came to."""

    label: str
    survived: bool = False
    equal: bool = False
    lost: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def passed(self) -> bool:
        return self.survived and self.equal and not self.lost and not self.faults


@dataclass
class Suite:
    """The work directory, the stages' lengths and sources, and their reference runs."""

    work: Path
    steps: dict[str, int]
    rng: random.Random
    sources: dict[str, Path] = field(default_factory=dict)
    refs: dict[str, Path] = field(default_factory=dict)
    starts: int = 0


# ---------------------------------------------------------------------------------------------
# Processes


def child_env() -> dict[str, str]:
    """One thread per run (modest CPU use, one kernel path); errors as one line, not tracebacks."""
    env = {k: v for k, v in os.environ.items() if k != "SCRATCHLM_DEBUG"}
    return env | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def start(s: Suite, args: list[str], name: str) -> tuple[subprocess.Popen, Path]:
    """Start `python -m scratchlm ARGS` in the work directory, output into logs/NAME.log."""
    s.starts += 1
    log = s.work / "logs" / f"{s.starts:03d}-{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scratchlm", *args],
            cwd=s.work, env=child_env(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return proc, log


def finish(proc: subprocess.Popen, timeout: float = TIMEOUT_S) -> int | None:
    """The exit status, or None when the process ran past `timeout` (it is killed then)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def run(s: Suite, args: list[str], name: str, timeout: float = TIMEOUT_S) -> tuple[int | None, str]:
    """Run the CLI to the end; returns its exit status (None: timed out) and its output."""
    proc, log = start(s, args, name)
    status = finish(proc, timeout)
    return status, log.read_text(errors="replace")


def error_line(output: str) -> str:
    """The `error:` line of a failed run, or what a traceback ended with, or the last line."""
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors:
        return errors[0]
    if any(line.startswith("Traceback") for line in lines):
        return f"traceback ending {lines[-1].strip()!r}"
    return lines[-1] if lines else "no output"


def one_line_error(output: str) -> str | None:
    """The one `error:` line of `output`, or None when there is none, several, or a traceback."""
    lines = output.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    if len(errors) != 1 or any(line.startswith("Traceback") for line in lines):
        return None
    return errors[0]


def command(s: Suite, stage: str, run_dir: Path, *extra: str) -> list[str]:
    """The CLI arguments of `stage` writing into `run_dir`, plus `extra` (overrides, --resume)."""
    config = str(s.work / "configs" / f"{stage}.json")
    data = s.work / "data"
    if stage == "pretrain":
        args = ["train", "--config", config, f"logging.out_dir={run_dir}"]
    elif stage == "sft":
        args = ["sft", "--base", str(s.sources["sft"]), "--data", str(data / "sft.jsonl")]
    elif stage == "dpo":
        args = ["dpo", "--policy", str(s.sources["dpo"]), "--data", str(data / "preference.jsonl")]
    else:
        args = ["grpo", "--policy", str(s.sources["grpo"]), "--task", "arithmetic"]
    if stage != "pretrain":
        args += ["--config", config, "--out", str(run_dir)]
    return args + list(extra)


# ---------------------------------------------------------------------------------------------
# What is on disk


def listing(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def step_of(name: str) -> int:
    """The step in a checkpoint folder's name (`step_00000012`, `.tmp-step_00000012-PID`), or -1."""
    match = CHECKPOINT.search(name)
    return int(match.group(1)) if match else -1


def checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    root = run_dir / "checkpoints"
    found = [root / n for n in listing(root) if n.startswith("step_")]
    return sorted(found, key=lambda p: step_of(p.name))


def newest_step(run_dir: Path) -> int:
    found = checkpoints(run_dir)
    return step_of(found[-1].name) if found else -1


def temporaries(run_dir: Path) -> list[str]:
    """Leftovers of interrupted writes in the checkpoints folder."""
    return sorted(n for n in listing(run_dir / "checkpoints") if n.startswith((".tmp-", ".old-")))


def final_checkpoint(s: Suite, stage: str, run_dir: Path) -> Path:
    return run_dir / "checkpoints" / f"step_{s.steps[stage]:08d}"


def wait_until(proc: subprocess.Popen, found: Callable[[], bool]) -> bool:
    """Poll until `found()` holds (True) or the process has exited without it (False)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if found():
            return True
        if proc.poll() is not None:
            return found()
        time.sleep(POLL_S)
    return False


def same_weights(a: Path, b: Path) -> bool:
    """Whether two checkpoints' model.safetensors hold the same tensors, bit for bit."""
    try:
        x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    except (OSError, SafetensorError):
        return False
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_rows(path: Path) -> tuple[list[dict], int]:
    """The rows of a metrics.jsonl and the number of lines that are not a JSON object."""
    rows, bad = [], 0
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


def row_key(row: dict) -> tuple[int, str]:
    """A metrics row is a training row (it has a loss) or an evaluation row, at a step."""
    return row["step"], "train" if "loss" in row else "eval"


def steps_text(steps: list[int]) -> str:
    return ", ".join(map(str, steps[:8])) + (f" (+{len(steps) - 8} more)" if len(steps) > 8 else "")


# ---------------------------------------------------------------------------------------------
# Checks shared by every trial


def interrupt(
    s: Suite, proc: subprocess.Popen, run_dir: Path, target: int, sig: int, in_write: bool
) -> bool:
    """Send `sig` at a random moment of the step after `target` (>= 2), or, with `in_write`, as
    soon as a checkpoint of step >= `target` is being written. False when the process ended first.

    The moment is a random fraction of the time this run took from step `target` - 1 to `target`,
    so it stays inside a step however busy the machine is.
    """
    root = run_dir / "checkpoints"
    if in_write:
        writing = lambda: any(  # noqa: E731
            n.startswith(".tmp-") and step_of(n) >= target for n in listing(root)
        )
        hit = wait_until(proc, writing)
    else:
        hit = wait_until(proc, lambda: newest_step(run_dir) >= target - 1)
        began = time.monotonic()
        hit = hit and wait_until(proc, lambda: newest_step(run_dir) >= target)
        time.sleep(s.rng.uniform(0, time.monotonic() - began))
    if not hit or proc.poll() is not None:
        return False
    os.kill(proc.pid, sig)
    return True


def resume_to_end(
    s: Suite, stage: str, run_dir: Path, trial: Trial, resume: str = "latest", extra: tuple = ()
) -> None:
    """`--resume RESUME`, then `--resume latest` while the run stops short (3 starts at most)."""
    for attempt in range(1, 4):
        args = command(s, stage, run_dir, *extra, "--resume", resume)
        status, output = run(s, args, f"{stage}-resume")
        if status != 0:
            reason = "timed out" if status is None else error_line(output)
            trial.notes.append(f"--resume {resume} failed: {reason}")
            return
        if final_checkpoint(s, stage, run_dir).is_dir():
            trial.survived = True
            trial.notes.append(f"completed after {attempt} resume(s)")
            return
        resume = "latest"
    trial.notes.append("did not reach its last step in 3 resumes")


def check(s: Suite, stage: str, run_dir: Path, trial: Trial, reference: Path) -> None:
    """Final weights against `reference`, metrics rows, the newest checkpoints, temporaries."""
    if trial.survived:
        final = final_checkpoint(s, stage, run_dir)
        trial.equal = same_weights(final, final_checkpoint(s, stage, reference))
    rows, bad = read_rows(run_dir / "metrics.jsonl")
    if bad:
        trial.lost.append(f"{bad} unreadable line(s) in metrics.jsonl")
    counts = Counter(map(row_key, rows))
    repeated = sorted({step for (step, _), n in counts.items() if n > 1})
    if repeated:
        trial.lost.append(f"metrics rows repeated at steps {steps_text(repeated)}")
    if trial.survived:
        ref_rows, _ = read_rows(reference / "metrics.jsonl")
        missing = sorted(
            {step for step, kind in map(row_key, ref_rows) if (step, kind) not in counts}
        )
        if missing:
            trial.lost.append(f"metrics rows missing at steps {steps_text(missing)}")
        losses = {row["step"]: row["loss"] for row in rows if "loss" in row}
        differ = [
            r["step"]
            for r in ref_rows
            if "loss" in r and losses.get(r["step"], r["loss"]) != r["loss"]
        ]
        if differ:
            trial.notes.append(f"training loss differs from the reference from step {differ[0]}")
        kept = {p.name for p in checkpoints(run_dir)}
        gone = [p.name for p in checkpoints(reference)[-KEEP_LAST:] if p.name not in kept]
        if gone:
            trial.lost.append(f"checkpoints missing: {', '.join(gone)}")
    stale = temporaries(run_dir)
    if stale:
        trial.faults.append(f"stale temporaries: {', '.join(stale)}")


# ---------------------------------------------------------------------------------------------
# Scenarios: each starts a run in its own folder, interrupts it, resumes it and checks it


def slug(name: str) -> str:
    return re.sub(r"[^\w.]+", "-", name).strip("-")


def mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


def kill_trial(s: Suite, stage: str, name: str, in_write: bool) -> Trial:
    """SIGKILL at a random moment of a random step (or in a checkpoint write), then resume."""
    trial, run_dir, steps = Trial(f"{stage} {name}"), s.work / stage / slug(name), s.steps[stage]
    target = s.rng.randint(2, steps - 1 if in_write else steps - 2)
    proc, _ = start(s, command(s, stage, run_dir), f"{stage}-{slug(name)}")
    if not interrupt(s, proc, run_dir, target, signal.SIGKILL, in_write):
        trial.notes.append("the run ended before the kill")
    proc.wait()
    temps = temporaries(run_dir)
    where = f"in a write ({temps[0]})" if temps else "outside a write"
    trial.notes.append(f"killed {where}, newest checkpoint step {newest_step(run_dir)}")
    resume_to_end(s, stage, run_dir, trial)
    check(s, stage, run_dir, trial, s.refs[stage])
    return trial


def signal_trial(s: Suite, stage: str, name: str, sig: int) -> Trial:
    """SIGTERM or SIGINT at a random moment: the run should save, say where it stopped, exit."""
    trial, run_dir = Trial(f"{stage} {name}"), s.work / stage / slug(name)
    proc, log = start(s, command(s, stage, run_dir), f"{stage}-{slug(name)}")
    sent = interrupt(s, proc, run_dir, s.rng.randint(2, s.steps[stage] - 3), sig, False)
    status = finish(proc)
    if sent:
        said = [line for line in log.read_text(errors="replace").splitlines()
                if " at step " in line and not line.startswith("step ")]  # fmt: skip
        trial.notes.append(
            f"exit status {status}, newest checkpoint step {newest_step(run_dir)}, said "
            f"{said[-1] if said else 'nothing'!r}"
        )
        if not any("stopped at step" in line for line in said):
            trial.faults.append(f"no 'stopped at step N' message after {name}")
    else:
        trial.notes.append(f"the run ended before {name}")
    resume_to_end(s, stage, run_dir, trial)
    check(s, stage, run_dir, trial, s.refs[stage])
    return trial


def damage(checkpoint: Path, part: str) -> Path:
    """Cut model.safetensors (part 'weights') or state.json in half, as a torn write would."""
    path = checkpoint / ("model.safetensors" if part == "weights" else "state.json")
    os.truncate(path, path.stat().st_size // 2)
    return path


def named_checkpoints(s: Suite, line: str, damaged: Path) -> list[Path]:
    """Checkpoint folders other than `damaged` that an error line names by path."""
    paths = [s.work / name for name in re.findall(r"[\w./-]*step_\d{8}", line)]
    return [p for p in paths if p.name != damaged.name and (p / "state.json").is_file()]


def corrupt_trial(s: Suite, stage: str, name: str, part: str) -> Trial:
    """A stopped run whose newest checkpoint is damaged: `--resume latest` must refuse in one line
    naming the damaged file and the newest intact checkpoint; resuming from that one must work."""
    trial, run_dir = Trial(f"{stage} {name}"), s.work / stage / slug(name)
    proc, _ = start(s, command(s, stage, run_dir), f"{stage}-{slug(name)}")
    target = s.rng.randint(2, s.steps[stage] - 3)
    stopped = interrupt(s, proc, run_dir, target, signal.SIGTERM, False)
    finish(proc)
    found = checkpoints(run_dir)
    if len(found) < 2:
        trial.notes.append("the run left fewer than two checkpoints")
        check(s, stage, run_dir, trial, s.refs[stage])
        return trial
    damaged, intact = found[-1], found[-2]
    path = damage(damaged, part)
    how = "stopped with SIGTERM" if stopped else "ran to its end before SIGTERM"
    trial.notes.append(f"{how}; cut {damaged.name}/{path.name} in half")
    status, output = run(s, command(s, stage, run_dir, "--resume", "latest"), f"{stage}-damaged")
    if status == 0:
        trial.faults.append(f"--resume latest went on from the damaged {damaged.name} silently")
        trial.survived = final_checkpoint(s, stage, run_dir).is_dir()
    else:
        line = one_line_error(output)
        if line is None:
            trial.faults.append(f"--resume latest: not a one-line error ({error_line(output)})")
        else:
            trial.notes.append(f"--resume latest: {line}")
            if damaged.name not in line or path.name not in line:
                trial.faults.append(f"the error does not name {damaged.name}/{path.name}")
            named = named_checkpoints(s, line, damaged)
            if named:
                intact = named[0]
            else:
                trial.faults.append(f"the error does not name the intact {intact.name}")
        resume_to_end(s, stage, run_dir, trial, resume=str(intact))
    check(s, stage, run_dir, trial, s.refs[stage])
    return trial


def branch_reference(s: Suite, stage: str, origin_step: int, lr: str) -> Path:
    """The reference run cut back to `origin_step`, then resumed uninterrupted with `lr`."""
    ref = s.work / "ref" / f"{stage}-branch"
    shutil.copytree(s.refs[stage], ref)
    for path in checkpoints(ref):
        if step_of(path.name) > origin_step:
            shutil.rmtree(path)
    rows, _ = read_rows(ref / "metrics.jsonl")
    kept = [json.dumps(row) + "\n" for row in rows if row["step"] <= origin_step]
    (ref / "metrics.jsonl").write_text("".join(kept))
    must_run(s, command(s, stage, ref, lr, "--resume", "latest"), f"{stage}-branch-reference")
    return ref


def branch_trial(s: Suite, stage: str, name: str) -> Trial:
    """Resume a finished run from an older checkpoint with another lr, stop it, resume latest:
    the new branch goes on and the old one's checkpoints and metrics rows are kept aside."""
    trial, run_dir = Trial(f"{stage} {name}"), s.work / stage / slug(name)
    origin_step = s.steps[stage] - KEEP_LAST + 1
    lr = f"optimizer.lr={BRANCH_LR[stage]}"
    reference = branch_reference(s, stage, origin_step, lr)
    shutil.copytree(s.refs[stage], run_dir)
    origin = run_dir / "checkpoints" / f"step_{origin_step:08d}"
    old = {p.name: digest(p / "model.safetensors") for p in checkpoints(run_dir)
           if step_of(p.name) > origin_step}  # fmt: skip
    rows, _ = read_rows(run_dir / "metrics.jsonl")
    old_rows = {(r["step"], r["loss"]) for r in rows if "loss" in r and r["step"] > origin_step}
    began = time.time_ns()
    proc, _ = start(s, command(s, stage, run_dir, lr, "--resume", str(origin)), f"{stage}-branch")
    saved = lambda: any(mtime_ns(p / "state.json") >= began for p in checkpoints(run_dir))  # noqa: E731
    sent = wait_until(proc, saved) and proc.poll() is None
    if sent:
        os.kill(proc.pid, signal.SIGTERM)
    status = finish(proc)
    written = [step_of(p.name) for p in checkpoints(run_dir) if mtime_ns(p / "state.json") >= began]
    stop = "stopped with SIGTERM" if sent else "ran to its end before SIGTERM"
    stop += f" after saving step {max(written)}" if written else " before saving a step"
    trial.notes.append(f"branched from {origin.name} with {lr}, {stop} (exit status {status})")
    resume_to_end(s, stage, run_dir, trial, extra=(lr,))
    check(s, stage, run_dir, trial, reference)
    present = {digest(p) for p in run_dir.rglob("model.safetensors")}
    gone = [name for name, sha in old.items() if sha not in present]
    if gone:
        trial.lost.append(f"old branch's {', '.join(gone)} deleted or overwritten")
    aside: set[tuple[int, float]] = set()
    for path in run_dir.rglob("*.jsonl"):
        if path != run_dir / "metrics.jsonl":
            aside |= {(r["step"], r["loss"]) for r in read_rows(path)[0] if "loss" in r}
    dropped = sorted(step for step, loss in old_rows - aside)
    if dropped:
        trial.lost.append(f"old branch's metrics rows of steps {steps_text(dropped)} not kept")
    return trial


def two_process_trial(s: Suite, stage: str, name: str) -> Trial:
    """Start the run again with `--resume latest` while the first process is paused: the second
    must be refused with one line naming the first; the first then completes."""
    trial, run_dir = Trial(f"{stage} {name}"), s.work / stage / slug(name)
    args = command(s, stage, run_dir)
    first, log = start(s, args, f"{stage}-first")
    if not wait_until(first, lambda: newest_step(run_dir) >= 1) or first.poll() is not None:
        trial.notes.append("the first process ended before the second started")
    os.kill(first.pid, signal.SIGSTOP)
    try:
        status, output = run(s, [*args, "--resume", "latest"], f"{stage}-second", timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    line = one_line_error(output)
    if status is None:
        trial.faults.append("the second process was neither refused nor done after 120 s")
    elif status == 0:
        trial.faults.append("the second process was not refused: it trained the same run")
    elif line is None or str(first.pid) not in line:
        trial.faults.append(f"the second process's error does not name pid {first.pid}: "
                            f"{error_line(output)}")  # fmt: skip
    else:
        trial.notes.append(f"second refused: {line}")
    status = finish(first)
    if status == 0 and final_checkpoint(s, stage, run_dir).is_dir():
        trial.survived = True
    else:
        trial.notes.append(
            f"the first process failed: {error_line(log.read_text(errors='replace'))}"
        )
        resume_to_end(s, stage, run_dir, trial)
    check(s, stage, run_dir, trial, s.refs[stage])
    return trial


# ---------------------------------------------------------------------------------------------
# Data, configs and references


def must_run(s: Suite, args: list[str], name: str) -> None:
    """Run a setup or reference command; a failure ends the suite (nothing to compare with)."""
    status, output = run(s, args, name)
    if status != 0:
        raise SystemExit(f"error: {name} failed: {error_line(output)} (logs in {s.work / 'logs'})")


def make_data(s: Suite) -> None:
    """A 0.2 MB story corpus, a 320-id tokenizer, token files and the task's JSONL files."""
    data = s.work / "data"
    corpus = data / "corpus"
    must_run(s, ["data", "synth", "--out", str(corpus), "--size-mb", "0.2"], "synth")
    must_run(s, ["train-tokenizer", "--data-path", str(corpus / "train.txt"), "--output-dir",
                 str(data / "tokenizer"), "--vocab-size", "320", "--num-processes", "1"],
             "train-tokenizer")  # fmt: skip
    for split in ("train", "valid"):
        must_run(s, ["tokenize", "--dataset-path", str(corpus / f"{split}.txt"), "--output-path",
                     str(data / f"{split}.npy"), "--tokenizer-dir", str(data / "tokenizer"),
                     "--num-processes", "1"], f"tokenize-{split}")  # fmt: skip
    must_run(s, ["task", "make", "--out", str(data), "--n-sft", "600", "--n-preference", "64"],
             "task-make")  # fmt: skip
    lines = (data / "sft.jsonl").read_text().splitlines()
    (data / "arithmetic.jsonl").write_text("".join(f"{x}\n" for x in lines if '"What is ' in x))


def write_configs(s: Suite) -> None:
    """One config per stage: every step logged and checkpointed, KEEP_LAST checkpoints kept."""
    data, configs = s.work / "data", s.work / "configs"
    loop = {"batch_size": 4, "device": "cpu", "eval_interval": 4, "log_interval": 1,
            "checkpoint_interval": 1, "keep_last": KEEP_LAST}  # fmt: skip
    adamw = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0}
    cosine = {"name": "cosine", "warmup_steps": 2, "min_lr": 1e-4}
    constant = {"name": "constant", "warmup_steps": 0, "min_lr": 0.0}
    stages = {
        "pretrain": {
            "model": {"vocab_size": 320, "context_length": 64, "num_layers": 2, "d_model": 32,
                      "num_heads": 2},  # fmt: skip
            "data": {"train_path": str(data / "train.npy"), "val_path": str(data / "valid.npy"),
                     "tokenizer_dir": str(data / "tokenizer")},  # fmt: skip
            "optimizer": {"lr": 3e-3},
            "schedule": {"warmup_steps": 2, "min_lr": 3e-4},
            "training": {"steps": s.steps["pretrain"], "batch_size": 4, "device": "cpu",
                         "checkpoint_interval": 1, "keep_last": KEEP_LAST, "eval_interval": 4,
                         "sample_interval": 1000, "log_interval": 1},  # fmt: skip
            "eval": {"max_tokens": 1024, "sample_tokens": 8},
        },
        "sft": {"held_out": 0.05, "optimizer": adamw, "schedule": cosine,
                "training": loop | {"steps": s.steps["sft"]}},  # fmt: skip
        "dpo": {"held_out": 0.1, "optimizer": adamw, "schedule": cosine,
                "training": loop | {"steps": s.steps["dpo"]}},  # fmt: skip
        "grpo": {"group_size": 4, "max_new_tokens": 12, "eval_prompts": 2, "optimizer": adamw,
                 "schedule": constant,
                 "training": loop | {"steps": s.steps["grpo"], "batch_size": 2}},
    }  # fmt: skip
    for stage, config in stages.items():
        (configs / f"{stage}.json").write_text(json.dumps(config, indent=2) + "\n")


def reference(s: Suite, stage: str, repeat: bool) -> bool:
    """The uninterrupted run of `stage`; with `repeat`, a second one. True when they agree."""
    ref = s.work / "ref" / stage
    must_run(s, command(s, stage, ref), f"{stage}-reference")
    s.refs[stage] = ref
    times = [mtime_ns(p / "state.json") for p in checkpoints(ref)]
    step_ms = (times[-1] - times[0]) / 1e6 / (len(times) - 1)
    line = f"reference {stage}: {s.steps[stage]} steps, {step_ms:.0f} ms a step"
    agree = True
    if repeat:
        again = s.work / "ref" / f"{stage}-again"
        must_run(s, command(s, stage, again), f"{stage}-reference-again")
        final = final_checkpoint(s, stage, ref)
        agree = same_weights(final, final_checkpoint(s, stage, again))
        line += "; a second run is " + ("bitwise equal" if agree else "NOT bitwise equal")
    print(line, flush=True)
    return agree


def grpo_policy(s: Suite) -> Path:
    """An SFT of the pretrained reference on arithmetic only: its samples earn some reward, so
    GRPO's updates are not all zero."""
    base = s.work / "ref" / "grpo-policy"
    sft = command(s, "sft", base)
    sft[sft.index("--data") + 1] = str(s.work / "data" / "arithmetic.jsonl")  # one --data only
    must_run(s, sft + [
        "training.steps=150", "training.batch_size=8", "training.checkpoint_interval=150",
        "training.eval_interval=150", "training.log_interval=50", "schedule.warmup_steps=5",
        "schedule.min_lr=3e-4", "optimizer.lr=1e-2",
    ], "grpo-policy")  # fmt: skip
    return checkpoints(base)[-1]


# ---------------------------------------------------------------------------------------------
# The suite


def stage_trials(s: Suite, stage: str, kills: int) -> dict[str, list[Trial]]:
    """Every scenario of one stage, printing a line per trial as it ends."""
    plan: list[tuple[str, Callable[[], Trial]]] = []
    for n in range(kills):
        scenario = "kill -9 in a write" if n % 2 else "kill -9"
        name = f"{scenario} #{n // 2 + 1}"
        plan.append((scenario, lambda name=name, w=bool(n % 2): kill_trial(s, stage, name, w)))
    plan += [
        ("SIGTERM", lambda: signal_trial(s, stage, "SIGTERM", signal.SIGTERM)),
        ("SIGINT", lambda: signal_trial(s, stage, "SIGINT", signal.SIGINT)),
        ("corrupt weights", lambda: corrupt_trial(s, stage, "corrupt weights", "weights")),
        ("corrupt state.json", lambda: corrupt_trial(s, stage, "corrupt state.json", "state")),
        ("branch", lambda: branch_trial(s, stage, "branch")),
        ("two processes", lambda: two_process_trial(s, stage, "two processes")),
    ]
    results: dict[str, list[Trial]] = {}
    for scenario, trial_fn in plan:
        trial = trial_fn()
        print(describe(trial), flush=True)
        results.setdefault(scenario, []).append(trial)
    return results


def describe(t: Trial) -> str:
    verdict = "ok" if t.passed() else "FAILED"
    parts = [*t.notes, "survived" if t.survived else "did not complete"]
    if t.survived:
        parts.append("bitwise equal" if t.equal else "NOT bitwise equal")
    parts += [f"lost: {x}" for x in t.lost] + [f"fault: {x}" for x in t.faults]
    return f"  {t.label}: {verdict} | " + "; ".join(parts)


def print_table(results: list[tuple[str, list[Trial]]]) -> None:
    """scenario | tried | survived | bitwise equal | data lost | other faults, and a total."""
    header = ["scenario", "tried", "survived", "bitwise equal", "data lost", "other faults"]

    def counts(trials: list[Trial]) -> list[int]:
        return [len(trials), sum(t.survived for t in trials), sum(t.equal for t in trials),
                sum(bool(t.lost) for t in trials), sum(bool(t.faults) for t in trials)]  # fmt: skip

    rows = [[name, *map(str, counts(trials))] for name, trials in results]
    everything = [t for _, trials in results for t in trials]
    rows.append(["**total**", *map(str, counts(everything))])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("| " + " | ".join(cells) + " |")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the interruption moments (0)")
    p.add_argument(
        "--kills", type=int, default=None,
        help="kill -9 trials per stage, half of them in a write (4; 2 with --quick)",
    )  # fmt: skip
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated (all four)")
    p.add_argument(
        "--out", type=Path, default=None,
        help="keep the work folder (runs, logs) here instead of a temporary one",
    )  # fmt: skip
    p.add_argument(
        "--quick", action="store_true",
        help="shorter runs (10 pretraining, 8 post-training steps), one reference run",
    )  # fmt: skip
    args = p.parse_args()
    args.stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = [name for name in args.stages if name not in STAGES]
    if unknown or not args.stages:
        p.error(f"--stages takes names from {', '.join(STAGES)}, got {args.stages}")
    if args.kills is None:
        args.kills = 2 if args.quick else 4
    if args.kills < 0:
        p.error("--kills must be >= 0")
    if args.out is not None and args.out.exists() and any(args.out.iterdir()):
        p.error(f"--out {args.out} is not empty: choose a new folder")
    return args


def run_suite(work: Path, args: argparse.Namespace) -> int:
    """Data, references, then every stage's trials; prints the table; 1 if anything failed."""
    began = time.perf_counter()
    post = 8 if args.quick else 12
    steps = {"pretrain": 10 if args.quick else 16, "sft": post, "dpo": post, "grpo": post}
    s = Suite(work, steps, random.Random(args.seed))
    for folder in ("logs", "configs", "ref"):
        (work / folder).mkdir(parents=True, exist_ok=True)
    print(f"fault suite: stages {','.join(args.stages)}, {args.kills} kills per stage, seed "
          f"{args.seed}, work folder {work}", flush=True)  # fmt: skip
    make_data(s)
    write_configs(s)
    print("data: 0.2 MB of stories, a 320-id tokenizer, token files, task records", flush=True)
    agree = reference(s, "pretrain", not args.quick)
    s.sources["sft"] = final_checkpoint(s, "pretrain", s.refs["pretrain"])
    if {"sft", "dpo"} & set(args.stages):
        agree &= reference(s, "sft", not args.quick)
        s.sources["dpo"] = final_checkpoint(s, "sft", s.refs["sft"])
    if "dpo" in args.stages:
        agree &= reference(s, "dpo", not args.quick)
    if "grpo" in args.stages:
        s.sources["grpo"] = grpo_policy(s)
        agree &= reference(s, "grpo", not args.quick)
    results: list[tuple[str, list[Trial]]] = []
    for stage in args.stages:
        print(f"{stage}:", flush=True)
        for scenario, trials in stage_trials(s, stage, args.kills).items():
            results.append((f"{stage} {scenario}", trials))
    everything = [t for _, trials in results for t in trials]
    print(f"\n{len(everything)} trials, {s.starts} CLI starts, "
          f"{time.perf_counter() - began:.0f} s\n")  # fmt: skip
    print_table(results)
    failed = [t for t in everything if not t.passed()]
    if failed:
        print("\nfailed trials:")
        for trial in failed:
            print(describe(trial))
    if not agree:
        print("\nthe reference runs disagree with each other: bitwise comparisons mean nothing")
    return 1 if failed or not agree else 0


def main() -> int:
    args = parse_args()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        return run_suite(args.out.resolve(), args)
    with tempfile.TemporaryDirectory(prefix="scratchlm-faults-") as tmp:
        return run_suite(Path(tmp), args)


if __name__ == "__main__":
    raise SystemExit(main())
