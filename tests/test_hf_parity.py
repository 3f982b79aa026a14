"""TransformerLM against transformers' LlamaForCausalLM (built from a LlamaConfig, no download)."""

import pytest
import torch

from scratchlm.model import KVCache, ModelConfig, TransformerLM
from scratchlm.model.hf import (
    config_from_llama,
    from_llama_state_dict,
    llama_config_kwargs,
    to_hf_llama,
    to_llama_state_dict,
)

transformers = pytest.importorskip("transformers")

SHAPES = [
    ModelConfig(vocab_size=211, context_length=48, num_layers=2, d_model=64, num_heads=4),
    ModelConfig(211, 48, 3, 64, 8, d_ff=96, num_kv_heads=2, rope_theta=500.0),
    ModelConfig(211, 48, 2, 48, 2, tie_embeddings=True),
]


def llama_with_its_own_init(cfg: ModelConfig, seed: int) -> "transformers.LlamaForCausalLM":
    torch.manual_seed(seed)
    hf_config = transformers.LlamaConfig(**llama_config_kwargs(cfg), attn_implementation="sdpa")
    model = transformers.LlamaForCausalLM(hf_config).eval()
    with torch.no_grad():  # HF initialises norm gains to 1; make them count in the comparison
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    return model


def ids(shape: tuple[int, int], vocab: int = 211) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("cfg", SHAPES)
def test_llama_weights_loaded_into_ours_give_the_same_logits(cfg: ModelConfig) -> None:
    hf = llama_with_its_own_init(cfg, seed=0)
    ours = TransformerLM.from_config(cfg).eval()
    ours.load_state_dict(from_llama_state_dict(hf.state_dict(), cfg))
    x = ids((2, 40))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("cfg", SHAPES)
def test_our_weights_mapped_onto_llama_give_the_same_logits(cfg: ModelConfig) -> None:
    torch.manual_seed(1)
    ours = TransformerLM.from_config(cfg).eval()
    hf = to_hf_llama(ours)
    assert sum(p.numel() for p in hf.parameters()) == cfg.num_params()
    x = ids((3, 33))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-4, rtol=0)


def test_cached_decode_matches_llama_full_forward() -> None:
    cfg = SHAPES[1]
    hf = llama_with_its_own_init(cfg, seed=2)
    ours = TransformerLM.from_config(cfg).eval()
    ours.load_state_dict(from_llama_state_dict(hf.state_dict(), cfg))
    x = ids((2, 20))
    cache = KVCache.for_model(cfg, batch_size=2)
    with torch.no_grad():
        steps = [ours(x[:, :6], kv_cache=cache)]
        steps += [ours(x[:, t : t + 1], kv_cache=cache) for t in range(6, 20)]
        torch.testing.assert_close(torch.cat(steps, dim=1), hf(x).logits, atol=1e-4, rtol=0)


def test_config_and_state_dict_round_trip() -> None:
    for cfg in SHAPES:
        hf_config = transformers.LlamaConfig(**llama_config_kwargs(cfg))
        assert config_from_llama(hf_config.to_dict()) == cfg
    torch.manual_seed(3)
    model = TransformerLM.from_config(SHAPES[1])
    state = model.state_dict()
    back = from_llama_state_dict(to_llama_state_dict(state, SHAPES[1]), SHAPES[1])
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


@pytest.mark.parametrize(
    "overrides",
    [
        {"rope_theta": None},
        {"post_norm": True},
        {"ffn_type": "silu"},
        {"ffn_type": "relu2"},
        {"qk_norm": True},
    ],
)
def test_non_llama_models_are_refused(overrides: dict) -> None:
    cfg = ModelConfig(**{**SHAPES[0].to_dict(), **overrides})
    with pytest.raises(ValueError, match="cannot be expressed as a Llama"):
        llama_config_kwargs(cfg)
