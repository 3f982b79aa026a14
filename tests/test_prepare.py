"""scratchlm tokenize: chunked, parallel encoding into a .npy equals encoding the whole text."""

import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from scratchlm.cli import main
from scratchlm.data.prepare import read_chunks, tokenize_file
from scratchlm.tokenizer import Tokenizer, train_bpe

EOT = "<|endoftext|>"


@pytest.fixture
def setup(tmp_path: Path, corpus_text: str) -> tuple[Path, Path, Tokenizer]:
    """(text file, tokenizer dir, tokenizer) with a tokenizer trained on the text."""
    text_path = tmp_path / "corpus.txt"
    text_path.write_text(corpus_text, encoding="utf-8")
    vocab, merges = train_bpe(text_path, 500, [EOT], num_processes=1)
    tokenizer = Tokenizer(vocab, merges, [EOT])
    tokenizer.save(tmp_path / "tok")
    return text_path, tmp_path / "tok", tokenizer


@pytest.mark.parametrize("num_processes", [1, 2])
def test_tokenize_file_equals_encode(setup, tmp_path: Path, num_processes: int) -> None:
    text_path, tok_dir, tokenizer = setup
    out = tmp_path / "out.npy"
    summary = tokenize_file(
        text_path, out, tok_dir, num_processes=num_processes, queue_size=3, chunk_size=3000
    )
    expected = tokenizer.encode_reference(text_path.read_text(encoding="utf-8"))
    data = np.load(out, mmap_mode="r")
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, expected)
    assert summary.num_tokens == len(expected)
    assert summary.first_ids == tuple(expected[:10])
    assert summary.last_ids == tuple(expected[-10:])
    assert summary.bytes_per_token == pytest.approx(text_path.stat().st_size / len(expected))


def test_chunks_cut_at_documents_or_pre_token_boundaries(setup, tmp_path: Path) -> None:
    text_path, tok_dir, tokenizer = setup
    chunks = list(read_chunks(text_path, 2000, [EOT]))
    text = text_path.read_text(encoding="utf-8")
    assert "".join(chunks) == text and len(chunks) > 5
    assert all(chunk.startswith(EOT) for chunk in chunks[1:])
    # A text without separators is still cut (between pre-tokens) and still encodes exactly.
    plain = tmp_path / "plain.txt"
    plain.write_text(text.replace(EOT, "\n"), encoding="utf-8")
    assert len(list(read_chunks(plain, 2000, [EOT]))) > 5
    tokenize_file(plain, tmp_path / "plain.npy", tok_dir, num_processes=1, chunk_size=2000)
    expected = tokenizer.encode_reference(plain.read_text(encoding="utf-8"))
    np.testing.assert_array_equal(np.load(tmp_path / "plain.npy"), expected)


def test_cli_tokenize(setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text_path, tok_dir, _ = setup
    out = tmp_path / "cli.npy"
    args = ["tokenize", "--dataset-path", str(text_path), "--output-path", str(out)]
    args += ["--tokenizer-dir", str(tok_dir), "--num-processes", "1", "--chunk-size", "5000"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    tokens = len(np.load(out))
    assert f"tokens: {tokens:,}" in printed
    assert "first 10 ids" in printed and "last 10 ids" in printed and "bytes per token" in printed


def _bad_inputs(tmp_path: Path, text_path: Path, tok_dir: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"ok " * 5000 + "café!".encode("latin-1"))
    broken = tmp_path / "broken_tok"
    broken.mkdir()
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        (broken / name).write_text((tok_dir / name).read_text(encoding="utf-8"), encoding="utf-8")
    (broken / "vocab.json").write_text('{"a": "one"}')
    return {
        "missing input": ([str(tmp_path / "nope.txt"), str(tok_dir)], "dataset not found"),
        "empty input": ([str(empty), str(tok_dir)], "is empty"),
        "invalid utf-8": ([str(latin1), str(tok_dir)], "not valid UTF-8 .*offset 15003"),
        "missing tokenizer": ([str(text_path), str(tmp_path / "no_tok")], "tokenizer directory"),
        "malformed vocab": ([str(text_path), str(broken)], "ids must be integers"),
    }


def test_bad_input_is_one_line_error_and_no_file(
    setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text_path, tok_dir, _ = setup
    out = tmp_path / "out.npy"
    for name, ((data, tok), message) in _bad_inputs(tmp_path, text_path, tok_dir).items():
        args = ["tokenize", "--dataset-path", data, "--output-path", str(out)]
        args += ["--tokenizer-dir", tok, "--num-processes", "1", "--chunk-size", "1000"]
        assert main(args) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, name
        assert re.search(message, err), (name, err)
        assert not out.exists(), name
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    args = ["tokenize", "--dataset-path", str(text_path), "--tokenizer-dir", str(tok_dir)]
    (tmp_path / "file.txt").write_text("in the way")
    assert main(args + ["--output-path", str(tmp_path / "file.txt" / "out.npy")]) == 2
    assert "file.txt is not a folder" in capsys.readouterr().err
    assert main(args + ["--output-path", str(tmp_path / "new" / "dir" / "out.npy")]) == 0
    assert (tmp_path / "new" / "dir" / "out.npy").is_file()  # missing folders are created
    assert main(args + ["--output-path", str(out), "--special-tokens", "<|nope|>"]) == 2
    assert "not special tokens of this tokenizer" in capsys.readouterr().err


# Texts on one line without a document separator, shaped so that few or no places are cut by the
# quick rule (`find_cut`): the chunks must still fall on pre-token boundaries.
NO_SEPARATOR = {
    "tab-separated numbers": "\t".join(str(i * 7919 % 1000) for i in range(800)),
    "apostrophes": "'".join(["don", "t", "ll", "Lily", "s", "ve", "re", "x", "'"] * 120),
    "whitespace runs": "  \t\n ".join(["a", "bb", "\n\n", "c1", "  "] * 150),
    "prose on one line": " ".join(["Once upon a time, Lily's cat said: 42!"] * 60),
}


@pytest.mark.parametrize("name", sorted(NO_SEPARATOR))
def test_text_without_separator_encodes_as_a_whole(
    setup, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, tok_dir, tokenizer = setup
    text = NO_SEPARATOR[name]
    path = tmp_path / "one_line.txt"
    path.write_text(text, encoding="utf-8")
    chunks = list(read_chunks(path, 150, [EOT]))
    assert "".join(chunks) == text
    assert len(chunks) > 10 and max(len(chunk) for chunk in chunks) <= 150
    out = tmp_path / "one_line.npy"
    tokenize_file(path, out, tok_dir, num_processes=1, chunk_size=150)
    np.testing.assert_array_equal(np.load(out), tokenizer.encode_reference(text))
    assert "pre-token longer than the chunk size" not in caplog.text


def test_a_pre_token_longer_than_a_chunk_is_split(
    setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, tok_dir, tokenizer = setup
    path = tmp_path / "letters.txt"
    text = "Lily" + "abcdefgh" * 100 + " and Tom"  # one pre-token of 804 letters
    path.write_text(text, encoding="utf-8")
    chunks = list(read_chunks(path, 100, [EOT]))
    assert "".join(chunks) == text and max(len(chunk) for chunk in chunks) <= 100
    assert caplog.text.count("pre-token longer than the chunk size") == 1
    out = tmp_path / "letters.npy"
    tokenize_file(path, out, tok_dir, num_processes=1, chunk_size=100)
    # The long pre-token is encoded in parts, one per chunk; the text around it as a whole.
    expected = [i for chunk in chunks for i in tokenizer.encode_reference(chunk)]
    np.testing.assert_array_equal(np.load(out), expected)
    assert tokenizer.decode(expected) == text
    assert expected[-2:] == tokenizer.encode_reference(" and Tom")[-2:]


def test_memory_is_bounded_by_the_chunk_size(setup, tmp_path: Path) -> None:
    """Python's allocations while a 3 MB line without a single cut is read and encoded stay a
    small multiple of the chunk: before, the reader held the whole line and then its ids."""
    _, tok_dir, tokenizer = setup
    path = tmp_path / "long_line.txt"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(3000):  # 1,000-letter words joined by apostrophes, then one long run
            f.write("abcdefghij" * 100 + ("'" if i < 1500 else ""))
    size = path.stat().st_size
    chunk = 8192
    tokenizer.encode("")  # the fast path's one-off set-up, not part of the bound
    tracemalloc.start()
    try:
        longest = max(len(piece) for piece in read_chunks(path, chunk, [EOT]))
        read_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        tokenize_file(path, tmp_path / "long_line.npy", tok_dir, num_processes=1, chunk_size=chunk)
        encode_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert longest <= chunk
    assert read_peak < 16 * chunk < size / 20
    assert encode_peak < size / 4  # mostly the ids of one chunk, as Python ints
