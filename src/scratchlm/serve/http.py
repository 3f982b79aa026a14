"""An OpenAI-compatible HTTP server for one checkpoint (FastAPI + uvicorn), with a chat page at `/`.

Routes: POST /v1/completions and /v1/chat/completions (`"stream": true` answers with server-sent
events, each `data: <chunk JSON>`, then `data: [DONE]`), GET /v1/models (with the context length as
`max_model_len`), POST /tokenize (a prompt's or conversation's token count, as vLLM answers it),
GET /health, GET / (the page). Errors use OpenAI's shape, `{"error": {"message", "type", "param",
"code"}}`, with a 4xx status for anything the request got wrong: malformed JSON, a missing or
mistyped field, sampling values out of range, max_tokens above the cap, a prompt that does not fit
the context, too many or too long messages, a body over the limit (counted as it is read, so a
chunked body cannot go past it either). An unexpected failure answers 500 for that request only.

Requests are served from a thread pool; each one gets its own KV cache, and the model's forward
pass keeps no state, so concurrent requests are safe. A client that disconnects stops its
generation, streamed or not. Both endpoints stop at every chat special token, which a chat model
can write in a plain completion too. The host defaults to 127.0.0.1.
"""

import errno
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import anyio
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

from scratchlm.config import CHECKPOINT_ARG, DEVICE_ARG, Command, arg
from scratchlm.inference.engine import Engine, TextStream
from scratchlm.model.generate import SamplingConfig
from scratchlm.serve.page import PAGE_HTML

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    """What one request may ask for; above these the server answers 4xx."""

    max_tokens: int = 1024
    max_messages: int = 64
    max_message_chars: int = 16_000
    max_prompt_chars: int = 64_000
    max_body_bytes: int = 1_000_000


class RequestError(Exception):
    """A request the server refuses: an HTTP status, a message and the offending parameter."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


class SamplingFields(BaseModel):
    """The request fields shared by both endpoints; unknown fields are ignored, as OpenAI does."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None  # not in OpenAI's API; an extension
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    seed: int | None = None
    n: int = 1


class CompletionRequest(SamplingFields):
    prompt: str | list[str]
    max_tokens: int | None = 16  # OpenAI's default for completions


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(SamplingFields):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = None


class TokenizeRequest(BaseModel):
    """What /tokenize counts: a plain prompt or a conversation (rendered up to the reply)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str | None = None
    messages: list[Message] | None = Field(default=None, min_length=1)


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def sampling_config(
    req: SamplingFields,
    max_tokens: int | None,
    prompt_tokens: int,
    limits: ServerLimits,
    ctx: int,
    max_tokens_param: str = "max_tokens",
) -> SamplingConfig:
    """The request's SamplingConfig; RequestError when a field is out of range or does not fit.

    max_tokens: the request's cap on new tokens (None: as many as fit); max_tokens_param: the
    field it came from, named in the error.
    """
    if req.n != 1:
        raise RequestError("only n=1 is supported", "n")
    if not 0 <= req.temperature <= 2:
        raise RequestError(f"temperature must be in [0, 2], got {req.temperature}", "temperature")
    if not 0 < req.top_p <= 1:
        raise RequestError(f"top_p must be in (0, 1], got {req.top_p}", "top_p")
    if req.top_k is not None and req.top_k < 0:
        raise RequestError(f"top_k must be >= 0 (0 = off), got {req.top_k}", "top_k")
    if prompt_tokens >= ctx:
        raise RequestError(
            f"the prompt has {prompt_tokens} tokens but the model's context is {ctx} tokens; "
            "shorten it",
            "messages" if isinstance(req, ChatRequest) else "prompt",
        )
    if max_tokens is None:
        max_tokens = min(limits.max_tokens, ctx - prompt_tokens)
    name = max_tokens_param
    if not 1 <= max_tokens <= limits.max_tokens:
        raise RequestError(f"{name} must be in [1, {limits.max_tokens}], got {max_tokens}", name)
    if prompt_tokens + max_tokens > ctx:
        raise RequestError(
            f"the model's context is {ctx} tokens; the prompt has {prompt_tokens} and {name} "
            f"asks for {max_tokens}: lower {name} to {ctx - prompt_tokens} or less",
            name,
        )
    return SamplingConfig(
        max_new_tokens=max_tokens, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p
    )


def stop_strings(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise RequestError("stop takes up to 4 non-empty strings", "stop")
    return tuple(stops)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets a 413, whether its size is declared
    (Content-Length, refused before reading) or not (chunked transfer: counted while it is read,
    and refused at the first message past the limit, so no more than that is ever held)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = f"request body over {self.max_bytes} bytes"
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_bytes):
            await error_response(413, too_big)(scope, receive, send)
            return
        seen = 0

        async def limited() -> ASGIMessage:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, too_big)  # FastAPI passes it on while reading the body
            return message

        await self.app(scope, limited, send)


def create_app(engine: Engine, limits: ServerLimits | None = None) -> FastAPI:
    """The FastAPI app serving `engine`."""
    limits = limits or ServerLimits()
    app = FastAPI(title="scratchlm", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    created = int(time.time())

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON body: {first.get('ctx', {}).get('error')}")
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "body"
        return error_response(400, f"{where}: {first.get('msg')}", where)

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request to %s failed", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE_HTML

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "model": engine.name}

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        card = {"id": engine.name, "object": "model", "created": created, "owned_by": "scratchlm"}
        card["max_model_len"] = engine.context_length  # vLLM's name for it; the page reads it
        return {"object": "list", "data": [card]}

    def chat_ids(messages: list[Message]) -> list[int]:
        """The prompt ids of a conversation; RequestError when it breaks a limit."""
        if len(messages) > limits.max_messages:
            raise RequestError(f"at most {limits.max_messages} messages per request", "messages")
        for i, message in enumerate(messages):
            if len(message.content) > limits.max_message_chars:
                raise RequestError(
                    f"message {i} is over {limits.max_message_chars} characters", "messages"
                )
        try:
            return engine.encode_chat([m.model_dump() for m in messages])
        except ValueError as exc:
            raise RequestError(str(exc), "messages") from None

    def prompt_ids(prompt: str) -> list[int]:
        if len(prompt) > limits.max_prompt_chars:
            raise RequestError(f"prompt over {limits.max_prompt_chars} characters", "prompt")
        return engine.encode_text(prompt)

    @app.post("/tokenize")
    def tokenize(req: TokenizeRequest) -> dict[str, Any]:
        if (req.prompt is None) == (req.messages is None):
            raise RequestError("send either prompt or messages", "prompt")
        ids = prompt_ids(req.prompt) if req.messages is None else chat_ids(req.messages)
        return {"count": len(ids), "max_model_len": engine.context_length, "tokens": ids}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> Any:
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if len(prompts) != 1:
            raise RequestError("send exactly one prompt per request", "prompt")
        ids = prompt_ids(prompts[0])
        config = sampling_config(req, req.max_tokens, len(ids), limits, engine.context_length)
        return respond(engine, req, "text_completion", ids, config, chat=False)

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest) -> Any:
        ids = chat_ids(req.messages)
        max_tokens, param = req.max_completion_tokens, "max_completion_tokens"
        if max_tokens is None:
            max_tokens, param = req.max_tokens, "max_tokens"
        ctx = engine.context_length
        config = sampling_config(req, max_tokens, len(ids), limits, ctx, param)
        return respond(engine, req, "chat.completion", ids, config, chat=True)

    return app


def respond(
    engine: Engine,
    req: SamplingFields,
    kind: str,
    ids: list[int],
    config: SamplingConfig,
    chat: bool,
) -> Response:
    """Run one request: a whole JSON answer, or an event stream when req.stream is set."""
    # chat=True for completions too: stop at any chat special token rather than print it.
    pieces = engine.stream(ids, config, stop_strings(req.stop), req.seed, chat=True)
    prefix = "chatcmpl" if chat else "cmpl"
    head = {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": engine.name}
    if req.stream:
        with_usage = bool((req.stream_options or {}).get("include_usage"))
        events = _events(head, kind, pieces, len(ids), chat, with_usage)
        no_cache = {"Cache-Control": "no-cache"}
        return StreamingResponse(events, media_type="text/event-stream", headers=no_cache)

    def answer(cancelled: threading.Event) -> dict[str, Any]:
        text = []
        for piece in pieces:
            if cancelled.is_set():
                break
            text.append(piece)
        if chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": "".join(text)}}
        else:
            choice = {"index": 0, "text": "".join(text), "logprobs": None}
        choice["finish_reason"] = pieces.finish_reason
        return {**head, "object": kind, "choices": [choice], "usage": _usage(len(ids), pieces)}

    return CancellableJSON(answer)


class CancellableJSON(Response):
    """A JSON answer built while the response is sent, by `build(cancelled)` in a worker thread.

    When the client disconnects first, `cancelled` is set, `build` returns at its next check (a
    non-streamed generation stops as a streamed one does) and nothing is sent.
    """

    def __init__(self, build: Callable[[threading.Event], dict[str, Any]]) -> None:
        super().__init__(media_type="application/json")
        self._build = build

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cancelled = threading.Event()
        content: dict[str, Any] = {}
        error: Exception | None = None

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            log.debug("client disconnected: cancelling its generation")
            cancelled.set()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            try:
                content = await anyio.to_thread.run_sync(self._build, cancelled)
            except Exception as exc:  # raised below, outside the task group
                error = exc
            group.cancel_scope.cancel()
        if error is not None:
            raise error
        if cancelled.is_set():
            usage = content.get("usage", {})
            log.info("client went away: stopped after %s tokens", usage.get("completion_tokens"))
            return
        await JSONResponse(content)(scope, receive, send)


def _events(
    head: dict[str, Any],
    kind: str,
    pieces: TextStream,
    prompt_tokens: int,
    chat: bool,
    with_usage: bool,
) -> Iterator[str]:
    """Server-sent events for one streamed answer; a failure mid-stream becomes an error event."""
    head = {**head, "object": kind + ".chunk" if chat else kind}

    def chunk(text: str | None, finish: str | None) -> str:
        if chat:
            delta = {} if text is None else {"content": text}
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return _sse({**head, "choices": [choice]})

    try:
        if chat:
            role = {"role": "assistant", "content": ""}
            yield _sse({**head, "choices": [{"index": 0, "delta": role, "finish_reason": None}]})
        for piece in pieces:
            yield chunk(piece, None)
        yield chunk(None, pieces.finish_reason)
        if with_usage:
            yield _sse({**head, "choices": [], "usage": _usage(prompt_tokens, pieces)})
    except Exception as exc:  # the status line is sent: report in-band and keep serving
        log.exception("streamed request failed")
        yield _sse({"error": {"message": f"internal error: {exc}", "type": "server_error"}})
    yield "data: [DONE]\n\n"


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _usage(prompt_tokens: int, pieces: TextStream) -> dict[str, int]:
    done = pieces.completion_tokens
    total = prompt_tokens + done
    return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": total}


def serve(
    checkpoint: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    device: str = "auto",
    limits: ServerLimits | None = None,
) -> None:
    """Load a checkpoint and serve it until interrupted (port 0: any free port)."""
    import uvicorn

    sock = listening_socket(host, port)
    with sock:
        if not _is_loopback(host):
            log.warning(
                "listening on %s: anyone who can reach this machine can use the model", host
            )
        engine = Engine.from_checkpoint(checkpoint, device)
        address = f"[{host}]" if ":" in host else host
        port = sock.getsockname()[1]
        print(f"serving {engine.name} on http://{address}:{port}/ (API under /v1; Ctrl-C stops)")
        config = uvicorn.Config(create_app(engine, limits), log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (IPv6 when the host has a colon, as uvicorn does); a
    one-line ValueError when that cannot be done."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {port}")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "pick another --port" if exc.errno == errno.EADDRINUSE else "check --host and --port"
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(checkpoint: str, host: str, port: int, device: str, max_tokens: int) -> None:
    """`scratchlm serve`: `serve` with the request cap of --max-tokens."""
    if max_tokens < 1:
        raise ValueError(f"--max-tokens must be >= 1, got {max_tokens}")
    serve(checkpoint, host, port, device, ServerLimits(max_tokens))


COMMAND = Command(
    run=run_serve,
    description="Serve /v1/completions, /v1/chat/completions (stream: true as server-sent "
    "events), /v1/models, /health, and a chat page at /. Binds 127.0.0.1 unless --host says "
    "otherwise.",
    args=(
        CHECKPOINT_ARG,
        arg("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)"),
        arg("--port", type=int, default=8000, help="port (default 8000)"),
        DEVICE_ARG,
        arg("--max-tokens", type=int, default=1024, help="cap on max_tokens (1024)"),
    ),
)
