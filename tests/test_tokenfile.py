"""Token files: the incremental .npy writer against NumPy's own format and loader."""

import io

import numpy as np
import pytest

from scratchlm.data.tokenfile import TokenFileWriter, npy_header, token_dtype


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
@pytest.mark.parametrize("length", [0, 7, 123_456_789_012])
def test_header_matches_numpy(dtype: type, length: int) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": (length,)}
    )
    ours = npy_header(np.dtype(dtype), length)
    assert len(ours) % 64 == 0 and len(ours) == len(npy_header(np.dtype(dtype), 0))
    # Same dictionary; only the padding may differ (ours leaves room for any length).
    assert ours[:10] == buf.getvalue()[:8] + ours[8:10]
    assert ours[10:].rstrip() == buf.getvalue()[10:].rstrip()


def test_dtype_by_vocab_size() -> None:
    assert token_dtype(10_000) == np.uint16
    assert token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32
    with pytest.raises(ValueError):
        token_dtype(0)


@pytest.mark.parametrize("vocab_size", [1000, 65_536, 100_000])
def test_written_file_loads_with_mmap(tmp_path, vocab_size: int) -> None:
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, vocab_size, size=n) for n in (0, 5, 1000, 1, 333)]
    path = tmp_path / "tokens.npy"
    with TokenFileWriter(path, vocab_size) as out:
        for part in parts:
            out.write(part)
        out.write([vocab_size - 1, 0])
    data = np.load(path, mmap_mode="r")
    assert isinstance(data, np.memmap)
    assert data.dtype == token_dtype(vocab_size)
    np.testing.assert_array_equal(data, np.concatenate(parts + [[vocab_size - 1, 0]]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.npy"]


def test_empty_file(tmp_path) -> None:
    with TokenFileWriter(tmp_path / "empty.npy", 50) as out:
        out.write([])
    assert np.load(tmp_path / "empty.npy").shape == (0,)


def test_out_of_vocab_id_leaves_no_file(tmp_path) -> None:
    path = tmp_path / "tokens.npy"
    with pytest.raises(ValueError, match="outside the vocab"):
        with TokenFileWriter(path, 65_536) as out:
            out.write([1, 2, 3])
            out.write([65_536])
    assert list(tmp_path.iterdir()) == []


def test_missing_folders_are_created_and_removed_after_a_failure(tmp_path) -> None:
    with TokenFileWriter(tmp_path / "a" / "b" / "tokens.npy", 100) as out:
        out.write([1, 2])
    assert np.load(tmp_path / "a" / "b" / "tokens.npy").tolist() == [1, 2]
    with pytest.raises(ValueError, match="outside the vocab"):
        with TokenFileWriter(tmp_path / "c" / "d" / "tokens.npy", 100) as out:
            out.write([100])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OSError, match="file is not a folder"):
        TokenFileWriter(tmp_path / "file" / "tokens.npy", 100)
