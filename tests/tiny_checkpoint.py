"""A tiny checkpoint directory for the inference, serving and export tests (not a test module).

A byte-level BPE trained on the shared sample text, with or without the chat tokens, and a
randomly initialised Llama-shaped TransformerLM saved through the training checkpoint writer.
"""

from pathlib import Path

import torch
from conftest import SAMPLE_TEXT

from scratchlm.model import ModelConfig, TransformerLM
from scratchlm.tokenizer.bpe import train_bpe
from scratchlm.tokenizer.chat import add_chat_tokens
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import rng_state, save_checkpoint


def write_tiny_checkpoint(root: Path, chat: bool = False, **model_fields: object) -> Path:
    """Train a 400-id tokenizer, build a 2-layer model and save both; returns the checkpoint dir."""
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text(SAMPLE_TEXT * 4, encoding="utf-8")
    vocab, merges = train_bpe(corpus, 400, ["<|endoftext|>"], num_processes=1)
    tokenizer = Tokenizer(vocab, merges, ["<|endoftext|>"])
    if chat:
        tokenizer = add_chat_tokens(tokenizer)
    tokenizer.save(root / "tokenizer")
    fields = dict(vocab_size=tokenizer.vocab_size, context_length=96, num_layers=2, d_model=32)
    config = ModelConfig(**(fields | {"num_heads": 4, "num_kv_heads": 2} | model_fields))
    torch.manual_seed(0)
    model = TransformerLM.from_config(config)
    return save_checkpoint(
        root / "checkpoints",
        step=1,
        model_state=model.state_dict(),
        optim_state={},
        state={},
        rng=rng_state(),
        config={"model": config.to_dict()},
        tokenizer_dir=root / "tokenizer",
    )
