"""On-policy preference pairs: a checkpoint answers the task's prompts, the reward grades them.

`scratchlm task pairs --checkpoint DIR --out FILE` writes DPO records whose rejected side is the
model's own mistake (with a demonstration as chosen) or, where the model is right, whose chosen
side is its own answer (with a near miss as rejected); see `self_preference_records` in
`scratchlm.eval.tasks`.
"""

import logging
from pathlib import Path
from typing import Any

import torch

from scratchlm.config import CHECKPOINT_ARG, DEVICE_ARG, Command, arg
from scratchlm.eval.tasks import get_task, self_preference_records, write_jsonl
from scratchlm.folders import make_dirs
from scratchlm.model.generate import decode_layout
from scratchlm.posttrain.common import load_chat_model
from scratchlm.runtime import pick_device
from scratchlm.train.checkpoint import find_checkpoint

log = logging.getLogger(__name__)


def write_self_pairs(
    checkpoint: Path,
    out: str | Path,
    device: torch.device,
    task: str = "default",
    n: int = 1000,
    seed: int = 0,
    max_new_tokens: int = 64,
) -> dict[str, Any]:
    """Write `n` on-policy pairs for `task` prompts to the JSONL file `out`; returns a summary.

    checkpoint: a checkpoint directory (`find_checkpoint` turns a run directory into one).
    """
    if n < 1:
        raise ValueError(f"the number of pairs must be >= 1, got {n}")
    if Path(out).is_dir():
        raise ValueError(f"{out} is a directory: give the path of the .jsonl file to write")
    prompts = get_task(task).prompts(n, seed)
    model, tokenizer = load_chat_model(checkpoint, device)
    records = self_preference_records(
        decode_layout(model.eval()), tokenizer, prompts, seed, max_new_tokens
    )
    out = Path(out)
    make_dirs(out.parent)
    write_jsonl(out, records)
    log.info("self pairs: %d written to %s", len(records), out)
    return {"checkpoint": str(checkpoint), "pairs": len(records), "path": str(out)}


def task_pairs(checkpoint: str, out: Path, task: str, n: int, seed: int, device: str) -> str:
    """`scratchlm task pairs`: `write_self_pairs`, then a line saying what it wrote."""
    result = write_self_pairs(find_checkpoint(checkpoint), out, pick_device(device), task, n, seed)
    return f"wrote {result['path']} ({result['pairs']} pairs from {result['checkpoint']})"


COMMAND = Command(
    run=task_pairs,
    description="The checkpoint answers seeded task prompts greedily; a failed answer becomes "
    "the rejected side (a demonstration the chosen one), a correct answer the chosen side (a "
    "near miss the rejected one).",
    args=(
        CHECKPOINT_ARG,
        arg("--out", type=Path, required=True, metavar="FILE", help="output .jsonl"),
        arg("--task", default="default", help="default, arithmetic or story"),
        arg("--n", type=int, default=1000, help="pairs (default 1000)"),
        arg("--seed", type=int, default=0, help="prompt seed (default 0)"),
        DEVICE_ARG,
    ),
)
