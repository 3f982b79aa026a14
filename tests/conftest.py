"""Shared fixtures: a small varied text and a tiny model shape, and a runner for command lines.
Nothing here touches the network."""

from collections.abc import Iterator

import pytest
from cli_runner import ForkRunner

SAMPLE_TEXT = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside.\n"
    'One day, she saw a big red ball in the park. "Can I play?" she asked her mom.\n'
    'Her mom said, "Yes, but be careful!" Lily smiled and ran to the ball.\n\n'
    "The quick brown fox jumps over the lazy dog... 12345 67890; café naïve résumé.\n"
    "Numbers like 3.14159, 2,718 and -42 appear; so do URLs like https://example.org/a?b=c.\n"
    "Unicode: 日本語のテキスト, Ελληνικά, русский текст, emoji 🙂🚀\n"
    "Tabs\tand  double  spaces.\n"
    "It's, I'm, we'll, they've, she'd, don't: contractions matter for the GPT-2 pattern.\n"
)


@pytest.fixture
def sample_text() -> str:
    """A few hundred bytes of varied text (ASCII, accents, CJK, emoji, whitespace runs)."""
    return SAMPLE_TEXT


@pytest.fixture
def corpus_text() -> str:
    """~60 KB of text made of varied documents separated by <|endoftext|>."""
    names = ["Lily", "Tom", "Mia", "Ben", "Zoe", "Max", "Sam", "Ana"]
    things = ["ball", "kite", "book", "cake", "dog", "tree", "boat", "star"]
    docs = []
    for i in range(400):
        a, b = names[i % 8], names[(i * 3 + 1) % 8]
        t = things[(i * 5 + 2) % 8]
        docs.append(
            f'{a} found a {t} near the river. "Look, {b}!" said {a}. '
            f"{b} laughed, and they played with the {t} until day {i} ended."
        )
    return "<|endoftext|>".join(docs) + "<|endoftext|>" + SAMPLE_TEXT


@pytest.fixture(scope="session")
def _token_data_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return {"dir": tmp_path_factory.mktemp("token_data")}


@pytest.fixture
def token_data(corpus_text: str, _token_data_dir: dict[str, object]) -> dict[str, object]:
    """A BPE tokenizer (vocab 384) trained on corpus_text and train/valid .npy files made with it.

    Keys: tokenizer_dir, train, valid (paths), vocab_size. Built once per test session.
    """
    import numpy as np

    from scratchlm.data.tokenfile import TokenFileWriter
    from scratchlm.tokenizer import Tokenizer, train_bpe

    root = _token_data_dir["dir"]
    if "train" not in _token_data_dir:
        (root / "corpus.txt").write_text(corpus_text)
        vocab, merges = train_bpe(root / "corpus.txt", 384, ["<|endoftext|>"], num_processes=1)
        tokenizer = Tokenizer(vocab, merges, ["<|endoftext|>"])
        tokenizer.save(root / "tokenizer")
        ids = np.array(tokenizer.encode(corpus_text))
        cut = len(ids) * 9 // 10
        for name, part in (("train", ids[:cut]), ("valid", ids[cut:])):
            with TokenFileWriter(root / f"{name}.npy", tokenizer.vocab_size) as out:
                out.write(part)
            _token_data_dir[name] = root / f"{name}.npy"
        _token_data_dir["tokenizer_dir"] = root / "tokenizer"
        _token_data_dir["vocab_size"] = tokenizer.vocab_size
    return {k: v for k, v in _token_data_dir.items() if k != "dir"}


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkRunner]:
    """`cli.run(argv, cwd)` runs `scratchlm ARGV` in a process of its own (see cli_runner.py)."""
    runner = ForkRunner(tmp_path_factory.mktemp("cli"))
    yield runner
    runner.close()
