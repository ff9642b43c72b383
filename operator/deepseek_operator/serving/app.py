"""The HTTP surface: OpenAI-compatible routes, health, metrics; every failure is an OpenAI error body."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepseek_operator.serving.engine import (
    Engine,
    EngineBusy,
    EngineDraining,
    EngineFailed,
    EngineStopped,
    GenerationStream,
    SamplingParams,
    cancel_on_exit,
)
from deepseek_operator.serving.loading import LoadedModel, load
from deepseek_operator.serving.metrics import ServerMetrics
from deepseek_operator.serving.protocol import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    GenerationRequest,
    parse_body,
)
from deepseek_operator.serving.reasoning import (
    CLOSE_TAG,
    ReasoningSplitter,
    prompt_opens_reasoning,
)
from deepseek_operator.serving.settings import ServerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A request body beyond this is refused (413) while it is read, before it is parsed: 4 MiB of
text is some million tokens, more than any context holds."""

INLINE_TOKENIZE_CHARS = 8192
"""Prompts up to this long are tokenised on the event loop (well under a millisecond); longer
ones in the one tokenising thread, so a huge prompt never stalls liveness or other requests."""

COMPOSED_CHARS_PER_CHAR = 4
"""How many input characters a tokenizer's normaliser may compose into one (NFC turns a Hangul
L+V+T jamo sequence into one syllable): the slack in the prompt-length bound below."""


def max_prompt_chars(tokenizer: Any, context_length: int) -> int:
    """A prompt longer than this cannot fit the context, whatever it says, so it is refused
    before tokenising: no token stands for more characters than its longest vocabulary entry
    (byte-level and SentencePiece entries spell each character they decode to), and the
    normaliser may compose at most COMPOSED_CHARS_PER_CHAR characters into one."""
    longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
    return COMPOSED_CHARS_PER_CHAR * max(longest, 1) * context_length


@dataclass
class ServerState:
    settings: ServerSettings
    metrics: ServerMetrics
    engine: Engine | None = None
    ready: bool = False
    load_error: str | None = None
    watchdog: asyncio.Task[None] | None = None
    started_at: int = field(default_factory=lambda: int(time.time()))
    max_prompt_chars: int | None = None
    """Set once the model is loaded (`max_prompt_chars()`); None: no bound yet."""
    tokenizing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tokenize")
    )
    """One thread: tokenisers hold the GIL for part of their work, so several at once would
    starve the event loop; long prompts wait their turn instead."""

    async def off_loop(self, size: int, work: Callable[[], T]) -> T:
        """`work()` on the event loop when `size` (characters) is small, else on the
        tokenising thread."""
        if size <= INLINE_TOKENIZE_CHARS:
            return work()
        return await asyncio.get_running_loop().run_in_executor(self.tokenizing, work)

    @property
    def draining(self) -> bool:
        return self.engine is not None and self.engine.draining

    def begin_drain(self) -> None:
        self.ready = False
        self.metrics.ready.set(0)
        if self.engine is not None:
            self.engine.draining = True


def create_app(
    settings: ServerSettings,
    *,
    on_load_failure: Callable[[BaseException], None] | None = None,
) -> FastAPI:
    """The app; weights load in the background so liveness answers while they do."""
    metrics = ServerMetrics(settings.deployment_label, settings.pool_label)
    state = ServerState(settings=settings, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_load_and_warm_up(state, on_load_failure))
        try:
            yield
        finally:
            task.cancel()
            if state.watchdog is not None:
                state.watchdog.cancel()
            if state.engine is not None:
                await asyncio.to_thread(state.engine.stop)
            state.tokenizing.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="DeepSeek model server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = state
    app.add_middleware(_CountRequests, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else None
        body = ApiError(error.status_code, str(error.detail), code=code).body()
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        body = ApiError(500, "internal server error", type_="server_error").body()
        return JSONResponse(body, status_code=500)

    @app.get("/health/live")
    async def live() -> JSONResponse:
        if state.load_error is not None or (state.engine is not None and not state.engine.alive):
            return JSONResponse({"status": "dead", "error": state.load_error}, status_code=503)
        return JSONResponse({"status": "alive"})

    @app.get("/health/ready")
    async def ready() -> JSONResponse:
        if state.ready and not state.draining:
            return JSONResponse({"status": "ready"})
        reason = "draining" if state.draining else "loading"
        return JSONResponse({"status": reason}, status_code=503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models() -> JSONResponse:
        context = state.engine.loaded.context_length if state.engine else None
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": settings.served_model_name,
                        "object": "model",
                        "created": state.started_at,
                        "owned_by": "deepseek-operator",
                        "max_model_len": context,
                    }
                ],
            }
        )

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = parse_body(CompletionRequest, await _json_body(request))
        engine = _engine_for(state, body)
        loaded = engine.loaded
        prompt_ids = await _completion_prompt_ids(body, loaded, state)
        params = _sampling(body, body.max_tokens, len(prompt_ids), loaded.context_length, settings)
        stream = _submit(engine, prompt_ids, params)
        reply = _Reply(kind="text_completion", model=settings.served_model_name, prefix="cmpl")
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_completion_events(stream, reply, include_usage))
        with cancel_on_exit(stream):
            text = await _collect(stream)
        return JSONResponse(
            reply.envelope(
                choices=[
                    {
                        "index": 0,
                        "text": text,
                        "logprobs": None,
                        "finish_reason": stream.finish_reason,
                    }
                ],
                usage=_usage(stream),
            )
        )

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = parse_body(ChatRequest, await _json_body(request))
        engine = _engine_for(state, body)
        loaded = engine.loaded
        size = sum(len(message.text()) for message in body.messages)
        _check_prompt_size(state, size, loaded, "messages")
        prompt_text = await state.off_loop(size, lambda: _render_chat(body, loaded))
        prompt_ids = await state.off_loop(
            len(prompt_text),
            lambda: loaded.tokenizer.encode(prompt_text, add_special_tokens=False),
        )
        max_tokens = body.requested_max_tokens()
        params = _sampling(body, max_tokens, len(prompt_ids), loaded.context_length, settings)
        reasoning = _reasoning_enabled(settings, loaded)
        splitter = ReasoningSplitter(prompt_opens_reasoning(prompt_text)) if reasoning else None
        stream = _submit(engine, prompt_ids, params)
        reply = _Reply(kind="chat.completion", model=settings.served_model_name, prefix="chatcmpl")
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_chat_events(stream, reply, splitter, include_usage))
        with cancel_on_exit(stream):
            text = await _collect(stream)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if splitter is not None:
            first, last = splitter.feed(text), splitter.finish()
            message["content"] = first.content + last.content
            message["reasoning_content"] = (
                (first.reasoning + last.reasoning) if splitter.saw_reasoning else None
            )
        return JSONResponse(
            reply.envelope(
                choices=[
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": stream.finish_reason,
                    }
                ],
                usage=_usage(stream),
            )
        )

    return app


async def _load_and_warm_up(
    state: ServerState, on_failure: Callable[[BaseException], None] | None
) -> None:
    try:
        loaded: LoadedModel = await asyncio.to_thread(load, state.settings)
        engine = Engine(loaded, state.settings, state.metrics)
        await asyncio.to_thread(engine.start)
        state.max_prompt_chars = max_prompt_chars(loaded.tokenizer, loaded.context_length)
        state.engine = engine
        state.watchdog = asyncio.create_task(engine.watch())
        await engine.warm_up()
        if not engine.draining:
            state.ready = True
            state.metrics.ready.set(1)
        log.info(
            "model %s ready on %s (%s)",
            state.settings.served_model_name,
            loaded.device,
            loaded.precision,
        )
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        state.load_error = f"{type(error).__name__}: {error}"
        log.error("loading the model failed: %s", state.load_error)
        if on_failure is not None:
            on_failure(error)


class _CountRequests:
    """Counts finished API requests by endpoint and status (streaming responses included)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.count_request(scope["path"], status)


async def _json_body(request: Request) -> Any:
    """The body as JSON; 413 as soon as it grows past MAX_BODY_BYTES (announced or not), 400
    for bytes that are not UTF-8 JSON or for text no tokenizer can encode."""
    too_large = ApiError(413, f"the request body exceeds {MAX_BODY_BYTES} bytes")
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
        _refuse_unpaired_surrogates(body, "")
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, f"the request body is not valid JSON: {error}") from None
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply") from None
    return body


def _refuse_unpaired_surrogates(value: Any, path: str) -> None:
    """JSON may escape half of a UTF-16 pair ("\\ud800") on its own; such a string is no text
    at all, so no tokenizer can encode it and no reply could echo it: a 400 naming the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            where = path or "(body)"
            raise ApiError(
                400,
                f"{where}: holds an unpaired UTF-16 surrogate escape at character "
                f"{error.start}; send the character itself or both halves of its pair",
                param=path or None,
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unpaired_surrogates(key, path)
            _refuse_unpaired_surrogates(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unpaired_surrogates(item, f"{path}.{index}" if path else str(index))


def _check_prompt_size(state: ServerState, size: int, loaded: LoadedModel, param: str) -> None:
    """Refuse, before tokenising, a prompt too long to fit the context whatever it says."""
    bound = state.max_prompt_chars
    if bound is not None and size > bound:
        raise ApiError(
            400,
            f"This model's maximum context length is {loaded.context_length} tokens. However, "
            f"your prompt has {size} characters, more than that many tokens can hold. Please "
            "reduce the length of the prompt.",
            param=param,
            code="context_length_exceeded",
        )


def _engine_for(state: ServerState, body: GenerationRequest) -> Engine:
    if body.model != state.settings.served_model_name:
        raise ApiError(
            404,
            f"the model {body.model!r} does not exist; this server serves {state.settings.served_model_name!r}",
            param="model",
            code="model_not_found",
        )
    body.refuse_unsupported()
    if state.draining:
        raise ApiError(
            503,
            "the server is shutting down and takes no new requests",
            type_="server_error",
            code="server_draining",
            headers={"Connection": "close"},
        )
    if not state.ready or state.engine is None:
        raise ApiError(
            503,
            "the model is still loading",
            type_="server_error",
            code="model_loading",
            headers={"Retry-After": "5"},
        )
    return state.engine


async def _completion_prompt_ids(
    body: CompletionRequest, loaded: LoadedModel, state: ServerState
) -> list[int]:
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
        if len(prompt) > loaded.context_length:
            raise ApiError(
                400,
                f"This model's maximum context length is {loaded.context_length} tokens. "
                f"However, your prompt has {len(prompt)} tokens. Please reduce the length of "
                "the prompt.",
                param="prompt",
                code="context_length_exceeded",
            )
        vocab = len(loaded.tokenizer)
        ids = [int(token) for token in prompt]
        bad = next((token for token in ids if not 0 <= token < vocab), None)
        if bad is not None:
            raise ApiError(
                400,
                f"prompt: token id {bad} is outside the vocabulary (0..{vocab - 1})",
                param="prompt",
            )
        return ids
    first = prompt if isinstance(prompt, str) else (prompt[0] if prompt else "")
    text = str(first)  # a list of ints was handled above: this is one text prompt
    _check_prompt_size(state, len(text), loaded, "prompt")
    ids = await state.off_loop(
        len(text), lambda: loaded.tokenizer.encode(text, add_special_tokens=True)
    )
    if not ids:
        raise ApiError(400, "prompt: must not be empty", param="prompt")
    return list(ids)


def _render_chat(body: ChatRequest, loaded: LoadedModel) -> str:
    tokenizer = loaded.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ApiError(
            400, "this model has no chat template; use /v1/completions", param="messages"
        )
    messages = [{"role": message.role, "content": message.text()} for message in body.messages]
    try:
        rendered = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
    except Exception as error:  # the template raises for orderings it does not support
        raise ApiError(
            400, f"messages: the chat template rejected them: {error}", param="messages"
        ) from None
    return str(rendered)


def _sampling(
    body: GenerationRequest,
    max_tokens: int | None,
    prompt_tokens: int,
    context: int,
    settings: ServerSettings,
) -> SamplingParams:
    room = context - prompt_tokens
    if room <= 0:
        raise ApiError(
            400,
            f"This model's maximum context length is {context} tokens. However, your prompt has "
            f"{prompt_tokens} tokens. Please reduce the length of the prompt.",
            param="messages" if isinstance(body, ChatRequest) else "prompt",
            code="context_length_exceeded",
        )
    if max_tokens is None:
        max_tokens = min(settings.default_max_tokens, room)
    elif max_tokens < 1:
        raise ApiError(400, f"max_tokens: must be at least 1, got {max_tokens}", param="max_tokens")
    elif max_tokens > room:
        raise ApiError(
            400,
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the prompt, {max_tokens} for "
            "the completion). Please reduce the prompt or max_tokens.",
            param="max_tokens",
            code="context_length_exceeded",
        )
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_sequences(),
        ignore_eos=body.ignore_eos,
    )


def _submit(engine: Engine, prompt_ids: list[int], params: SamplingParams) -> GenerationStream:
    try:
        return engine.submit(prompt_ids, params)
    except EngineBusy as busy:
        raise ApiError(
            429,
            str(busy),
            type_="rate_limit_error",
            code="too_many_requests",
            headers={"Retry-After": str(busy.retry_after_seconds)},
        ) from None
    except EngineDraining as draining:
        raise ApiError(
            503,
            str(draining),
            type_="server_error",
            code="server_draining",
            headers={"Connection": "close"},
        ) from None


def _reasoning_enabled(settings: ServerSettings, loaded: LoadedModel) -> bool:
    if settings.reasoning is not None:
        return settings.reasoning
    return CLOSE_TAG in loaded.tokenizer.get_vocab()


def _failure(failed: EngineFailed) -> ApiError:
    """What a client is told when its generation ends unfinished."""
    if isinstance(failed, EngineStopped):
        return ApiError(
            503,
            str(failed),
            type_="server_error",
            code="server_shutting_down",
            headers={"Connection": "close"},
        )
    return ApiError(500, f"generation failed: {failed}", type_="server_error")


async def _collect(stream: GenerationStream) -> str:
    try:
        return await stream.text()
    except EngineFailed as failed:
        raise _failure(failed) from None


def _usage(stream: GenerationStream) -> dict[str, int]:
    return {
        "prompt_tokens": stream.prompt_tokens,
        "completion_tokens": stream.completion_tokens,
        "total_tokens": stream.prompt_tokens + stream.completion_tokens,
    }


@dataclass
class _Reply:
    kind: str
    model: str
    prefix: str
    id: str = ""
    created: int = 0

    def __post_init__(self) -> None:
        self.id = f"{self.prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def envelope(
        self, *, choices: list[dict[str, Any]], usage: dict[str, int] | None, chunk: bool = False
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "id": self.id,
            "object": f"{self.kind}.chunk"
            if chunk and self.kind == "chat.completion"
            else self.kind,
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None or not chunk:
            reply["usage"] = usage
        return reply


def _sse(events: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    async def encoded() -> AsyncIterator[bytes]:
        async for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(
        encoded(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def _completion_events(
    stream: GenerationStream, reply: _Reply, include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    with cancel_on_exit(stream):
        try:
            async for delta in stream:
                if delta.text or delta.finish_reason or delta.first_token:
                    choice = {
                        "index": 0,
                        "text": delta.text,
                        "logprobs": None,
                        "finish_reason": delta.finish_reason,
                    }
                    yield reply.envelope(choices=[choice], usage=None, chunk=True)
        except EngineFailed as failed:
            yield _failure(failed).body()
            return
    if include_usage:
        yield reply.envelope(choices=[], usage=_usage(stream), chunk=True)


async def _chat_events(
    stream: GenerationStream, reply: _Reply, splitter: ReasoningSplitter | None, include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return reply.envelope(choices=[choice], usage=None, chunk=True)

    yield chunk({"role": "assistant", "content": ""})
    with cancel_on_exit(stream):
        try:
            async for delta in stream:
                if splitter is None:
                    if delta.text:
                        yield chunk({"content": delta.text})
                else:
                    parts = [splitter.feed(delta.text)]
                    if delta.finish_reason is not None:
                        parts.append(splitter.finish())
                    for part in parts:
                        if part.reasoning:
                            yield chunk({"reasoning_content": part.reasoning})
                        if part.content:
                            yield chunk({"content": part.content})
                if delta.finish_reason is not None:
                    yield chunk({}, delta.finish_reason)
        except EngineFailed as failed:
            yield _failure(failed).body()
            return
    if include_usage:
        yield reply.envelope(choices=[], usage=_usage(stream), chunk=True)
