"""Log every chat completion an ``openai.OpenAI`` / ``AsyncOpenAI`` client makes.

::

    from tuneback.integrations.openai import wrap

    client = wrap(openai.OpenAI())
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[...])
    tuneback.Client().feedback(reply.tuneback_run_id, type="rating", value="good")

Each call becomes a run: the messages sent, the answer, the model that
answered, the request's parameters, latency, time to first token (streams) and
token counts. The run id is made before the call, so it is on the response
(``tuneback_run_id``, or :func:`run_id_of`) and on a stream from its first chunk.

Logging goes through :class:`tuneback.Client`'s background batcher and never
raises into the app: a failure to log is written to the ``tuneback.client``
log and the call's own result (or error) is what the app gets. It is the
in-process alternative to pointing the client at tuneback's proxy.

Streams report tokens when the request asks for them
(``stream_options={"include_usage": True}``); the wrapper does not add it,
because the extra final chunk (with no choices) would change what the app reads.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from tuneback.client import Client
from tuneback.domain import new_id

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

log = logging.getLogger("tuneback.client")

C = TypeVar("C", "OpenAI", "AsyncOpenAI")

RUN_ID_ATTRIBUTE = "tuneback_run_id"

# Request fields that are not the model's parameters: they are logged elsewhere
# in the run (messages, model) or say how to send the request.
_NOT_PARAMS = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "user",
        "metadata",
        "store",
    }
)
_ROLES = {"developer": "system", "function": "tool"}


def wrap(
    client: C,
    tuneback: Client | None = None,
    *,
    user: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> C:
    """Make ``client`` log each ``chat.completions.create`` call; returns the same client.

    ``tuneback`` is the SDK client runs go to (by default one made from
    ``TUNEBACK_URL`` and ``TUNEBACK_API_KEY``). ``user``, ``tags`` and
    ``metadata`` go on every run; a request's own ``user`` field wins.
    """
    sink = _Sink(tuneback or Client(), user, list(tags or ()), dict(metadata or {}))
    completions = client.chat.completions
    create = completions.create
    if getattr(create, "__tuneback_wrapped__", False):
        return client
    traced: Callable[..., Any]
    if inspect.iscoroutinefunction(inspect.unwrap(create)):
        traced = _async_create(create, sink)
    else:
        traced = _sync_create(create, sink)
    traced.__tuneback_wrapped__ = True  # type: ignore[attr-defined]
    # The instance attribute shadows the method for this client only.
    setattr(completions, "create", traced)  # noqa: B010
    return client


def run_id_of(response: object) -> str | None:
    """The run id a wrapped client put on a response or stream (None if it has none)."""
    run_id = getattr(response, RUN_ID_ATTRIBUTE, None)
    return run_id if isinstance(run_id, str) else None


# -- one call --------------------------------------------------------------------


@dataclass
class _Sink:
    client: Client
    user: str | None
    tags: list[str]
    metadata: dict[str, Any]


@dataclass
class _Call:
    """One completion in progress: what was asked, and what came back so far."""

    sink: _Sink
    request: dict[str, Any]
    run_id: str = field(default_factory=new_id)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    parts: list[str] = field(default_factory=list)
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    logged: bool = False

    @contextmanager
    def failing(self) -> Iterator[None]:
        """A request that raises is a failed run."""
        try:
            yield
        except BaseException as exc:
            self.log("error", exc)
            raise

    def returned(self, response: Any, streamed: Callable[[Any, _Call], Any]) -> Any:
        """What the wrapped ``create`` gives back: a stream that logs as it is read, or the
        completion, logged and tagged with its run id."""
        if self.request.get("stream") is True:
            return streamed(response, self)
        self.completed(response)
        return _tag(response, self.run_id)

    def ended(self, exc: BaseException, end: type[BaseException]) -> None:
        """A stream stopped: at its ``end``, or by an error."""
        if isinstance(exc, end):
            self.log("ok")
        else:
            self.log("error", exc)

    def completed(self, response: Any) -> None:
        try:
            choices = getattr(response, "choices", None) or []
            message = getattr(choices[0], "message", None) if choices else None
            self.parts = [str(getattr(message, "content", None) or "")]
            tool_calls = getattr(message, "tool_calls", None)
            if tool_calls:
                self.extra["tool_calls"] = [_dump(call) for call in tool_calls]
            self._took(response)
        except Exception:
            log.debug("tuneback: could not read an OpenAI response", exc_info=True)
        self.log("ok")

    def chunk(self, chunk: Any) -> None:
        try:
            for choice in getattr(chunk, "choices", None) or []:
                if getattr(choice, "index", 0) != 0:
                    continue
                text = getattr(getattr(choice, "delta", None), "content", None)
                if isinstance(text, str) and text:
                    if self.first_token is None:
                        self.first_token = time.perf_counter()
                    self.parts.append(text)
            self._took(chunk)
        except Exception:
            log.debug("tuneback: could not read an OpenAI chunk", exc_info=True)

    def _took(self, response: Any) -> None:
        self.model = getattr(response, "model", None) or self.model
        usage = getattr(response, "usage", None)
        if usage is not None:
            self.prompt_tokens = getattr(usage, "prompt_tokens", None)
            self.completion_tokens = getattr(usage, "completion_tokens", None)

    def log(self, status: str, error: BaseException | None = None) -> None:
        if self.logged:
            return
        self.logged = True
        now = time.perf_counter()
        first = self.first_token
        request = self.request
        try:
            self.sink.client.log_run(
                id=self.run_id,
                inputs=_messages(request.get("messages") or []),
                output="".join(self.parts) if status != "error" else None,
                model=self.model or _text(request.get("model")),
                user=_text(request.get("user")) or self.sink.user,
                status=status,
                error=f"{type(error).__name__}: {error}" if error is not None else None,
                latency_ms=(now - self.started) * 1000,
                ttft_ms=None if first is None else (first - self.started) * 1000,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                params=_params(request),
                tags=self.sink.tags or None,
                metadata={**self.sink.metadata, **self.extra, "integration": "openai"},
            )
        except Exception:
            log.warning("tuneback: could not log an OpenAI call", exc_info=True)


def _sync_create(create: Callable[..., Any], sink: _Sink) -> Callable[..., Any]:
    def traced(*args: Any, **kwargs: Any) -> Any:
        call = _Call(sink, kwargs)
        with call.failing():
            response = create(*args, **kwargs)
        return call.returned(response, TracedStream)

    return traced


def _async_create(create: Callable[..., Any], sink: _Sink) -> Callable[..., Any]:
    async def traced(*args: Any, **kwargs: Any) -> Any:
        call = _Call(sink, kwargs)
        with call.failing():
            response = await create(*args, **kwargs)
        return call.returned(response, AsyncTracedStream)

    return traced


def _tag(response: Any, run_id: str) -> Any:
    try:
        setattr(response, RUN_ID_ATTRIBUTE, run_id)
    except (AttributeError, TypeError, ValueError):
        log.debug("tuneback: could not put the run id on %r", type(response).__name__)
    return response


class _Traced:
    """A stream being logged: the stream's own attributes, and a run even when left early."""

    def __init__(self, stream: Any, call: _Call) -> None:
        self._stream = stream
        self._call = call
        self.tuneback_run_id = call.run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __del__(self) -> None:
        # A loop left with ``break`` and never closed still becomes a run.
        call = self.__dict__.get("_call")
        if call is not None:
            call.log("cancelled")


class TracedStream(_Traced):
    """An OpenAI stream that logs the run when it ends, is closed or fails.

    Iterate it as the stream itself; other attributes (``response``, …) are the
    stream's. A stream left before its end is logged as ``cancelled`` with the
    text received so far.
    """

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except BaseException as exc:
            self._call.ended(exc, StopIteration)
            raise
        self._call.chunk(chunk)
        return chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._call.log("cancelled")

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTracedStream(_Traced):
    """:class:`TracedStream` for ``AsyncOpenAI``."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except BaseException as exc:
            self._call.ended(exc, StopAsyncIteration)
            raise
        self._call.chunk(chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._call.log("cancelled")

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# -- what a request says -----------------------------------------------------------


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _content(content: Any) -> str:
    """A message's content as text: parts lists keep their text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "".join(t for t in texts if isinstance(t, str))
    return "" if content is None else str(content)


def _messages(messages: Any) -> list[dict[str, str]]:
    rendered = []
    for message in messages:
        data = message if isinstance(message, Mapping) else getattr(message, "__dict__", {})
        role = str(data.get("role", "user"))
        rendered.append({"role": _ROLES.get(role, role), "content": _content(data.get("content"))})
    return rendered


def _params(request: Mapping[str, Any]) -> dict[str, Any] | None:
    params = {
        name: value
        for name, value in request.items()
        if name not in _NOT_PARAMS and isinstance(value, str | int | float | bool | list | dict)
    }
    return params or None
