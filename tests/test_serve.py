"""The HTTP server, live on 127.0.0.1: the official `openai` client, raw bad requests, the chat page
driven in headless Chromium (skipped when no browser is installed)."""

import asyncio
import contextlib
import fcntl
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import torch
from tiny_checkpoint import write_tiny_checkpoint

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

from scratchlm.cli import main  # noqa: E402
from scratchlm.inference.engine import Engine  # noqa: E402
from scratchlm.model.generate import SamplingConfig, generate  # noqa: E402
from scratchlm.serve.chat_cli import _fitted_prompt, fit_new_tokens  # noqa: E402
from scratchlm.serve.http import ServerLimits, create_app  # noqa: E402

LIMITS = ServerLimits(max_tokens=48, max_messages=4, max_message_chars=300, max_body_bytes=20_000)
HELLO = [{"role": "user", "content": "Hello, who are you?"}]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("serve"), chat=True))


@pytest.fixture(scope="module")
def engine(checkpoint: str) -> Engine:
    return Engine.from_checkpoint(checkpoint, "cpu")


@contextlib.contextmanager
def serving(engine: Engine, limits: ServerLimits = LIMITS) -> Iterator[str]:
    """A uvicorn server in a thread, on a free port of 127.0.0.1; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(engine, limits), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), "the server to start")
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def base_url(engine: Engine) -> Iterator[str]:
    with serving(engine) as url:
        yield url


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


def test_a_chunked_body_over_the_limit_gets_413(base_url: str) -> None:
    def body() -> Iterator[bytes]:  # no length known up front: sent with chunked encoding
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}], "max_tokens": 3}'

    url = base_url + "/v1/chat/completions"
    refused = httpx.post(url, content=body(), headers={"content-type": "application/json"})
    assert refused.status_code == 413
    assert "over 20000 bytes" in refused.json()["error"]["message"]
    ok = httpx.post(url, json={"messages": HELLO, "max_tokens": 3}, timeout=60)
    assert ok.status_code == 200


def test_an_endless_chunked_body_is_cut_off_at_the_limit(engine: Engine) -> None:
    """The server stops reading once the body passes the limit; it never holds more."""
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 1000

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(engine, LIMITS))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(
                "/v1/chat/completions",
                content=endless(),
                headers={"content-type": "application/json"},
            )

    response = asyncio.run(post())
    assert response.status_code == 413
    assert pulled <= LIMITS.max_body_bytes // 1000 + 2


def test_max_completion_tokens(client: "openai.OpenAI", engine: Engine) -> None:
    for bad in (0, -1, LIMITS.max_tokens + 1):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="any", messages=HELLO, max_completion_tokens=bad, max_tokens=8
            )
        assert caught.value.body["param"] == "max_completion_tokens"
        assert f"got {bad}" in caught.value.body["message"]
    out = client.chat.completions.create(
        model="any", messages=HELLO, max_completion_tokens=3, max_tokens=20, temperature=0
    )
    expected = engine.complete(engine.encode_chat(HELLO), greedy(3), chat=True)
    assert out.choices[0].message.content == expected.text
    assert out.usage.completion_tokens == expected.completion_tokens <= 3


def test_tokenize_and_the_context_length(base_url: str, engine: Engine) -> None:
    url = base_url + "/tokenize"
    counted = httpx.post(url, json={"messages": HELLO}).json()
    assert counted["tokens"] == engine.encode_chat(HELLO)
    assert counted["count"] == len(counted["tokens"])
    assert counted["max_model_len"] == engine.context_length
    assert httpx.post(url, json={"prompt": "Lily"}).json()["tokens"] == engine.encode_text("Lily")
    for bad in ({}, {"prompt": "Lily", "messages": HELLO}, {"messages": HELLO * 5}):
        assert httpx.post(url, json=bad).status_code == 400
    models = httpx.get(base_url + "/v1/models").json()
    assert models["data"][0]["max_model_len"] == engine.context_length


def test_completions_on_a_chat_model_stop_at_chat_tokens(
    client: "openai.OpenAI", engine: Engine
) -> None:
    """A sampled completion that reaches a chat token ends there; the token is never text."""
    tokenizer = engine.tokenizer
    chat_ids = {tokenizer.special_ids[t] for t in tokenizer.special_tokens}
    prompt = engine.encode_text("Once upon a time")
    config = SamplingConfig(max_new_tokens=LIMITS.max_tokens, temperature=1.0)
    for seed in range(100):  # a seed whose sampled tokens meet a chat token (about every other)
        new = generate(engine.model, [prompt], config, torch.Generator().manual_seed(seed))[0]
        first = next((i for i, token in enumerate(new) if token in chat_ids), None)
        if first is not None:
            break
    assert first is not None
    out = client.completions.create(
        model="any", prompt="Once upon a time", max_tokens=LIMITS.max_tokens, seed=seed
    )
    assert out.choices[0].text == tokenizer.decode(new[:first])
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.completion_tokens == first + 1


def test_an_abandoned_request_stops_generating(
    checkpoint: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    prompt = "Once upon a time"
    asked = greedy(LIMITS.max_tokens)
    full = engine.complete(engine.encode_text(prompt), asked, chat=True)
    assert full.completion_tokens == LIMITS.max_tokens, "pick a prompt that runs to max_tokens"
    slow = Engine.from_checkpoint(checkpoint, "cpu")
    steps, started, gate = [], threading.Event(), threading.Event()

    def hold_second_step(*_: object) -> None:  # runs at each model step
        steps.append(1)
        if len(steps) == 2:
            started.set()
            gate.wait(timeout=60)

    slow.model.token_embeddings.register_forward_hook(hold_second_step)
    body = json.dumps({"prompt": prompt, "max_tokens": LIMITS.max_tokens, "temperature": 0})
    head = "POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
    request = f"{head}Content-Length: {len(body)}\r\n\r\n{body}".encode()
    with caplog.at_level(logging.DEBUG, "scratchlm.serve.http"), serving(slow) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request)
            assert started.wait(timeout=60), "the generation did not start"
        # The client has hung up while step 2 runs: once the server has seen it, let step 2 end.
        wait_until(lambda: "cancelling its generation" in caplog.text, "the disconnect")
        gate.set()
        wait_until(lambda: "client went away" in caplog.text, "the generation to stop")
    assert len(steps) <= 3


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


def test_serve_refuses_a_bad_or_busy_port(
    checkpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--checkpoint", checkpoint, "--device", "cpu", "--port"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = str(busy.getsockname()[1])
        for port, message in (("99999", "--port must be in 0..65535"), (taken, "in use")):
            assert main([*argv, port]) == 2, port
            out, err = capsys.readouterr()
            assert out == "", port  # nothing claims to be serving
            assert err.startswith("error: ") and err.count("\n") == 1, err
            assert message in err and "Traceback" not in err, err


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


@contextlib.contextmanager
def open_page(url: str) -> Iterator[DevTools]:
    """Headless Chromium showing the chat page at `url`, once it knows the model's context."""
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
            tools.call("Page.navigate", url=url + "/")
            wait_for(tools, "document.readyState === 'complete' && !!document.body.dataset.context")
            yield tools
        finally:
            tools.close()


def say(tools: DevTools, text: str) -> None:
    """Type `text` into the page, send it and wait until the turn is over."""
    tools.evaluate(
        f"document.getElementById('prompt').value = {json.dumps(text)};"
        "document.getElementById('send').click();"
    )
    wait_for(tools, "document.body.dataset.state === 'idle'")


@pytest.mark.slow
def test_the_page_streams_a_reply_in_headless_chromium(base_url: str, engine: Engine) -> None:
    with open_page(base_url) as tools:
        tools.evaluate(
            "document.getElementById('temperature').value = '0';"
            "document.getElementById('max-tokens').value = '24';"
        )
        say(tools, "Tell me a story")
        reply = tools.evaluate(
            "const a = document.querySelector('.assistant');"
            "JSON.stringify({text: a ? a.textContent : null, chunks: a ? a.dataset.chunks : 0,"
            " user: document.querySelector('.user').textContent,"
            " error: (document.querySelector('.error') || {}).textContent || null})"
        )
    reply = json.loads(str(reply))
    assert reply["error"] is None
    assert reply["user"] == "Tell me a story"
    asked = [{"role": "user", "content": "Tell me a story"}]
    expected = list(engine.stream(engine.encode_chat(asked), greedy(24), chat=True))
    assert len(expected) > 1, "pick a prompt whose greedy reply has several pieces"
    assert reply["text"] == "".join(expected)
    assert int(reply["chunks"]) == len(expected)


@pytest.fixture(scope="module")
def small_context(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """A chat model with a 128-token context, smaller than the page's usual 200 max tokens."""
    root = tmp_path_factory.mktemp("context-128")
    return Engine.from_checkpoint(write_tiny_checkpoint(root, chat=True, context_length=128), "cpu")


PAGE_STATE = """JSON.stringify({
  conversation,
  replies: [...document.querySelectorAll('.assistant, .note')].map((e) => e.textContent),
  forgotten: document.querySelectorAll('.forgotten').length,
  errors: [...document.querySelectorAll('.error')].map((e) => e.textContent),
  empty: [...document.querySelectorAll('.msg')].filter((e) => !e.textContent).length,
  box: document.getElementById('prompt').value,
})"""


@pytest.mark.slow
def test_the_page_fits_a_long_chat_into_a_small_context(small_context: Engine) -> None:
    """Five turns (and a sixth after two failed ones) on a 128-token model: the page keeps what
    fits exactly as the chat CLI does, and a failed turn loses nothing."""
    engine = small_context
    turns = ["Tell me a story", "What happened next?", "Who was there?", "Why?", "And then?"]
    too_long = "a " * 150  # 150 tokens or more alone: no room in 128
    with serving(engine, ServerLimits()) as url, open_page(url) as tools:
        assert tools.evaluate("document.getElementById('max-tokens').value") == "64"
        tools.evaluate("document.getElementById('temperature').value = '0'")
        for text in turns:
            say(tools, text)
        after_five = json.loads(str(tools.evaluate(PAGE_STATE)))
        say(tools, "hi <|end|>")  # the server refuses it: a chat token in a message
        refused = json.loads(str(tools.evaluate(PAGE_STATE)))
        tools.evaluate("document.getElementById('prompt').value = ''")
        say(tools, too_long)
        overlong = json.loads(str(tools.evaluate(PAGE_STATE)))
        tools.evaluate("document.getElementById('prompt').value = ''")
        say(tools, "The end.")
        last = json.loads(str(tools.evaluate(PAGE_STATE)))

    # The reference: the chat CLI's fitting (`_fitted_prompt`, `fit_new_tokens`), greedy replies.
    sampling = SamplingConfig(max_new_tokens=64, temperature=0)
    messages: list[dict[str, str]] = []
    replies, dropped = [], 0
    for text in [*turns, "The end."]:
        messages.append({"role": "user", "content": text})
        before = len(messages)
        ids = _fitted_prompt(engine, messages, 0, sampling)
        dropped += before - len(messages)
        reply = engine.complete(ids, fit_new_tokens(engine, ids, sampling), chat=True).text
        replies.append(reply or "(the model ended its reply without any text)")
        messages.append({"role": "assistant", "content": reply})
        if len(replies) == len(turns):
            five, dropped_after_five = [dict(m) for m in messages], dropped
    assert dropped_after_five > 0, "five turns should overflow 128 tokens"

    assert after_five["errors"] == [] and after_five["empty"] == 0
    assert after_five["replies"] == replies[: len(turns)]
    assert after_five["conversation"] == five
    assert after_five["forgotten"] == dropped_after_five
    for failed, text in ((refused, "hi <|end|>"), (overlong, too_long)):
        assert failed["conversation"] == five and failed["replies"] == after_five["replies"]
        assert failed["box"] == text.strip()
    assert "<|end|>" in refused["errors"][-1]
    assert "context" in overlong["errors"][-1] and len(overlong["errors"]) == 2
    assert last["replies"] == replies and last["conversation"] == messages
    assert last["empty"] == 0 and len(last["errors"]) == 2


def wait_for(tools: DevTools, condition: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not tools.evaluate(f"Boolean({condition})"):
        assert time.monotonic() < deadline, f"timed out waiting for: {condition}"
        time.sleep(0.1)
