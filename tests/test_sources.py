"""`prepare_text`: plain text, JSONL and parquet in; train.txt / valid.txt out."""

import json
from pathlib import Path

import pytest

from scratchlm.data.sources import prepare_text

SEPARATOR = "<|endoftext|>"  # the documented separator, written out


def docs_of(path: Path) -> list[str]:
    return [d for d in path.read_text().split(SEPARATOR) if d]


def test_text_jsonl_and_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(f"first doc{SEPARATOR}second doc{SEPARATOR}")
    (src / "b.jsonl").write_text(
        "\n".join(json.dumps({"text": f"json doc {i}", "id": i}) for i in range(3)) + "\n"
    )
    out = tmp_path / "out"
    summary = prepare_text([src], out, valid_fraction=0.0)
    assert docs_of(out / "train.txt") == ["first doc", "second doc"] + [
        f"json doc {i}" for i in range(3)
    ]
    assert summary.train_docs == 5 and summary.valid_docs == 0


def test_valid_split_is_seeded_and_disjoint(tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text(SEPARATOR.join(f"doc {i}" for i in range(200)))
    a = prepare_text([src], tmp_path / "a", valid_fraction=0.2, seed=3)
    b = prepare_text([src], tmp_path / "b", valid_fraction=0.2, seed=3)
    train, valid = docs_of(a.train_path), docs_of(a.valid_path)
    assert 10 < len(valid) < 80 and sorted(train + valid) == sorted(f"doc {i}" for i in range(200))
    assert a.valid_path.read_text() == b.valid_path.read_text()


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"content": ["alpha", "beta"]}), tmp_path / "x.parquet")
    out = tmp_path / "out"
    prepare_text([tmp_path / "x.parquet"], out, text_field="content", valid_fraction=0.0)
    assert docs_of(out / "train.txt") == ["alpha", "beta"]
    with pytest.raises(ValueError, match="no column 'text'"):
        prepare_text([tmp_path / "x.parquet"], tmp_path / "o2")


def test_bad_inputs_leave_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{not json}\n')
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"bad.jsonl:2: malformed JSON"):
        prepare_text([bad], out)
    assert not out.exists()
    with pytest.raises(FileNotFoundError):
        prepare_text([tmp_path / "missing.txt"], out)
    with pytest.raises(ValueError, match="unsupported format"):
        (tmp_path / "x.csv").write_text("a,b")
        prepare_text([tmp_path / "x.csv"], out)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        prepare_text([tmp_path / "latin1.txt"], out)
