"""Checkpoints: one directory per saved step holding everything needed to continue exactly.

    <run_dir>/checkpoints/step_00001000/
        model.safetensors   raw-module weights (no DDP/compile prefixes)
        optimizer.pt        optimizer.state_dict() (torch.save; loaded with weights_only=True)
        state.json          format version, step, tokens seen, best val loss, schedule, last metrics
        rng.pt              RNG states (python, numpy, torch, cuda) per rank, batch source state
        config.json         the resolved run config
        tokenizer/          a copy of the tokenizer directory (its hash is in state.json)

A checkpoint is written into a temporary directory beside the final one and renamed into place, so a
crash or a full disk during a save leaves the previous checkpoints untouched. Loading never
unpickles code: safetensors for weights, `torch.load(weights_only=True)` for the rest.

A run directory is used by one process at a time (`lock_run`). Its `checkpoints/` hold one line of
history: resuming from a step older than the newest moves the later checkpoints and metrics rows
into `branches/<time>-resumed-at-step-<step>/` (`start_branch`), so `latest` is always the newest
step of the branch being trained and nothing of the other branch is lost.
"""

import fcntl
import hashlib
import json
import logging
import os
import pickle
import random
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.runtime import make_run_dir

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
PREFIX = "step_"
LOCK_FILE = ".lock"
BRANCHES = "branches"
# What save_checkpoint leaves behind when its process dies mid-save: (kind, checkpoint name, pid).
TEMPORARY = re.compile(r"\.(tmp|old)-(step_\d+)-(\d+)")


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: state dicts on CPU plus the JSON records."""

    path: Path
    model_state: dict[str, Tensor]
    optim_state: dict[str, Any]
    state: dict[str, Any]
    rng: dict[str, Any]
    config: dict[str, Any]


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / f"{PREFIX}{step:08d}"


def checkpoint_step(path: Path) -> int:
    """The step in a checkpoint directory's name (`step_00000040` -> 40)."""
    return int(path.name.removeprefix(PREFIX))


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories under `root`, oldest step first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=checkpoint_step)


def resolve_resume(resume: str, root: Path) -> Path:
    """The intact checkpoint `--resume` names: `latest` is the newest under `root`, else a path.

    A damaged one is refused with the damaged file; for `latest` the error also names the newest
    intact checkpoint to pass to `--resume PATH`.
    """
    if resume == "latest":
        found = list_checkpoints(root)
        if not found:
            raise FileNotFoundError(
                f"--resume latest: no checkpoint under {root}; start without --resume"
            )
        path = found[-1]
    else:
        path = Path(resume)
        if not (path / "state.json").is_file():
            raise FileNotFoundError(
                f"--resume {resume}: not a checkpoint directory (no state.json)"
            )
    problem = checkpoint_problem(path)
    if problem is None:
        return path
    if resume != "latest":
        raise ValueError(f"--resume {resume}: {problem}; pass an intact checkpoint")
    intact = next((p for p in reversed(found[:-1]) if checkpoint_problem(p) is None), None)
    if intact is None:
        raise ValueError(f"--resume latest: {problem}, and {root} holds no intact checkpoint")
    raise ValueError(
        f"--resume latest: the newest checkpoint is damaged: {problem}; continue from the newest "
        f"intact one with --resume {intact}"
    )


def checkpoint_problem(path: Path) -> str | None:
    """What makes checkpoint directory `path` unusable (`.../model.safetensors is damaged (...)`).

    None when it is intact as far as a quick look can tell: both JSON files parse and state.json
    has its step, the safetensors header fits the file's size, and both torch files open,
    memory-mapped, with weights_only (their zip directory sits at the end, so a truncated file
    fails). The messages are `load_checkpoint`'s, which reads everything.
    """
    try:
        _read_step(path / "state.json", _read_json(path / "state.json"))
        _read_json(path / "config.json")
        if not (path / "model.safetensors").is_file():
            raise _missing(path / "model.safetensors")
        try:
            with safe_open(str(path / "model.safetensors"), "pt"):
                pass
        except SafetensorError as exc:
            reason = f"{exc}; truncated or not safetensors"
            raise _damaged(path / "model.safetensors", reason) from None
        for name in ("optimizer.pt", "rng.pt"):
            _read_tensors(path / name, mmap=True)
    except (OSError, ValueError) as exc:
        return str(exc).removesuffix("; pass another checkpoint")
    return None


def save_checkpoint(
    root: Path,
    step: int,
    model_state: dict[str, Tensor],
    optim_state: dict[str, Any],
    state: dict[str, Any],
    rng: dict[str, Any],
    config: dict[str, Any],
    tokenizer_dir: Path | None = None,
) -> Path:
    """Write a checkpoint for `step` under `root` atomically and return its directory.

    Any OSError (full disk, permissions) leaves no partial directory behind and is re-raised as a
    one-line OSError that says the previous checkpoints are intact.
    """
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write(tmp, model_state, optim_state, state, rng, config, tokenizer_dir)
        if final.exists():  # re-saving a step (e.g. after a resume): swap, then drop the old one
            old = root / f".old-{final.name}-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise OSError(
            f"cannot write checkpoint {final}: {reason}; earlier checkpoints in {root} are intact"
        ) from None
    return final


def _write(
    path: Path,
    model_state: dict[str, Tensor],
    optim_state: dict[str, Any],
    state: dict[str, Any],
    rng: dict[str, Any],
    config: dict[str, Any],
    tokenizer_dir: Path | None,
) -> None:
    # Tied weights share storage, which safetensors refuses: give every entry its own contiguous
    # copy.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model_state.items()}
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    torch.save(optim_state, path / "optimizer.pt")
    torch.save(rng, path / "rng.pt")
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    if tokenizer_dir is not None:
        shutil.copytree(tokenizer_dir, path / "tokenizer")
    full_state = {"format_version": FORMAT_VERSION, **state}
    (path / "state.json").write_text(json.dumps(full_state, indent=2) + "\n")


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint directory (tensors to CPU), refusing unknown format versions.

    A missing, truncated or malformed file is an error naming it (FileNotFoundError, ValueError).
    """
    state = _read_json(path / "state.json")
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {version}, this code reads {FORMAT_VERSION}"
        )
    _read_step(path / "state.json", state)
    return Checkpoint(
        path=path,
        model_state=_read_weights(path / "model.safetensors"),
        optim_state=_read_tensors(path / "optimizer.pt"),
        state=state,
        rng=_read_tensors(path / "rng.pt"),
        config=_read_json(path / "config.json"),
    )


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"{path} is missing: checkpoint {path.parent} is incomplete")


def _damaged(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path} is damaged ({reason}); pass another checkpoint")


def _read_json(path: Path) -> dict[str, Any]:
    """One of a checkpoint's JSON files, which must hold an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _missing(path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _damaged(path, f"it holds a JSON {type(data).__name__}, not an object")
    return data


def _read_step(path: Path, state: dict[str, Any]) -> int:
    """state.json's step, which must be a step number."""
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise _damaged(path, f"'step' should be a step number, got {step!r}")
    return step


def _read_weights(path: Path) -> dict[str, Tensor]:
    """A safetensors file's tensors, on CPU."""
    if not path.is_file():
        raise _missing(path)
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise _damaged(path, f"{exc}; truncated or not a safetensors file") from None


def _read_tensors(path: Path, mmap: bool = False) -> Any:
    """A `torch.save` file read with weights_only=True: tensors and plain containers, no code."""
    if not path.is_file():
        raise _missing(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines()]
        detail = next((line for line in lines if "WeightsUnpickler error" in line), lines[0])
        if "Unsupported global" in detail:  # torch's advice to allow the class is left out
            detail = detail.split(" was not an allowed global")[0]
            raise ValueError(
                f"refusing to load {path.parent}: {path.name} holds more than tensors ({detail})"
            ) from None
        raise _damaged(path, detail) from None
    except (RuntimeError, EOFError, ValueError) as exc:  # truncated zip, empty or short file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _damaged(path, reason.split(". ")[0]) from None


def check_compatible(
    ckpt: Checkpoint, model_config: dict[str, Any], tokenizer_hash: str | None, parallel: str
) -> None:
    """Refuse a checkpoint whose model shape, tokenizer or optimizer layout differs from ours."""
    saved = ckpt.config.get("model", {})
    for key in sorted(set(saved) | set(model_config)):
        if saved.get(key) != model_config.get(key):
            raise ValueError(
                f"checkpoint {ckpt.path} has model.{key}={saved.get(key)!r} but this run has "
                f"model.{key}={model_config.get(key)!r}; resume with the checkpoint's model config"
            )
    saved_hash = ckpt.state.get("tokenizer_hash")
    if saved_hash != tokenizer_hash:
        raise ValueError(
            f"checkpoint {ckpt.path} was trained with a different tokenizer (hash {saved_hash}, "
            f"this run's is {tokenizer_hash}); set data.tokenizer_dir to {ckpt.path / 'tokenizer'}"
        )
    if ckpt.state.get("parallel", parallel) != parallel:
        raise ValueError(
            f"checkpoint {ckpt.path} was saved with training.parallel={ckpt.state['parallel']}; "
            f"resume with the same setting"
        )


def prune_checkpoints(root: Path, keep_last: int, keep: Path | None = None) -> None:
    """Delete all but the newest `keep_last` checkpoints, sparing `keep` (the best by val loss).

    A resumed run's start is its newest checkpoint until it saves another (`start_branch` moved
    the later ones aside), so it survives until then.
    """
    found = list_checkpoints(root)
    doomed = found[: max(0, len(found) - keep_last)]
    for path in doomed:
        if keep is None or path.resolve() != keep.resolve():
            shutil.rmtree(path, ignore_errors=True)


def best_after(
    best: tuple[float | None, int | None], step: int, val_loss: float | None
) -> tuple[float | None, int | None]:
    """The best (val loss, step) once the checkpoint at `step` is saved.

    `val_loss` is the loss of the evaluation run at `step` itself, None when that step had none:
    an older evaluation is never credited to a later checkpoint.
    """
    best_loss, _ = best
    if val_loss is not None and (best_loss is None or val_loss < best_loss):
        return val_loss, step
    return best


# ---------------------------------------------------------------- the run directory

_HELD_LOCKS: dict[Path, int] = {}  # resolved run directory -> descriptor holding its flock


def lock_run(run_dir: Path) -> None:
    """Take `run_dir` for this process, or raise OSError naming the process that has it.

    The lock is an flock on `<run_dir>/.lock`, which holds the owner's PID; the kernel drops it
    when the process ends, however it ends. A process that holds it already keeps it.
    """
    key = run_dir.resolve()
    if key in _HELD_LOCKS:
        return
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise OSError(f"cannot lock run directory {run_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "(PID not yet written)"
        os.close(fd)
        raise OSError(
            f"{run_dir} is in use by process {owner} (it holds {path}): wait for it to end or stop "
            "it, or use another run directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD_LOCKS[key] = fd


def unlock_run(run_dir: Path) -> None:
    """Release `lock_run`'s lock on `run_dir` (nothing happens if this process does not hold it)."""
    fd = _HELD_LOCKS.pop(run_dir.resolve(), None)
    if fd is not None:
        os.ftruncate(fd, 0)
        os.close(fd)


def claim_run_dir(run_dir: Path, resume: str | None, fresh_hint: str) -> Path | None:
    """Lock and tidy the run directory, creating it if needed; return the checkpoint to resume.

    The writer (rank 0) calls this before anything reads or writes the directory. It locks first
    when the directory exists, so a second process learns who holds it; a new directory is made
    only after the checks passed. A run with checkpoints needs `resume`; `fresh_hint` says how
    to start afresh instead.
    """
    root = run_dir / "checkpoints"
    if run_dir.is_dir():
        lock_run(run_dir)
        remove_stale_temporaries(root)
    resume_path = resolve_resume(resume, root) if resume else None
    if resume_path is None and list_checkpoints(root):
        raise ValueError(
            f"{run_dir} already has checkpoints: pass --resume latest to continue, or {fresh_hint}"
        )
    make_run_dir(run_dir.name, run_dir.parent)
    lock_run(run_dir)
    return resume_path


def remove_stale_temporaries(root: Path) -> None:
    """Clean up after processes killed during `save_checkpoint` (call with the run locked).

    A `.tmp-step_N-PID` folder of a process that is gone is deleted. A `.old-step_N-PID` folder,
    the earlier copy of a re-saved step, goes back to `step_N` if the swap never finished.
    """
    if not root.is_dir():
        return
    removed = []
    for path in sorted(root.iterdir()):
        match = TEMPORARY.fullmatch(path.name)
        if match is None or _alive(int(match[3])):
            continue
        final = root / match[2]
        if match[1] == "old" and not final.exists():
            path.rename(final)
            log.info("restored %s, which a killed process was re-saving", final)
        else:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    if removed:
        log.info("removed temporaries of killed processes from %s: %s", root, ", ".join(removed))


def _alive(pid: int) -> bool:
    """Whether another process with this PID exists (our own PID was a killed predecessor's)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def start_branch(run_dir: Path, resume_path: Path | None, step: int) -> Path | None:
    """Make the run directory hold the history of the branch about to be trained, up to `step`.

    Resuming from `resume_path` at `step`: checkpoints that do not lead to it (the later ones of
    `checkpoints/`, or all of them when it lies elsewhere) and their metrics rows move to
    `branches/<time>-resumed-at-step-<step>/` with the config that trained them, and a log line
    says where; returns that folder. Rows without such checkpoints come from an interrupted run
    and are dropped, as are all rows when a run starts from scratch (`resume_path` None), so each
    step appears once. Call on the writer, after the checkpoint loaded.
    """
    root, metrics = run_dir / "checkpoints", run_dir / "metrics.jsonl"
    inside = resume_path is not None and resume_path.resolve().parent == root.resolve()
    keep = step if inside else -1
    later = [p for p in list_checkpoints(root) if checkpoint_step(p) > keep]
    text = metrics.read_text() if metrics.is_file() else ""
    kept, dropped = split_metrics(text, keep)
    branch = None
    if later:
        branch = _new_branch_dir(run_dir, step)
        (branch / "checkpoints").mkdir(parents=True)
        if (run_dir / "config.json").is_file():
            shutil.copy2(run_dir / "config.json", branch / "config.json")
        _write_text(branch / "metrics.jsonl", "".join(dropped))
        for path in later:
            path.rename(branch / "checkpoints" / path.name)
        log.info(
            "resuming from %s, which is not this run's newest checkpoint: moved %s and %d "
            "metrics rows to %s",
            resume_path, ", ".join(p.name for p in later), len(dropped), branch,
        )  # fmt: skip
    elif dropped and not inside:
        log.info("metrics.jsonl: dropped %d rows of an earlier run that left no checkpoint",
                 len(dropped))  # fmt: skip
    elif dropped:
        log.info("metrics.jsonl: dropped %d rows past step %d, written by a run that was "
                 "interrupted before it saved them", len(dropped), step)  # fmt: skip
    if "".join(kept) != text:
        _write_text(metrics, "".join(kept))
    return branch


def split_metrics(text: str, step: int) -> tuple[list[str], list[str]]:
    """metrics.jsonl lines up to `step` and those past it, each ending in a newline.

    A last line that does not parse is a write cut short by a kill: it is in neither list. Other
    lines without a step stay.
    """
    kept, later = [], []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            row = None
        row_step = row.get("step", -1) if isinstance(row, dict) else -1
        (kept if row_step <= step else later).append(line + "\n")
    return kept, later


def _new_branch_dir(run_dir: Path, step: int) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = run_dir / BRANCHES / f"{stamp}-resumed-at-step-{step}"
    n = 2
    while path.exists():
        path = run_dir / BRANCHES / f"{stamp}-{n}-resumed-at-step-{step}"
        n += 1
    return path


def _write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename, so a crash leaves the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def tokenizer_hash(tokenizer_dir: Path | None) -> str | None:
    """sha256 over the names and bytes of the files in a tokenizer directory (None without one)."""
    if tokenizer_dir is None:
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(tokenizer_dir).rglob("*") if p.is_file()):
        digest.update(path.relative_to(tokenizer_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def rng_state() -> dict[str, Any]:
    """This process's RNG states in types `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def find_checkpoint(path: str | Path) -> Path:
    """`path` if it is a checkpoint directory, else the newest checkpoint of the run directory."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return path
    found = list_checkpoints(path / "checkpoints")
    if not found:
        raise FileNotFoundError(
            f"{path} is neither a checkpoint directory nor a run directory with checkpoints; "
            "pass the output of 'scratchlm train' (or of an earlier post-training stage)"
        )
    return found[-1]


def load_model(path: Path, device: torch.device | str = "cpu") -> TransformerLM:
    """The TransformerLM of a checkpoint directory, in eval mode on `device`.

    A missing, truncated or malformed config.json or model.safetensors, or weights that do not fit
    the config, is an error naming the file.
    """
    config = _read_json(path / "config.json")
    try:
        model_config = ModelConfig.from_dict(dict(config.get("model", config)))
    except (TypeError, ValueError) as exc:
        raise _damaged(path / "config.json", str(exc)) from None
    model = TransformerLM.from_config(model_config, device="meta")
    state = _read_weights(path / "model.safetensors")
    model.to_empty(device=device)
    model.init_weights()  # fills the non-persistent rotary tables; the weights come next
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()
        detail = lines[min(1, len(lines) - 1)].strip().rstrip(".")
        raise ValueError(
            f"{path / 'model.safetensors'} does not match {path / 'config.json'} ({detail}); "
            "pass another checkpoint"
        ) from None
    return model.eval()
