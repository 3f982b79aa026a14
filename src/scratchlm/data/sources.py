"""Turn text in the formats people have into the one the tokenizer stage reads.

`prepare_text(inputs, out_dir)` reads plain text (`.txt`: documents already separated by
`<|endoftext|>`, or one document per file), JSONL (`.jsonl`: one JSON object per line, the
document in `text_field`) and parquet (`.parquet`: the `text_field` column; needs `pyarrow`)
files, or folders holding them, and writes `train.txt` and `valid.txt`: documents joined by
`<|endoftext|>`, a seeded `valid_fraction` of them held out. Both files are written to temporary
names and renamed at the end.
"""

import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from scratchlm.config import OUT_DIR_ARG, Command, arg
from scratchlm.folders import make_dirs, remove_dirs
from scratchlm.tokenizer import END_OF_TEXT

log = logging.getLogger(__name__)

FORMATS = (".txt", ".jsonl", ".parquet")
READ_CHARS = 1 << 22


@dataclass(frozen=True)
class PrepareSummary:
    train_docs: int
    valid_docs: int
    train_path: Path
    valid_path: Path

    def __str__(self) -> str:
        train, valid = f"{self.train_docs:,} documents", f"{self.valid_docs:,}"
        return f"{self.train_path}: {train}; {self.valid_path}: {valid}"


def list_inputs(inputs: list[Path]) -> list[Path]:
    """Expand folders (recursively, sorted) into the supported files they hold."""
    files: list[Path] = []
    for path in map(Path, inputs):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in FORMATS and p.is_file())
            if not found:
                raise ValueError(f"{path}: no {', '.join(FORMATS)} files in this folder")
            files.extend(found)
        elif not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        elif path.suffix not in FORMATS:
            raise ValueError(f"{path}: unsupported format; use one of {', '.join(FORMATS)}")
        else:
            files.append(path)
    return files


def iter_documents(path: Path, text_field: str = "text") -> Iterator[str]:
    """Yield the documents of one file, streaming (never the whole file in memory)."""
    if path.suffix == ".txt":
        yield from _text_documents(path)
    elif path.suffix == ".jsonl":
        yield from _jsonl_documents(path, text_field)
    else:
        yield from _parquet_documents(path, text_field)


def _text_documents(path: Path) -> Iterator[str]:
    pending = ""
    with open(path, encoding="utf-8") as f:
        try:
            while chunk := f.read(READ_CHARS):
                *docs, pending = (pending + chunk).split(END_OF_TEXT)
                yield from (d for d in docs if d.strip())
        except UnicodeDecodeError as exc:
            where = f"{exc.reason} near byte {exc.start}"
            raise ValueError(f"{path}: not valid UTF-8 ({where})") from None
    if pending.strip():
        yield pending


def _jsonl_documents(path: Path, text_field: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
                raise ValueError(
                    f"{path}:{number}: no string field {text_field!r}; pick it with --text-field"
                )
            yield record[text_field]


def _parquet_documents(path: Path, text_field: str) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"{path}: reading parquet needs pyarrow: pip install pyarrow") from None
    parquet = pq.ParquetFile(path)
    if text_field not in parquet.schema_arrow.names:
        names = ", ".join(parquet.schema_arrow.names)
        raise ValueError(f"{path}: no column {text_field!r} (columns: {names}); use --text-field")
    for batch in parquet.iter_batches(columns=[text_field]):
        yield from (t for t in batch.column(0).to_pylist() if t)


def prepare_text(
    inputs: list[Path],
    out_dir: Path,
    text_field: str = "text",
    valid_fraction: float = 0.01,
    seed: int = 0,
) -> PrepareSummary:
    """Write out_dir/train.txt and out_dir/valid.txt from `inputs` (see the module docstring)."""
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    files = list_inputs(inputs)
    out_dir = Path(out_dir)
    made = make_dirs(out_dir)
    rng = random.Random(seed)
    paths = {split: out_dir / f"{split}.txt" for split in ("train", "valid")}
    temps = {split: p.with_name(p.name + ".tmp") for split, p in paths.items()}
    counts = {"train": 0, "valid": 0}
    try:
        with (
            open(temps["train"], "w", encoding="utf-8") as train,
            open(temps["valid"], "w", encoding="utf-8") as valid,
        ):
            outs = {"train": train, "valid": valid}
            bar = tqdm(desc="documents", unit=" docs", disable=None)
            for path in files:
                for doc in iter_documents(path, text_field):
                    split = "valid" if rng.random() < valid_fraction else "train"
                    outs[split].write(doc.strip("\n") + END_OF_TEXT)
                    counts[split] += 1
                    bar.update()
            bar.close()
        if counts["train"] == 0:
            raise ValueError(f"no documents in {', '.join(map(str, files))}")
        for split in paths:
            os.replace(temps[split], paths[split])
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        if not paths["train"].exists():  # failed: the folders this call made go too
            remove_dirs(made)
    log.info("train: %d documents, valid: %d documents", counts["train"], counts["valid"])
    return PrepareSummary(counts["train"], counts["valid"], paths["train"], paths["valid"])


COMMAND = Command(
    run=prepare_text,
    description="Documents are joined by <|endoftext|>; a seeded fraction goes to valid.txt. "
    "Then run train-tokenizer and tokenize on the result.",
    args=(
        arg("inputs", type=Path, nargs="+", help="files or folders"),
        OUT_DIR_ARG,
        arg("--text-field", default="text", help="JSONL key / parquet column (text)"),
        arg("--valid-fraction", type=float, default=0.01, help="held out (0.01)"),
        arg("--seed", type=int, default=0, help="seed of the split (0)"),
    ),
)
