"""A decoder-only TransformerLM, readable top to bottom: helpers, attention, FFN, block, LM.

Choices (each one a `ModelConfig` field):
- Token embeddings -> num_layers blocks -> final RMSNorm (pre-norm only) -> linear head -> logits.
  No biases anywhere. The head is its own matrix or, with tie_embeddings, the token embeddings.
- Positions: rotary embeddings (RoPE, base rope_theta) on queries and keys, in the half-split
  ("rotate half") layout of Hugging Face Llama, so exporting is a key rename. rope_theta=None uses
  learned absolute position embeddings added to the token embeddings instead (GPT-2 style).
- Attention: causal, multi-head, grouped-query when num_kv_heads < num_heads, one fused q/k/v
  projection, computed by torch's `scaled_dot_product_attention` (flash / memory-efficient kernels
  where available, no T x T matrix), in fp32 on a CPU (faster there than bf16). qk_norm: RMSNorm
  over the head dim on q and k before RoPE.
- FFN: SwiGLU, W2 (SiLU(W1 x) * W3 x), or an ungated two-matrix FFN, W2 SiLU(W1 x) (ffn_type
  "silu") or W2 ReLU(W1 x)^2 (squared ReLU, "relu2").
- Norm placement: pre-norm (post_norm=False), post-norm (True) or none (None). RMSNorm runs in fp32.
- Logits: the head matmul runs in the parameters' dtype; its output is cast to fp32.
- Dropout (0 by default): on each sub-layer's output before its residual add, in training mode.
"""

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scratchlm.model.config import FfnType, ModelConfig
from scratchlm.model.functional import softmax
from scratchlm.model.kv_cache import KVCache

# ---------------------------------------------------------------------------------------- helpers


def _trunc_normal_(weight: Tensor, std: float) -> None:
    nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-3 * std, b=3 * std)


class Linear(nn.Module):
    """y = x W^T without bias; weight (out, in).

    out_features may be a tuple of sizes for a fused projection (e.g. q, k, v): the weight stacks
    one row block per size, and each block is initialised as its own Linear would be, with a
    truncated normal of std sqrt(2 / (in + out)) clipped at +-3 std.
    """

    def __init__(self, in_features: int, out_features: int | tuple[int, ...]) -> None:
        super().__init__()
        sizes = out_features if isinstance(out_features, tuple) else (out_features,)
        self.in_features, self.out_sizes = in_features, sizes
        self.weight = nn.Parameter(torch.empty(sum(sizes), in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for block in self.weight.data.split(self.out_sizes):
            _trunc_normal_(block, math.sqrt(2 / (self.in_features + block.shape[0])))

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in) -> (..., out)."""
        return F.linear(x, self.weight)


class Embedding(nn.Module):
    """Lookup table (num_embeddings, dim); truncated normal init, std `init_std`, clip +-3 std."""

    def __init__(self, num_embeddings: int, dim: int, init_std: float = 1.0) -> None:
        super().__init__()
        self.init_std = init_std
        self.weight = nn.Parameter(torch.empty(num_embeddings, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _trunc_normal_(self.weight.data, self.init_std)

    def forward(self, ids: Tensor) -> Tensor:
        """ids: (...) int64 -> (..., dim)."""
        return F.embedding(ids, self.weight)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * gain over the last dim, computed in fp32 and cast back to x's
    dtype; gain starts at 1.

    Written out rather than `F.rms_norm`: on a CPU torch runs that as about ten small ops, twice
    the time of these six in an overhead-bound decode step; `torch.compile` fuses either (on a GPU
    without compile, `F.rms_norm` would be one kernel instead of six).
    """

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight.data)

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., dim) -> same shape and dtype."""
        x32 = x.float()
        rms_inv = torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)  # (..., 1)
        return (x32 * rms_inv * self.weight.float()).type_as(x)


class RotaryEmbedding(nn.Module):
    """cos/sin tables of RoPE for positions 0 .. context_length - 1 (non-persistent buffers).

    Pair convention, half-split ("rotate half", as in HF Llama): within a head of size Dh, dimension
    i and dimension i + Dh/2 form one pair, rotated by the angle position * theta^(-2i / Dh), for
    i < Dh/2. (The interleaved convention pairs 2i with 2i + 1 instead; we do not use it.)
    The sin table carries the rotation's signs: -sin in its first half, +sin in its second (see
    `apply_rotary`).
    """

    def __init__(self, head_dim: int, context_length: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta
        self.register_buffer("cos", torch.empty(context_length, head_dim), persistent=False)
        self.register_buffer("sin", torch.empty(context_length, head_dim), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.cos.is_meta:  # shapes only; computing on meta would just import torch's tracer
            return
        dims = torch.arange(0, self.head_dim, 2, dtype=torch.float32, device=self.cos.device)
        inv_freq = 1.0 / (self.theta ** (dims / self.head_dim))  # (Dh/2,)
        positions = torch.arange(self.cos.shape[0], dtype=torch.float32, device=self.cos.device)
        angles = torch.outer(positions, inv_freq)  # (Tmax, Dh/2)
        self.cos.copy_(angles.cos().repeat(1, 2))
        self.sin.copy_(torch.cat((-angles.sin(), angles.sin()), dim=-1))

    def forward(self, positions: Tensor) -> tuple[Tensor, Tensor]:
        """positions: (T,) or (B, T) int64 -> cos, sin: (1, T, Dh) or (B, 1, T, Dh)."""
        return self.cos[positions].unsqueeze(-3), self.sin[positions].unsqueeze(-3)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each (i, i + Dh/2) pair of x by its angle. x: (B, H, T, Dh); cos, sin broadcast.

    With x = (x1, x2) in halves, the rotation is (x1 cos - x2 sin, x2 cos + x1 sin): x cos plus the
    halves swapped (a roll by Dh/2) times the signed table (-sin, sin).
    """
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin


# -------------------------------------------------------------------------------------- attention


def reference_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Attention written out: softmax(q k^T / sqrt(Dh) masked) v. Used by tests as the reference.

    q: (B, H, T, Dh); k, v: (B, Hkv, S, Dh), H % Hkv == 0 (each kv head serves H / Hkv query heads).
    mask: bool (T, S), True = may attend; None = causal with T == S. Returns (B, H, T, Dh).
    """
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, S)
    if mask is None:
        mask = torch.ones(q.shape[2], k.shape[2], dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return softmax(scores, dim=-1) @ v


class Attention(nn.Module):
    """Causal grouped-query self-attention with a fused q/k/v projection and optional qk-norm."""

    def __init__(self, d_model: int, num_heads: int, num_kv_heads: int, qk_norm: bool) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = d_model // num_heads
        q_size, kv_size = num_heads * self.head_dim, num_kv_heads * self.head_dim
        self.qkv = Linear(d_model, (q_size, kv_size, kv_size))
        self.out = Linear(q_size, d_model)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else None
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else None

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor] | None,
        mask: Tensor | None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """x: (B, T, C) -> (B, T, C).

        rope: cos, sin (T, Dh) or None; mask: bool (T, S), or None for plain causal attention
        (T == S) or for a single query (T == 1), which sees every key; kv_cache: if given, this
        layer's new keys/values are appended to it (at index `layer`) and attention runs over
        every cached position.
        """
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(self.qkv.out_sizes, dim=-1)
        q = q.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        k = k.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, Dh)
        v = v.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, Dh)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if kv_cache is not None:
            k, v = kv_cache.update(layer, k, v)  # (B, Hkv, S, Dh)
        # On a CPU torch's bf16 flash-attention kernel is slower than its fp32 one (2-3x at the
        # CPU configs' shapes: benchmarks/cpu_attention.py), so there attention runs in fp32 even
        # under bf16 autocast; on a GPU it runs in the autocast dtype.
        dtype, on_cpu = q.dtype, q.device.type == "cpu"
        if on_cpu:
            q, k, v = q.float(), k.float(), v.float()
        with torch.autocast("cpu", enabled=False) if on_cpu else contextlib.nullcontext():
            y = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask,
                is_causal=mask is None and t > 1,
                enable_gqa=self.num_kv_heads != self.num_heads,
            )
        y = y.to(dtype).transpose(1, 2).reshape(b, t, c)  # (B, T, H * Dh) = (B, T, C)
        return self.out(y)


# -------------------------------------------------------------------------------------------- FFN


class SwiGLU(nn.Module):
    """W2 (SiLU(W1 x) * W3 x): a gated FFN; W1, W3: C -> d_ff, W2: d_ff -> C."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w1, self.w2, self.w3 = (
            Linear(d_model, d_ff),
            Linear(d_ff, d_model),
            Linear(d_model, d_ff),
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., C) -> (..., C)."""
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TwoLayerFFN(nn.Module):
    """W2 act(W1 x): the ungated two-matrix FFN; W1: C -> d_ff, W2: d_ff -> C.

    act is SiLU, or with squared_relu the squared ReLU, ReLU(z)^2.
    """

    def __init__(self, d_model: int, d_ff: int, squared_relu: bool = False) -> None:
        super().__init__()
        self.squared_relu = squared_relu
        self.w1, self.w2 = Linear(d_model, d_ff), Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., C) -> (..., C)."""
        h = self.w1(x)  # (..., d_ff)
        return self.w2(F.relu(h).square() if self.squared_relu else F.silu(h))


# ------------------------------------------------------------------------------------------ block


class Block(nn.Module):
    """Attention then FFN, each with a residual connection.

    post_norm False (pre-norm):  x + f(norm(x));   True (post-norm): norm(x + f(x));
    None (no norm):              x + f(x).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_kv_heads: int,
        d_ff: int,
        ffn_type: FfnType,
        post_norm: bool | None,
        qk_norm: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.post_norm = post_norm
        self.drop = nn.Dropout(dropout)  # on each sub-layer's output; identity in eval mode or at 0
        self.attn = Attention(d_model, num_heads, num_kv_heads, qk_norm)
        if ffn_type == "swiglu":
            self.ffn: nn.Module = SwiGLU(d_model, d_ff)
        else:
            self.ffn = TwoLayerFFN(d_model, d_ff, squared_relu=ffn_type == "relu2")
        self.ln1 = RMSNorm(d_model) if post_norm is not None else None
        self.ln2 = RMSNorm(d_model) if post_norm is not None else None

    def forward(
        self,
        x: Tensor,
        rope: tuple[Tensor, Tensor] | None,
        mask: Tensor | None,
        kv_cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """x: (B, T, C) -> (B, T, C); the other arguments go to `Attention.forward`."""
        if self.ln1 is None or self.ln2 is None:
            x = x + self.drop(self.attn(x, rope, mask, kv_cache, layer))
            return x + self.drop(self.ffn(x))
        if self.post_norm:
            x = self.ln1(x + self.drop(self.attn(x, rope, mask, kv_cache, layer)))
            return self.ln2(x + self.drop(self.ffn(x)))
        x = x + self.drop(self.attn(self.ln1(x), rope, mask, kv_cache, layer))
        return x + self.drop(self.ffn(self.ln2(x)))


# ------------------------------------------------------------------------------------------ model


class TransformerLM(nn.Module):
    """Decoder-only language model: token ids (B, T) -> fp32 logits (B, T, V).

    Built on `device` (default: torch's default device). Each module initialises itself as it is
    built, in the order `init_weights` visits them, so a fresh model is a function of
    torch.manual_seed alone and equals `init_weights()` after the same seed. device="meta" declares
    shapes only: call `to_empty(device=...)`, then `init_weights()` or `load_state_dict`.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        num_layers: int,
        d_model: int,
        num_heads: int,
        d_ff: int | None = None,
        rope_theta: float | None = 10000.0,
        post_norm: bool | None = False,
        ffn_type: FfnType = "swiglu",
        num_kv_heads: int | None = None,
        qk_norm: bool = False,
        tie_embeddings: bool = False,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        embedding_dropout: float = 0.0,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        cfg = ModelConfig(
            vocab_size, context_length, num_layers, d_model, num_heads, d_ff, rope_theta,
            post_norm, ffn_type, num_kv_heads, qk_norm, tie_embeddings, dropout,
            zero_init_residual, embedding_dropout,
        )  # fmt: skip
        self.config = cfg
        assert cfg.d_ff is not None and cfg.num_kv_heads is not None  # resolved by ModelConfig
        # A tied matrix also serves as the head, so it gets the head's small std (O(1) logits).
        emb_std = math.sqrt(2 / (vocab_size + d_model)) if tie_embeddings else 1.0
        with torch.get_default_device() if device is None else torch.device(device):
            self.token_embeddings = Embedding(vocab_size, d_model, init_std=emb_std)
            self.position_embeddings, self.rotary = None, None
            if rope_theta is None:
                self.position_embeddings = Embedding(context_length, d_model)
            else:
                self.rotary = RotaryEmbedding(cfg.head_dim, context_length, rope_theta)
            self.layers = nn.ModuleList(
                Block(
                    d_model,
                    num_heads,
                    cfg.num_kv_heads,
                    cfg.d_ff,
                    ffn_type,
                    post_norm,
                    qk_norm,
                    dropout,
                )
                for _ in range(num_layers)
            )
            self.ln_final = RMSNorm(d_model) if post_norm is False else None
            self.lm_head = None if tie_embeddings else Linear(d_model, vocab_size)
        self.embedding_drop = nn.Dropout(embedding_dropout)  # identity in eval mode or at 0
        self._zero_residual_projections()

    @classmethod
    def from_config(
        cls, config: ModelConfig, device: torch.device | str | None = None
    ) -> "TransformerLM":
        return cls(**config.to_dict(), device=device)

    @torch.no_grad()
    def init_weights(self) -> None:
        """(Re-)initialise every tensor, in module order, from torch's global RNG:

        - token_embeddings.weight (V, C): truncated normal, std 1, clipped at +-3; when tied to the
          head, std sqrt(2 / (V + C)) like the head it doubles as.
        - position_embeddings.weight (T, C) (rope_theta=None only): truncated normal, std 1, +-3.
        - every Linear weight (out, in): truncated normal, std sqrt(2 / (in + out)), clipped at
          +-3 std; the fused qkv weight per q / k / v block, each with its own out.
        - every RMSNorm gain (including qk-norm): ones.
        - rotary cos/sin tables: recomputed (they are buffers, not parameters).
        - with zero_init_residual, then: every block's `attn.out` and `ffn.w2` weights zeroed.
        """
        for module in self.modules():
            if isinstance(module, Linear | Embedding | RMSNorm | RotaryEmbedding):
                module.reset_parameters()
        self._zero_residual_projections()

    @torch.no_grad()
    def _zero_residual_projections(self) -> None:
        """With zero_init_residual, zero what each sub-layer writes to the residual stream."""
        if self.config.zero_init_residual:
            for block in self.layers:
                block.attn.out.weight.zero_()
                block.ffn.w2.weight.zero_()

    def forward(self, input_ids: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """input_ids: (B, T) int64 -> logits (B, T, V) float32: the head on `hidden_states`."""
        return F.linear(self.hidden_states(input_ids, kv_cache), self.head_weight).float()

    @property
    def head_weight(self) -> Tensor:
        """The output matrix (V, C): lm_head's weight, or the token embeddings when tied."""
        return (self.token_embeddings if self.lm_head is None else self.lm_head).weight

    def hidden_states(self, input_ids: Tensor, kv_cache: KVCache | None = None) -> Tensor:
        """input_ids: (B, T) int64 -> the last block's output, final-normed: (B, T, C).

        Without a cache, T tokens at positions 0 .. T-1 attend causally. With a cache, they sit at
        positions pos .. pos + T - 1 after the cached ones, attend to those too, and are appended.
        """
        b, t = input_ids.shape
        start = 0 if kv_cache is None else kv_cache.pos
        if start + t > self.config.context_length:
            raise ValueError(
                f"{start + t} positions exceed the model's context_length "
                f"{self.config.context_length}; truncate the input to the last positions"
            )
        if kv_cache is None:
            positions, mask = torch.arange(t, device=input_ids.device), None
        else:
            positions, mask = kv_cache.positions(t), kv_cache.attention_mask(b, t)
        x = self.token_embeddings(input_ids)  # (B, T, C)
        if self.position_embeddings is not None:
            x = x + self.position_embeddings(positions)
        x = self.embedding_drop(x)
        rope = None if self.rotary is None else self.rotary(positions)
        for layer, block in enumerate(self.layers):
            x = block(x, rope, mask, kv_cache, layer)
        if kv_cache is not None:
            kv_cache.advance(t)
        return x if self.ln_final is None else self.ln_final(x)
