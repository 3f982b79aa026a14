"""Training measurements and their sinks: MFU, run record, metrics.jsonl, wandb, loss curve.

MFU (model FLOPs utilisation) = achieved training FLOP/s / the device's dense bf16 peak, with the
achieved rate taken as tokens/s x `ModelConfig.flops_per_token()` (6N + attention).
"""

import json
import logging
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets, FLOP/s per GPU. Looked
# up by substring of torch.cuda.get_device_name(), first match wins, so more specific names come
# first.
PEAK_BF16_FLOPS: dict[str, float] = {
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "H200": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "L4": 121e12,
}


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak FLOP/s of a CUDA `device`, or None (CPU, MPS or an unlisted GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


def mfu(tokens_per_s: float, flops_per_token: float, peak: float) -> float:
    """Fraction of `peak` FLOP/s that `tokens_per_s` tokens of `flops_per_token` each amount to."""
    return tokens_per_s * flops_per_token / peak


def run_record(seed: int, device: torch.device, world_size: int) -> dict[str, Any]:
    """Facts that make a run reproducible: git commit and dirty flag, versions, device, seed."""
    record: dict[str, Any] = {
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "world_size": world_size,
        "seed": seed,
    }
    if device.type == "cuda":
        record["device_name"] = torch.cuda.get_device_name(device)
        record["cuda"] = torch.version.cuda
    return record


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


class MetricsLog:
    """Appends one JSON object per line to `metrics.jsonl` and forwards it to wandb when enabled."""

    def __init__(self, path: Path, wandb_run: Any = None) -> None:
        self.path = path
        self.wandb_run = wandb_run

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log(
                {k: v for k, v in record.items() if k != "step"}, step=record["step"]
            )

    def close(self) -> None:
        if self.wandb_run is not None:
            self.wandb_run.finish()


def open_wandb(project: str, name: str, config: dict[str, Any], run_dir: Path) -> Any:
    """A wandb run, or None with one notice when the package is missing or wandb cannot start."""
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed (pip install wandb); logging to metrics.jsonl only")
        return None
    try:
        return wandb.init(project=project, name=name, config=config, dir=str(run_dir))
    except Exception as exc:  # wandb raises its own types for offline / auth problems
        log.warning("wandb could not start (%s); logging to metrics.jsonl only", exc)
        return None


def plot_loss_curve(metrics_path: Path, png_path: Path) -> None:
    """A PNG of training (and validation, when present) loss against step, from metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, val = [], []
    for line in metrics_path.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            train.append((record["step"], record["loss"]))
        if "val_loss" in record:
            val.append((record["step"], record["val_loss"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="val loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png_path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(png_path)
