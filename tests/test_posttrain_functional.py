"""The post-training building blocks against formulas written out here and hand-computed cases."""

import math

import pytest
import torch
import torch.nn.functional as F

from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.posttrain import (
    compute_entropy,
    compute_group_normalized_rewards,
    compute_grpo_clip_loss,
    compute_naive_policy_gradient_loss,
    compute_policy_gradient_loss,
    get_response_log_probs,
    grpo_microbatch_train_step,
    masked_mean,
    masked_normalize,
    parse_gsm8k_response,
    parse_mmlu_response,
    per_instance_dpo_loss,
    sft_microbatch_train_step,
    tokenize_prompt_and_output,
)
from scratchlm.posttrain.functional import dpo_loss, response_mean
from scratchlm.tokenizer.chat import CHAT_SPECIAL_TOKENS, render_conversation
from scratchlm.tokenizer.tokenizer import Tokenizer

BYTES = {i: bytes([i]) for i in range(256)}


def byte_tokenizer(special: tuple[str, ...] = ("<|endoftext|>",)) -> Tokenizer:
    """Every byte is its own id; specials get ids 256, 257, ..."""
    return Tokenizer(BYTES, [], list(special))


def tiny_model(vocab_size: int, seed: int) -> TransformerLM:
    torch.manual_seed(seed)
    config = ModelConfig(vocab_size, 32, num_layers=1, d_model=16, num_heads=2)
    return TransformerLM.from_config(config)


def test_entropy_of_hand_computed_distributions() -> None:
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])  # uniform; (3/4, 1/4)
    expected = [math.log(2.0), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))]
    torch.testing.assert_close(compute_entropy(logits), torch.tensor([expected]))


def test_entropy_matches_torch_categorical_also_for_huge_logits() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 17) * 4
    reference = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(compute_entropy(logits), reference, atol=1e-5, rtol=1e-5)
    huge = logits * 1000  # exp() of these overflows; the log-sum-exp form does not
    reference = torch.distributions.Categorical(logits=huge).entropy()
    out = compute_entropy(huge)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, reference, atol=1e-3, rtol=0)


def test_masked_mean_by_hand_including_an_empty_row() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[True, False, True], [False, False, False]])
    assert masked_mean(x, mask).item() == pytest.approx((1 + 3) / 2)
    by_row = masked_mean(x, mask, dim=1)
    assert by_row[0].item() == pytest.approx(2.0) and math.isnan(by_row[1].item())  # 0 / 0
    by_col = masked_mean(x, mask.float(), dim=0)
    assert by_col[0].item() == 1.0 and math.isnan(by_col[1].item()) and by_col[2].item() == 3.0


def test_masked_normalize_by_hand() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = torch.tensor([[1, 0, 1], [0, 1, 0]])
    assert masked_normalize(x, mask, normalize_constant=2.0).item() == pytest.approx(9 / 2)
    torch.testing.assert_close(masked_normalize(x, mask, dim=1), torch.tensor([4.0, 5.0]))
    torch.testing.assert_close(
        masked_normalize(x, mask, dim=0, normalize_constant=4.0), torch.tensor([0.25, 1.25, 0.75])
    )


def test_response_mean_weighs_responses_or_tokens() -> None:
    per_token = torch.tensor([[1.0, 3.0, 100.0], [6.0, 100.0, 100.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert response_mean(per_token, mask, "sequence").item() == pytest.approx((2.0 + 6.0) / 2)
    assert response_mean(per_token, mask, "token").item() == pytest.approx((1 + 3 + 6) / 3)
    with pytest.raises(ValueError, match="length_normalization"):
        response_mean(per_token, mask, "tokens")


def test_response_log_probs_and_entropy_match_torch() -> None:
    model = tiny_model(40, seed=1)
    input_ids = torch.randint(0, 40, (2, 9))
    labels = torch.randint(0, 40, (2, 9))
    out = get_response_log_probs(model, input_ids, labels, return_token_entropy=True)
    logits = model(input_ids)
    expected = -F.cross_entropy(logits.transpose(1, 2), labels, reduction="none")
    torch.testing.assert_close(out["log_probs"], expected, atol=1e-5, rtol=1e-5)
    entropy = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(out["token_entropy"], entropy, atol=1e-5, rtol=1e-5)
    assert "token_entropy" not in get_response_log_probs(model, input_ids, labels)


def test_tokenize_prompt_and_output_by_hand() -> None:
    tokenizer = byte_tokenizer()  # <|endoftext|> is 256, the padding
    out = tokenize_prompt_and_output(["ab", "x"], ["c", "yz!"], tokenizer)
    # rows "abc" and "xyz!": [97, 98, 99, pad] and [120, 121, 122, 33]
    assert out["input_ids"].tolist() == [[97, 98, 99], [120, 121, 122]]
    assert out["labels"].tolist() == [[98, 99, 256], [121, 122, 33]]
    assert out["response_mask"].tolist() == [[False, True, False], [True, True, True]]
    assert out["response_mask"].dtype == torch.bool
    with pytest.raises(ValueError, match="2 prompts but 1 outputs"):
        tokenize_prompt_and_output(["a", "b"], ["c"], tokenizer)


def test_sft_step_loss_and_gradient_by_hand() -> None:
    log_probs = torch.tensor([[-1.0, -2.0, -3.0], [-4.0, -5.0, -6.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [False, True, True]])
    loss, meta = sft_microbatch_train_step(log_probs, mask, 2, normalize_constant=3.0)
    # rows: (1 + 2) / 3 = 1 and (5 + 6) / 3 = 11/3; batch mean 7/3; / 2 accumulation steps
    assert loss.item() == pytest.approx(7 / 6)
    assert meta["response_tokens"].item() == 4
    expected = -mask.float() / (3.0 * 2 * 2)  # d loss / d log p = -1 / (constant * B * steps)
    torch.testing.assert_close(log_probs.grad, expected)


def test_sft_step_gradients_accumulate_to_the_full_batch() -> None:
    torch.manual_seed(0)
    full = torch.randn(4, 5, requires_grad=True)
    mask = torch.rand(4, 5) > 0.3
    sft_microbatch_train_step(full, mask, 1, normalize_constant=2.5)
    parts = full.detach().clone().requires_grad_(True)
    for rows in (slice(0, 2), slice(2, 4)):
        sft_microbatch_train_step(parts[rows], mask[rows], 2, normalize_constant=2.5)
    torch.testing.assert_close(parts.grad, full.grad)


def test_sft_mean_token_loss_matches_cross_entropy() -> None:
    logits = torch.randn(2, 5, 11)
    targets = torch.randint(0, 11, (2, 5))
    mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0]]).bool()
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    log_probs.requires_grad_(True)
    loss, _ = sft_microbatch_train_step(log_probs, mask, 1, normalize_constant=6 / 2)
    torch.testing.assert_close(loss, F.cross_entropy(logits[mask], targets[mask]))


def test_group_normalized_rewards_use_the_sample_std() -> None:
    responses = ["yes", "no", "no", "yes", "yes", "yes"]
    truths = ["yes"] * 6
    adv, raw, meta = compute_group_normalized_rewards(
        lambda r, t: float(r == t), responses, truths, 3, 1e-6, normalize_by_std=True
    )
    assert raw.tolist() == [1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    std = math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)  # sample std (n - 1) of (1, 0, 0)
    expected = [(2 / 3) / (std + 1e-6), -(1 / 3) / (std + 1e-6), -(1 / 3) / (std + 1e-6), 0, 0, 0]
    torch.testing.assert_close(adv, torch.tensor(expected))
    assert meta["reward_mean"] == pytest.approx(4 / 6)
    centred, _, _ = compute_group_normalized_rewards(
        lambda r, t: {"reward": float(r == t)}, responses, truths, 3, 1e-6, normalize_by_std=False
    )
    torch.testing.assert_close(centred, torch.tensor([2 / 3, -1 / 3, -1 / 3, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="groups of 4"):
        compute_group_normalized_rewards(lambda r, t: 0.0, responses, truths, 4, 1e-6, True)


def test_naive_policy_gradient_loss_by_hand() -> None:
    rewards = torch.tensor([[2.0], [-0.5]])
    log_probs = torch.tensor([[-1.0, -3.0], [-2.0, -4.0]])
    loss = compute_naive_policy_gradient_loss(rewards, log_probs)
    torch.testing.assert_close(loss, torch.tensor([[2.0, 6.0], [-1.0, -2.0]]))


def test_grpo_clip_loss_and_which_tokens_are_clipped() -> None:
    ratios = torch.tensor([[1.5, 0.5, 1.1], [1.5, 0.5, 1.1]])
    log_probs = ratios.log().requires_grad_(True)
    advantages = torch.tensor([[1.0], [-1.0]])
    loss, meta = compute_grpo_clip_loss(advantages, log_probs, torch.zeros(2, 3), cliprange=0.2)
    # A = 1: -min(r, clip(r)) = -1.2 (clipped), -0.5, -1.1; A = -1: min(-r, -clip(r)) -> 1.5, 0.8
    expected = torch.tensor([[-1.2, -0.5, -1.1], [1.5, 0.8, 1.1]])
    torch.testing.assert_close(loss, expected)
    assert meta["clipped"].tolist() == [[True, False, False], [False, True, False]]
    loss.sum().backward()
    # unclipped tokens: d(-A r)/d log p = -A r; clipped ones get no gradient
    expected_grad = torch.tensor([[0.0, -0.5, -1.1], [1.5, 0.0, 1.1]])
    torch.testing.assert_close(log_probs.grad, expected_grad)


def test_policy_gradient_loss_dispatch_and_missing_arguments() -> None:
    log_probs = torch.tensor([[-1.0, -2.0]])
    rewards, advantages = torch.tensor([[3.0]]), torch.tensor([[0.5]])
    naive, _ = compute_policy_gradient_loss(log_probs, "no_baseline", raw_rewards=rewards)
    torch.testing.assert_close(naive, torch.tensor([[3.0, 6.0]]))
    baseline, _ = compute_policy_gradient_loss(
        log_probs, "reinforce_with_baseline", advantages=advantages
    )
    torch.testing.assert_close(baseline, torch.tensor([[0.5, 1.0]]))
    clip, meta = compute_policy_gradient_loss(
        log_probs, "grpo_clip", advantages=advantages, old_log_probs=log_probs, cliprange=0.2
    )
    torch.testing.assert_close(clip, torch.tensor([[-0.5, -0.5]]))  # ratio 1: -A
    assert not meta["clipped"].any()
    with pytest.raises(ValueError, match="needs raw_rewards"):
        compute_policy_gradient_loss(log_probs, "no_baseline", advantages=advantages)
    with pytest.raises(ValueError, match="needs old_log_probs, cliprange"):
        compute_policy_gradient_loss(log_probs, "grpo_clip", advantages=advantages)
    with pytest.raises(ValueError, match="loss_type must be one of"):
        compute_policy_gradient_loss(log_probs, "ppo", raw_rewards=rewards)


def test_grpo_step_averages_each_response_over_its_own_tokens() -> None:
    log_probs = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    advantages = torch.tensor([[2.0], [-1.0]])
    loss, _ = grpo_microbatch_train_step(
        log_probs, mask, 1, "reinforce_with_baseline", advantages=advantages
    )
    # row 0: -2 * (-1 - 2) / 2 = 3; row 1: 1 * (-0.5) / 1 = -0.5; mean over the 2 rows
    assert loss.item() == pytest.approx((3.0 - 0.5) / 2)
    # d/d log p: -A / (row tokens) / B on masked tokens
    expected = torch.tensor([[-0.5, -0.5, 0.0], [0.5, 0.0, 0.0]])
    torch.testing.assert_close(log_probs.grad, expected)


def test_grpo_step_gradients_accumulate_to_the_full_batch() -> None:
    torch.manual_seed(0)
    log_probs = torch.randn(4, 6) - 2
    old = log_probs + 0.3 * torch.randn(4, 6)
    mask = torch.rand(4, 6) > 0.3
    mask[:, 0] = True
    advantages = torch.randn(4, 1)
    full = log_probs.clone().requires_grad_(True)
    grpo_microbatch_train_step(full, mask, 1, "grpo_clip", advantages=advantages,
                               old_log_probs=old, cliprange=0.2)  # fmt: skip
    equal = log_probs.clone().requires_grad_(True)
    for rows in (slice(0, 2), slice(2, 4)):
        grpo_microbatch_train_step(
            equal[rows], mask[rows], 2, "grpo_clip", advantages=advantages[rows],
            old_log_probs=old[rows], cliprange=0.2,
        )  # fmt: skip
    torch.testing.assert_close(equal.grad, full.grad)


def test_dpo_loss_matches_hand_computation() -> None:
    pi_w, pi_l = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -1.0])
    ref_w, ref_l = torch.tensor([-1.5, -2.0]), torch.tensor([-1.5, -2.0])
    # row 0: 0.5 * ((-1 + 1.5) - (-2 + 1.5)) = 0.5; row 1: 0.5 * ((-3 + 2) - (-1 + 2)) = -1.0
    expected = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.0))) / 2
    assert dpo_loss(pi_w, pi_l, ref_w, ref_l, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_per_instance_dpo_loss_matches_the_formula_on_our_chat_template() -> None:
    tokenizer = byte_tokenizer(CHAT_SPECIAL_TOKENS)
    policy, reference = tiny_model(261, seed=2), tiny_model(261, seed=3)
    prompt, chosen, rejected = "What is 2 + 2?", "4.", "5, I think."

    def response_log_prob(model: TransformerLM, response: str) -> float:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        ids, mask = render_conversation(tokenizer, messages)
        logits = model(torch.tensor([ids[:-1]]))[0]
        picked = torch.log_softmax(logits, dim=-1)[torch.arange(len(ids) - 1), ids[1:]]
        return sum(p for p, m in zip(picked.tolist(), mask[1:], strict=True) if m)

    beta = 0.7
    margin = (response_log_prob(policy, chosen) - response_log_prob(reference, chosen)) - (
        response_log_prob(policy, rejected) - response_log_prob(reference, rejected)
    )
    expected = math.log1p(math.exp(-beta * margin))  # -log sigmoid(x) = log(1 + e^-x)
    loss = per_instance_dpo_loss(policy, reference, tokenizer, beta, prompt, chosen, rejected)
    assert loss.item() == pytest.approx(expected, rel=1e-4)
    same = per_instance_dpo_loss(policy, policy, tokenizer, beta, prompt, chosen, rejected)
    assert same.item() == pytest.approx(math.log(2.0), rel=1e-5)
    loss.backward()
    assert all(p.grad is None for p in reference.parameters())
    assert any(p.grad is not None for p in policy.parameters())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 - 2 = 1.", "1"),
        ("She had 12 apples, then 1,250 more: 1,262", "1262"),
        ("The answer is -3.5!", "-3.5"),
        ("It costs 5, or so,", "5"),
        ("no number here", None),
    ],
)
def test_parse_gsm8k_response(text: str, expected: str | None) -> None:
    assert parse_gsm8k_response(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The correct answer is B", "B"),
        ("answer: (C) because", "C"),
        ("D. Paris", "D"),
        ("A", "A"),
        ("The correct answer is E", None),  # only four options
        ("A cat sat on the mat.", None),
        ("I do not know.", None),
    ],
)
def test_parse_mmlu_response(text: str, expected: str | None) -> None:
    example = {"question": "?", "options": ["w", "x", "y", "z"]}
    assert parse_mmlu_response(example, text) == expected
