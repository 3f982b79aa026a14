"""`KVCache`: preallocated keys and values for cached decoding.

Every row of the batch sits at the same position `pos`: a forward pass over T new tokens writes
their keys and values at [pos, pos + T), attends over [0, pos + T) and then advances `pos` by T.
Prompts of different lengths are left-padded to a common length and the cache is told how many pad
slots open each row (`left_pad`, (B,)): pad keys are then hidden from every query, and each row
counts its positions from its first real token, so a padded row computes what it would alone.
"""

import torch
from torch import Tensor

from scratchlm.model.config import ModelConfig


class KVCache:
    """Keys and values of every layer, k and v (L, B, Hkv, Tmax, Dh); `pos` positions are filled."""

    def __init__(
        self,
        num_layers: int,
        batch_size: int,
        num_kv_heads: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        left_pad: Tensor | None = None,
    ) -> None:
        shape = (num_layers, batch_size, num_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.pos = 0
        self.left_pad = None if left_pad is None else left_pad.to(self.k.device)  # (B,) int64

    @classmethod
    def for_model(
        cls,
        config: ModelConfig,
        batch_size: int,
        max_len: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        left_pad: Tensor | None = None,
    ) -> "KVCache":
        """A cache shaped for `config` with room for max_len positions (default: context_length).

        left_pad: (B,) number of pad slots at the start of each row, or None (no padding).
        """
        max_len = config.context_length if max_len is None else max_len
        if not 0 < max_len <= config.context_length:
            raise ValueError(
                f"KV cache max_len must be in [1, {config.context_length}] (the model's "
                f"context_length), got {max_len}"
            )
        return cls(
            config.num_layers,
            batch_size,
            config.num_kv_heads,
            max_len,
            config.head_dim,
            dtype=dtype,
            device=device,
            left_pad=left_pad,
        )

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def reset(self) -> None:
        """Forget every cached position (the buffers are reused, not cleared)."""
        self.pos = 0

    def positions(self, num_new: int) -> Tensor:
        """Positions of the next num_new tokens: (T,) pos .. pos + T - 1.

        With left_pad: (B, T), each row shifted back by its pad count (pad slots get 0).
        """
        positions = torch.arange(self.pos, self.pos + num_new, device=self.k.device)
        if self.left_pad is None:
            return positions
        return (positions - self.left_pad[:, None]).clamp(min=0)

    def attention_mask(self, batch_size: int, num_new: int) -> Tensor | None:
        """Check there is room for num_new more tokens of this batch; say which keys each may see.

        Query i (position pos + i) sees keys j <= pos + i, S = pos + T keys in all. Returns None
        when that needs no mask: an empty cache (plain causal attention, T == S) or a single new
        token (it sees every key), both without left_pad. Otherwise a bool (T, S) mask, or with
        left_pad (B, 1, T, S), where row b also hides its pad keys j < left_pad[b] (a pad query
        still sees itself, so no softmax row is empty).
        """
        if batch_size != self.batch_size:
            raise ValueError(
                f"batch of {batch_size} rows does not match the KV cache's {self.batch_size}; "
                "build the cache with KVCache.for_model(config, batch_size)"
            )
        if self.pos + num_new > self.max_len:
            raise ValueError(
                f"KV cache full: {self.pos} cached + {num_new} new positions exceed max_len "
                f"{self.max_len}; reset() it or build a longer one"
            )
        if self.left_pad is None and (self.pos == 0 or num_new == 1):
            return None
        ones = torch.ones(num_new, self.pos + num_new, dtype=torch.bool, device=self.k.device)
        causal = ones.tril(diagonal=self.pos)
        if self.left_pad is None:
            return causal
        keys = torch.arange(self.pos + num_new, device=self.k.device)
        real = keys >= self.left_pad[:, None]  # (B, S)
        itself = keys == torch.arange(self.pos, self.pos + num_new, device=keys.device)[:, None]
        return ((causal & real[:, None, :]) | itself)[:, None]  # (B, 1, T, S)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write one layer's new keys/values and return all of that layer's keys/values so far.

        k, v: (B, Hkv, T, Dh). Returns two (B, Hkv, pos + T, Dh) views into the cache. `pos` moves
        only in `advance`, after every layer has written.
        """
        keys, values = self.k[layer], self.v[layer]  # (B, Hkv, Tmax, Dh)
        keys.narrow(2, self.pos, k.shape[2]).copy_(k)
        values.narrow(2, self.pos, v.shape[2]).copy_(v)
        end = self.pos + k.shape[2]
        return keys.narrow(2, 0, end), values.narrow(2, 0, end)

    def advance(self, num_new: int) -> None:
        self.pos += num_new
