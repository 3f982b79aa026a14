"""Writing token files: a real `.npy` built incrementally, never held in memory whole.

The file is NumPy's format version 1.0: a header naming the dtype and the shape (N,), then the ids.
The header is written first with room for any N, the ids are appended as they come, and at the end
the header is rewritten with the real N (padded to the same size). Readers use
`np.load(path, mmap_mode="r")` (see `scratchlm.data.loader.open_tokens`).

The dtype is uint16 when every id fits (vocab_size <= 65536) and uint32 otherwise; an id outside
the vocabulary is an error, never a silent wrap-around.
"""

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from scratchlm.folders import make_dirs, remove_dirs

_ALIGN = 64  # NumPy pads the header so the data starts on a 64-byte boundary
_MAX_DIGITS = 20  # room in the header for any int64 length


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when ids 0..vocab_size-1 fit in it, else uint32."""
    if not 0 < vocab_size <= 1 << 32:
        raise ValueError(f"vocab_size must be in 1..2**32, got {vocab_size}")
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def npy_header(dtype: np.dtype, length: int) -> bytes:
    """A .npy v1.0 header for a 1-D array of `length` items, padded to a fixed size.

    The size does not depend on `length`, so the final header can overwrite the first one.
    """
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': ({length},), }}"
    size = 10 + len(text) - len(str(length)) + _MAX_DIGITS + 1  # magic+len, dict, room, "\n"
    size += -size % _ALIGN
    text = text.ljust(size - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + (size - 10).to_bytes(2, "little") + text.encode("latin1")


class TokenFileWriter:
    """Append ids to a new `.npy` token file; the file appears at `path` only on success.

    Use as a context manager: ids go to a temporary file beside `path`, which is renamed to `path`
    when the block ends without an error and deleted otherwise. Missing folders above `path` are
    created, and removed again when the block fails.

        with TokenFileWriter("train.npy", vocab_size=10_000) as out:
            out.write(ids)
    """

    def __init__(self, path: str | os.PathLike[str], vocab_size: int) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"output path {self.path} is a directory; give a file name (.npy)")
        self.vocab_size = vocab_size
        self.dtype = token_dtype(vocab_size)
        self.count = 0
        self._made = make_dirs(self.path.parent)  # removed again if writing fails
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self._file = open(self._tmp, "wb")  # closed in __exit__
        except OSError:
            remove_dirs(self._made)
            raise
        self._file.write(npy_header(self.dtype, 0))

    def write(self, ids: Sequence[int] | np.ndarray) -> None:
        """Append ids (N,); every id must be in 0..vocab_size-1."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"token ids must be 1-D, got shape {arr.shape}")
        if arr.size:
            low, high = int(arr.min()), int(arr.max())
            if low < 0 or high >= self.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(f"token id {bad} is outside the vocab (size {self.vocab_size})")
        self._file.write(arr.astype(self.dtype, copy=False).tobytes())
        self.count += arr.size

    def __enter__(self) -> "TokenFileWriter":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                self._file.seek(0)
                self._file.write(npy_header(self.dtype, self.count))
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)
            if exc_type is not None or not self.path.exists():
                remove_dirs(self._made)
