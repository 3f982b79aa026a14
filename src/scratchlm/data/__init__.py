"""Token files, batches for training, and the synthetic story corpus."""

from scratchlm.data.prepare import tokenize_file  # noqa: F401
from scratchlm.data.synth import story, write_corpus  # noqa: F401
from scratchlm.data.tokenfile import TokenFileWriter, token_dtype  # noqa: F401
