"""Sampling from a TransformerLM with a KV cache: ids in, ids out (no tokenizer here).

One request batch allocates one `KVCache`. The prompts are left-padded to a common length and
prefilled in one forward pass; then each step feeds the B tokens just sampled, so a step costs one
position per row instead of the whole sequence. Rows of different lengths get per-row positions and
a key mask through the cache (`KVCache(left_pad=...)`), so a padded row decodes exactly as it would
alone.

Next-token choice, in this order: temperature 0 -> argmax (greedy); otherwise logits / temperature,
then the top-k filter, then the top-p (nucleus) filter, then one draw from the softmax using an
explicit `torch.Generator` (a fixed seed repeats the same ids). The filters are pure functions on
logits.

`decode_layout` prepares an inference-only model on a CPU: same weights, laid out in memory for the
few-row products of decoding.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from scratchlm.model.kv_cache import KVCache
from scratchlm.model.transformer import Linear, TransformerLM


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick each new token and when to stop.

    temperature 0 means greedy. top_k None (or 0) and top_p 1.0 switch their filter off.
    A row stops after max_new_tokens ids or right after emitting any id in stop_ids.
    """

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    stop_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be an int >= 0, got {self.max_new_tokens!r}")
        if not self.temperature >= 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.top_k is not None and (not isinstance(self.top_k, int) or self.top_k < 0):
            raise ValueError(
                f"top_k must be a positive int (or 0/None for off), got {self.top_k!r}"
            )
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (1 = off), got {self.top_p}")


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row, set the others to -inf.

    logits: (B, V) -> (B, V). Values tied with the k-th largest are kept too.
    """
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability reaches p.

    logits: (B, V) -> (B, V), the dropped tokens at -inf. In descending order of probability a
    token is kept while the mass of the tokens before it is still below p, so the kept set is the
    shortest prefix with mass >= p (the most likely token is always kept). p >= 1 keeps everything.
    """
    if p >= 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # back to vocab order
    return logits.masked_fill(drop, float("-inf"))


def sample_next(
    logits: Tensor, config: SamplingConfig, generator: torch.Generator | None = None
) -> Tensor:
    """Pick one id per row. logits: (B, V) float -> (B,) int64."""
    if config.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / config.temperature
    if config.top_k:
        logits = top_k_filter(logits, config.top_k)
    logits = top_p_filter(logits, config.top_p)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def decode_layout(model: TransformerLM) -> TransformerLM:
    """Store every `Linear` weight of a CPU model column-major, in place; returns the model.

    Shapes and values are unchanged (outputs agree up to float rounding): each (out, in) weight
    becomes the transpose of a contiguous (in, out) tensor. A decode step multiplies one row per
    sequence by every weight; with the weight in this layout MKL runs that product as a
    matrix-matrix multiply near memory bandwidth, while the row-major (out, in) weight sends it
    down a matrix-vector path that was ~30% slower on our test CPU (AMD EPYC, fp32). Models on
    other devices are left as they are.
    Meant for models that only generate (chat, serving, evaluation): training and saving
    checkpoints expect contiguous weights.
    """
    for module in model.modules():
        if isinstance(module, Linear) and module.weight.is_cpu:
            module.weight.data = module.weight.data.t().contiguous().t()
    return model


def left_pad(prompts: list[list[int]], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Prompts as one left-padded batch: ids (B, T) int64 and the pad count of each row (B,)."""
    longest = max(len(p) for p in prompts)
    pads = [longest - len(p) for p in prompts]
    ids = torch.tensor([[pad_id] * n + list(p) for n, p in zip(pads, prompts, strict=True)])
    return ids, torch.tensor(pads)


def stream(
    model: TransformerLM,
    prompts: list[list[int]],
    config: SamplingConfig,
    generator: torch.Generator | None = None,
) -> Iterator[list[int | None]]:
    """Decode all prompts together, yielding each step's new id per row (None once a row stopped).

    prompts: B lists of ids, of any lengths >= 1. The generator, if given, must live on the
    model's device. Bad requests raise ValueError here, before the first step. The tensor work
    between two yields runs without autograd, so the iterator may be resumed from any thread.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token id (e.g. the end-of-text id)")
    ids, pads = left_pad(prompts)
    # The last sampled id is never fed back, hence the - 1.
    needed = ids.shape[1] + config.max_new_tokens - 1
    limit = model.config.context_length
    if needed > limit:
        raise ValueError(
            f"prompt of {ids.shape[1]} tokens + max_new_tokens {config.max_new_tokens} needs "
            f"{needed} positions, more than the model's context_length {limit}; shorten the "
            "prompt or lower max_new_tokens"
        )
    return _decode(model, ids, pads, config, generator)


def _decode(
    model: TransformerLM,
    ids: Tensor,
    pads: Tensor,
    config: SamplingConfig,
    generator: torch.Generator | None,
) -> Iterator[list[int | None]]:
    """The loop of `stream`: prefill ids (B, T) (pads (B,) slots each), then one id per step."""
    if config.max_new_tokens == 0:
        return
    weight = next(model.parameters())
    cache = KVCache.for_model(
        model.config,
        batch_size=ids.shape[0],
        max_len=ids.shape[1] + config.max_new_tokens - 1,
        dtype=weight.dtype,
        device=weight.device,
        left_pad=pads if pads.any() else None,
    )
    head = model.head_weight.detach().t()  # (C, V)
    if head.is_cpu:
        # Laid out as (C, V) once per request (already so for an untied head after
        # `decode_layout`): for the few rows of a decode step, MKL's product with this layout ran
        # ~2.5x faster than with the (V, C) weight on our test CPU. GPUs take the transposed view.
        head = head.contiguous()
    stops = set(config.stop_ids)
    running = [True] * ids.shape[0]
    logits = _last_logits(model, head, ids.to(weight.device), cache)
    for step in range(config.max_new_tokens):
        next_ids = sample_next(logits, config, generator)
        out: list[int | None] = []
        for row, token in enumerate(next_ids.tolist()):
            out.append(token if running[row] else None)
            running[row] = running[row] and token not in stops
        yield out
        if not any(running) or step == config.max_new_tokens - 1:
            return
        logits = _last_logits(model, head, next_ids[:, None], cache)


def generate(
    model: TransformerLM,
    prompts: list[list[int]],
    config: SamplingConfig,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """The new ids of each prompt (without the prompt); a row that stopped ends with its stop id."""
    new: list[list[int]] = [[] for _ in prompts]
    for step in stream(model, prompts, config, generator):
        for row, token in enumerate(step):
            if token is not None:
                new[row].append(token)
    return new


@torch.no_grad()
def _last_logits(model: TransformerLM, head: Tensor, ids: Tensor, cache: KVCache) -> Tensor:
    """Feed ids (B, T) to the model, appending to the cache; the last position's logits (B, V).

    head: (C, V), the model's output matrix transposed; only the last position goes through it.
    """
    return (model.hidden_states(ids, kv_cache=cache)[:, -1] @ head).float()
