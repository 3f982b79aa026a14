"""The decoder-only TransformerLM, its config, KV cache and sampling."""

from scratchlm.model.config import PRESETS, ModelConfig
from scratchlm.model.functional import cross_entropy, softmax
from scratchlm.model.kv_cache import KVCache
from scratchlm.model.transformer import TransformerLM, reference_attention

__all__ = [
    "PRESETS",
    "KVCache",
    "ModelConfig",
    "TransformerLM",
    "cross_entropy",
    "reference_attention",
    "softmax",
]
