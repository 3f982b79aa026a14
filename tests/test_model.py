"""TransformerLM, its parts and its config, checked against torch references and invariants."""

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scratchlm.model import KVCache, ModelConfig, TransformerLM, reference_attention
from scratchlm.model.config import PRESETS
from scratchlm.model.transformer import (
    Block,
    Embedding,
    Linear,
    RMSNorm,
    RotaryEmbedding,
    apply_rotary,
)

TINY = dict(vocab_size=97, context_length=32, num_layers=2, d_model=32, num_heads=4)


def build(seed: int = 0, **overrides) -> TransformerLM:
    torch.manual_seed(seed)
    return TransformerLM(**{**TINY, **overrides})


def ids(shape: tuple[int, int], seed: int = 1, vocab: int = 97) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ config


def test_config_defaults_and_json_round_trip() -> None:
    cfg = ModelConfig(vocab_size=100, context_length=16, num_layers=2, d_model=512, num_heads=8)
    assert cfg.d_ff == 1408  # 8/3 * 512 = 1365.3, rounded up to a multiple of 64
    assert cfg.num_kv_heads == 8
    assert ModelConfig(**{**cfg.to_dict(), "d_ff": None, "ffn_type": "silu"}).d_ff == 2048
    assert ModelConfig(**{**cfg.to_dict(), "d_ff": None, "ffn_type": "relu2"}).d_ff == 2048
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    odd = ModelConfig(100, 16, 2, 64, 4, rope_theta=None, post_norm=None, num_kv_heads=2)
    assert ModelConfig.from_dict(json.loads(json.dumps(odd.to_dict()))) == odd
    for preset in PRESETS.values():
        assert isinstance(preset(), ModelConfig)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_heads": 5}, "divisible by model.num_heads"),
        ({"num_kv_heads": 3}, "num_kv_heads"),
        ({"d_model": 12, "num_heads": 4}, "even head dim"),
        ({"ffn_type": "relu"}, "ffn_type"),
        ({"num_layers": 0}, "num_layers"),
        ({"d_ff": -1}, "d_ff"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": True}, "dropout"),
    ],
)
def test_config_rejects_bad_values(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**{**TINY, **overrides})


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({**TINY, "n_layers": 3})


VARIANTS = [
    {},
    {"tie_embeddings": True},
    {"rope_theta": None},
    {"num_kv_heads": 2, "qk_norm": True},
    {"post_norm": True, "ffn_type": "silu"},
    {"post_norm": None, "d_ff": 40},
    {"ffn_type": "relu2", "tie_embeddings": True},
]


@pytest.mark.parametrize("overrides", VARIANTS)
def test_num_params_matches_the_module(overrides: dict) -> None:
    model = build(**overrides)
    cfg = model.config
    assert cfg.num_params() == sum(p.numel() for p in model.parameters())
    lookup = cfg.vocab_size * cfg.d_model + (
        cfg.context_length * cfg.d_model if cfg.rope_theta is None else 0
    )
    assert cfg.num_params(include_embeddings=False) == cfg.num_params() - lookup


def test_num_params_of_gpt2_small_shape_is_gpt2_minus_its_biases() -> None:
    cfg = ModelConfig(
        50257, 1024, 12, 768, 12, rope_theta=None, ffn_type="silu", tie_embeddings=True
    )
    # GPT-2 small has 124,439,808 parameters; per layer it adds biases on qkv (3C), attention out
    # (C), FFN in (4C) and out (C) and on both LayerNorms (2C), plus the final LayerNorm's bias (C).
    biases = 12 * (3 + 1 + 4 + 1 + 2) * 768 + 768
    assert cfg.num_params() == 124_439_808 - biases


@pytest.mark.parametrize("overrides", [{}, {"tie_embeddings": True, "num_kv_heads": 1}])
def test_flops_per_token_matches_torch_flop_counter(overrides: dict) -> None:
    model = build(**overrides)
    cfg = model.config
    batch = 2
    # The math backend computes attention with bmm calls, which the counter sees.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids((batch, cfg.context_length))).sum().backward()
    measured = counter.get_total_flops() / (batch * cfg.context_length)
    # The counter sees matmuls only; our count also includes the RMSNorm gains (6 FLOPs each).
    norm_gains = cfg.num_layers * 2 * cfg.d_model + cfg.d_model
    assert measured == cfg.flops_per_token() - 6 * norm_gains


# ------------------------------------------------------------------------------------------ parts


def test_linear_and_embedding_init() -> None:
    torch.manual_seed(0)
    fused = Linear(256, (512, 128))
    for block, out in zip(fused.weight.split((512, 128)), (512, 128), strict=True):
        std = math.sqrt(2 / (256 + out))
        assert abs(block.std().item() / std - 1) < 0.05  # truncation at 3 std shrinks std by ~1%
        assert block.abs().max() <= 3 * std
    emb = Embedding(1000, 64)
    assert abs(emb.weight.std().item() - 1) < 0.02 and emb.weight.abs().max() <= 3
    x = torch.randn(3, 256)
    torch.testing.assert_close(fused(x), x @ fused.weight.T)


def test_rmsnorm_matches_torch() -> None:
    ours, ref = RMSNorm(48), torch.nn.RMSNorm(48, eps=1e-5)
    with torch.no_grad():
        ours.weight.copy_(torch.randn(48))
        ref.weight.copy_(ours.weight)
    x = torch.randn(2, 5, 48) * 30
    torch.testing.assert_close(ours(x), ref(x))
    assert ours.bfloat16()(x.bfloat16()).dtype == torch.bfloat16


def test_rotary_is_a_complex_rotation_of_half_split_pairs() -> None:
    head_dim, theta = 16, 500.0
    rope = RotaryEmbedding(head_dim, context_length=20, theta=theta)
    x = torch.randn(2, 3, 20, head_dim, dtype=torch.float64)
    positions = torch.arange(20)
    cos, sin = rope(positions)
    ours = apply_rotary(x, cos.double(), sin.double())
    # Reference: pair i is the complex x[i] + 1j x[i + Dh/2], turned by pos * theta^(-2i / Dh).
    half = head_dim // 2
    z = torch.complex(x[..., :half], x[..., half:])
    freqs = theta ** (-torch.arange(half, dtype=torch.float64) * 2 / head_dim)
    turned = z * torch.polar(torch.ones(20, half, dtype=torch.float64), positions[:, None] * freqs)
    torch.testing.assert_close(
        ours, torch.cat((turned.real, turned.imag), dim=-1), atol=1e-5, rtol=0
    )


def test_rotary_scores_depend_only_on_relative_position() -> None:
    rope = RotaryEmbedding(8, context_length=64, theta=10000.0)
    q, k = torch.randn(8), torch.randn(8)

    def score(m: int, n: int) -> torch.Tensor:
        cos_m, sin_m = rope(torch.tensor([m]))
        cos_n, sin_n = rope(torch.tensor([n]))
        return (apply_rotary(q, cos_m, sin_m) * apply_rotary(k, cos_n, sin_n)).sum()

    torch.testing.assert_close(score(5, 2), score(40, 37))
    torch.testing.assert_close(score(9, 9), (q * k).sum())


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 2), (6, 1)])
def test_sdpa_attention_matches_reference(heads: int, kv_heads: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, heads, 9, 16, generator=gen)
    k, v = torch.randn(2, 2, kv_heads, 9, 16, generator=gen)
    sdpa = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=heads != kv_heads)
    torch.testing.assert_close(reference_attention(q, k, v), sdpa)
    # With an offset mask: the 3 queries sit after 6 cached keys.
    mask = torch.ones(3, 9, dtype=torch.bool).tril(diagonal=6)
    sdpa = F.scaled_dot_product_attention(
        q[:, :, 6:], k, v, attn_mask=mask, enable_gqa=heads != kv_heads
    )
    torch.testing.assert_close(reference_attention(q[:, :, 6:], k, v, mask), sdpa)


@pytest.mark.parametrize("ffn_type", ["swiglu", "silu", "relu2"])
def test_ffn_matches_its_formula(ffn_type: str) -> None:
    model = build(ffn_type=ffn_type)
    ffn = model.layers[0].ffn
    x = torch.randn(3, 5, 32, generator=torch.Generator().manual_seed(4))
    h = x @ ffn.w1.weight.T  # (3, 5, d_ff)
    if ffn_type == "swiglu":
        h = h * torch.sigmoid(h) * (x @ ffn.w3.weight.T)
    elif ffn_type == "silu":
        h = h * torch.sigmoid(h)
    else:
        h = torch.clamp(h, min=0) ** 2
    torch.testing.assert_close(ffn(x), h @ ffn.w2.weight.T, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ model


@pytest.mark.parametrize("post_norm", [False, True, None])
@pytest.mark.parametrize("ffn_type", ["swiglu", "silu", "relu2"])
def test_every_norm_placement_and_ffn_runs_forward_and_backward(post_norm, ffn_type) -> None:
    model = build(post_norm=post_norm, ffn_type=ffn_type)
    logits = model(ids((2, 12)))
    assert logits.shape == (2, 12, 97) and logits.dtype == torch.float32
    F.cross_entropy(logits.flatten(0, 1), ids((2, 12), seed=2).flatten()).backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
        assert torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize("overrides", VARIANTS)
def test_changing_a_token_leaves_earlier_logits_unchanged(overrides: dict) -> None:
    model = build(**overrides)
    x = ids((2, 16))
    y = x.clone()
    y[:, 9] = (y[:, 9] + 1) % 97
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :9], b[:, :9], rtol=0, atol=1e-6)
    assert (a[:, 9:] - b[:, 9:]).abs().max() > 1e-3


def test_learned_positions_are_used_and_trained() -> None:
    model = build(rope_theta=None)
    assert model.rotary is None and model.position_embeddings is not None
    x = torch.full((1, 8), 5)  # same token everywhere: only position tells the rows apart
    logits = model(x)
    assert (logits[0, 0] - logits[0, 7]).abs().max() > 1e-3
    logits.sum().backward()
    grad = model.position_embeddings.weight.grad
    assert grad is not None and grad[:8].abs().sum() > 0 and (grad[8:] == 0).all()


@pytest.mark.parametrize(
    "overrides", [{}, {"num_kv_heads": 2, "qk_norm": True}, {"rope_theta": None}]
)
def test_kv_cache_decode_equals_full_forward(overrides: dict) -> None:
    model = build(**overrides).eval()
    x = ids((3, 14))
    full = model(x)
    cache = KVCache.for_model(model.config, batch_size=3)
    pieces = [model(x[:, :5], kv_cache=cache), model(x[:, 5:8], kv_cache=cache)]
    pieces += [model(x[:, t : t + 1], kv_cache=cache) for t in range(8, 14)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.pos == 14
    cache.reset()
    # Generation's path: hidden states times the transposed head, last position only.
    head = model.head_weight.t().contiguous()  # (C, V)
    last = model.hidden_states(x[:, :9], kv_cache=cache)[:, -1:] @ head  # prefill
    torch.testing.assert_close(last, full[:, 8:9], rtol=1e-5, atol=1e-5)
    last = model.hidden_states(x[:, 9:10], kv_cache=cache) @ head  # one decode step
    torch.testing.assert_close(last, full[:, 9:10], rtol=1e-5, atol=1e-5)


def test_head_weight_is_the_output_matrix() -> None:
    untied, tied = build(), build(tie_embeddings=True)
    assert untied.head_weight is untied.lm_head.weight
    assert tied.head_weight is tied.token_embeddings.weight and tied.lm_head is None


def test_kv_cache_limits_are_actionable_errors() -> None:
    model = build()
    cache = KVCache.for_model(model.config, batch_size=1, max_len=4)
    with pytest.raises(ValueError, match="KV cache full"):
        model(ids((1, 5)), kv_cache=cache)
    with pytest.raises(ValueError, match="does not match"):
        model(ids((2, 2)), kv_cache=cache)
    with pytest.raises(ValueError, match="context_length"):
        model(ids((1, 33)))
    with pytest.raises(ValueError, match="max_len"):
        KVCache.for_model(model.config, batch_size=1, max_len=33)


def test_fresh_init_is_deterministic_and_matches_meta_then_init_weights() -> None:
    a, b = build(seed=3, tie_embeddings=True), build(seed=3, tie_embeddings=True)
    torch.manual_seed(3)
    c = TransformerLM(**TINY, tie_embeddings=True, device="meta")
    c.to_empty(device="cpu")
    torch.manual_seed(3)
    c.init_weights()
    for (name, pa), pb, pc in zip(
        a.state_dict().items(), b.state_dict().values(), c.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb) and torch.equal(pa, pc), name
    x = ids((1, 10))
    torch.testing.assert_close(a(x), c(x))


def test_tied_head_is_the_embedding_and_logits_stay_small() -> None:
    model = build(tie_embeddings=True)
    assert model.lm_head is None
    x = ids((2, 10))
    logits = model(x)
    assert logits.std() < 5  # the tied matrix gets the head's small init, not std 1
    logits.sum().backward()
    assert model.token_embeddings.weight.grad is not None


def test_from_config_and_bf16_params_give_fp32_logits() -> None:
    cfg = ModelConfig(**TINY, num_kv_heads=2)
    model = TransformerLM.from_config(cfg)
    assert model.config == cfg
    assert model.to(torch.bfloat16)(ids((1, 6))).dtype == torch.float32


def test_attention_runs_in_fp32_on_a_cpu_under_bf16_autocast(monkeypatch) -> None:
    # torch's bf16 flash-attention kernel for CPUs is slower than its fp32 one
    # (benchmarks/cpu_attention.py), so the model hands SDPA fp32 inputs outside autocast there.
    seen = []
    sdpa = F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype, torch.is_autocast_enabled("cpu")))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording_sdpa)
    model = TransformerLM(**TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids((2, 7)))
    assert seen == [(torch.float32,) * 3 + (False,)] * TINY["num_layers"]
    assert logits.dtype == torch.float32
    logits.sum().backward()  # the backward runs through the fp32 kernel too
    assert all(p.grad is not None for p in model.parameters())
    seen.clear()
    assert model.to(torch.bfloat16)(ids((1, 6))).dtype == torch.float32  # bf16 weights, no autocast
    assert seen == [(torch.float32,) * 3 + (False,)] * TINY["num_layers"]


def test_dropout_acts_in_training_mode_only() -> None:
    model = build(dropout=0.3)
    plain = build(dropout=0.0)  # the same weights: a fresh model is a function of the seed
    x = ids((2, 12))
    torch.testing.assert_close(model.eval()(x), plain.eval()(x), rtol=0, atol=0)
    model.train()
    first, second = model(x), model(x)
    assert not torch.equal(first, second)  # a new mask each forward
    assert ModelConfig.from_dict({**TINY}).dropout == 0.0  # configs written before the field


def test_dropout_zeroes_a_sub_layer_output_and_scales_the_rest() -> None:
    # Inverted dropout, written out: each element of the FFN's output is 0 with probability p, else
    # the output / (1 - p). The attention branch is silenced (a zero output matrix) and there are no
    # norms, so the block's output is x + dropout(ffn(x)).
    p = 0.25
    torch.manual_seed(0)
    block = Block(64, 4, 4, 128, "swiglu", post_norm=None, qk_norm=False, dropout=p).train()
    torch.nn.init.zeros_(block.attn.out.weight)
    x = torch.randn(4, 32, 64)
    with torch.no_grad():
        added = block(x, None, None) - x
        full = block.ffn(x)
    kept = added != 0
    torch.testing.assert_close(added[kept], full[kept] / (1 - p))
    assert abs((~kept).float().mean().item() - p) < 0.02  # 8,192 elements


def test_zero_init_residual_zeroes_only_the_residual_projections() -> None:
    cfg = ModelConfig(64, 16, 2, 32, 4, ffn_type="silu")
    torch.manual_seed(0)
    plain = TransformerLM.from_config(cfg)
    torch.manual_seed(0)
    zeroed = TransformerLM.from_config(dataclasses.replace(cfg, zero_init_residual=True))
    projections = {f"layers.{i}.{m}.weight" for i in range(2) for m in ("attn.out", "ffn.w2")}
    state = zeroed.state_dict()
    for name, value in plain.state_dict().items():
        expected = torch.zeros_like(value) if name in projections else value
        assert torch.equal(state[name], expected), name  # the rest draws the same numbers
    # Every block starts as the identity: the hidden states are the final norm of the embeddings.
    ids = torch.randint(0, 64, (2, 16))
    x = zeroed.token_embeddings(ids)
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(zeroed.hidden_states(ids), expected)
    with torch.no_grad():
        zeroed.layers[0].attn.out.weight.fill_(1.0)
    torch.manual_seed(0)
    zeroed.init_weights()
    assert not zeroed.layers[0].attn.out.weight.any()
    with pytest.raises(ValueError, match="zero_init_residual must be true or false"):
        ModelConfig(64, 16, 2, 32, 4, zero_init_residual="yes")  # type: ignore[arg-type]


def test_embedding_dropout_drops_the_first_blocks_input_as_torch_does() -> None:
    p = 0.25
    torch.manual_seed(0)
    model = TransformerLM.from_config(ModelConfig(64, 16, 2, 32, 4, embedding_dropout=p))
    seen: list[torch.Tensor] = []
    model.layers[0].register_forward_pre_hook(lambda _, args: seen.append(args[0].detach()))
    ids = torch.randint(0, 64, (4, 16))
    embedded = model.token_embeddings(ids).detach()  # (B, T, C)
    model.train()
    torch.manual_seed(1)
    model.hidden_states(ids)
    torch.manual_seed(1)
    torch.testing.assert_close(seen[-1], F.dropout(embedded, p, training=True))
    assert abs((seen[-1] == 0).float().mean().item() - p) < 0.05  # 2,048 elements
    model.eval()
    model.hidden_states(ids)
    torch.testing.assert_close(seen[-1], embedded)  # eval: no dropout
    for bad in (1.0, -0.1, True):
        with pytest.raises(ValueError, match="embedding_dropout must be in"):
            ModelConfig(64, 16, 2, 32, 4, embedding_dropout=bad)
