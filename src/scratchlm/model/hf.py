"""Mapping between a TransformerLM and Hugging Face `transformers`' Llama (config and weights).

Our RoPE already uses Llama's half-split pair layout, so no q/k row permutation is needed: the
mapping renames keys and splits (or joins) the fused q/k/v projection. Only a Llama-shaped model
maps: RoPE, SwiGLU, pre-norm, no qk-norm (tied embeddings and grouped-query attention are fine).
The state-dict functions work on plain tensors; only `to_hf_llama` imports `transformers`.
"""

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from scratchlm.model.config import ModelConfig

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM

    from scratchlm.model.transformer import TransformerLM

log = logging.getLogger(__name__)

RMS_NORM_EPS = 1e-5  # scratchlm's RMSNorm eps

# Per-layer renames, ours -> Llama (the fused qkv weight is handled separately).
_LAYER_KEYS = {
    "attn.out.weight": "self_attn.o_proj.weight",
    "ffn.w1.weight": "mlp.gate_proj.weight",
    "ffn.w3.weight": "mlp.up_proj.weight",
    "ffn.w2.weight": "mlp.down_proj.weight",
    "ln1.weight": "input_layernorm.weight",
    "ln2.weight": "post_attention_layernorm.weight",
}
_QKV = ("q_proj", "k_proj", "v_proj")


def check_llama_compatible(config: ModelConfig) -> None:
    """Raise ValueError naming the first field that a Llama model cannot represent."""
    problems = {
        "rope_theta=None (learned positions)": config.rope_theta is None,
        f"post_norm={config.post_norm} (Llama is pre-norm)": config.post_norm is not False,
        f"ffn_type={config.ffn_type!r} (Llama uses swiglu)": config.ffn_type != "swiglu",
        "qk_norm=True (Llama has no qk-norm)": config.qk_norm,
    }
    for what, bad in problems.items():
        if bad:
            raise ValueError(f"this model cannot be expressed as a Llama: {what}")


def llama_config_kwargs(config: ModelConfig) -> dict[str, Any]:
    """Keyword arguments for `transformers.LlamaConfig` (also valid as a config.json body)."""
    check_llama_compatible(config)
    return {
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "max_position_embeddings": config.context_length,
        "rope_theta": config.rope_theta,
        "rms_norm_eps": RMS_NORM_EPS,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": config.tie_embeddings,
    }


def config_from_llama(hf_config: Mapping[str, Any]) -> ModelConfig:
    """A `ModelConfig` from a Llama config dict (config.json, or `LlamaConfig.to_dict()`)."""
    heads = hf_config["num_attention_heads"]
    hidden = hf_config["hidden_size"]
    rope = hf_config.get("rope_parameters") or hf_config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise ValueError(f"Llama rope type {rope_type!r} is not supported; only 'default' RoPE is")
    head_dim = hf_config.get("head_dim") or hidden // heads
    if head_dim * heads != hidden:
        raise ValueError(f"head_dim {head_dim} x {heads} heads != hidden_size {hidden}")
    if hf_config.get("hidden_act", "silu") != "silu":
        raise ValueError(f"hidden_act {hf_config['hidden_act']!r} is not supported; only 'silu' is")
    if hf_config.get("attention_bias") or hf_config.get("mlp_bias"):
        raise ValueError("Llama configs with attention_bias or mlp_bias are not supported")
    eps = hf_config.get("rms_norm_eps", RMS_NORM_EPS)
    if eps != RMS_NORM_EPS:
        log.warning(
            "rms_norm_eps %g differs from scratchlm's %g: logits will differ slightly",
            eps,
            RMS_NORM_EPS,
        )
    return ModelConfig(
        vocab_size=hf_config["vocab_size"],
        context_length=hf_config["max_position_embeddings"],
        num_layers=hf_config["num_hidden_layers"],
        d_model=hidden,
        num_heads=heads,
        d_ff=hf_config["intermediate_size"],
        rope_theta=float(hf_config.get("rope_theta") or rope.get("rope_theta") or 10000.0),
        num_kv_heads=hf_config.get("num_key_value_heads") or heads,
        tie_embeddings=bool(hf_config.get("tie_word_embeddings", False)),
    )


def to_llama_state_dict(state_dict: Mapping[str, Tensor], config: ModelConfig) -> dict[str, Tensor]:
    """Our state dict -> LlamaForCausalLM's. With tied embeddings there is no lm_head.weight key."""
    check_llama_compatible(config)
    out = {"model.embed_tokens.weight": state_dict["token_embeddings.weight"]}
    q_size, kv_size = config.num_heads * config.head_dim, config.num_kv_heads * config.head_dim
    for i in range(config.num_layers):
        ours, theirs = f"layers.{i}.", f"model.layers.{i}."
        qkv = state_dict[ours + "attn.qkv.weight"].split((q_size, kv_size, kv_size))
        for name, weight in zip(_QKV, qkv, strict=True):
            out[f"{theirs}self_attn.{name}.weight"] = weight
        for key, hf_key in _LAYER_KEYS.items():
            out[theirs + hf_key] = state_dict[ours + key]
    out["model.norm.weight"] = state_dict["ln_final.weight"]
    if not config.tie_embeddings:
        out["lm_head.weight"] = state_dict["lm_head.weight"]
    return out


def from_llama_state_dict(
    state_dict: Mapping[str, Tensor], config: ModelConfig
) -> dict[str, Tensor]:
    """LlamaForCausalLM's state dict -> ours (the inverse of `to_llama_state_dict`)."""
    check_llama_compatible(config)
    out = {"token_embeddings.weight": state_dict["model.embed_tokens.weight"]}
    for i in range(config.num_layers):
        ours, theirs = f"layers.{i}.", f"model.layers.{i}."
        qkv = [state_dict[f"{theirs}self_attn.{name}.weight"] for name in _QKV]
        out[ours + "attn.qkv.weight"] = torch.cat(qkv, dim=0)
        for key, hf_key in _LAYER_KEYS.items():
            out[ours + key] = state_dict[theirs + hf_key]
    out["ln_final.weight"] = state_dict["model.norm.weight"]
    if not config.tie_embeddings:
        out["lm_head.weight"] = state_dict["lm_head.weight"]
    return out


def to_hf_llama(model: "TransformerLM", attn_implementation: str = "sdpa") -> "LlamaForCausalLM":
    """A `transformers` LlamaForCausalLM (eval mode) with `model`'s weights; needs transformers."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_config = LlamaConfig(
        **llama_config_kwargs(model.config), attn_implementation=attn_implementation
    )
    hf_model = LlamaForCausalLM(hf_config).to(model.token_embeddings.weight.device)
    weights = to_llama_state_dict(model.state_dict(), model.config)
    missing, unexpected = hf_model.load_state_dict(weights, strict=False)
    tied = ["lm_head.weight"] if model.config.tie_embeddings else []
    if missing != tied or unexpected:
        raise RuntimeError(f"Llama mapping mismatch: missing {missing}, unexpected {unexpected}")
    return hf_model.eval()
