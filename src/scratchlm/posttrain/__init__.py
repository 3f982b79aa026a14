"""Post-training a pretrained checkpoint in the chat template: SFT, DPO and GRPO."""
