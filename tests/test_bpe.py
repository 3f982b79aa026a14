"""BPE training: hand-worked merges, special tokens, boundaries, parallel runs, bad input."""

import os
import random
import stat
from pathlib import Path

import pytest

from scratchlm.tokenizer import bpe, train_bpe
from scratchlm.tokenizer.pretokenize import pretokenize

EOT = "<|endoftext|>"

# Words on their own lines ("\n" is a one-byte pre-token, so it never pairs): low x5, lower x2,
# widest x3, newest x6, plus one special token. Initial pair counts:
#   lo 7, ow 7, we 8, er 2, wi 3, id 3, de 3, es 9, st 9, ne 6, ew 6.
# Merges, by hand (ties go to the lexicographically greatest pair of byte strings):
#   1. (s, t) 9      tie with (e, s) 9; "s" > "e"
#   2. (e, st) 9     es is gone; (e, st) is now the top
#   3. (o, w) 7      tie with (l, o) 7; "o" > "l"
#   4. (l, ow) 7
#   5. (w, est) 6    tie with (n, e) and (e, w) at 6; "w" is greatest
#   6. (n, e) 6      tie with (e, west) 6; "n" > "e"
#   7. (ne, west) 6
#   8. (w, i) 3      tie with (i, d) and (d, est) at 3
#   9. (wi, d) 3     tie with (d, est) 3; "wi" > "d"
#  10. (wid, est) 3
#  11. (low, e) 2    tie with (e, r) 2; "low" > "e"
#  12. (lowe, r) 2
# After that every word is one token, so training stops at 256 + 1 + 12 = 269 tokens.
HAND_WORDS = ["low"] * 5 + ["lower"] * 2 + ["widest"] * 3 + ["newest"] * 6
HAND_MERGES = [
    (b"s", b"t"),
    (b"e", b"st"),
    (b"o", b"w"),
    (b"l", b"ow"),
    (b"w", b"est"),
    (b"n", b"e"),
    (b"ne", b"west"),
    (b"w", b"i"),
    (b"wi", b"d"),
    (b"wid", b"est"),
    (b"low", b"e"),
    (b"lowe", b"r"),
]


def write(tmp_path: Path, text: str, name: str = "train.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hand_corpus(tmp_path: Path) -> Path:
    words = HAND_WORDS[:]
    random.Random(0).shuffle(words)
    return write(tmp_path, "\n".join(words[:8]) + EOT + "\n".join(words[8:]) + "\n")


def test_hand_worked_merges_with_ties(tmp_path: Path) -> None:
    vocab, merges = train_bpe(hand_corpus(tmp_path), 269, [EOT], num_processes=1)
    assert merges == HAND_MERGES
    assert len(vocab) == 269
    assert all(vocab[i] == bytes([i]) for i in range(256))
    assert vocab[256] == EOT.encode()
    assert [vocab[257 + k] for k in range(12)] == [a + b for a, b in HAND_MERGES]


def test_stops_when_pairs_run_out(tmp_path: Path) -> None:
    vocab, merges = train_bpe(hand_corpus(tmp_path), 1000, [EOT], num_processes=1)
    assert merges == HAND_MERGES and len(vocab) == 269


def test_vocab_of_bytes_and_specials_only(tmp_path: Path) -> None:
    vocab, merges = train_bpe(hand_corpus(tmp_path), 258, [EOT, "<pad>"], num_processes=1)
    assert merges == [] and vocab[257] == b"<pad>"


def test_tie_key_orders_byte_strings_descending() -> None:
    rng = random.Random(1)
    strings = [
        bytes(rng.choice([0, 1, 97, 255]) for _ in range(rng.randint(1, 4))) for _ in range(300)
    ]
    by_key = sorted(set(strings), key=bpe._reverse_key)
    assert by_key == sorted(set(strings), reverse=True)


def test_special_tokens_never_merged_nor_crossed(tmp_path: Path) -> None:
    specials = [EOT, "<pad>"]
    path = write(tmp_path, ("ab" + EOT + "ab<pad>") * 50)
    vocab, merges = train_bpe(path, 300, specials, num_processes=1)
    assert merges == [(b"a", b"b")]
    assert sorted(vocab[i] for i in (256, 257)) == sorted(s.encode() for s in specials)
    for left, right in merges:
        assert b"<" not in left + right and b"|" not in left + right


def test_merges_stay_inside_pretokens(tmp_path: Path, corpus_text: str) -> None:
    vocab, merges = train_bpe(write(tmp_path, corpus_text), 600, [EOT], num_processes=1)
    pieces = {p.encode() for doc in corpus_text.split(EOT) for p in pretokenize(doc)}
    for left, right in merges:
        token = left + right
        assert any(token in piece for piece in pieces), token
    assert len(vocab) == 600


def test_parallel_equals_single_process(
    tmp_path: Path, corpus_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bpe, "MIN_CHUNK_BYTES", 4096)
    path = write(tmp_path, corpus_text)
    single = train_bpe(path, 500, [EOT], num_processes=1)
    parallel = train_bpe(path, 500, [EOT], num_processes=2)
    assert parallel == single


def test_vocab_size_too_small(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too small"):
        train_bpe(hand_corpus(tmp_path), 256, [EOT])


def test_bad_special_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="repeated"):
        train_bpe(hand_corpus(tmp_path), 300, [EOT, EOT])
    with pytest.raises(ValueError, match="non-empty"):
        train_bpe(hand_corpus(tmp_path), 300, [""])


def test_missing_empty_and_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        train_bpe(tmp_path / "nope.txt", 300, [EOT])
    with pytest.raises(ValueError, match="empty"):
        train_bpe(write(tmp_path, ""), 300, [EOT])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text " + b"\xff\xfe" + b" more")
    with pytest.raises(ValueError, match="not valid UTF-8.*offset 10"):
        train_bpe(bad, 300, [EOT], num_processes=1)


def test_cli_train_tokenizer(tmp_path: Path, corpus_text: str, capsys) -> None:
    from scratchlm.cli import main
    from scratchlm.tokenizer.tokenizer import Tokenizer

    data = write(tmp_path, corpus_text)
    out = tmp_path / "new" / "tok"  # missing folders are created
    argv = ["train-tokenizer", "--data-path", str(data), "--output-dir", str(out)]
    assert main([*argv, "--vocab-size", "400", "--num-processes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "vocab size 400" in printed and "longest token" in printed and "peak memory" in printed
    assert sorted(p.name for p in out.iterdir()) == ["merges.txt", "tokenizer.json", "vocab.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask  # not the temp dir's 0700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o666 & ~umask}
    vocab, merges = train_bpe(data, 400, [EOT], num_processes=1)
    loaded = Tokenizer.from_dir(out)
    assert loaded.vocab == vocab and loaded.merges == merges


def test_cli_bad_input_leaves_no_output(tmp_path: Path, capsys) -> None:
    from scratchlm.cli import main

    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 latin-1 text")
    out = tmp_path / "tok"
    argv = ["train-tokenizer", "--data-path", str(bad), "--output-dir", str(out)]
    assert main(argv) == 2
    assert "UTF-8" in capsys.readouterr().err
    assert main([*argv[:2], str(tmp_path / "missing.txt"), *argv[3:]]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([*argv[:4], str(bad / "tok")]) == 2
    assert "bad.txt is not a folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]
