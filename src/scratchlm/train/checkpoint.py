"""Checkpoints: one directory per saved step holding everything needed to continue exactly.

    <run_dir>/checkpoints/step_00001000/
        model.safetensors   raw-module weights (no DDP/compile prefixes)
        optimizer.pt        optimizer.state_dict() (torch.save; loaded with weights_only=True)
        state.json          format version, step, tokens seen, best val loss, schedule, last metrics
        rng.pt              python / numpy / torch / cuda RNG states per rank, and the sampler state
        config.json         the resolved run config
        tokenizer/          a copy of the tokenizer directory (its hash is in state.json)

A checkpoint is written into a temporary directory beside the final one and renamed into place, so a
crash or a full disk during a save leaves the previous checkpoints untouched. Loading never
unpickles code: safetensors for weights, `torch.load(weights_only=True)` for the rest.
"""

import hashlib
import json
import os
import pickle
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM

FORMAT_VERSION = 1
PREFIX = "step_"


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


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint directories under `root`, oldest step first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: int(p.name.removeprefix(PREFIX)))


def resolve_resume(resume: str, root: Path) -> Path:
    """`latest` -> the newest checkpoint under `root`; anything else is a checkpoint path."""
    if resume == "latest":
        found = list_checkpoints(root)
        if not found:
            raise FileNotFoundError(
                f"--resume latest: no checkpoint under {root}; start without --resume"
            )
        return found[-1]
    path = Path(resume)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint directory (no state.json)")
    return path


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
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise _damaged(path / "state.json", f"'step' should be a step number, got {step!r}")
    return Checkpoint(
        path=path,
        model_state=_read_weights(path / "model.safetensors"),
        optim_state=_read_tensors(path / "optimizer.pt"),
        state=state,
        rng=_read_tensors(path / "rng.pt"),
        config=_read_json(path / "config.json"),
    )


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(f"checkpoint {path.parent} is incomplete: missing {path.name}")


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


def _read_weights(path: Path) -> dict[str, Tensor]:
    """A safetensors file's tensors, on CPU."""
    if not path.is_file():
        raise _missing(path)
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise _damaged(path, f"{exc}; truncated or not a safetensors file") from None


def _read_tensors(path: Path) -> Any:
    """A `torch.save` file read with weights_only=True: tensors and plain containers, no code."""
    if not path.is_file():
        raise _missing(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
    """Delete all but the newest `keep_last` checkpoints, sparing `keep` (the best by val loss)."""
    found = list_checkpoints(root)
    doomed = found[: max(0, len(found) - keep_last)]
    for path in doomed:
        if keep is None or path.resolve() != keep.resolve():
            shutil.rmtree(path, ignore_errors=True)


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
