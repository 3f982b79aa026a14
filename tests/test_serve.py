"""The HTTP server, live on 127.0.0.1: the official `openai` client, raw bad requests, the chat page
driven in headless Chromium (skipped when no browser is installed)."""

import fcntl
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest
from tiny_checkpoint import write_tiny_checkpoint

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from scratchlm.cli import main  # noqa: E402
from scratchlm.inference.engine import Engine  # noqa: E402
from scratchlm.model.generate import SamplingConfig  # noqa: E402
from scratchlm.serve.http import ServerLimits, create_app  # noqa: E402

LIMITS = ServerLimits(max_tokens=48, max_messages=4, max_message_chars=300, max_body_bytes=20_000)
HELLO = [{"role": "user", "content": "Hello, who are you?"}]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("serve"), chat=True))


@pytest.fixture(scope="module")
def engine(checkpoint: str) -> Engine:
    return Engine.from_checkpoint(checkpoint, "cpu")


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    """A uvicorn server in a thread, on a free port of 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(engine, LIMITS), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def client(base_url: str) -> "openai.OpenAI":
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


def greedy(n: int) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=n, temperature=0)


def test_models_and_health(client: "openai.OpenAI", base_url: str, engine: Engine) -> None:
    assert [m.id for m in client.models.list()] == [engine.name]
    assert httpx.get(base_url + "/health").json()["status"] == "ok"


def test_completion(client: "openai.OpenAI", engine: Engine) -> None:
    out = client.completions.create(
        model=engine.name, prompt="Once upon a time", max_tokens=12, temperature=0
    )
    expected = engine.complete(engine.encode_text("Once upon a time"), greedy(12))
    assert out.choices[0].text == expected.text
    assert out.choices[0].finish_reason == expected.finish_reason
    assert out.usage.prompt_tokens == expected.prompt_tokens
    assert out.usage.completion_tokens == expected.completion_tokens


def test_chat(client: "openai.OpenAI", engine: Engine) -> None:
    out = client.chat.completions.create(
        model=engine.name, messages=HELLO, max_tokens=12, temperature=0
    )
    expected = engine.complete(engine.encode_chat(HELLO), greedy(12), chat=True)
    assert out.choices[0].message.role == "assistant"
    assert out.choices[0].message.content == expected.text


def test_streaming_chat_matches_the_whole_answer(client: "openai.OpenAI", engine: Engine) -> None:
    kwargs = dict(model=engine.name, messages=HELLO, max_tokens=20, temperature=0.9, seed=5)
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(
        client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(pieces) == whole
    assert sum(1 for p in pieces if p) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1


def test_streaming_completion(client: "openai.OpenAI", engine: Engine) -> None:
    kwargs = dict(model=engine.name, prompt="Lily", max_tokens=15, temperature=0)
    whole = client.completions.create(**kwargs).choices[0].text
    pieces = [c.choices[0].text for c in client.completions.create(**kwargs, stream=True)]
    assert "".join(pieces) == whole


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"max_tokens": 49}, "max_tokens"),
        ({"messages": HELLO * 5}, "messages"),
        ({"messages": [{"role": "user", "content": "x" * 301}]}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "hi <|end|>"}]}, "messages"),
        ({"n": 2}, "n"),
    ],
)
def test_bad_chat_requests_get_400(client: "openai.OpenAI", kwargs: dict, param: str) -> None:
    request = {"model": "any", "messages": HELLO, "max_tokens": 8} | kwargs
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    assert caught.value.status_code == 400
    assert caught.value.body["param"] == param
    assert caught.value.body["message"]


def test_prompt_longer_than_the_context(client: "openai.OpenAI", engine: Engine) -> None:
    words = " ".join(["story"] * engine.context_length)
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model="any", prompt=words, max_tokens=4)
    prompt = "Lily"
    while len(engine.encode_text(prompt)) < engine.context_length - LIMITS.max_tokens + 1:
        prompt += " Lily"
    with pytest.raises(openai.BadRequestError, match="lower max_tokens"):
        client.completions.create(model="any", prompt=prompt, max_tokens=LIMITS.max_tokens)


def test_raw_bad_requests_leave_the_server_up(base_url: str) -> None:
    url = base_url + "/v1/chat/completions"
    as_json = {"content-type": "application/json"}
    malformed = httpx.post(url, content=b'{"messages": [', headers=as_json)
    assert malformed.status_code == 400
    assert "malformed JSON" in malformed.json()["error"]["message"]
    missing = httpx.post(url, json={"max_tokens": 3})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    too_big = httpx.post(url, content=b"x" * 30_000, headers=as_json)
    assert too_big.status_code == 413
    assert httpx.get(base_url + "/v2/nothing").status_code == 404
    ok = httpx.post(url, json={"messages": HELLO, "max_tokens": 3}, timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["role"] == "assistant"


def test_the_page_is_served(base_url: str) -> None:
    page = httpx.get(base_url + "/")
    assert page.status_code == 200 and 'id="prompt"' in page.text


def test_generate_command_streams_the_greedy_text(
    checkpoint: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["generate", "--checkpoint", checkpoint, "--prompt", "Lily", "--temperature", "0"]
    assert main([*argv, "--max-new-tokens", "12", "--device", "cpu"]) == 0
    expected = engine.complete(engine.encode_text("Lily"), greedy(12)).text
    assert capsys.readouterr().out == "Lily" + expected + "\n"


def test_chat_command_keeps_the_conversation(
    checkpoint: str,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("Hello, who are you?\nAnd then?\n/exit\n"))
    argv = ["chat", "--checkpoint", checkpoint, "--temperature", "0"]
    assert main([*argv, "--max-new-tokens", "8", "--device", "cpu"]) == 0
    replies = [line for line in capsys.readouterr().out.split("you> ") if "model> " in line]
    first = engine.complete(engine.encode_chat(HELLO), greedy(8), chat=True).text
    assert len(replies) == 2 and replies[0] == f"model> {first}\n"


# ----------------------------------------------------------------- the page in headless Chromium


def find_browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


class DevTools:
    """Chrome DevTools protocol over --remote-debugging-pipe: JSON messages ended by NUL bytes,
    written to the browser's fd 3 and read from its fd 4 (no websocket library needed)."""

    def __init__(self, browser: str, profile: str) -> None:
        child_in, self._out = os.pipe()  # we write self._out; the browser reads its fd 3
        self._in, child_out = os.pipe()  # the browser writes its fd 4; we read self._in
        # Move the child's ends to free fds >= 10 so the dup2 calls cannot clobber each other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (child_in, child_out)]
        for fd in (child_in, child_out):
            os.close(fd)

        def wire() -> None:  # runs in the child, before exec; dup2 leaves 3 and 4 inheritable
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]  # fmt: skip
        self.process = subprocess.Popen(
            args, preexec_fn=wire, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for fd in high:
            os.close(fd)
        self._buffer, self._next_id, self.session = b"", 0, None

    def call(self, method: str, **params: object) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                data = os.read(self._in, 1 << 16)
                assert data, "the browser closed the DevTools pipe"
                self._buffer += data
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply["error"]
                return reply.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        os.close(self._in)
        os.close(self._out)


@pytest.mark.slow
def test_the_page_streams_a_reply_in_headless_chromium(base_url: str, engine: Engine) -> None:
    browser = find_browser()
    if browser is None:
        pytest.skip("no chromium/chrome on PATH: install Debian's 'chromium' to run the page test")
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(browser, profile)
        try:
            targets = tools.call("Target.getTargets")["targetInfos"]
            page = next(t["targetId"] for t in targets if t["type"] == "page")
            tools.session = tools.call("Target.attachToTarget", targetId=page, flatten=True)[
                "sessionId"
            ]
            tools.call("Page.navigate", url=base_url + "/")
            wait_for(
                tools, "document.readyState === 'complete' && !!document.getElementById('send')"
            )
            tools.evaluate(
                "document.getElementById('temperature').value = '0';"
                "document.getElementById('max-tokens').value = '24';"
                "document.getElementById('prompt').value = 'Tell me a story';"
                "document.getElementById('send').click();"
            )
            wait_for(tools, "document.querySelectorAll('.msg').length >= 2")
            wait_for(tools, "document.body.dataset.state === 'idle'")
            reply = tools.evaluate(
                "const a = document.querySelector('.assistant');"
                "JSON.stringify({text: a ? a.textContent : null, chunks: a ? a.dataset.chunks : 0,"
                " user: document.querySelector('.user').textContent,"
                " error: (document.querySelector('.error') || {}).textContent || null})"
            )
        finally:
            tools.close()
    reply = json.loads(str(reply))
    assert reply["error"] is None
    assert reply["user"] == "Tell me a story"
    asked = [{"role": "user", "content": "Tell me a story"}]
    expected = list(engine.stream(engine.encode_chat(asked), greedy(24), chat=True))
    assert len(expected) > 1, "pick a prompt whose greedy reply has several pieces"
    assert reply["text"] == "".join(expected)
    assert int(reply["chunks"]) == len(expected)


def wait_for(tools: DevTools, condition: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not tools.evaluate(f"Boolean({condition})"):
        assert time.monotonic() < deadline, f"timed out waiting for: {condition}"
        time.sleep(0.1)
