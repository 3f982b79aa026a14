"""Tokenizer: hand-worked encodings, fast path == reference, Hugging Face parity, files, errors."""

import json

import pytest
import tiktoken
from hypothesis import given, settings
from hypothesis import strategies as st

import scratchlm.tokenizer.tokenizer as tokenizer_module
from scratchlm.tokenizer import Tokenizer, train_bpe
from scratchlm.tokenizer.tokenizer import tiktoken_pattern

EOT = "<|endoftext|>"
EOT2 = "<|endoftext|><|endoftext|>"

VARIED = [
    "",
    "Once upon a time, there was a little girl named Lily.",
    "She said, \"Let's play!\" They'll go; we've won, I'm sure, it'd work, don't.",
    "café naïve résumé Ελληνικά русский текст",
    "日本語のテキストです。中文也可以。",
    "emoji 🙂🚀👩‍👩‍👧 and flags 🇫🇷",
    "   leading spaces, trailing spaces   ",
    "tabs\tand\n\nnewlines\r\n  \n\t \u00a0nbsp \u3000 ideographic space",
    "numbers 3.14159 2,718 -42 1234567890 ١٢٣ ½",
    f"{EOT}",
    f"{EOT}{EOT}",
    f"{EOT}{EOT}{EOT}",
    f"a{EOT}b{EOT}{EOT}c {EOT} d{EOT}",
    f"<|endoftext|<|endoftext|>|> <|endof {EOT}text|>",
    f"{EOT}\n\nThe end.{EOT2}Next story 🙂",
    "x" * 300 + " " + "ab" * 200,
    "'s 's's ''s 'S 'll'LL",
    "\x00\x01\x1c\x7f \ufeff zero\u200bwidth",
]


def _corpus() -> str:
    names = ["Lily", "Tom", "Zoë", "Ana", "Ben", "Mia"]
    lines = [
        "日本語のテキストです。中文也可以。",
        "café naïve résumé, Ελληνικά και русский текст.",
        "emoji 🙂🚀 again 🙂🚀, numbers 3.14 and 2,718.",
    ]
    docs = []
    for i in range(300):
        a, b = names[i % 6], names[(i * 5 + 1) % 6]
        docs.append(
            f"{a} and {b} played with a ball. \"Let's go!\" said {a}. They're happy; "
            f"it's day {i}.\n  {lines[i % 3]}\t{b} smiled."
        )
    return EOT.join(docs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    """A tokenizer trained with our train_bpe, with two overlapping special tokens."""
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(_corpus(), encoding="utf-8")
    vocab, merges = train_bpe(path, 700, [EOT, EOT2], num_processes=1)
    return Tokenizer(vocab, merges, [EOT, EOT2])


def _tiny_tokenizer(merges: list[tuple[bytes, bytes]]) -> Tokenizer:
    """Bytes 0..255, then each merge's token in merge order (ids 256, 257, ...)."""
    vocab = {b: bytes([b]) for b in range(256)}
    for left, right in merges:
        vocab[len(vocab)] = left + right
    return Tokenizer(vocab, merges)


def test_hand_worked_merges() -> None:
    tok = _tiny_tokenizer([(b"a", b"b"), (b"ab", b"c"), (b"b", b"c"), (b" ", b"bc")])
    # "abc": a b c -> (a,b) -> ab c -> (ab,c) -> abc.  " bc": (b,c) first, then (" ", bc).
    # " abcab": (a,b) at both places -> " " ab c ab -> (ab,c) -> " " abc ab.
    expected = [257, 259, 32, 257, 256]
    assert tok.encode_reference("abc bc abcab") == expected
    assert tok.fast_path_problem() is None
    assert tok.encode("abc bc abcab") == expected
    assert tok.decode(expected) == "abc bc abcab"


def test_fast_path_off_where_tiktoken_would_differ(tmp_path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    # "abc" is made as ab+c, but (b, c) ranks first, so BPE stops at a + bc.
    merges = [(b"b", b"c"), (b"a", b"b"), (b"ab", b"c")]
    tok = _tiny_tokenizer(merges)
    raw = tiktoken.Encoding(
        "raw", pat_str=r"\S+", mergeable_ranks=tok._token_ids, special_tokens={}
    )
    assert raw.encode_ordinary("abc") == [258]  # tiktoken alone joins a + bc into abc
    assert tok.fast_path_problem() is not None
    assert tok.fast_encoding is None
    assert tok.encode("abc") == tok.encode_reference("abc") == [97, 256]
    tok.save(tmp_path)
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode("abc").ids == [97, 256]


def test_trained_vocab_uses_fast_path(trained: Tokenizer) -> None:
    assert trained.fast_path_problem() is None
    assert trained.fast_encoding is not None


@pytest.mark.parametrize("text", VARIED)
def test_fast_path_equals_reference(trained: Tokenizer, text: str) -> None:
    assert trained.encode(text) == trained.encode_reference(text)
    assert trained.decode(trained.encode(text)) == text


def test_fast_path_equals_reference_on_corpus(trained: Tokenizer) -> None:
    text = _corpus() + EOT2 + "".join(VARIED)
    assert trained.encode(text) == trained.encode_reference(text)
    assert trained.encode_batch([text, text[:999]], num_threads=2) == [
        trained.encode_reference(text),
        trained.encode_reference(text[:999]),
    ]


def test_fast_path_equals_reference_across_unicode(trained: Tokenizer) -> None:
    """tiktoken and the regex package ship different Unicode versions; the fast path's pattern
    is corrected so that even letters new in recent versions split the same way."""
    assert tiktoken_pattern() is not None
    codes = [*range(0x80, 0x110000, 211), 0x88F, 0x10940, 0x11DE0, 0x324F8, 0x3134A]
    text = "".join(f"x{chr(c)}'s {chr(c)}1 " for c in codes if not 0xD800 <= c <= 0xDFFF)
    assert trained.encode(text) == trained.encode_reference(text)


def test_special_tokens_longest_first(trained: Tokenizer) -> None:
    one, two = trained.special_ids[EOT], trained.special_ids[EOT2]
    assert trained.encode(EOT) == [one]
    assert trained.encode(EOT2) == [two]
    assert trained.encode(EOT * 3) == [two, one]
    ids = trained.encode(f"hi{EOT}{EOT}there")
    assert ids[-len(trained.encode("there")) - 1] == two
    # Special tokens never come out of ordinary merges.
    assert one not in trained.encode("<|endoftext")


def test_hf_tokenizers_parity(trained: Tokenizer, tmp_path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    trained.save(tmp_path)
    from_json = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    from_files = tokenizers.Tokenizer(
        models.BPE.from_file(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    )
    from_files.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    from_files.decoder = decoders.ByteLevel()
    from_files.add_special_tokens([EOT, EOT2])
    for text in VARIED + [_corpus()[:5000]]:
        ours = trained.encode(text)
        assert from_json.encode(text).ids == ours, text
        assert from_files.encode(text).ids == ours, text
        assert from_json.decode(ours, skip_special_tokens=False) == text


def test_save_and_load_round_trip(trained: Tokenizer, tmp_path) -> None:
    trained.save(tmp_path / "tok")
    loaded = Tokenizer.from_dir(tmp_path / "tok")
    assert loaded.vocab == trained.vocab
    assert loaded.merges == trained.merges
    assert loaded.special_ids == trained.special_ids
    vocab = json.loads((tmp_path / "tok" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["Ġ"] == 32 and vocab[EOT] == trained.special_ids[EOT]
    assert (tmp_path / "tok" / "merges.txt").read_text().startswith("#version: 0.2\n")
    assert sorted(p.name for p in (tmp_path / "tok").iterdir()) == [
        "merges.txt",
        "tokenizer.json",
        "vocab.json",
    ]


def test_from_files_with_bytes_at_other_ids(trained: Tokenizer, tmp_path) -> None:
    """GPT-2's files put bytes at ids other than their value; the ids come from vocab.json."""
    moved = {i: tok for i, tok in trained.vocab.items() if i >= 256}
    moved.update({255 - b: bytes([b]) for b in range(256)})
    other = Tokenizer(moved, trained.merges, [EOT, EOT2])
    other.save(tmp_path)
    loaded = Tokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt", [EOT, EOT2])
    text = "".join(VARIED)
    assert loaded.encode(text) == loaded.encode_reference(text)
    assert loaded.decode(loaded.encode(text)) == text
    assert loaded.encode("\x00") == [255]


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_decode_encode_round_trip(trained: Tokenizer, text: str) -> None:
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert ids == trained.encode_reference(text)


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(
        st.one_of(st.text(max_size=12), st.sampled_from([EOT, EOT2, "<|end", "oftext|>", " "])),
        max_size=40,
    )
)
def test_encode_iterable_equals_encode(trained: Tokenizer, pieces: list[str]) -> None:
    text = "".join(pieces)
    old = tokenizer_module._ITERABLE_BLOCK_CHARS
    tokenizer_module._ITERABLE_BLOCK_CHARS = 8  # cut often, in the middle of everything
    try:
        assert list(trained.encode_iterable(pieces)) == trained.encode(text)
    finally:
        tokenizer_module._ITERABLE_BLOCK_CHARS = old


def test_encode_iterable_on_lines(trained: Tokenizer) -> None:
    text = _corpus() * 3  # past the default block, so cuts happen
    lines = text.splitlines(keepends=True)
    assert list(trained.encode_iterable(iter(lines))) == trained.encode(text)


def test_decode_replaces_invalid_utf8(trained: Tokenizer) -> None:
    assert trained.decode([0xE2, 0x28]) == "\ufffd("
    with pytest.raises(ValueError, match="cannot decode token id"):
        trained.decode([trained.vocab_size])


def test_token_byte_lengths(trained: Tokenizer) -> None:
    lengths = trained.token_byte_lengths()
    assert len(lengths) == trained.vocab_size
    text = _corpus()[:3000]
    ids = trained.encode(text)
    special_bytes = text.count(EOT) * len(EOT)
    assert sum(lengths[i] for i in ids) == len(text.encode("utf-8")) - special_bytes
    assert lengths[trained.special_ids[EOT]] == 0 and lengths[ord("a")] == 1


def test_bad_vocab_and_merges() -> None:
    vocab = {b: bytes([b]) for b in range(255)}
    with pytest.raises(ValueError, match="single byte"):
        Tokenizer(vocab, [])
    vocab[255] = b"\xff"
    with pytest.raises(ValueError, match="merge 0"):
        Tokenizer(vocab, [(b"a", b"b")])
    with pytest.raises(ValueError, match="repeated"):
        Tokenizer(vocab, [], [EOT, EOT])


def test_missing_tokenizer_dir(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="tokenizer directory not found"):
        Tokenizer.from_dir(tmp_path / "missing")


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        ("merges.txt", None, FileNotFoundError, "merges.txt"),
        ("tokenizer.json", None, FileNotFoundError, "tokenizer.json"),
        ("vocab.json", "{not json", ValueError, "not valid JSON"),
        ("vocab.json", '{"a": 1, "b": 1}', ValueError, "appears twice"),
        ("merges.txt", "#version: 0.2\nĠt h e\n", ValueError, "expected 'left right'"),
        ("merges.txt", "#version: 0.2\nzz qq\n", ValueError, "not in the vocab"),
        ("tokenizer.json", "[]", ValueError, "added_tokens"),
    ],
)
def test_bad_tokenizer_dir(
    trained: Tokenizer, tmp_path, name: str, content: str | None, error: type, message: str
) -> None:
    trained.save(tmp_path)
    if content is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(error, match=message):
        Tokenizer.from_dir(tmp_path)
