"""`ModelConfig`: the shape of a TransformerLM, its JSON form, parameter count and FLOPs per token.

Presets are plain functions (`tiny`, `small`, `gpt2_small`) that return a `ModelConfig`; `PRESETS`
maps their names to them.
"""

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

FfnType = Literal["swiglu", "silu", "relu2"]


def default_d_ff(d_model: int, ffn_type: FfnType) -> int:
    """Default FFN width: SwiGLU 8/3 d_model rounded up to a multiple of 64; SiLU and ReLU^2
    4 d_model.

    The 8/3 factor keeps SwiGLU's three matrices at the parameter count of a 4x two-matrix FFN.
    """
    if ffn_type == "swiglu":
        return 64 * math.ceil(8 * d_model / 3 / 64)
    return 4 * d_model


@dataclass(frozen=True)
class ModelConfig:
    """Every architecture choice of a TransformerLM.

    d_ff=None and num_kv_heads=None are resolved at construction (to `default_d_ff` and to
    num_heads), so a built config always holds concrete ints and its JSON records them.
    rope_theta=None selects learned absolute position embeddings (GPT-2 style) instead of RoPE.
    post_norm: False = pre-norm (RMSNorm before each sub-layer, plus a final norm), True = post-norm
    (RMSNorm after each residual add), None = no normalisation at all.
    dropout: the probability of zeroing an element of each sub-layer's output (attention, FFN)
    before it joins the residual stream, in training mode only (0 = none; eval is unaffected).
    embedding_dropout: the same, on the embeddings (token, plus position when learned) before the
    first block; 0 = none.
    zero_init_residual: start each sub-layer's last projection (attention's `out`, the FFN's `w2`)
    at zero, so that every block begins as the identity and the residual stream as the embeddings;
    initialisation only, the model's function and its export are as without it.
    """

    vocab_size: int
    context_length: int
    num_layers: int
    d_model: int
    num_heads: int
    d_ff: int | None = None
    rope_theta: float | None = 10000.0
    post_norm: bool | None = False
    ffn_type: FfnType = "swiglu"
    num_kv_heads: int | None = None
    qk_norm: bool = False
    tie_embeddings: bool = False
    dropout: float = 0.0
    zero_init_residual: bool = False
    embedding_dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "num_layers", "d_model", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{name} must be a positive int, got {value!r}")
        if self.ffn_type not in get_args(FfnType):
            raise ValueError(
                f"model.ffn_type must be one of {get_args(FfnType)}, got {self.ffn_type!r}"
            )
        if self.d_model % self.num_heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by model.num_heads "
                f"({self.num_heads}); pick num_heads among {_divisors(self.d_model)}"
            )
        if self.head_dim % 2 and self.rope_theta is not None:
            raise ValueError(
                f"RoPE needs an even head dim, got d_model/num_heads = {self.head_dim}; "
                "change num_heads or set rope_theta=None"
            )
        if self.rope_theta is not None and self.rope_theta <= 0:
            raise ValueError(f"model.rope_theta must be > 0 (or None), got {self.rope_theta}")
        if self.post_norm not in (True, False, None):
            raise ValueError(f"model.post_norm must be true, false or null, got {self.post_norm!r}")
        for name in ("dropout", "embedding_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and 0 <= value < 1):
                raise ValueError(f"model.{name} must be in [0, 1), got {value!r}")
        if not isinstance(self.zero_init_residual, bool):
            raise ValueError(
                f"model.zero_init_residual must be true or false, got {self.zero_init_residual!r}"
            )
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", default_d_ff(self.d_model, self.ffn_type))
        elif not isinstance(self.d_ff, int) or self.d_ff < 1:
            raise ValueError(f"model.d_ff must be a positive int or null, got {self.d_ff!r}")
        if self.num_kv_heads is None:
            object.__setattr__(self, "num_kv_heads", self.num_heads)
        elif (
            not isinstance(self.num_kv_heads, int)
            or self.num_kv_heads < 1
            or self.num_heads % self.num_kv_heads
        ):
            raise ValueError(
                f"model.num_kv_heads ({self.num_kv_heads}) must divide model.num_heads "
                f"({self.num_heads}); pick one of {_divisors(self.num_heads)}"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (d_ff and num_kv_heads resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of `to_dict`; unknown keys raise ValueError (a typo must not pass silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; valid keys: {sorted(known)}")
        return cls(**data)

    def num_params(self, include_embeddings: bool = True) -> int:
        """Number of parameters of `TransformerLM.from_config(self)`, counted from the shapes.

        include_embeddings=False leaves out the lookup tables (token embeddings and learned position
        embeddings) but keeps the output head, whose matmul costs compute; with tied embeddings the
        shared matrix is then left out too.
        """
        c, dh, v = self.d_model, self.head_dim, self.vocab_size
        attn = c * (self.num_heads + 2 * self.num_kv_heads) * dh + self.num_heads * dh * c
        attn += 2 * dh if self.qk_norm else 0
        ffn = (3 if self.ffn_type == "swiglu" else 2) * c * self.d_ff
        norms = 0 if self.post_norm is None else 2 * c
        total = self.num_layers * (attn + ffn + norms)
        total += c if self.post_norm is False else 0  # final norm, pre-norm only
        if not self.tie_embeddings:
            total += v * c  # lm_head
        if include_embeddings:
            total += v * c
            total += self.context_length * c if self.rope_theta is None else 0
        return total

    def flops_per_token(self) -> int:
        """Training FLOPs per token: 6 N + 12 L C T (forward + backward; PaLM app. B convention).

        N counts every weight a token is multiplied by: the non-embedding parameters plus the output
        head (also when it is tied to the embeddings). 6 = 2 FLOPs per multiply-add x (1 forward +
        2 backward). The attention term covers QK^T and AV over the full context T = context_length
        (causal masking's saving is ignored, as is customary). Use it for MFU:
        tokens_per_s * flops_per_token() / peak_flops.
        """
        n = self.num_params(include_embeddings=False)
        if self.tie_embeddings:
            n += self.vocab_size * self.d_model
        return 6 * n + 12 * self.num_layers * self.d_model * self.context_length


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def tiny(vocab_size: int = 512) -> ModelConfig:
    """2 layers, C=64: the test and smoke-run shape."""
    return ModelConfig(vocab_size, context_length=128, num_layers=2, d_model=64, num_heads=4)


def small(vocab_size: int = 10000) -> ModelConfig:
    """4 layers, C=512, 16 heads, d_ff 1344, T=256: the CPU benchmark shape."""
    return ModelConfig(
        vocab_size, context_length=256, num_layers=4, d_model=512, num_heads=16, d_ff=1344
    )


def gpt2_small(vocab_size: int = 50257) -> ModelConfig:
    """12 layers, C=768, 12 heads, T=1024: the GPT-2 small shape with this model's choices."""
    return ModelConfig(vocab_size, context_length=1024, num_layers=12, d_model=768, num_heads=12)


PRESETS: dict[str, Callable[..., ModelConfig]] = {
    "tiny": tiny,
    "small": small,
    "gpt2_small": gpt2_small,
}
