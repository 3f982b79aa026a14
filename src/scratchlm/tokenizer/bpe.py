"""Train byte-level BPE: `train_bpe(path, vocab_size, special_tokens) -> (vocab, merges)`.

Id layout (stable; the encoder and the saved files rely on it):
    0..255                  the single bytes, id == byte value
    256..256+K-1            the K special tokens, in the order given
    256+K..vocab_size-1     merged tokens, in the order they were first made

Training has two phases.
1. Count pre-tokens. The file is cut into chunks of at most MAX_CHUNK_BYTES just before the
   first special token; each worker reads its own byte range and returns a Counter of its
   pre-tokens (`count_pretokens`); the main process sums them. Memory is bounded by the chunk
   size and the table of distinct pre-tokens, not by the file size.
2. Merge. Each distinct pre-token is a word: a list of token ids with a count. We keep the count
   of every adjacent pair, an index from each pair to the words that contain it, and a max-heap
   of pairs with lazy deletion. Each step pops the most frequent pair (ties: the
   lexicographically greatest pair of byte strings), rewrites only the words that contain it and
   updates the counts of the pairs next to each rewrite, so one merge costs time proportional to
   the words it touches.

Merges never cross a pre-token boundary or a special token, and special tokens never take part
in merges. Rarely, two different merges spell the same bytes; as in Hugging Face `tokenizers`,
the second one is kept in `merges` but reuses the existing id, so `vocab` has unique values.
The result does not depend on `num_processes`.
"""

import heapq
import logging
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from tqdm import tqdm

from scratchlm.config import Command, Flag
from scratchlm.folders import check_creatable, new_dirs, usual_permissions
from scratchlm.tokenizer.pretokenize import count_pretokens, find_chunk_boundaries
from scratchlm.tokenizer.tokenizer import Tokenizer

log = logging.getLogger(__name__)

MAX_CHUNK_BYTES = 8 << 20
MIN_CHUNK_BYTES = 256 << 10

Pair = tuple[int, int]


def train_bpe(
    input_path: str | os.PathLike[str],
    vocab_size: int,
    special_tokens: Sequence[str],
    num_processes: int | None = None,
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Learn byte-level BPE merges on a UTF-8 text file.

    Returns (vocab, merges): vocab maps id -> token bytes (layout in the module docstring), and
    merges lists the learned (left, right) byte pairs in order. If the text runs out of pairs
    before `vocab_size` is reached, the vocabulary is smaller and a warning is logged.
    `num_processes` defaults to all cores.
    """
    special_tokens = list(special_tokens)
    check_special_tokens(special_tokens)
    if vocab_size < 256 + len(special_tokens):
        raise ValueError(
            f"vocab_size {vocab_size} is too small: the 256 bytes and {len(special_tokens)} "
            f"special token(s) need at least {256 + len(special_tokens)}"
        )
    workers = num_processes if num_processes is not None else os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")

    counts = count_file_pretokens(input_path, special_tokens, workers)
    words = [list(tok.encode("utf-8")) for tok in counts]
    freqs = list(counts.values())
    del counts

    tokens = [bytes([b]) for b in range(256)] + [tok.encode("utf-8") for tok in special_tokens]
    merges = learn_merges(words, freqs, tokens, vocab_size)
    if len(tokens) < vocab_size:
        log.warning(
            "the text ran out of pairs after %d merges: vocab has %d tokens, not %d",
            len(merges),
            len(tokens),
            vocab_size,
        )
    vocab = dict(enumerate(tokens))
    return vocab, [(tokens[a], tokens[b]) for a, b in merges]


def check_special_tokens(special_tokens: Sequence[str]) -> None:
    """Reject empty or repeated special tokens with a message saying which."""
    for tok in special_tokens:
        if not isinstance(tok, str) or not tok:
            raise ValueError(f"special tokens must be non-empty strings, got {tok!r}")
    repeated = sorted({tok for tok in special_tokens if special_tokens.count(tok) > 1})
    if repeated:
        raise ValueError(f"special tokens repeated: {repeated}; list each once")


def count_file_pretokens(
    input_path: str | os.PathLike[str], special_tokens: Sequence[str], num_processes: int
) -> Counter[str]:
    """Pre-token counts of a whole file, counted chunk by chunk in `num_processes` workers."""
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"training text not found: {path} (pass an existing text file)")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"training text {path} is empty")
    target = min(MAX_CHUNK_BYTES, max(MIN_CHUNK_BYTES, size // (4 * num_processes)))
    bounds = find_chunk_boundaries(path, target, special_tokens)
    jobs = [(str(path), a, b, tuple(special_tokens)) for a, b in pairwise(bounds)]
    total: Counter[str] = Counter()
    bar = tqdm(
        total=size, unit="B", unit_scale=True, unit_divisor=1024, desc="pre-tokenize", disable=None
    )
    with bar:
        if num_processes == 1 or len(jobs) == 1:
            for job in jobs:
                total.update(_count_range(job))
                bar.update(job[2] - job[1])
        else:
            with multiprocessing.Pool(min(num_processes, len(jobs))) as pool:
                for nbytes, counts in pool.imap_unordered(_count_range_sized, jobs):
                    total.update(counts)
                    bar.update(nbytes)
    return total


def _count_range(job: tuple[str, int, int, tuple[str, ...]]) -> Counter[str]:
    """Worker: read bytes [start, end) of the file and count their pre-tokens."""
    path, start, end, special_tokens = job
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid UTF-8 (bad byte at offset {start + exc.start}); "
            "convert it to UTF-8 first"
        ) from None
    return count_pretokens(text, special_tokens)


def _count_range_sized(job: tuple[str, int, int, tuple[str, ...]]) -> tuple[int, Counter[str]]:
    return job[2] - job[1], _count_range(job)


def check_output_dir(output_dir: str | os.PathLike[str]) -> Path:
    """Fail early, before a long training run, if `output_dir` cannot be written."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output-dir {out} exists and is not a directory")
    check_creatable(out)
    return out


def save_tokenizer_dir(
    output_dir: str | os.PathLike[str],
    vocab: dict[int, bytes],
    merges: list[tuple[bytes, bytes]],
    special_tokens: list[str],
) -> Path:
    """Write vocab.json, merges.txt and tokenizer.json with `Tokenizer.save`, all or nothing.

    The files go to a temporary sibling directory first, which is then renamed to `output_dir`
    (or, if that directory exists, its files are moved into it one by one). Missing parent
    folders are created.
    """
    out = check_output_dir(output_dir)
    with new_dirs(out.parent):
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            Tokenizer(vocab, merges, special_tokens).save(tmp)
            if out.is_dir():
                for path in tmp.iterdir():
                    os.replace(path, out / path.name)
            else:
                usual_permissions(tmp)
                os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _reverse_key(token: bytes) -> tuple[int, ...]:
    """A key whose ascending order is the descending lexicographic order of byte strings.

    Each byte b becomes 255 - b and a terminator 256 (above every byte) ends the key, so a
    prefix sorts after its extensions, just as it sorts before them in normal order.
    """
    return (*(255 - b for b in token), 256)


def learn_merges(
    words: list[list[int]], freqs: list[int], tokens: list[bytes], vocab_size: int
) -> list[Pair]:
    """Merge the most frequent adjacent pair until `tokens` has `vocab_size` entries.

    words[i] is a pre-token as token ids, seen freqs[i] times; words are rewritten in place.
    tokens maps id -> bytes and is extended with each new token. Returns the merged id pairs.
    """
    pair_counts: dict[Pair, int] = defaultdict(int)
    pair_words: dict[Pair, set[int]] = defaultdict(set)
    for wi, word in enumerate(words):
        freq = freqs[wi]
        for pair in pairwise(word):
            pair_counts[pair] += freq
            pair_words[pair].add(wi)

    token_ids = {tok: i for i, tok in enumerate(tokens[:256])}
    keys = [_reverse_key(tok) for tok in tokens]
    heap = [(-count, keys[a], keys[b], a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[Pair] = []
    bar = tqdm(total=vocab_size - len(tokens), unit="merge", desc="merge", disable=None)
    with bar:
        while len(tokens) < vocab_size and heap:
            neg, _, _, a, b = heapq.heappop(heap)
            current = pair_counts.get((a, b), 0)
            if current != -neg:
                # Stale entry (the pair's count dropped since the push): re-queue it.
                if current > 0:
                    heapq.heappush(heap, (-current, keys[a], keys[b], a, b))
                continue
            merged = tokens[a] + tokens[b]
            new = token_ids.get(merged)
            if new is None:
                new = len(tokens)
                tokens.append(merged)
                keys.append(_reverse_key(merged))
                token_ids[merged] = new
                bar.update()
            merges.append((a, b))
            changed = merge_pair(words, freqs, (a, b), new, pair_counts, pair_words)
            for pair in changed:
                count = pair_counts[pair]
                heapq.heappush(heap, (-count, keys[pair[0]], keys[pair[1]], pair[0], pair[1]))
    return merges


def merge_pair(
    words: list[list[int]],
    freqs: list[int],
    pair: Pair,
    new: int,
    pair_counts: defaultdict[Pair, int],
    pair_words: defaultdict[Pair, set[int]],
) -> set[Pair]:
    """Replace every occurrence of `pair` with `new` in the words that contain it.

    Updates pair counts and the pair -> words index around each rewrite, drops `pair`, and
    returns the pairs whose counts grew (they need a fresh heap entry). The index may keep
    words that no longer hold a pair; such words are skipped here.
    """
    a, b = pair
    grown: set[Pair] = set()
    for wi in pair_words.pop(pair):
        word = words[wi]
        if a not in word:
            continue
        i = _find_pair(word, a, b, 0)
        if i < 0:
            continue
        n = len(word)
        freq = freqs[wi]
        out = word[:i]
        end = -1  # where the previous rewrite ended, in `word`
        while i >= 0:
            if i > 0:
                if i == end:
                    p = (new, new)
                else:
                    left = word[i - 1]
                    pair_counts[(left, a)] -= freq
                    p = (left, new)
                pair_counts[p] += freq
                pair_words[p].add(wi)
                grown.add(p)
            if i + 2 < n:
                pair_counts[(b, word[i + 2])] -= freq
            out.append(new)
            end = i + 2
            i = _find_pair(word, a, b, end) if end < n - 1 else -1
            if end < n and i != end:
                p = (new, word[end])
                pair_counts[p] += freq
                pair_words[p].add(wi)
                grown.add(p)
                out.extend(word[end : i if i >= 0 else n])
        words[wi] = out
    pair_counts.pop(pair, None)
    grown.discard(pair)
    return grown


def _find_pair(word: list[int], a: int, b: int, start: int) -> int:
    """Index of the first (a, b) in `word` at or after `start`, or -1."""
    last = len(word) - 1
    while start < last:
        try:
            start = word.index(a, start, last)
        except ValueError:
            return -1
        if word[start + 1] == b:
            return start
        start += 1
    return -1


@dataclass(frozen=True)
class TrainTokenizerConfig:
    """`scratchlm train-tokenizer`: learn BPE on data_path, write the tokenizer into output_dir.

    The first special token also marks where the file may be cut into chunks; num_processes None
    means all cores.
    """

    data_path: str = ""
    output_dir: str = ""
    vocab_size: int = 10_000
    special_tokens: tuple[str, ...] = ("<|endoftext|>",)
    num_processes: int | None = None


def train_tokenizer(cfg: TrainTokenizerConfig) -> str:
    """Train and save the tokenizer (all or nothing); returns the report (time, memory, vocab)."""
    if not cfg.data_path or not cfg.output_dir:
        raise ValueError("train-tokenizer needs --data-path FILE and --output-dir DIR")
    check_output_dir(cfg.output_dir)
    special = list(cfg.special_tokens)
    start = time.perf_counter()
    vocab, merges = train_bpe(cfg.data_path, cfg.vocab_size, special, cfg.num_processes)
    seconds = time.perf_counter() - start
    out = save_tokenizer_dir(cfg.output_dir, vocab, merges, special)
    main_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    lines = [
        f"trained in {seconds:.1f} s; peak memory {main_mib:.0f} MiB (main process), "
        f"{worker_mib:.0f} MiB (largest worker)",
        f"vocab size {len(vocab):,} (256 bytes + {len(special)} special + "
        f"{len(vocab) - 256 - len(special):,} merged)",
    ]
    merged_ids = range(256 + len(special), len(vocab))
    if merged_ids:
        longest = max(merged_ids, key=lambda i: len(vocab[i]))
        text = vocab[longest].decode("utf-8", errors="replace")
        lines.append(f"longest token: id {longest}, {len(vocab[longest])} bytes, {text!r}")
    lines.append(f"wrote {out}/: vocab.json, merges.txt, tokenizer.json")
    return "\n".join(lines)


COMMAND = Command(
    run=train_tokenizer,
    config=TrainTokenizerConfig,
    description="Learn byte-level BPE merges on --data-path and write vocab.json, merges.txt "
    "and tokenizer.json (GPT-2 / Hugging Face format) into --output-dir.",
    flags={
        "--data-path": Flag("data_path", "UTF-8 training text", "FILE"),
        "--output-dir": Flag("output_dir", "directory for the tokenizer files", "DIR"),
        "--vocab-size": Flag("vocab_size", "256 bytes + special tokens + merges", "N"),
        "--special-tokens": Flag(
            "special_tokens",
            "special tokens, never merged; the first also marks where the "
            "file may be cut into chunks",
            "TOKEN",
        ),
        "--num-processes": Flag("num_processes", "pre-tokenization workers (none: all cores)", "N"),
    },
)
