"""Growing a pretrained model's vocabulary for new special tokens (the chat template's).

New rows of the token embedding and of the output head are the mean of the existing rows. A new
token then starts as an "average" input, and its logit is the mean of the other logits, so it is
neither favoured nor impossible before fine-tuning teaches it. Existing rows are untouched, so the
model computes exactly what it did on every old id.
"""

import dataclasses

import torch
from torch import Tensor, nn

from scratchlm.model.transformer import TransformerLM


def grow_rows(weight: Tensor, rows: int) -> Tensor:
    """weight (V, C) -> (rows, C): the old rows, then copies of their mean. rows >= V."""
    extra = weight.mean(dim=0, keepdim=True).expand(rows - weight.shape[0], -1)
    return torch.cat([weight, extra], dim=0)


@torch.no_grad()
def resize_token_embeddings(model: TransformerLM, new_vocab_size: int) -> TransformerLM:
    """Grow `model` in place to `new_vocab_size` ids (see the module docstring) and return it.

    The model's config is updated too. Shrinking is refused: it would drop trained tokens.
    """
    old = model.config.vocab_size
    if new_vocab_size < old:
        raise ValueError(f"cannot shrink the vocabulary from {old} to {new_vocab_size} tokens")
    if new_vocab_size == old:
        return model
    heads = [model.token_embeddings] + ([model.lm_head] if model.lm_head is not None else [])
    for module in heads:
        module.weight = nn.Parameter(grow_rows(module.weight.data, new_vocab_size))
    if model.lm_head is not None:
        model.lm_head.out_sizes = (new_vocab_size,)
    model.config = dataclasses.replace(model.config, vocab_size=new_vocab_size)
    return model
