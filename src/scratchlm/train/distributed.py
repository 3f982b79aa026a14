"""Data parallelism kept outside the model: DDP (default) or FSDP2, optional torch.compile.

The caller keeps the raw module: checkpoints save its state (full, unsharded) and evaluation runs
it, while the training step runs the wrapped one. Under DDP every rank holds the whole model and
gradients are averaged during the backward of the last micro-batch (`grad_sync` turns the all-reduce
off for the others). Under FSDP2 (`fully_shard`) each block's parameters, gradients and optimizer
state are sharded across ranks; element-wise optimizers (AdamW, SGD) work on the shards, Muon needs
whole matrices and is refused.
"""

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

Parallel = Literal["ddp", "fsdp"]


def wrap_model(
    model: nn.Module, parallel: Parallel, device: torch.device, world_size: int, compile: bool
) -> nn.Module:
    """The module the training step calls: `model` sharded or replicated, maybe compiled.

    With world_size 1 no wrapper is added. FSDP2 shards each block inside an `nn.ModuleList`, then
    the root (embeddings, final norm, head); it changes `model` in place, which stays the raw
    module.
    """
    wrapped = model
    if world_size > 1 and parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for child in model.modules():
            if isinstance(child, nn.ModuleList):
                for block in child:
                    fully_shard(block)
        fully_shard(model)
    elif world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        wrapped = torch.compile(wrapped)
    return wrapped


@contextlib.contextmanager
def grad_sync(model: nn.Module, enabled: bool) -> Iterator[None]:
    """Let the backward inside the block all-reduce gradients only when `enabled`."""
    inner = getattr(model, "_orig_mod", model)  # the module torch.compile wrapped
    if enabled:
        yield
    elif isinstance(inner, nn.parallel.DistributedDataParallel):
        with inner.no_sync():
            yield
    elif hasattr(inner, "set_requires_gradient_sync"):  # FSDP2
        inner.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            inner.set_requires_gradient_sync(True)
    else:
        yield


def all_reduce(tensor: Tensor, op: Literal["sum", "mean", "max", "min"] = "sum") -> Tensor:
    """Reduce `tensor` across ranks in place (a no-op in a single process); returns it."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        if op == "mean":
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor /= dist.get_world_size()
        else:
            ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
            dist.all_reduce(tensor, op=ops[op])
    return tensor


def gather_objects(obj: object) -> list[object]:
    """`obj` from every rank, in rank order (a one-item list in a single process)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return [obj]
    out: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def full_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, parallel: Parallel
) -> tuple[dict[str, Tensor], dict]:
    """Unsharded model and optimizer state on CPU (FSDP: a collective, call on all ranks)."""
    if parallel == "fsdp" and dist.is_initialized():
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_state_dict(model, optimizer, options=options)
    model_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return model_state, optimizer.state_dict()


def load_full_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    model_state: dict[str, Tensor],
    optim_state: dict,
    parallel: Parallel,
) -> None:
    """Load unsharded state dicts into the raw `model` and its `optimizer` (every rank)."""
    if parallel == "fsdp" and dist.is_initialized():
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

        options = StateDictOptions(full_state_dict=True)
        set_state_dict(
            model,
            optimizer,
            model_state_dict=model_state,
            optim_state_dict=optim_state,
            options=options,
        )
        return
    model.load_state_dict(model_state)
    optimizer.load_state_dict(optim_state)
