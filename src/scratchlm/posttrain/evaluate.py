"""The default task's constraint-satisfaction rate of a checkpoint (`scratchlm task eval`).

A pretrained checkpoint gets the chat tokens first (new rows = mean rows, see `vocab`), so the rate
of a base model, an SFT model and a DPO or GRPO model are measured the same way: greedy answers to
the same seeded instructions in the chat template.
"""

from pathlib import Path
from typing import Any

import torch

from scratchlm.eval.tasks import EVAL_SEED, evaluate
from scratchlm.model.generate import decode_layout
from scratchlm.posttrain.common import load_chat_model


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
