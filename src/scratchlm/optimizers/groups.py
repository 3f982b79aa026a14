"""Parameter groups from a model's `named_parameters()`, decided by name and shape.

The rules, on parameters with requires_grad=True:
- Weight decay goes to matrices (ndim >= 2) whose name does not contain "embed". Norm gains and
  biases (ndim < 2) and embedding tables (token or position) are left undecayed.
- Muon takes the hidden matrices: ndim == 2, name without "embed" and without "lm_head". The
  embeddings and the output head (whose rows are per-token, not a hidden map), norm gains and
  biases go to the AdamW side.

With tied embeddings the shared matrix appears once, under its first name, and is treated as an
embedding either way. The optimizers never import a model class: only these names matter.
"""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from torch import Tensor


def is_embedding(name: str) -> bool:
    """True for an embedding table (token or position): its name contains "embed"."""
    return "embed" in name


def wants_weight_decay(name: str, param: Tensor) -> bool:
    """True for matrices that are not embeddings (see the module docstring)."""
    return param.ndim >= 2 and not is_embedding(name)


def is_hidden_matrix(name: str, param: Tensor) -> bool:
    """True for the 2-D matrices Muon updates: not an embedding, not the output head."""
    return param.ndim == 2 and not is_embedding(name) and "lm_head" not in name


def trainable(named_parameters: Iterable[tuple[str, Tensor]]) -> list[tuple[str, Tensor]]:
    """The (name, parameter) pairs with requires_grad=True; ValueError if there are none."""
    named = [(n, p) for n, p in named_parameters if p.requires_grad]
    if not named:
        raise ValueError("no trainable parameters: every parameter has requires_grad=False")
    return named


def split_decay(named: list[tuple[str, Tensor]], weight_decay: float) -> list[dict[str, Any]]:
    """Two groups from `named`: decayed with `weight_decay`, and undecayed; empty ones dropped."""
    decay = [p for n, p in named if wants_weight_decay(n, p)]
    no_decay = [p for n, p in named if not wants_weight_decay(n, p)]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def param_groups(
    named_parameters: Iterable[tuple[str, Tensor]], weight_decay: float
) -> list[dict[str, Any]]:
    """Groups for AdamW (or any torch optimizer): decayed matrices, then the rest with decay 0."""
    named = trainable(named_parameters)
    return split_decay(named, weight_decay)


def muon_param_groups(
    named_parameters: Iterable[tuple[str, Tensor]],
    weight_decay: float,
    row_splits: Mapping[str, Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """Groups for `Muon`: hidden matrices (use_muon=True), the rest split as `param_groups` does.

    row_splits maps the name of a fused matrix to its row blocks, e.g. {"layers.0.attn.qkv.weight":
    (C, C, C)}; matrices that share a split get a Muon group with that `split_sizes`, so Muon
    orthogonalises each block alone. Groups leave `lr` unset, so `Muon`'s `muon_lr` and `lr` apply.
    """
    named = trainable(named_parameters)
    row_splits = row_splits or {}
    unknown = set(row_splits) - {n for n, p in named if is_hidden_matrix(n, p)}
    if unknown:
        raise ValueError(f"row_splits names no hidden matrix: {sorted(unknown)}")
    by_split: dict[tuple[int, ...] | None, list[Tensor]] = {}
    for n, p in named:
        if is_hidden_matrix(n, p):
            split = tuple(row_splits[n]) if n in row_splits else None
            by_split.setdefault(split, []).append(p)
    groups = [
        {"params": ps, "weight_decay": weight_decay, "use_muon": True, "split_sizes": split}
        for split, ps in by_split.items()
    ]
    rest = [(n, p) for n, p in named if not is_hidden_matrix(n, p)]
    return groups + [{**g, "use_muon": False} for g in split_decay(rest, weight_decay)]
