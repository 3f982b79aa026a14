"""Optimizers written here: SGD, AdamW and Muon, parameter groups and gradient clipping."""

from scratchlm.optimizers.adamw import AdamW
from scratchlm.optimizers.clip import clip_grad_norm
from scratchlm.optimizers.groups import is_embedding, muon_param_groups, param_groups
from scratchlm.optimizers.muon import Muon
from scratchlm.optimizers.sgd import SGD

__all__ = [
    "SGD",
    "AdamW",
    "Muon",
    "clip_grad_norm",
    "is_embedding",
    "muon_param_groups",
    "param_groups",
]
