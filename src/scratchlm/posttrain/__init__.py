"""Post-training a pretrained checkpoint in the chat template: SFT, DPO and GRPO.

The building blocks (`scratchlm.posttrain.functional`, and the answer parsers of
`scratchlm.eval.answers`) are importable from here, under the names of CS336's alignment course.
"""

from scratchlm.eval.answers import parse_gsm8k_response, parse_mmlu_response
from scratchlm.posttrain.functional import (
    compute_entropy,
    compute_group_normalized_rewards,
    compute_grpo_clip_loss,
    compute_naive_policy_gradient_loss,
    compute_policy_gradient_loss,
    get_response_log_probs,
    grpo_microbatch_train_step,
    masked_mean,
    masked_normalize,
    per_instance_dpo_loss,
    sft_microbatch_train_step,
    tokenize_prompt_and_output,
)

__all__ = [
    "compute_entropy",
    "compute_group_normalized_rewards",
    "compute_grpo_clip_loss",
    "compute_naive_policy_gradient_loss",
    "compute_policy_gradient_loss",
    "get_response_log_probs",
    "grpo_microbatch_train_step",
    "masked_mean",
    "masked_normalize",
    "parse_gsm8k_response",
    "parse_mmlu_response",
    "per_instance_dpo_loss",
    "sft_microbatch_train_step",
    "tokenize_prompt_and_output",
]
