"""Download the public corpora that the larger presets train on.

`download(name, out_dir)` fetches every file of a named source into `out_dir`:

- resumable: bytes arrive in `<file>.part`; a rerun asks the server for the rest with an HTTP Range
  request, and a finished file is never fetched again;
- checksummed: the SHA-256 of each file is compared with the one the host publishes (the
  `X-Linked-Etag`/`ETag` header of a Git-LFS file), and written beside it as `<file>.sha256`;
- gzip files are decompressed after the check (`owt_train.txt.gz` -> `owt_train.txt`);
- offline: one `OSError` line that says what to fetch by hand and where to put it.

Only the standard library is used (`urllib`), so the code path that tests drive against a local
HTTP server is the one users run.
"""

import gzip
import hashlib
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from tqdm import tqdm

from scratchlm.config import OUT_DIR_ARG, Command, arg

log = logging.getLogger(__name__)

HF = "https://huggingface.co/datasets"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str  # file name on disk, before decompression


SOURCES: dict[str, list[RemoteFile]] = {
    "tinystories": [
        RemoteFile(
            f"{HF}/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-train.txt",
            "TinyStoriesV2-GPT4-train.txt",
        ),
        RemoteFile(
            f"{HF}/roneneldan/TinyStories/resolve/main/TinyStoriesV2-GPT4-valid.txt",
            "TinyStoriesV2-GPT4-valid.txt",
        ),
    ],
    "owt-sample": [
        RemoteFile(
            f"{HF}/stanford-cs336/owt-sample/resolve/main/owt_train.txt.gz", "owt_train.txt.gz"
        ),
        RemoteFile(
            f"{HF}/stanford-cs336/owt-sample/resolve/main/owt_valid.txt.gz", "owt_valid.txt.gz"
        ),
    ],
}

CHUNK = 1 << 20
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def download(
    name: str, out_dir: Path, sources: dict[str, list[RemoteFile]] = SOURCES
) -> list[Path]:
    """Fetch every file of source `name` into `out_dir`; returns the final (decompressed) paths."""
    if name not in sources:
        raise ValueError(f"unknown source {name!r}: choose one of {', '.join(sorted(sources))}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in sources[name]:
        final = out_dir / remote.name.removesuffix(".gz")
        if final.exists():
            log.info("%s: already there, skipped", final)
        else:
            try:
                fetched = fetch(remote.url, out_dir / remote.name)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                raise OSError(
                    f"cannot download {remote.url} ({reason}); fetch it by hand and put it at "
                    f"{out_dir / remote.name}, then rerun this command"
                ) from None
            if fetched.suffix == ".gz":
                gunzip(fetched, final)
        paths.append(final)
    return paths


def fetch(url: str, dest: Path) -> Path:
    """Download `url` to `dest`, resuming from `dest.part`; verify the SHA-256 the server states."""
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        if have and response.status != 206:  # the server ignored the range: start over
            have = 0
        expected = published_sha256(response.headers)
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with (
            open(part, "ab" if have else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=None,
            ) as bar,
        ):
            while block := response.read(CHUNK):
                f.write(block)
                bar.update(len(block))
    digest = sha256_of(part)
    if expected is not None and digest != expected:
        part.unlink()
        raise OSError(
            f"{dest.name}: checksum mismatch (got {digest[:12]}..., the server states "
            f"{expected[:12]}...); the partial file was removed, rerun to download it again"
        )
    dest.with_name(dest.name + ".sha256").write_text(f"{digest}  {dest.name}\n")
    os.replace(part, dest)
    log.info("%s: %s bytes, sha256 %s", dest, f"{dest.stat().st_size:,}", digest)
    return dest


def published_sha256(headers: Message) -> str | None:
    """The SHA-256 a Git-LFS host states for the file (`X-Linked-Etag` or `ETag`), if any."""
    for key in ("X-Linked-Etag", "ETag"):
        value = (headers.get(key) or "").removeprefix("W/").strip('"')
        if SHA256.match(value):
            return value
    return None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def gunzip(src: Path, dest: Path) -> None:
    """Decompress `src` to `dest` through a temporary file, so `dest` is whole or absent."""
    tmp = dest.with_name(dest.name + ".tmp")
    with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
    os.replace(tmp, dest)


def download_command(name: str, out_dir: Path) -> str:
    """`scratchlm data download`: fetch the source, then list its files and their sizes."""
    return "\n".join(f"{p} ({p.stat().st_size / 1e6:,.1f} MB)" for p in download(name, out_dir))


COMMAND = Command(
    run=download_command,
    description="Fetch a corpus into DIR: resumable (a rerun continues a partial file), checked "
    "against the SHA-256 the host publishes, gzip files decompressed.",
    args=(
        arg("name", choices=list(SOURCES), help="which corpus"),
        OUT_DIR_ARG,
    ),
)
