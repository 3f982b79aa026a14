"""GPT-2 pre-tokenization, special-token splitting and chunk boundaries."""

import random
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import regex

from scratchlm.tokenizer.pretokenize import (
    count_pretokens,
    find_chunk_boundaries,
    pretokenize,
    split_on_special_tokens,
)

EOT = "<|endoftext|>"


def test_pretokenize_matches_hf_byte_level(sample_text: str) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    pre = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    decoder = tokenizers.decoders.ByteLevel()
    text = sample_text + "  trailing spaces   \n\n\tend 's 'll x'VE 123abc"
    expected = [decoder.decode([piece]) for piece, _ in pre.pre_tokenize_str(text)]
    assert pretokenize(text) == expected


def test_split_is_longest_first() -> None:
    specials = [EOT, EOT + EOT]
    parts = split_on_special_tokens(f"a{EOT}{EOT}b{EOT}", specials)
    assert parts == ["a", EOT + EOT, "b", EOT, ""]
    assert split_on_special_tokens("no specials here", []) == ["no specials here"]


def test_count_drops_special_tokens() -> None:
    counts = count_pretokens(f"hi there{EOT}hi{EOT}", [EOT])
    assert counts == Counter({"hi": 2, " there": 1})


def test_fast_count_equals_regex_count() -> None:
    # count_pretokens cuts on spaces and whitespace runs before using the regex; it must agree
    # with plain regex pre-tokenization on text dense in the awkward cases.
    pieces = [" ", " ", "  ", "\n", "\t", "\r\n", "\u3000", "\x85", "\xa0", "\x1c", "a", "é"]
    pieces += ["日", "Ab", "1", "²", ",", "'", "'s", "!", EOT]
    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 25)))
        expected = Counter()
        for part in split_on_special_tokens(text, [EOT])[::2]:
            expected.update(pretokenize(part))
        assert count_pretokens(text, [EOT]) == expected, repr(text)


def test_isalpha_implies_regex_letter() -> None:
    # count_pretokens takes str.isalpha() words as one " ?\p{L}+" pre-token without the regex.
    letter = regex.compile(r"\p{L}")
    chars = (chr(c) for c in range(sys.maxunicode + 1))
    assert [c for c in chars if c.isalpha() and not letter.match(c)] == []


def test_chunk_boundaries_land_on_special_tokens(tmp_path: Path, corpus_text: str) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text, encoding="utf-8")
    data = path.read_bytes()
    bounds = find_chunk_boundaries(path, 2000, [EOT])
    assert bounds[0] == 0 and bounds[-1] == len(data)
    assert len(bounds) > 10
    assert all(x < y for x, y in pairwise(bounds))
    assert all(data[b : b + len(EOT)] == EOT.encode() for b in bounds[1:-1])
    pieces = Counter()
    for start, end in pairwise(bounds):
        pieces.update(count_pretokens(data[start:end].decode("utf-8"), [EOT]))
    assert pieces == count_pretokens(corpus_text, [EOT])


def test_chunk_boundary_skips_inside_longer_special(tmp_path: Path) -> None:
    wrapped = f"[{EOT}]"
    path = tmp_path / "corpus.txt"
    path.write_text("x" * 100 + wrapped + "y" * 100 + EOT + "z", encoding="utf-8")
    bounds = find_chunk_boundaries(path, 50, [EOT, wrapped])
    assert bounds == [0, 100 + len(wrapped) + 100, path.stat().st_size]


def test_no_special_tokens_means_one_chunk(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("abc " * 100, encoding="utf-8")
    assert find_chunk_boundaries(path, 10, []) == [0, 400]
