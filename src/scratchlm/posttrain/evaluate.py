"""The default task's constraint-satisfaction rate of a checkpoint (`scratchlm task eval`).

A pretrained checkpoint gets the chat tokens first (new rows = mean rows, see `vocab`), so the rate
of a base model, an SFT model and a DPO or GRPO model are measured the same way: greedy answers to
the same seeded instructions in the chat template.
"""

import json
from pathlib import Path
from typing import Any

import torch

from scratchlm.config import CHECKPOINT_ARG, DEVICE_ARG, Command, arg
from scratchlm.eval.tasks import EVAL_SEED, evaluate
from scratchlm.folders import make_dirs
from scratchlm.model.generate import decode_layout
from scratchlm.posttrain.common import load_chat_model
from scratchlm.runtime import pick_device
from scratchlm.train.checkpoint import find_checkpoint


def evaluate_task(
    checkpoint: Path,
    device: torch.device,
    n: int = 100,
    seed: int = EVAL_SEED,
    max_new_tokens: int = 128,
) -> dict[str, Any]:
    """Rate (fraction of instructions fully satisfied) and details for `n` seeded instructions.

    checkpoint: a checkpoint directory (`find_checkpoint` turns a run directory into one).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    model, tokenizer = load_chat_model(checkpoint, device)
    result = evaluate(decode_layout(model.eval()), tokenizer, n, seed, max_new_tokens)
    return {"checkpoint": str(checkpoint), "seed": seed, **result}


def task_eval(checkpoint: str, n: int, seed: int, device: str, json_path: Path | None) -> str:
    """`scratchlm task eval`: the answers and the rates, also written to `json_path` if given."""
    result = evaluate_task(find_checkpoint(checkpoint), pick_device(device), n, seed)
    if json_path is not None:
        make_dirs(json_path.parent)
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(json_path)
    lines = [f"Q: {s['prompt']}\nA: {s['answer']!r} (score {s['score']:.2f})\n"
             for s in result["samples"]]  # fmt: skip
    kinds = ", ".join(f"{k[5:]} {v:.3f}" for k, v in result.items() if k.startswith("rate_"))
    rate, mean = f"{result['rate']:.3f}", f"{result['mean_score']:.3f}"
    lines.append(f"satisfaction rate {rate} ({kinds}) on {result['n']} instructions, mean score "
                 f"{mean}; {result['checkpoint']}")  # fmt: skip
    return "\n".join(lines)


COMMAND = Command(
    run=task_eval,
    description="Greedy answers to seeded held-out instructions, in the chat template; "
    "prints the fraction that meet every constraint.",
    args=(
        CHECKPOINT_ARG,
        arg("--n", type=int, default=200, help="instructions (default 200)"),
        arg("--seed", type=int, default=EVAL_SEED, help=f"instruction seed (default {EVAL_SEED})"),
        DEVICE_ARG,
        arg("--json", dest="json_path", type=Path, metavar="FILE", help="also write the result"),
    ),
)
