"""Output folders: made on demand, removed again after a failure, refused only where they cannot be
written; an output renamed from a temporary directory gets the umask's permissions."""

import os
import stat
import tempfile
from pathlib import Path

import pytest
from conftest import SAMPLE_TEXT
from tiny_checkpoint import write_tiny_checkpoint

from scratchlm.cli import main
from scratchlm.folders import check_creatable, make_dirs, new_dirs, remove_dirs, usual_permissions


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def umask() -> int:
    value = os.umask(0)
    os.umask(value)
    return value


def test_make_dirs_returns_what_it_made_and_remove_dirs_undoes_it(tmp_path: Path) -> None:
    made = make_dirs(tmp_path / "a" / "b" / "c")
    assert made == [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"]
    assert make_dirs(tmp_path / "a" / "b") == []
    (tmp_path / "a" / "keep.txt").write_text("not ours to remove")
    remove_dirs(made)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["keep.txt"]


def test_new_dirs_removes_its_folders_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), new_dirs(tmp_path / "x" / "y"):
        raise RuntimeError("the command failed")
    assert list(tmp_path.iterdir()) == []
    with new_dirs(tmp_path / "x" / "y") as path:
        assert path.is_dir()
    assert (tmp_path / "x" / "y").is_dir()


def test_a_file_in_the_way_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OSError, match="f is not a folder"):
        check_creatable(tmp_path / "f" / "a" / "b")
    with pytest.raises(OSError, match="f is not a folder"):
        make_dirs(tmp_path / "f" / "a")
    with pytest.raises(OSError, match="f is not a folder"):
        make_dirs(tmp_path / "f")
    assert list(tmp_path.iterdir()) == [tmp_path / "f"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(OSError, match="ro is not writable"):
        check_creatable(tmp_path / "ro" / "a" / "b")


def test_usual_permissions_follow_the_umask(tmp_path: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=tmp_path))  # mode 0700
    (tmp / "sub").mkdir()
    (tmp / "sub" / "weights").write_bytes(b"w")
    (tmp / "sub" / "weights").chmod(0o600)  # as safetensors writes its files
    old = os.umask(0o027)
    try:
        usual_permissions(tmp)
    finally:
        os.umask(old)
    assert (mode(tmp), mode(tmp / "sub"), mode(tmp / "sub" / "weights")) == (0o750, 0o750, 0o640)


def test_commands_create_missing_parent_folders(tmp_path: Path) -> None:
    """--out, --output-dir, --output-path and --json under folders that do not exist yet."""
    base = write_tiny_checkpoint(tmp_path / "base")
    (tmp_path / "text.txt").write_text(SAMPLE_TEXT, encoding="utf-8")
    new = tmp_path / "new"
    argvs = [
        ["data", "prepare", str(tmp_path / "text.txt"), "--out", str(new / "a" / "data")],
        ["data", "synth", "--out", str(new / "b" / "corpus"), "--size-mb", "0.01"],
        ["train-tokenizer", "--data-path", str(tmp_path / "text.txt"), "--output-dir",
         str(new / "c" / "tok"), "--vocab-size", "300", "--num-processes", "1"],
        ["tokenize", "--dataset-path", str(tmp_path / "text.txt"), "--output-path",
         str(new / "d" / "t.npy"), "--tokenizer-dir", str(base / "tokenizer"),
         "--num-processes", "1"],
        ["task", "make", "--out", str(new / "e" / "task"), "--n-sft", "2", "--n-preference", "2"],
        ["task", "eval", "--checkpoint", str(base), "--n", "2", "--device", "cpu", "--json",
         str(new / "f" / "eval.json")],
        ["export-hf", "--checkpoint", str(base), "--out", str(new / "g" / "hf")],
        ["import-hf", str(new / "g" / "hf"), "--out", str(new / "h" / "imported")],
    ]  # fmt: skip
    for argv in argvs:
        assert main(argv) == 0, argv
    for made in ["a/data/train.txt", "b/corpus/train.txt", "c/tok/vocab.json", "d/t.npy",
                 "e/task/sft.jsonl", "f/eval.json", "g/hf/model.safetensors",
                 "h/imported/model.safetensors"]:  # fmt: skip
        assert (new / made).is_file(), made
    # export-hf and import-hf rename a temporary directory into place: the usual permissions.
    for out in (new / "g" / "hf", new / "h" / "imported"):
        assert mode(out) == 0o777 & ~umask(), out
        assert mode(out / "model.safetensors") == 0o666 & ~umask(), out
