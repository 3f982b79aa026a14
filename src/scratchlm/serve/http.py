"""An OpenAI-compatible HTTP server for one checkpoint (FastAPI + uvicorn), with a chat page at `/`.

Routes: POST /v1/completions and /v1/chat/completions (`"stream": true` answers with server-sent
events, each `data: <chunk JSON>`, then `data: [DONE]`), GET /v1/models, GET /health, GET / (the
page). Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with a 4xx
status for anything the request got wrong: malformed JSON, a missing or mistyped field, sampling
values out of range, max_tokens above the cap, a prompt that does not fit the context, too many or
too long messages, an oversized body. An unexpected failure answers 500 for that request only.

Requests are served from a thread pool; each one gets its own KV cache, and the model's forward
pass keeps no state, so concurrent requests are safe. The host defaults to 127.0.0.1.
"""

import ipaddress
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

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


def error_response(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


def sampling_config(
    req: SamplingFields, max_tokens: int | None, prompt_tokens: int, limits: ServerLimits, ctx: int
) -> SamplingConfig:
    """The request's SamplingConfig; RequestError when a field is out of range or does not fit."""
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
    if not 1 <= max_tokens <= limits.max_tokens:
        raise RequestError(
            f"max_tokens must be in [1, {limits.max_tokens}], got {max_tokens}", "max_tokens"
        )
    if prompt_tokens + max_tokens > ctx:
        raise RequestError(
            f"the model's context is {ctx} tokens; the prompt has {prompt_tokens} and max_tokens "
            f"asks for {max_tokens}: lower max_tokens to {ctx - prompt_tokens} or less",
            "max_tokens",
        )
    return SamplingConfig(
        max_new_tokens=max_tokens, temperature=req.temperature, top_k=req.top_k, top_p=req.top_p
    )


def stop_strings(stop: str | list[str] | None) -> tuple[str, ...]:
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise RequestError("stop takes up to 4 non-empty strings", "stop")
    return tuple(stops)


def create_app(engine: Engine, limits: ServerLimits | None = None) -> FastAPI:
    """The FastAPI app serving `engine`."""
    limits = limits or ServerLimits()
    app = FastAPI(title="scratchlm", docs_url=None, redoc_url=None, openapi_url=None)
    created = int(time.time())

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        size = request.headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > limits.max_body_bytes):
            return error_response(413, f"request body over {limits.max_body_bytes} bytes")
        return await call_next(request)

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

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
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
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest) -> Any:
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if len(prompts) != 1:
            raise RequestError("send exactly one prompt per request", "prompt")
        if len(prompts[0]) > limits.max_prompt_chars:
            raise RequestError(f"prompt over {limits.max_prompt_chars} characters", "prompt")
        ids = engine.encode_text(prompts[0])
        config = sampling_config(req, req.max_tokens, len(ids), limits, engine.context_length)
        return respond(engine, req, "text_completion", ids, config, chat=False)

    @app.post("/v1/chat/completions")
    def chat_completions(req: ChatRequest) -> Any:
        if len(req.messages) > limits.max_messages:
            raise RequestError(f"at most {limits.max_messages} messages per request", "messages")
        for i, message in enumerate(req.messages):
            if len(message.content) > limits.max_message_chars:
                raise RequestError(
                    f"message {i} is over {limits.max_message_chars} characters", "messages"
                )
        try:
            ids = engine.encode_chat([m.model_dump() for m in req.messages])
        except ValueError as exc:
            raise RequestError(str(exc), "messages") from None
        max_tokens = req.max_completion_tokens or req.max_tokens
        config = sampling_config(req, max_tokens, len(ids), limits, engine.context_length)
        return respond(engine, req, "chat.completion", ids, config, chat=True)

    return app


def respond(
    engine: Engine,
    req: SamplingFields,
    kind: str,
    ids: list[int],
    config: SamplingConfig,
    chat: bool,
) -> dict[str, Any] | StreamingResponse:
    """Run one request: a whole JSON answer, or an event stream when req.stream is set."""
    pieces = engine.stream(ids, config, stop_strings(req.stop), req.seed, chat=chat)
    prefix = "chatcmpl" if chat else "cmpl"
    head = {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": engine.name}
    if req.stream:
        with_usage = bool((req.stream_options or {}).get("include_usage"))
        events = _events(head, kind, pieces, len(ids), chat, with_usage)
        no_cache = {"Cache-Control": "no-cache"}
        return StreamingResponse(events, media_type="text/event-stream", headers=no_cache)
    text = "".join(pieces)
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text, "logprobs": None}
    choice["finish_reason"] = pieces.finish_reason
    return {**head, "object": kind, "choices": [choice], "usage": _usage(len(ids), pieces)}


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
    """Load a checkpoint and serve it until interrupted."""
    import uvicorn

    if not _is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine can use the model", host)
    engine = Engine.from_checkpoint(checkpoint, device)
    print(f"serving {engine.name} on http://{host}:{port}/ (API under /v1; Ctrl-C stops)")
    uvicorn.run(create_app(engine, limits), host=host, port=port, log_level="warning")


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
