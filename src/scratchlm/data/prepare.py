"""Turn a text file into a `.npy` token file: `scratchlm tokenize`.

The main process reads the text in chunks of at most `chunk_size` characters and cuts each one
where encoding the parts separately gives the ids of the whole: just before the last document
separator in it, else at the last pre-token boundary that no later text can move
(`scratchlm.tokenizer.tokenizer.find_cut`, then `cut_long_text`). Only a single pre-token longer
than a chunk (say, megabytes of letters without a space) has no such place; it is split into
parts of about a chunk, encoded as if a pre-token boundary separated them, and a warning says
where. Worker processes encode chunks in parallel; at most `queue_size` chunks are in flight, and
their ids are appended to the output in the original order as they arrive. Memory is bounded by
the chunk size and the queue, never by the file size or the text's shape, and time is linear in
the file size.
"""

import codecs
import logging
import os
import time
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from scratchlm.config import Command, Flag
from scratchlm.data.tokenfile import TokenFileWriter, token_dtype
from scratchlm.tokenizer.tokenizer import Tokenizer, cut_long_text, find_cut

DEFAULT_CHUNK_SIZE = 4 << 20
SHOWN_IDS = 10

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenizeSummary:
    """What `tokenize_file` wrote."""

    output_path: Path
    num_tokens: int
    num_bytes: int
    seconds: float
    first_ids: tuple[int, ...]
    last_ids: tuple[int, ...]

    @property
    def bytes_per_token(self) -> float:
        return self.num_bytes / max(self.num_tokens, 1)


def tokenize_file(
    dataset_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str],
    special_tokens: Sequence[str] | None = None,
    num_processes: int | None = None,
    queue_size: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> TokenizeSummary:
    """Encode the UTF-8 text at `dataset_path` with the tokenizer saved in `tokenizer_dir`.

    special_tokens: the document separators to cut chunks at, first one preferred; they must be
    special tokens of the tokenizer (default: all of its special tokens, in its order).
    num_processes: encoding workers (default: all cores). queue_size: chunks in flight (default:
    twice the workers). chunk_size: characters per chunk, at most (see `read_chunks`).
    """
    start = time.perf_counter()
    dataset_path, output_path = Path(dataset_path), Path(output_path)
    if not dataset_path.is_file():
        raise FileNotFoundError(f"dataset not found: {dataset_path} (pass an existing text file)")
    num_bytes = dataset_path.stat().st_size
    if num_bytes == 0:
        raise ValueError(f"dataset {dataset_path} is empty; nothing to tokenize")
    if output_path.resolve() == dataset_path.resolve():
        raise ValueError("--output-path must differ from --dataset-path")
    workers = num_processes if num_processes is not None else os.cpu_count() or 1
    queue_size = queue_size if queue_size is not None else 2 * workers
    for name, value in (("num_processes", workers), ("queue_size", queue_size)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    tokenizer = Tokenizer.from_dir(tokenizer_dir)
    separators = _separators(tokenizer, special_tokens)

    tokenizer.encode("")  # builds (and checks) the fast path once, before workers copy it

    first: list[int] = []
    last = np.zeros(0, dtype=np.int64)
    chunks = read_chunks(dataset_path, chunk_size, separators)
    encoded = _encode_all(tokenizer, chunks, workers, queue_size)
    with (
        TokenFileWriter(output_path, tokenizer.vocab_size) as out,
        tqdm(total=num_bytes, unit="B", unit_scale=True, desc="tokenize", disable=None) as bar,
        closing(encoded),
    ):
        for ids, size in encoded:
            out.write(ids)
            bar.update(size)
            first += ids[: SHOWN_IDS - len(first)].tolist()
            last = np.concatenate([last, ids[-SHOWN_IDS:]])[-SHOWN_IDS:]
        count = out.count
    seconds = time.perf_counter() - start
    return TokenizeSummary(
        output_path, count, num_bytes, seconds, tuple(first), tuple(last.tolist())
    )


def _separators(tokenizer: Tokenizer, chosen: Sequence[str] | None) -> list[str]:
    """The chosen separators first, then the tokenizer's other special tokens."""
    chosen = list(chosen) if chosen else []
    unknown = [tok for tok in chosen if tok not in tokenizer.special_ids]
    if unknown:
        raise ValueError(
            f"{unknown} not special tokens of this tokenizer (it has {tokenizer.special_tokens}); "
            "pass some of those to --special-tokens"
        )
    return chosen + [tok for tok in tokenizer.special_tokens if tok not in chosen]


def read_chunks(path: Path, chunk_size: int, special_tokens: Sequence[str]) -> Iterator[str]:
    """Yield the text of `path` in pieces of at most `chunk_size` characters, each cut where
    encoding separately changes nothing, so that memory is bounded by the chunk size whatever the
    text: before the last document separator, else at a pre-token boundary in the chunk's last
    sixteenth (`find_cut`, quick), else at the last one anywhere (`cut_long_text`, a full pass).
    A pre-token longer than a chunk has no such place: it is split (logged once), and its parts
    encode as if a pre-token boundary were there. Invalid UTF-8 is a ValueError.

    A chunk_size below about twice the longest special token is raised to that, to leave room
    for a cut.
    """
    capacity = max(chunk_size, 2 * max((len(tok) for tok in special_tokens), default=0) + 8)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0  # bytes read
    position = 0  # characters yielded
    buffer = ""
    warned = eof = False
    with open(path, "rb") as f:
        while not eof:
            parts, size = [buffer], len(buffer)
            while size < capacity and not eof:
                data = f.read(capacity - size)
                eof = not data
                parts.append(_decode(decoder, data, offset, path))
                offset += len(data)
                size += len(parts[-1])
            buffer = "".join(parts)
            if eof:
                break
            cut = find_cut(buffer, special_tokens, window=capacity // 16)
            if not cut:
                cut, split = cut_long_text(buffer, special_tokens)
                if split and not warned:
                    log.warning(
                        "%s: a pre-token longer than the chunk size (%d characters) was split at "
                        "character %d; there the ids may differ from encoding the whole text",
                        path, capacity, position + cut,
                    )  # fmt: skip
                    warned = True
            yield buffer[:cut]
            position += cut
            buffer = buffer[cut:]
    if buffer:
        yield buffer


def _decode(decoder: codecs.IncrementalDecoder, data: bytes, offset: int, path: Path) -> str:
    """The characters `data` completes (all that is left when `data` is empty: the end of the
    file); `offset` is the file position of `data`. Invalid UTF-8 is a ValueError."""
    held = len(decoder.getstate()[0])  # bytes of a character split by the last read
    try:
        return decoder.decode(data, final=not data)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not valid UTF-8 (bad byte at offset {offset - held + exc.start}); "
            "convert it to UTF-8 first"
        ) from None


def _encode_chunk(tokenizer: Tokenizer, text: str) -> tuple[np.ndarray, int]:
    """The ids of one chunk (N,) in the file's dtype, and the chunk's size in bytes."""
    ids = np.array(tokenizer.encode(text), dtype=token_dtype(tokenizer.vocab_size))
    return ids, len(text.encode("utf-8"))


_worker_tokenizer: Tokenizer | None = None


def _init_worker(tokenizer: Tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_in_worker(text: str) -> tuple[np.ndarray, int]:
    assert _worker_tokenizer is not None, "worker started without _init_worker"
    return _encode_chunk(_worker_tokenizer, text)


def _encode_all(
    tokenizer: Tokenizer,
    chunks: Iterator[str],
    workers: int,
    queue_size: int,
) -> Generator[tuple[np.ndarray, int], None, None]:
    """(ids, bytes) of each chunk, in order; with several workers, at most `queue_size` chunks
    are pending at once."""
    if workers == 1:
        for chunk in chunks:
            yield _encode_chunk(tokenizer, chunk)
        return
    pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(tokenizer,))
    try:
        pending: deque[Future[tuple[np.ndarray, int]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_encode_in_worker, chunk))
            if len(pending) >= queue_size:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


@dataclass(frozen=True)
class TokenizeConfig:
    """`scratchlm tokenize`: the arguments of `tokenize_file`, as a config."""

    dataset_path: str = ""
    output_path: str = ""
    tokenizer_dir: str = ""
    special_tokens: tuple[str, ...] | None = None
    num_processes: int | None = None
    queue_size: int | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE


def tokenize(cfg: TokenizeConfig) -> str:
    """Encode the file as `cfg` says; returns the report (tokens, first and last ids, speed)."""
    if not (cfg.dataset_path and cfg.output_path and cfg.tokenizer_dir):
        raise ValueError("tokenize needs --dataset-path FILE, --output-path FILE.npy and "
                         "--tokenizer-dir DIR")  # fmt: skip
    s = tokenize_file(cfg.dataset_path, cfg.output_path, cfg.tokenizer_dir, cfg.special_tokens,
                      cfg.num_processes, cfg.queue_size, cfg.chunk_size)  # fmt: skip
    return "\n".join(
        [
            f"tokens: {s.num_tokens:,}",
            f"first {len(s.first_ids)} ids: {list(s.first_ids)}",
            f"last {len(s.last_ids)} ids: {list(s.last_ids)}",
            f"seconds: {s.seconds:.1f} ({s.num_bytes / max(s.seconds, 1e-9) / 1e6:.1f} MB/s)",
            f"bytes per token: {s.bytes_per_token:.3f}",
            f"wrote {s.output_path}",
        ]
    )


COMMAND = Command(
    run=tokenize,
    config=TokenizeConfig,
    description="Encode --dataset-path with the tokenizer in --tokenizer-dir, in parallel "
    "chunks cut at document boundaries, and write the ids in order to --output-path "
    "(uint16 when the vocab fits, else uint32; load with np.load(path, mmap_mode='r')).",
    flags={
        "--dataset-path": Flag("dataset_path", "UTF-8 text to encode", "FILE"),
        "--output-path": Flag("output_path", "the .npy file to write", "FILE.npy"),
        "--tokenizer-dir": Flag("tokenizer_dir", "directory written by train-tokenizer", "DIR"),
        "--special-tokens": Flag(
            "special_tokens",
            "document separators to cut chunks at, first preferred; each must "
            "be a special token of the tokenizer (none: its special tokens)",
            "TOKEN",
        ),
        "--num-processes": Flag("num_processes", "encoding workers (none: all cores)", "N"),
        "--queue-size": Flag("queue_size", "chunks in flight (none: 2 x workers)", "N"),
        "--chunk-size": Flag("chunk_size", "characters per chunk, at most", "N"),
    },
)
