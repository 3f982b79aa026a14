"""Token files, batches for training, and the synthetic story corpus."""

from scratchlm.data.loader import TokenSampler, eval_batches, get_batch, load_dataset, open_tokens  # noqa: F401
from scratchlm.data.prepare import tokenize_file  # noqa: F401
from scratchlm.data.synth import story, write_corpus  # noqa: F401
from scratchlm.data.tokenfile import TokenFileWriter, token_dtype  # noqa: F401
