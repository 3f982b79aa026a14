"""The folders a command writes into: created on demand, removed again after a failure.

A command creates the missing folders above its output (`runs/`, the parents of `--out`), but only
once its inputs have been checked, and it removes the ones it made if it then fails, so a bad input
leaves nothing behind. Only a location that cannot be written is refused, in one line.
Plain `pathlib` and `os`: importing this module costs nothing.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def check_creatable(path: str | Path) -> None:
    """Fail early, before creating anything, if the folders above `path` cannot be made."""
    path = Path(path)
    existing = next((p for p in path.parents if p.exists()), Path("."))
    if not existing.is_dir():
        raise OSError(f"cannot create {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OSError(f"cannot create {path}: {existing} is not writable")


def make_dirs(path: str | Path) -> list[Path]:
    """Create the folder `path` and any missing parents; returns the folders made, outermost first.

    A location that cannot be written (a file in the way, no permission) is a one-line OSError.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OSError(f"cannot write into {path}: {path} is not a folder")
    check_creatable(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create folder {path}: {exc.strerror}; choose a writable location"
        ) from None
    return missing[::-1]


def remove_dirs(made: list[Path]) -> None:
    """Undo `make_dirs` after a failure: remove the folders it made, innermost first, if empty."""
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()


@contextlib.contextmanager
def new_dirs(path: str | Path) -> Iterator[Path]:
    """`make_dirs(path)` for the block; the folders it made are removed if the block fails."""
    made = make_dirs(path)
    try:
        yield Path(path)
    except BaseException:
        remove_dirs(made)
        raise


def usual_permissions(path: str | Path) -> None:
    """Give `path` and everything under it the modes `mkdir` and `open` give under the umask.

    A temporary directory is made with mode 0700 and safetensors writes its files 0600; once such
    a directory is renamed into place, its contents should look like any other output.
    """
    umask = os.umask(0)
    os.umask(umask)
    for item in [Path(path), *Path(path).rglob("*")]:
        item.chmod((0o777 if item.is_dir() else 0o666) & ~umask)
