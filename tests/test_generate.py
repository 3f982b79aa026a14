"""Cached decoding against full recomputation, and the sampling filters against brute force."""

import pytest
import torch

from scratchlm.model import ModelConfig, TransformerLM
from scratchlm.model.generate import (
    SamplingConfig,
    decode_layout,
    generate,
    left_pad,
    stream,
    top_k_filter,
    top_p_filter,
)
from scratchlm.model.kv_cache import KVCache

PROMPTS = [[5, 17, 3, 99, 42, 8, 1], [7, 7], [64, 2, 31, 90]]


def tiny_model(**overrides: object) -> TransformerLM:
    torch.manual_seed(0)
    fields = dict(vocab_size=101, context_length=64, num_layers=2, d_model=32, num_heads=4)
    return TransformerLM.from_config(ModelConfig(**(fields | overrides))).eval()


def greedy_by_recomputation(model: TransformerLM, prompt: list[int], n: int) -> list[int]:
    """The reference: run the whole sequence through the model (no cache) for every new token."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"rope_theta": None}, {"num_kv_heads": 2, "tie_embeddings": True}],
    ids=["rope", "learned-positions", "gqa-tied"],
)
def test_cached_greedy_equals_recomputation_on_a_ragged_batch(overrides: dict) -> None:
    model = tiny_model(**overrides)
    got = generate(model, PROMPTS, SamplingConfig(max_new_tokens=24, temperature=0))
    assert got == [greedy_by_recomputation(model, p, 24) for p in PROMPTS]


def test_decode_layout_keeps_weights_and_outputs() -> None:
    model = tiny_model()
    before = {name: w.clone() for name, w in model.state_dict().items()}
    ids = torch.tensor(PROMPTS[0])[None]
    with torch.no_grad():
        logits = model(ids)
    greedy = generate(model, PROMPTS, SamplingConfig(max_new_tokens=16, temperature=0))
    assert decode_layout(model) is model
    for name, weight in model.state_dict().items():
        assert torch.equal(weight, before[name]), name
        if weight.dim() == 2 and "embeddings" not in name:  # every Linear: (in, out) in memory
            assert not weight.is_contiguous() and weight.t().is_contiguous(), name
    with torch.no_grad():
        torch.testing.assert_close(model(ids), logits, atol=1e-5, rtol=0)
    after = generate(model, PROMPTS, SamplingConfig(max_new_tokens=16, temperature=0))
    assert after == greedy == [greedy_by_recomputation(model, p, 16) for p in PROMPTS]


def test_decode_layout_leaves_other_devices_alone() -> None:
    model = decode_layout(TransformerLM(101, 64, 2, 32, 4, device="meta"))
    assert all(w.is_contiguous() for w in model.parameters())


def test_padded_cache_logits_match_the_full_forward() -> None:
    model = tiny_model()
    ids, pads = left_pad(PROMPTS)
    cache = KVCache.for_model(model.config, len(PROMPTS), max_len=ids.shape[1], left_pad=pads)
    with torch.no_grad():
        logits = model(ids, kv_cache=cache)
        for row, prompt in enumerate(PROMPTS):
            alone = model(torch.tensor([prompt]))[0]
            torch.testing.assert_close(logits[row, pads[row] :], alone, atol=1e-5, rtol=0)


def test_top_k_one_equals_greedy() -> None:
    model = tiny_model()
    greedy = generate(model, PROMPTS, SamplingConfig(max_new_tokens=16, temperature=0))
    gen = torch.Generator().manual_seed(3)
    top1 = generate(model, PROMPTS, SamplingConfig(max_new_tokens=16, top_k=1), gen)
    assert top1 == greedy


def test_a_fixed_seed_repeats() -> None:
    model = tiny_model()
    config = SamplingConfig(max_new_tokens=20, temperature=1.5, top_k=50, top_p=0.95)
    runs = [generate(model, PROMPTS, config, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_top_k_filter_keeps_the_k_largest() -> None:
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    kept = top_k_filter(logits, 7)
    top = torch.topk(logits, 7, dim=-1).indices
    expected = torch.full_like(logits, float("-inf")).scatter(-1, top, logits.gather(-1, top))
    assert torch.equal(kept, expected)


def smallest_nucleus(probs: list[float], p: float) -> set[int]:
    """Brute force: the smallest set of tokens (most likely first) whose probability is >= p."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    for size in range(1, len(probs) + 1):
        if sum(probs[i] for i in order[:size]) >= p:
            return set(order[:size])
    return set(order)


def test_top_p_filter_keeps_the_smallest_set_reaching_p() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]], dtype=torch.float64)
    kept = lambda p: set(torch.isfinite(top_p_filter(probs.log(), p))[0].nonzero()[:, 0].tolist())  # noqa: E731
    assert kept(0.5) == {1}
    assert kept(0.6) == {1, 3}
    assert kept(0.79) == {1, 3}
    assert kept(0.81) == {1, 3, 2}
    assert kept(1.0) == {0, 1, 2, 3}
    logits = torch.randn(6, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for p in (0.1, 0.5, 0.9, 0.99):
        filtered = top_p_filter(logits, p)
        for row in range(logits.shape[0]):
            got = set(torch.isfinite(filtered[row]).nonzero()[:, 0].tolist())
            assert got == smallest_nucleus(logits[row].softmax(-1).tolist(), p)
            assert torch.equal(filtered[row][list(got)], logits[row][list(got)])


def test_sampling_never_draws_a_filtered_token() -> None:
    model = tiny_model()
    with torch.no_grad():
        last = model(torch.tensor([PROMPTS[0]]))[0, -1]
    allowed = set(torch.topk(last, 3).indices.tolist())
    config = SamplingConfig(max_new_tokens=1, temperature=2.0, top_k=3)
    gen = torch.Generator().manual_seed(0)
    drawn = {generate(model, [PROMPTS[0]], config, gen)[0][0] for _ in range(40)}
    assert drawn <= allowed and len(drawn) > 1


def test_a_row_stops_on_a_stop_id_and_then_yields_none() -> None:
    model = tiny_model()
    free = generate(model, PROMPTS, SamplingConfig(max_new_tokens=12, temperature=0))
    stop = free[0][3]
    config = SamplingConfig(max_new_tokens=12, temperature=0, stop_ids=(stop,))
    steps = list(stream(model, PROMPTS, config))
    first_row = [step[0] for step in steps]
    cut = free[0].index(stop) + 1
    assert first_row[:cut] == free[0][:cut]
    assert all(token is None for token in first_row[cut:])
    assert generate(model, PROMPTS, config)[0] == free[0][:cut]


def test_streaming_leaves_autograd_alone() -> None:
    steps = stream(tiny_model(), PROMPTS, SamplingConfig(max_new_tokens=5))
    next(steps)
    assert torch.is_grad_enabled()


def test_bad_requests_raise_value_errors() -> None:
    model = tiny_model()
    with pytest.raises(ValueError, match="context_length"):
        generate(model, [[1] * 60], SamplingConfig(max_new_tokens=10))
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[1], []], SamplingConfig())
    for bad in ({"temperature": -1.0}, {"top_p": 0.0}, {"top_k": -2}, {"max_new_tokens": -1}):
        with pytest.raises(ValueError):
            SamplingConfig(**bad)
