"""A tiny base checkpoint for the post-training tests: random weights, the real format."""

from pathlib import Path

import torch

from scratchlm.model.config import ModelConfig
from scratchlm.model.transformer import TransformerLM
from scratchlm.tokenizer import train_bpe
from scratchlm.tokenizer.tokenizer import Tokenizer
from scratchlm.train.checkpoint import save_checkpoint

# The tests only need some valid tokenizer: train it once per text and test session.
_BPE: dict[str, tuple[dict[int, bytes], list[tuple[bytes, bytes]]]] = {}


def make_base_checkpoint(
    root: Path, text: str, d_model: int = 64, context_length: int = 128, seed: int = 0
) -> Path:
    """Train a 300-token BPE on `text`, build a 2-layer model, save both as a step-0 checkpoint."""
    root.mkdir(parents=True, exist_ok=True)
    text = text[:20_000]
    if text not in _BPE:
        corpus = root / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        _BPE[text] = train_bpe(str(corpus), 300, ["<|endoftext|>"], num_processes=1)
    vocab, merges = _BPE[text]
    tokenizer_dir = root / "tokenizer"
    Tokenizer(vocab, merges, ["<|endoftext|>"]).save(tokenizer_dir)
    config = ModelConfig(len(vocab), context_length, num_layers=2, d_model=d_model, num_heads=4)
    torch.manual_seed(seed)
    model = TransformerLM.from_config(config)
    return save_checkpoint(
        root / f"base-{d_model}" / "checkpoints", 0, model.state_dict(), {}, {"step": 0},
        {"ranks": []}, {"model": config.to_dict()}, tokenizer_dir,
    )  # fmt: skip
