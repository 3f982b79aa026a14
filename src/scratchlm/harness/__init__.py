"""lm-evaluation-harness on scratchlm checkpoints: the `scratchlm` model class, offline tasks."""
