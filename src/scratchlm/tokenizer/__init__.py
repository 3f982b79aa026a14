"""Byte-level BPE: training (`train_bpe`) and the `Tokenizer` that encodes and decodes."""

from scratchlm.tokenizer.bpe import train_bpe  # noqa: F401
from scratchlm.tokenizer.tokenizer import END_OF_TEXT, Tokenizer  # noqa: F401
