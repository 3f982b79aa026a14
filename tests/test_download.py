"""The download path against a local HTTP server on 127.0.0.1: resume, checksum, gzip, offline."""

import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scratchlm.data.download import RemoteFile, download

PAYLOAD = ("Once upon a time there was a tiny test file.<|endoftext|>" * 2000).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves FILES with Range support and a SHA-256 X-Linked-Etag, like a Git-LFS host."""

    files: dict[str, bytes] = {}
    etags: dict[str, str] = {}
    requests: list[str] = []

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        self.requests.append(self.headers.get("Range", "full"))
        if body is None:
            self.send_error(404)
            return
        start = 0
        if rng := self.headers.get("Range"):
            start = int(rng.removeprefix("bytes=").split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        etag = self.etags.get(self.path, hashlib.sha256(body).hexdigest())
        self.send_header("X-Linked-Etag", f'"{etag}"')
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.files = {"/a.txt": PAYLOAD, "/b.txt.gz": gzip.compress(PAYLOAD)}
    Handler.etags = {}
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def sources(base: str) -> dict[str, list[RemoteFile]]:
    return {
        "demo": [RemoteFile(f"{base}/a.txt", "a.txt"), RemoteFile(f"{base}/b.txt.gz", "b.txt.gz")]
    }


def test_download_checks_and_decompresses(server: str, tmp_path: Path) -> None:
    paths = download("demo", tmp_path, sources(server))
    assert [p.name for p in paths] == ["a.txt", "b.txt"]
    assert all(p.read_bytes() == PAYLOAD for p in paths)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "a.txt.sha256").read_text().split()[0] == digest
    download("demo", tmp_path, sources(server))  # finished files are not fetched again
    assert Handler.requests == ["full", "full"]


def test_download_resumes_a_partial_file(server: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt.part").write_bytes(PAYLOAD[:1000])
    download("demo", tmp_path, sources(server))
    assert (tmp_path / "a.txt").read_bytes() == PAYLOAD
    assert Handler.requests[0] == "bytes=1000-"


def test_checksum_mismatch_is_an_error_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    Handler.etags = {"/a.txt": "0" * 64}
    with pytest.raises(OSError, match="checksum mismatch"):
        download("demo", tmp_path, sources(server))
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "a.txt.part").exists()


def test_offline_says_what_to_fetch_by_hand(tmp_path: Path) -> None:
    dead = {"demo": [RemoteFile("http://127.0.0.1:9/a.txt", "a.txt")]}
    with pytest.raises(OSError, match="fetch it by hand and put it at"):
        download("demo", tmp_path, dead)


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tinystories"):
        download("nope", tmp_path)
