"""The OpenAI-compatible proxy: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Point any OpenAI client at ``http://host:port/v1`` and every call is answered by
one of the server's models — with an ``openai:`` model whose base URL is another
server, tuneback is a logging proxy in front of it — and recorded as a run. The
run id comes back as the response ``id`` and in ``X-Tuneback-Run-Id``, with a
presigned link for rating it in ``X-Tuneback-Feedback-Url``.

Errors use OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``)
so clients raise their usual exceptions; an upstream failure keeps the
upstream's status. Model streams are synchronous generators: a streamed answer
is read by the app's background work (a thread per stream, so the event loop
never waits on a model), and a client that disconnects stops the model and
leaves a cancelled run with the partial answer. What a call records is decided
in :mod:`tuneback.services.completions`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from tuneback.domain import ChatMessage, Conversation
from tuneback.domain.access import Permission
from tuneback.errors import ModelError, ModelUnavailableError, TuneBackError, ValidationError
from tuneback.models import ModelAdapter, ModelOptions, Usage
from tuneback.server.access import checks_itself
from tuneback.server.auth import Caller, authenticate
from tuneback.server.security import public_url
from tuneback.services.background import BackgroundWork
from tuneback.services.calls import ModelCall
from tuneback.services.catalog import ModelCatalog
from tuneback.services.completions import ProxiedCompletion, conversation_for

log = logging.getLogger("tuneback.proxy")

router = APIRouter(prefix="/v1", tags=["openai-compatible proxy"], include_in_schema=False)
PROXY_RULE: Permission = "log"
"""Who may call the model through the proxy: key roles that may log runs."""

RUN_HEADER = "X-Tuneback-Run-Id"
FEEDBACK_HEADER = "X-Tuneback-Feedback-Url"
CONVERSATION_HEADER = "X-Tuneback-Conversation"
FEEDBACK_KEY_HEADER = "X-Tuneback-Feedback-Key"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
_REASON_STATUS = {
    "connection_refused": 502,
    "connection_error": 502,
    "stream_broken": 502,
    "timeout": 504,
    "context_length_exceeded": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "rate_limited": 429,
}


class ProxyError(Exception):
    """A failure answered in OpenAI's error shape."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        type_ = _ERROR_TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")
        return {
            "error": {
                "message": self.message,
                "type": type_,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def model_failure(exc: TuneBackError) -> ProxyError:
    details = exc.details if isinstance(exc.details, dict) else {}
    reason = details.get("reason")
    status = details.get("status")
    if not isinstance(status, int) or status < 400:
        if isinstance(exc, ModelUnavailableError):
            status = 503
        elif isinstance(exc, ModelError):
            status = _REASON_STATUS.get(str(reason), 502)
        else:
            status = exc.status_code
    return ProxyError(status, exc.message, code=str(reason or exc.type))


# -- the request ---------------------------------------------------------------------


class ProxyMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def as_chat(self) -> ChatMessage:
        role = "system" if self.role == "developer" else self.role
        if isinstance(self.content, list):
            texts = []
            for part in self.content:
                if part.get("type") != "text":
                    raise ProxyError(
                        400,
                        f"message parts of type {part.get('type')!r} are not supported; send text",
                        param="messages",
                        code="unsupported_content",
                    )
                texts.append(str(part.get("text", "")))
            return ChatMessage(role=role, content="".join(texts))
        return ChatMessage(role=role, content=self.content or "")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    # Clients send many optional knobs; the ones no adapter can honour are
    # refused below, the harmless rest are recorded in the run and not sent on.
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ProxyMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1)
    user: str | None = Field(default=None, max_length=200)

    def options(self) -> ModelOptions:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        return ModelOptions(
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stop=stop,
            seed=self.seed,
        )

    def refuse_unsupported(self) -> None:
        extra = self.model_extra or {}
        for name in ("tools", "functions", "tool_choice", "function_call"):
            if extra.get(name):
                raise ProxyError(
                    400,
                    f"{name} is not supported by the tuneback proxy",
                    param=name,
                    code="unsupported_parameter",
                )
        if self.n not in (None, 1):
            raise ProxyError(400, "only n=1 is supported", param="n", code="unsupported_value")
        response_format = extra.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            raise ProxyError(
                400,
                "response_format other than text is not supported by the tuneback proxy",
                param="response_format",
                code="unsupported_value",
            )


def names_of(adapter: ModelAdapter) -> tuple[str, str, str]:
    """What a client may call a model: its spec, the part after the backend, its name."""
    return adapter.spec, adapter.spec.split(":", 1)[-1], adapter.name


def find_model(models: ModelCatalog, name: str | None, *, any_model: bool = False) -> ModelAdapter:
    """The adapter a client means: its spec (``openai:gpt-4o``), the part after the
    backend (``gpt-4o``) or its display name. With ``any_model`` (``serve
    --any-model``), a request that names no model or one not offered here (TGI-style
    clients send ``tgi`` or ``dummy``) gets the default model instead of an error."""
    for adapter in models:
        if name in names_of(adapter):
            return adapter
    if any_model:
        return models.default
    if name is None:
        raise ProxyError(
            400,
            "model: Field required (name one of GET /v1/models; a server started with "
            "--any-model answers with its default model instead)",
            param="model",
            code="invalid_request",
        )
    raise ProxyError(
        404,
        f"the model {name!r} is not offered here; GET /v1/models lists the ones that are "
        "(a server started with --any-model answers with its default model instead)",
        param="model",
        code="model_not_found",
    )


def _conversation(
    request: Request, body: ChatRequest, inputs: list[ChatMessage], project: str, model: str
) -> Conversation | None:
    try:
        return conversation_for(
            named=request.headers.get(CONVERSATION_HEADER),
            user=body.user,
            inputs=inputs,
            project=project,
            model=model,
        )
    except ValidationError:
        raise ProxyError(
            400,
            f"{CONVERSATION_HEADER} must be 1-64 letters, digits or . _ : -",
            code="invalid_conversation_id",
        ) from None


# -- one call ------------------------------------------------------------------------


class Call:
    """One proxied completion: the model call behind it and what the client is told."""

    def __init__(
        self,
        request: Request,
        caller: Caller,
        body: ChatRequest,
        adapter: ModelAdapter,
        inputs: list[ChatMessage],
        conversation: Conversation | None,
    ) -> None:
        self.request = request
        self.caller = caller
        self.body = body
        self.adapter = adapter
        self.model = ModelCall(adapter, inputs, body.options())
        self.completion = ProxiedCompletion(
            self.model,
            project=caller.project(),
            user=body.user,
            conversation=conversation,
            requested_model=body.model,
            streamed=body.stream,
            ignored_params=list((body.model_extra or {}).keys()),
            default_model=body.model not in names_of(adapter),
        )
        self.run_id = self.model.run_id
        self.created = int(time.time())

    @property
    def model_name(self) -> str:
        """The model named in the answer: as asked, unless the default stood in for it."""
        asked = self.body.model
        return asked if asked is not None and asked in names_of(self.adapter) else self.adapter.spec

    def record(self) -> None:
        """Store the run (and its conversation, the first time); once per call."""
        self.completion.record(self.request.app.state.api.runs)

    async def record_async(self) -> None:
        """:meth:`record` awaiting the commit without holding a thread."""
        await self.completion.record_async(self.request.app.state.api.runs)

    @property
    def project(self) -> str:
        return self.caller.project()

    def headers(self) -> dict[str, str]:
        key = self.request.headers.get(FEEDBACK_KEY_HEADER) or "thumbs"
        token, _ = self.request.app.state.api.keys.issue_token(
            run_id=self.run_id,
            key=key,
            project=self.project,
            api_key_id=self.caller.key_id,
            expires_in=timedelta(hours=3),
        )
        url = public_url(self.request, "feedback_with_token", token=token)
        return {RUN_HEADER: self.run_id, FEEDBACK_HEADER: url}

    def usage_json(self) -> dict[str, int]:
        usage = self.model.usage or Usage(0, 0)
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }


async def _fail(call: Call, exc: TuneBackError) -> JSONResponse:
    await call.record_async()
    return model_failure(exc).response()


def _generate(call: Call) -> TuneBackError | None:
    """Run the model to the end; in a worker thread when the model blocks."""
    try:
        for _ in call.model:
            pass
    except TuneBackError as exc:
        return exc
    return None


async def _complete(call: Call) -> dict[str, Any] | JSONResponse:
    blocks = call.adapter.blocks
    failure = await run_in_threadpool(_generate, call) if blocks else _generate(call)
    if failure is not None:
        return await _fail(call, failure)
    await call.record_async()
    return {
        "id": call.run_id,
        "object": "chat.completion",
        "created": call.created,
        "model": call.model_name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": call.model.text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": call.usage_json(),
    }


def _chunk(call: Call, delta: dict[str, Any], finish: str | None = None) -> str:
    payload = {
        "id": call.run_id,
        "object": "chat.completion.chunk",
        "created": call.created,
        "model": call.model_name,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class Pump:
    """Background work that reads the model's chunks as they come and hands them to the loop.

    Each chunk reaches the response as soon as the model yields it: no trip to
    a thread pool and no write stands between the model's chunk and the
    client's. When the client goes away, the model is stopped at its next
    chunk and what was said is stored as a cancelled run. At shutdown the app's
    background work stops it the same way, and waits for the run to be stored.
    """

    _END = object()

    def __init__(self, call: Call, background: BackgroundWork) -> None:
        self.call = call
        self.background = background
        self.loop = asyncio.get_running_loop()
        self.chunks: asyncio.Queue[object] = asyncio.Queue()
        self._state = threading.Lock()
        self._abandoned = False
        self._ended = False

    def start(self) -> None:
        self.background.start(self._run, name="tuneback-stream", cancel=self.call.model.cancel)

    def _put(self, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is reading
            self.loop.call_soon_threadsafe(self.chunks.put_nowait, item)

    def _run(self) -> None:
        model = self.call.model
        try:
            while (chunk := model.next_chunk()) is not None:
                self._put(chunk)
            self._put(self._END)
        except TuneBackError as exc:
            self._put(exc)
        finally:
            with self._state:
                self._ended = True
                abandoned = self._abandoned
            if abandoned:
                _abandon(self.call)

    def abandon(self) -> None:
        """The client went away: stop at the next chunk, then keep the partial answer."""
        self.call.model.cancel()
        with self._state:
            self._abandoned = True
            ended = self._ended
        if ended:
            # The model had finished: the run is stored here, off the event loop,
            # since this coroutine may already be cancelled.
            self.background.start(_abandon, self.call, name="tuneback-stream-stop", finishing=True)

    async def next(self) -> str | None:
        """The next chunk, None at the end; raises the model's failure."""
        item = await self.chunks.get()
        if item is self._END:
            return None
        if isinstance(item, TuneBackError):
            raise item
        assert isinstance(item, str)
        return item


async def _events(call: Call, pump: Pump, first: str | None) -> AsyncIterator[str]:
    include_usage = bool(call.body.stream_options and call.body.stream_options.include_usage)
    done = False
    try:
        yield _chunk(call, {"role": "assistant", "content": ""})
        chunk = first
        while chunk is not None:
            yield _chunk(call, {"content": chunk})
            chunk = await pump.next()
        done = True
        yield _chunk(call, {}, "stop")
        if include_usage:
            usage_event = {
                "id": call.run_id,
                "object": "chat.completion.chunk",
                "created": call.created,
                "model": call.model_name,
                "choices": [],
                "usage": call.usage_json(),
            }
            yield f"data: {json.dumps(usage_event)}\n\n"
        # Stored before the stream ends, so a client that rates the answer as
        # soon as it has it finds the run.
        await call.record_async()
        yield "data: [DONE]\n\n"
    except TuneBackError as exc:
        # Headers are gone already: the failure travels as an event, as OpenAI does.
        done = True
        await call.record_async()
        yield f"data: {json.dumps(model_failure(exc).body())}\n\n"
    finally:
        if not done:
            # The client went away: awaiting here could be cancelled too, so the
            # pump's thread stops the model and keeps the partial answer.
            pump.abandon()


def _abandon(call: Call) -> None:
    try:
        call.model.close()
        call.record()
    except Exception:  # pragma: no cover - nothing left to tell the client
        log.exception("could not record the cancelled run %s", call.run_id)


@router.post("/chat/completions")
@checks_itself(PROXY_RULE)
async def chat_completions(request: Request) -> Response:
    try:
        caller = await _caller(request)
        body = await _parse(request)
        body.refuse_unsupported()
        services = request.app.state.services
        adapter = find_model(
            services.models, body.model, any_model=services.settings.proxy_any_model
        )
        inputs = [m.as_chat() for m in body.messages]
        project = caller.project()
        conversation = _conversation(request, body, inputs, project, adapter.spec)
    except ProxyError as exc:
        return exc.response()
    call = Call(request, caller, body, adapter, inputs, conversation)
    keys = request.app.state.api.keys
    headers = call.headers() if keys.secret_ready else await run_in_threadpool(call.headers)
    if not body.stream:
        result = await _complete(call)
        if isinstance(result, JSONResponse):
            result.headers.update(headers)
            return result
        return JSONResponse(result, headers=headers)
    # The first chunk is awaited before answering, so a refused key or a dead
    # upstream still gets its own status code instead of a 200 stream.
    pump = Pump(call, request.app.state.services.background)
    try:
        pump.start()
    except TuneBackError as refused:  # the server is shutting down
        return model_failure(refused).response()
    try:
        first = await pump.next()
    except TuneBackError as failure:
        response = await _fail(call, failure)
        response.headers.update(headers)
        return response
    return StreamingResponse(
        _events(call, pump, first),
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/models")
@checks_itself(PROXY_RULE)
async def list_models(request: Request) -> Response:
    try:
        await _caller(request)
    except ProxyError as exc:
        return exc.response()
    models: ModelCatalog = request.app.state.services.models
    data = [
        {"id": adapter.spec, "object": "model", "created": 0, "owned_by": "tuneback"}
        for adapter in models
    ]
    return JSONResponse({"object": "list", "data": data})


async def _caller(request: Request) -> Caller:
    """The key's holder, who must be allowed to log runs (the proxy's rule)."""
    try:
        caller = await authenticate(request)
        caller.principal.require(PROXY_RULE)
    except HTTPException as exc:
        raise ProxyError(exc.status_code, str(exc.detail), code="invalid_api_key") from None
    except TuneBackError as exc:
        raise ProxyError(exc.status_code, exc.message, code="insufficient_permissions") from None
    return caller


async def _parse(request: Request) -> ChatRequest:
    try:
        raw = await request.body()
        if b"\\u0000" in raw:
            raise ProxyError(
                400, "text may not contain NUL (\\u0000) characters", code="invalid_request"
            )
        return ChatRequest.model_validate_json(raw)
    except HTTPException as exc:
        raise ProxyError(exc.status_code, str(exc.detail), code="request_too_large") from None
    except PydanticValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ProxyError(
            400, f"{where}: {first['msg']}", param=where, code="invalid_request"
        ) from None
