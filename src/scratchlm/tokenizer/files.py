"""Tokenizer files in the GPT-2 / Hugging Face byte-level format.

A directory written by `Tokenizer.save` holds three files:

    vocab.json      {"token as text": id}; each byte is shown as one printable character (below)
    merges.txt      "#version: 0.2", then one merge per line: "left right", in merge order
    tokenizer.json  the same vocabulary and merges as a Hugging Face `tokenizers` BPE with a
                    ByteLevel pre-tokenizer and decoder; the special tokens are its `added_tokens`

Byte-level files cannot store raw bytes as JSON text, so GPT-2 maps every byte value to one
printable character: the printable Latin-1 bytes keep their own character and the other 68 bytes
(controls, space, ...) take the characters 256, 257, ... in byte order, so a space is written "Ġ".
Special tokens are written as their own text, as GPT-2 does for "<|endoftext|>".
"""

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path

VOCAB_FILE = "vocab.json"
MERGES_FILE = "merges.txt"
TOKENIZER_FILE = "tokenizer.json"
MERGES_HEADER = "#version: 0.2"


@functools.cache
def byte_to_char() -> tuple[str, ...]:
    """The printable character that stands for each byte value 0..255 (GPT-2's mapping)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    extra = 256
    for b in range(256):
        if b not in chars:
            chars[b] = chr(extra)
            extra += 1
    return tuple(chars[b] for b in range(256))


@functools.cache
def char_to_byte() -> dict[str, int]:
    """The inverse of `byte_to_char`."""
    return {ch: b for b, ch in enumerate(byte_to_char())}


def token_to_text(token: bytes) -> str:
    """A token's bytes as printable text, one character per byte."""
    table = byte_to_char()
    return "".join(table[b] for b in token)


def text_to_token(text: str, source: str | Path) -> bytes:
    """The inverse of `token_to_text`; a character outside the mapping is a ValueError."""
    table = char_to_byte()
    try:
        return bytes(table[ch] for ch in text)
    except KeyError as exc:
        raise ValueError(
            f"{source}: token {text!r} has the character {exc.args[0]!r}, which is not a "
            "byte-level character; the file is not a byte-level BPE vocabulary"
        ) from None


def vocab_json(vocab: dict[int, bytes], special_ids: dict[str, int]) -> dict[str, int]:
    """{text: id} for vocab.json and tokenizer.json; ValueError if two ids would share a key."""
    special_by_id = {i: tok for tok, i in special_ids.items()}
    out: dict[str, int] = {}
    for i in sorted(vocab):
        key = special_by_id.get(i) or token_to_text(vocab[i])
        if key in out:
            raise ValueError(
                f"ids {out[key]} and {i} are both written as {key!r}; a vocab.json key must be "
                "unique, so give special tokens text that no ordinary token spells"
            )
        out[key] = i
    return out


def merges_text(merges: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(token_to_text(a), token_to_text(b)) for a, b in merges]


def tokenizer_json(
    vocab: dict[int, bytes],
    merges: Sequence[tuple[bytes, bytes]],
    special_ids: dict[str, int],
) -> dict:
    """A Hugging Face `tokenizers` description: byte-level BPE, no prefix space, no normalizer."""
    byte_level = {"add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    added = [
        {
            "id": i,
            "content": tok,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for tok, i in sorted(special_ids.items(), key=lambda item: item[1])
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", **byte_level},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", **byte_level},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab_json(vocab, special_ids),
            "merges": [list(pair) for pair in merges_text(merges)],
        },
    }


def write_files(
    directory: str | Path,
    vocab: dict[int, bytes],
    merges: Sequence[tuple[bytes, bytes]],
    special_ids: dict[str, int],
) -> None:
    """Write vocab.json, merges.txt and tokenizer.json into `directory` (created if missing).

    Every file goes to a temporary name first and is renamed into place, so a crash never leaves
    a half-written file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = [MERGES_HEADER] + [f"{a} {b}" for a, b in merges_text(merges)]
    contents = {
        VOCAB_FILE: json.dumps(vocab_json(vocab, special_ids), ensure_ascii=False, indent=1),
        MERGES_FILE: "\n".join(lines) + "\n",
        TOKENIZER_FILE: json.dumps(
            tokenizer_json(vocab, merges, special_ids), ensure_ascii=False, indent=1
        ),
    }
    for name, text in contents.items():
        tmp = directory / f".{name}.tmp-{os.getpid()}"
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, directory / name)
        finally:
            tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer file not found: {path} (train one with 'scratchlm train-tokenizer')"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-save the tokenizer") from None


def read_vocab(path: str | Path, special_tokens: Sequence[str]) -> dict[int, bytes]:
    """Read vocab.json into {id: bytes}. Keys equal to a special token are that token's text."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{path} must be a non-empty JSON object of token -> id")
    specials = set(special_tokens)
    vocab: dict[int, bytes] = {}
    for key, i in data.items():
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise ValueError(f"{path}: token {key!r} has id {i!r}; ids must be integers >= 0")
        if i in vocab:
            raise ValueError(f"{path}: id {i} appears twice; each id must name one token")
        vocab[i] = key.encode("utf-8") if key in specials else text_to_token(key, path)
    return vocab


def read_merges(path: str | Path) -> list[tuple[bytes, bytes]]:
    """Read merges.txt (an optional "#version" first line, then "left right" per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer file not found: {path} (train one with 'scratchlm train-tokenizer')"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; re-save the tokenizer") from None
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = []
    for n, line in enumerate(lines, start=2):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{n}: expected 'left right', got {line!r}")
        merges.append((text_to_token(parts[0], path), text_to_token(parts[1], path)))
    return merges


def read_special_tokens(path: str | Path) -> list[str]:
    """The special tokens recorded in a tokenizer.json (its `added_tokens`), in id order."""
    path = Path(path)
    data = _read_json(path)
    added = data.get("added_tokens") if isinstance(data, dict) else None
    if not isinstance(added, list) or not all(
        isinstance(t, dict) and isinstance(t.get("content"), str) and isinstance(t.get("id"), int)
        for t in added
    ):
        raise ValueError(f"{path} has no valid 'added_tokens' list; re-save the tokenizer")
    return [t["content"] for t in sorted(added, key=lambda t: t["id"])]
