"""Token files, batches for training, and the synthetic story corpus."""

from scratchlm.data.synth import story, write_corpus  # noqa: F401
