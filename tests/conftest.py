"""Shared fixtures: a small varied text and a tiny model shape. Nothing here touches the network."""

import pytest

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
