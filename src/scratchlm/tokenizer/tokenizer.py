"""The byte-level BPE `Tokenizer`: encode text to ids, decode ids to text, save and load.

Encoding a text:
1. Cut it on special tokens, longest first, so `<|endoftext|><|endoftext|>` wins over
   `<|endoftext|>` when both are special. A special token becomes its own id.
2. Split each piece between special tokens into pre-tokens with the GPT-2 regex.
3. Merge each pre-token's bytes: find the adjacent pair with the lowest merge rank (its index in
   `merges`), replace every occurrence of it from left to right, and repeat until no adjacent pair
   is a merge. A merge yields the id whose bytes are the pair's bytes joined.

Two encoders give the same ids:
- `encode_reference`, the definition above in plain Python, with a cache per pre-token.
- The fast path, `encode` / `encode_batch`: tiktoken's compiled BPE built from our ranks
  (`fast_encoding`, offline). tiktoken merges the adjacent pair whose *joined bytes* have the lowest
  id, even a pair that is not in `merges`, and returns a pre-token that is a whole token at once.
  That equals step 3 when (checked once by `fast_path_problem`) merged tokens get increasing ids
  in merge order and each merge's token, encoded with only the merges before it, splits into
  exactly that merge's pair. Merges are local (a pre-token's segment ends up as the same tokens
  in any context where its ends are token boundaries), so tiktoken can then never meet an
  adjacent pair that joins into a token some other way. Vocabularies from `train_bpe` pass,
  because training applies merges the same way; when a vocabulary does not, a warning says why
  and `encode` uses the reference. Two more details keep the paths equal: tiktoken's regex
  engine knows another Unicode version than the `regex` package, so its pattern gets the
  difference added to or removed from each class (`tiktoken_pattern`); and tiktoken does not
  match special tokens longest first, so when one special token starts with another, `encode`
  splits them off itself.
"""

import functools
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import regex
import tiktoken

from scratchlm.tokenizer import files
from scratchlm.tokenizer.pretokenize import GPT2_PATTERN, GPT2_REGEX, special_token_regex

log = logging.getLogger(__name__)

# The special token between documents: corpora here are joined with it, tokenizers trained with it.
END_OF_TEXT = "<|endoftext|>"

# Positions where GPT-2 pre-tokenization has a boundary whatever text comes later: before
# whitespace that follows a non-space, after a newline between two non-spaces, and between letters,
# digits and other symbols (except around an apostrophe, which may start a contraction such as
# 's). Searched backwards from the end.
_CUT_REGEX = regex.compile(
    r"(?<=\S)(?=\s)|(?<=\S\n)(?=\S)|(?<=\p{L})(?=\p{N})|(?<=\p{N})(?=\p{L})"
    r"|(?<=[\p{L}\p{N}])(?=[^\s\p{L}\p{N}'])|(?<=[^\s\p{L}\p{N}'])(?=[\p{L}\p{N}])",
    flags=regex.REVERSE,
)
_ITERABLE_BLOCK_CHARS = 1 << 16
_CACHE_LIMIT = 1 << 18


class Tokenizer:
    """A byte-level BPE tokenizer.

    vocab: id -> token bytes; it must hold all 256 single bytes and every merge's joined bytes.
    merges: (left, right) byte pairs in merge order. special_tokens: texts that always encode to
    one id; a special token whose bytes are not in `vocab` gets the next free id.
    """

    def __init__(
        self,
        vocab: dict[int, bytes],
        merges: list[tuple[bytes, bytes]],
        special_tokens: list[str] | None = None,
    ) -> None:
        special_tokens = list(special_tokens or [])
        for tok in special_tokens:
            if not isinstance(tok, str) or not tok:
                raise ValueError(f"special tokens must be non-empty strings, got {tok!r}")
        if len(set(special_tokens)) != len(special_tokens):
            raise ValueError(f"special tokens repeated in {special_tokens}; list each once")
        self.vocab = dict(vocab)
        self.merges = list(merges)
        self.special_tokens = special_tokens

        by_bytes = {tok: i for i, tok in sorted(self.vocab.items(), reverse=True)}
        self.special_ids: dict[str, int] = {}
        for tok in special_tokens:
            i = by_bytes.get(tok.encode("utf-8"))
            if i is None:
                i = max(self.vocab, default=-1) + 1
                self.vocab[i] = tok.encode("utf-8")
            self.special_ids[tok] = i

        # Ordinary tokens: bytes -> the lowest id spelling them, special tokens left out.
        specials = set(self.special_ids.values())
        self._token_ids = {
            tok: i for i, tok in sorted(self.vocab.items(), reverse=True) if i not in specials
        }
        missing = [b for b in range(256) if bytes([b]) not in self._token_ids]
        if missing:
            raise ValueError(
                f"vocab lacks {len(missing)} single byte(s) (first: {missing[0]:#04x}); "
                "a byte-level vocab needs all 256"
            )
        self._byte_ids = [self._token_ids[bytes([b])] for b in range(256)]
        # (left id, right id) -> (merge rank, merged id); the first merge of a pair wins.
        self._merge_table: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, (left, right) in enumerate(self.merges):
            ids = [self._token_ids.get(t) for t in (left, right, left + right)]
            if None in ids:
                raise ValueError(
                    f"merge {rank} ({left!r}, {right!r}) uses or makes a token that is not in the "
                    "vocab; vocab and merges come from different tokenizers"
                )
            self._merge_table.setdefault((ids[0], ids[1]), (rank, ids[2]))
        self._special_regex = special_token_regex(special_tokens)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_files(
        cls,
        vocab_path: str | os.PathLike[str],
        merges_path: str | os.PathLike[str],
        special_tokens: list[str] | None = None,
    ) -> "Tokenizer":
        """Load GPT-2 / Hugging Face byte-level vocab.json and merges.txt files."""
        vocab = files.read_vocab(vocab_path, special_tokens or [])
        return cls(vocab, files.read_merges(merges_path), special_tokens)

    @classmethod
    def from_dir(cls, directory: str | os.PathLike[str]) -> "Tokenizer":
        """Load what `save` wrote: vocab.json, merges.txt, special tokens from tokenizer.json."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(
                f"tokenizer directory not found: {directory} (train one with "
                "'scratchlm train-tokenizer')"
            )
        special_tokens = files.read_special_tokens(directory / files.TOKENIZER_FILE)
        return cls.from_files(
            directory / files.VOCAB_FILE, directory / files.MERGES_FILE, special_tokens
        )

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write vocab.json, merges.txt and tokenizer.json into `directory` (see `files`)."""
        files.write_files(directory, self.vocab, self.merges, self.special_ids)

    @property
    def vocab_size(self) -> int:
        """One more than the largest id (the size of a model's embedding table)."""
        return max(self.vocab) + 1

    def token_byte_lengths(self) -> list[int]:
        """Bytes of text behind each id, for bits-per-byte; 0 for special tokens and unused ids."""
        lengths = [0] * self.vocab_size
        specials = set(self.special_ids.values())
        for i, tok in self.vocab.items():
            if i not in specials:
                lengths[i] = len(tok)
        return lengths

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`; bytes that are not valid UTF-8 become U+FFFD."""
        vocab = self.vocab
        try:
            data = b"".join([vocab[i] for i in ids])
        except (KeyError, TypeError) as exc:
            raise ValueError(
                f"cannot decode token id {exc.args[0]!r}: ids run from 0 to {self.vocab_size - 1}"
            ) from None
        return data.decode("utf-8", errors="replace")

    # The reference encoder.

    def encode_reference(self, text: str) -> list[int]:
        """Encode `text` by the plain-Python definition (module docstring); same as `encode`."""
        ids: list[int] = []
        for n, part in enumerate(self._split_special(text)):
            if n % 2:
                ids.append(self.special_ids[part])
            else:
                ids += self._encode_ordinary_reference(part)
        return ids

    def _split_special(self, text: str) -> list[str]:
        """Ordinary text at even indices, special tokens at odd indices (longest first)."""
        return self._special_regex.split(text) if self._special_regex else [text]

    def _encode_ordinary_reference(self, text: str) -> list[int]:
        """Pre-tokenize text free of special tokens and merge each pre-token (cached)."""
        ids: list[int] = []
        cache = self._cache
        for piece in GPT2_REGEX.findall(text):
            piece_ids = cache.get(piece)
            if piece_ids is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                piece_ids = cache[piece] = self.merge_bytes(piece.encode("utf-8"))
            ids += piece_ids
        return ids

    def merge_bytes(self, data: bytes, max_rank: int | None = None) -> list[int]:
        """BPE of one pre-token's bytes, using only merges with rank < `max_rank` when given."""
        get_merge = self._merge_table.get
        no_merge = (len(self.merges) if max_rank is None else max_rank, -1)
        ids = [self._byte_ids[b] for b in data]
        while len(ids) > 1:
            # The adjacent pair with the lowest merge rank, first occurrence.
            best, pair = no_merge, None
            for candidate in zip(ids, ids[1:], strict=False):
                merge = get_merge(candidate)
                if merge is not None and merge < best:
                    best, pair = merge, candidate
            if pair is None:
                break
            # Replace every occurrence of the pair, left to right.
            (left, right), merged = pair, best[1]
            out: list[int] = []
            i, last = 0, len(ids) - 1
            while i < last:
                if ids[i] == left and ids[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            if i == last:
                out.append(ids[last])
            ids = out
        return ids

    # The fast path.

    def fast_path_problem(self) -> str | None:
        """Why tiktoken could give other ids than `encode_reference`, or None when it cannot."""
        previous = -1
        for rank, (left, right) in enumerate(self.merges):
            merged = self._token_ids[left + right]
            if merged <= previous:
                return (
                    f"merge {rank} ({left!r}, {right!r}) makes id {merged}, not above the previous "
                    f"merge's id {previous}"
                )
            previous = merged
            pair = [self._token_ids[left], self._token_ids[right]]
            if self.merge_bytes(left + right, max_rank=rank) != pair:
                return (
                    f"token {merged} ({left + right!r}) does not split into merge {rank}'s pair "
                    "when encoded with the merges before it"
                )
        return None

    @functools.cached_property
    def fast_encoding(self) -> tiktoken.Encoding | None:
        """A tiktoken Encoding with exactly our ids, or None when it could differ (logged once).

        Its ranks are the ids of the 256 bytes and of the merged tokens, its pattern is
        `tiktoken_pattern()`, and it knows the special tokens unless one is a prefix of another
        (tiktoken does not match those longest first; `encode` then splits them off itself).
        """
        problem = self.fast_path_problem()
        pattern = tiktoken_pattern()
        if problem is None and pattern is None:
            problem = "tiktoken's regex classes could not be made to match the regex package's"
        if problem is not None:
            log.warning("tokenizer fast path off, encoding with the Python reference: %s", problem)
            return None
        ranks = {bytes([b]): i for b, i in enumerate(self._byte_ids)}
        for left, right in self.merges:
            ranks[left + right] = self._token_ids[left + right]
        return tiktoken.Encoding(
            name=f"scratchlm-{len(ranks)}",
            pat_str=pattern,
            mergeable_ranks=ranks,
            special_tokens={} if self._specials_overlap else self.special_ids,
        )

    @functools.cached_property
    def _specials_overlap(self) -> bool:
        """True if a special token starts with another one (so longest-first matters)."""
        return any(a != b and a.startswith(b) for a in self.special_ids for b in self.special_ids)

    def encode(self, text: str) -> list[int]:
        """Encode `text` to ids through the fast path; identical to `encode_reference`."""
        fast = self.fast_encoding
        if fast is None:
            return self.encode_reference(text)
        if not self._specials_overlap:
            return fast.encode(text, allowed_special="all", disallowed_special=())
        ids: list[int] = []
        for n, part in enumerate(self._split_special(text)):
            if n % 2:
                ids.append(self.special_ids[part])
            elif part:
                ids += fast.encode_ordinary(part)
        return ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        """`encode` each text; tiktoken releases the GIL, so threads run in parallel."""
        if num_threads <= 1 or len(texts) <= 1:
            return [self.encode(text) for text in texts]
        with ThreadPoolExecutor(num_threads) as pool:
            return list(pool.map(self.encode, texts))

    def encode_iterable(self, texts: Iterable[str]) -> Iterator[int]:
        """Ids of the concatenation of `texts` (e.g. the lines of a file), in constant memory.

        Text is buffered and encoded up to a cut where encoding the parts separately gives the
        same ids as encoding the whole (`find_cut`), so the result equals `encode("".join(texts))`.
        """
        parts: list[str] = []
        size, next_check = 0, _ITERABLE_BLOCK_CHARS
        for text in texts:
            parts.append(text)
            size += len(text)
            if size < next_check:
                continue
            buffer = "".join(parts)
            cut = find_cut(buffer, self.special_tokens)
            if cut:
                yield from self.encode(buffer[:cut])
                buffer = buffer[cut:]
            parts, size = [buffer], len(buffer)
            next_check = max(_ITERABLE_BLOCK_CHARS, 2 * size)
        yield from self.encode("".join(parts))


# The GPT-2 pattern's character classes, and the probe that lists what each matches.
_CLASSES = {r"\p{L}": r"\p{L}+", r"\p{N}": r"\p{N}+", r"\s": r"\s+"}


@functools.cache
def tiktoken_pattern() -> str | None:
    """GPT2_PATTERN, rewritten so tiktoken's regex engine puts every code point in the same
    class (letter, number, whitespace) as the `regex` package; None if that is not possible.

    The two engines ship different Unicode versions, so a recently assigned letter may be a
    letter to one and unassigned to the other. We ask both engines which characters of the whole
    code space each class matches (tiktoken keeps only the pieces its pattern matches, so with
    one-byte ranks it returns exactly those characters' bytes) and add or remove the difference
    in the class. Takes about a second, once per process.
    """
    everything = _all_characters()
    fixed: dict[str, str] = {}
    for cls, probe in _CLASSES.items():
        theirs = _code_point_mask(_tiktoken_matches(probe, everything))
        ours = _code_point_mask("".join(regex.findall(probe, everything)))
        fixed[cls] = cls
        if (theirs & ~ours).any():
            fixed[cls] = f"[{cls}--[{_ranges(theirs & ~ours)}]]"
        if (ours & ~theirs).any():
            fixed[cls] = f"[{fixed[cls]}{_ranges(ours & ~theirs)}]"
    pattern = GPT2_PATTERN.replace(r"\S", r"[^\s]")
    for cls, new in fixed.items():
        pattern = pattern.replace(cls, new)
    # Check the rewritten classes: tiktoken must now match exactly what `regex` matches.
    for cls, probe in _CLASSES.items():
        if _tiktoken_matches(f"{fixed[cls]}+", everything) != "".join(
            regex.findall(probe, everything)
        ):
            return None
    return pattern


def _all_characters() -> str:
    codes = np.arange(0x110000, dtype="<u4")
    codes = codes[(codes < 0xD800) | (codes > 0xDFFF)]  # surrogates are not characters
    return codes.tobytes().decode("utf-32-le")


def _tiktoken_matches(pattern: str, text: str) -> str:
    """The characters of `text` inside the pieces that tiktoken's regex engine matches."""
    ranks = {bytes([b]): b for b in range(256)}
    probe = tiktoken.Encoding("probe", pat_str=pattern, mergeable_ranks=ranks, special_tokens={})
    return probe.decode_bytes(probe.encode_ordinary(text)).decode("utf-8")


def _code_point_mask(text: str) -> np.ndarray:
    mask = np.zeros(0x110000, dtype=bool)
    mask[np.frombuffer(text.encode("utf-32-le"), dtype="<u4")] = True
    return mask


def _ranges(mask: np.ndarray) -> str:
    """The code points set in `mask` as character-class ranges in Rust regex syntax."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return "".join(
        f"\\x{{{a:x}}}-\\x{{{b - 1:x}}}" for a, b in zip(edges[::2], edges[1::2], strict=True)
    )


def find_cut(text: str, special_tokens: Sequence[str], window: int | None = None) -> int:
    """A position 0 < c < len(text) such that for any continuation `more`,
    encode(text[:c]) + encode(text[c:] + more) == encode(text + more); 0 when none is found.

    Prefers a document boundary: just before the last occurrence of the first special token.
    Otherwise takes the last place where pre-tokenization must have a boundary (`_CUT_REGEX`),
    looking only at the last `window` characters when given (the regex is slow to scan a text
    that has no such place). A cut never falls inside a special token, and the last `longest
    special token` characters are left alone, since a special token there may still be incomplete.
    """
    end = len(text) - max((len(tok) for tok in special_tokens), default=1)
    if special_tokens:
        doc = special_tokens[0]
        pos = text.rfind(doc, 0, end + len(doc))
        while pos > 0 and _inside_special(text, pos, special_tokens):
            pos = text.rfind(doc, 0, pos + len(doc) - 1)
        if pos > 0:
            return pos
    start = 0 if window is None else max(len(text) - window, 0)
    for match in _CUT_REGEX.finditer(text, start, max(end, 0)):
        pos = match.start()
        if pos > 0 and not _inside_special(text, pos, special_tokens):
            return pos
    return 0


def cut_long_text(text: str, special_tokens: Sequence[str]) -> tuple[int, bool]:
    """Where to cut `text` when `find_cut` finds no place: `(cut, split)` with 0 < cut < len(text),
    or `(0, False)` when `text` is too short to cut.

    First the exact way (`split` False, same guarantee as `find_cut`): run the pre-tokenizer over
    `text` and take the last start of a pre-token or special token at least `margin` characters
    before the end (3 + the longest special token's length). No continuation can change the
    pieces before such a start: the GPT-2 regex looks at most two characters past a pre-token's
    end, a special token that begins before it lies wholly inside `text`, and the one place where
    the text before a cut would split differently on its own is left out (`_last_pretoken_start`).
    This finds boundaries that `_CUT_REGEX` leaves out (after tabs, around apostrophes, inside
    whitespace runs) and ones outside `find_cut`'s window, at the cost of a pass over the text.

    When `text` has no such boundary (it is one pre-token, such as a long run of letters), the cut
    is `margin` characters before the end (`split` True): that pre-token is split there, and its
    two parts are encoded as if a pre-token boundary separated them.
    """
    margin = max((len(tok) for tok in special_tokens), default=0) + 3
    limit = len(text) - margin
    if limit < 1:
        return 0, False
    best, start, end = 0, 0, len(text)  # best cut so far; the current ordinary piece
    special = special_token_regex(special_tokens)
    for match in special.finditer(text) if special else ():
        if match.start() > limit:
            end = match.start()
            break
        best = max(_last_pretoken_start(text, start, match.start(), limit), match.start())
        start = match.end()
        if start > limit:  # `limit` falls inside this special token: cut before or after it
            return best or start, False
        best = start
    best = max(best, _last_pretoken_start(text, start, end, limit))
    return (best, False) if best else (limit, True)


def _last_pretoken_start(text: str, start: int, end: int, limit: int) -> int:
    """The last start in (start, limit] of a GPT-2 pre-token of text[start:end] where the text can
    be cut; 0 if none.

    Not after two whitespace characters when a non-space follows: there the whole text splits off
    the run's last character (the regex's whitespace rule backs off one), but text cut there ends
    with the run, which stays one pre-token.
    """
    piece = text[start:end]  # not finditer's endpos: the regex package's lookaheads see past it
    last = 0
    for match in GPT2_REGEX.finditer(piece):
        pos = match.start()
        if start + pos > limit:
            break
        if not (pos >= 2 and piece[pos - 2 : pos].isspace() and not piece[pos].isspace()):
            last = pos
    return start + last if last else 0


def _inside_special(text: str, pos: int, special_tokens: Sequence[str]) -> bool:
    """True if some occurrence of a special token starts before `pos` and ends after it."""
    for tok in special_tokens:
        hit = text.find(tok, max(pos - len(tok) + 1, 0), pos + len(tok) - 1)
        if hit != -1 and hit < pos:
            return True
    return False
