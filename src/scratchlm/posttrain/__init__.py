"""Post-training a pretrained checkpoint: SFT, DPO and GRPO on conversations in the chat template."""
