"""scratchlm tokenize: chunked, parallel encoding into a .npy equals encoding the whole text."""

import re
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
