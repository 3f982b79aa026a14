"""Byte-level BPE: training (`train_bpe`) and the `Tokenizer` that encodes and decodes."""
