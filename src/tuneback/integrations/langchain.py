"""Log LangChain runs to tuneback: chat-model and LLM calls, and the chains around them.

::

    from tuneback.integrations.langchain import trace

    with trace() as t:
        answer = chain.invoke({"question": "Why is the sky blue?"})
    tuneback.Client().feedback(t.run_ids[0], type="rating", value="good")

:func:`trace` is the equivalent of LangChain's ``collect_runs``: every runnable
invoked inside it is logged, and ``t.run_ids`` holds the top-level runs' ids
(``t.llm_run_ids`` the model calls'). :class:`TunebackCallbackHandler` does the
logging and can also be passed on its own, ``config={"callbacks": [handler]}``.

A run's tuneback id is LangChain's own run id, so ``config={"run_id": uuid}``
names the run before it starts and feedback can be given on ``str(uuid)``.
Model calls are logged with the rendered messages, the model, its parameters,
latency, time to first token (when streamed) and token counts; chains,
prompts, parsers and tools as their own runs, children pointing at their
parent. Logging goes through :class:`tuneback.Client`'s background batcher
and never raises into the chain.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from tuneback.client import Client

log = logging.getLogger("tuneback.client")

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}
_NOT_PARAMS = frozenset({"_type", "stream", "model", "model_name", "stop"})


@dataclass
class _Pending:
    """A run that has started and not yet ended."""

    run_type: str
    name: str | None
    inputs: Any
    parent_run_id: str | None
    tags: list[str]
    metadata: dict[str, Any]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None


class TunebackCallbackHandler(BaseCallbackHandler):
    """Logs each LangChain run it sees as a tuneback run with LangChain's run id.

    ``client`` is where runs go (by default a :class:`tuneback.Client` made
    from ``TUNEBACK_URL`` and ``TUNEBACK_API_KEY``); ``user``, ``tags`` and
    ``metadata`` go on every run.
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        user: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.client = client or Client()
        self.user = user
        self.tags = list(tags or ())
        self.metadata = dict(metadata or {})
        self.run_ids: list[str] = []
        """The ids of the top-level runs this handler logged, in the order they ended."""
        self.llm_run_ids: list[str] = []
        """The ids of the model calls this handler logged, in the order they ended."""
        self._pending: dict[UUID, _Pending] = {}
        self._lock = threading.Lock()

    # -- starts ------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        rendered = [_message(m) for m in messages[0]] if messages else []
        self._start_model(run_id, parent_run_id, rendered, serialized, tags, metadata, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        rendered = [{"role": "user", "content": prompts[0]}] if prompts else []
        self._start_model(run_id, parent_run_id, rendered, serialized, tags, metadata, kwargs)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: dict[str, Any] | Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, "chain", serialized, kwargs, inputs, parent_run_id, tags, metadata)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        given = inputs if inputs is not None else {"input": input_str}
        self._start(run_id, "tool", serialized, kwargs, given, parent_run_id, tags, metadata)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            pending = self._pending.get(run_id)
            if pending is not None and pending.first_token is None:
                pending.first_token = time.perf_counter()

    # -- ends --------------------------------------------------------------------

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        output, prompt_tokens, completion_tokens = _result(response)
        self._end(
            run_id,
            "ok",
            output,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "error", None, error=error)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "ok", _text(outputs))

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "error", None, error=error)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "ok", _text(output))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, "error", None, error=error)

    # -- the work ----------------------------------------------------------------

    def _start_model(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        rendered: list[dict[str, str]],
        serialized: dict[str, Any] | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        invocation = kwargs.get("invocation_params") or {}
        meta = metadata or {}
        model = (
            meta.get("ls_model_name")
            or invocation.get("model")
            or invocation.get("model_name")
            or _name(serialized, kwargs)
        )
        params = {
            k: v
            for k, v in invocation.items()
            if k not in _NOT_PARAMS and isinstance(v, str | int | float | bool)
        }
        self._start(run_id, "llm", serialized, kwargs, rendered, parent_run_id, tags, metadata)
        with self._lock:
            pending = self._pending[run_id]
            pending.model = str(model) if model else None
            pending.params = params

    def _start(
        self,
        run_id: UUID,
        run_type: str,
        serialized: dict[str, Any] | None,
        kwargs: dict[str, Any],
        inputs: Any,
        parent_run_id: UUID | None,
        tags: list[str] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        pending = _Pending(
            run_type=run_type,
            name=_name(serialized, kwargs),
            inputs=inputs,
            parent_run_id=str(parent_run_id) if parent_run_id else None,
            tags=[*self.tags, *(t for t in tags or () if not t.startswith("seq:step:"))],
            metadata={**self.metadata, **_jsonable(_own(metadata or {}))},
        )
        with self._lock:
            self._pending[run_id] = pending

    def _end(
        self,
        run_id: UUID,
        status: str,
        output: str | None,
        *,
        error: BaseException | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, None)
        if pending is None:
            return
        now = time.perf_counter()
        first = pending.first_token
        key = str(run_id)
        try:
            self.client.log_run(
                id=key,
                run_type=pending.run_type,
                name=pending.name,
                parent_run_id=pending.parent_run_id,
                inputs=_inputs(pending),
                output=output,
                model=pending.model,
                user=self.user,
                status=status,
                error=f"{type(error).__name__}: {error}" if error is not None else None,
                latency_ms=(now - pending.started) * 1000,
                ttft_ms=None if first is None else (first - pending.started) * 1000,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                params=pending.params or None,
                tags=_unique(pending.tags) or None,
                metadata={**pending.metadata, "integration": "langchain"},
            )
        except Exception:
            log.warning("tuneback: could not log a LangChain run", exc_info=True)
            return
        with self._lock:
            if pending.run_type == "llm":
                self.llm_run_ids.append(key)
            if pending.parent_run_id is None:
                self.run_ids.append(key)


_current: ContextVar[TunebackCallbackHandler | None] = ContextVar(
    "tuneback_langchain_trace", default=None
)
_hooked = False
_hook_lock = threading.Lock()


@contextmanager
def trace(
    client: Client | None = None,
    *,
    user: str | None = None,
    tags: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[TunebackCallbackHandler]:
    """Log every LangChain run started inside the block; yields the handler.

    After the block, ``.run_ids`` holds the top-level runs' ids (one per
    ``invoke``/``stream``), the ones feedback is usually about.
    """
    global _hooked
    with _hook_lock:
        if not _hooked:
            # LangChain adds the handler in this context variable to every run it
            # starts, the way its own collect_runs() works.
            register_configure_hook(_current, True)
            _hooked = True
    handler = TunebackCallbackHandler(client, user=user, tags=tags, metadata=metadata)
    token = _current.set(handler)
    try:
        yield handler
    finally:
        _current.reset(token)


# -- what LangChain hands over -----------------------------------------------------


def _name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any]) -> str | None:
    name = kwargs.get("name")
    if not name and serialized:
        name = serialized.get("name") or (serialized.get("id") or [None])[-1]
    return str(name) if name else None


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text", "") for p in content]
        return "".join(p for p in parts if isinstance(p, str))
    return str(content)


def _message(message: BaseMessage) -> dict[str, str]:
    role = getattr(message, "role", None) if message.type == "chat" else None
    role = role or _ROLES.get(message.type, "user")
    return {"role": role, "content": _content(message.content)}


def _result(response: LLMResult) -> tuple[str | None, int | None, int | None]:
    """The first generation's text, and the tokens the call used."""
    generation = response.generations[0][0] if response.generations[0:1] else None
    if generation is None or not response.generations[0]:
        return None, None, None
    prompt_tokens = completion_tokens = None
    usage = (
        getattr(generation.message, "usage_metadata", None)
        if isinstance(generation, ChatGeneration)
        else None
    )
    if usage:
        prompt_tokens, completion_tokens = usage.get("input_tokens"), usage.get("output_tokens")
    else:
        counts = (response.llm_output or {}).get("token_usage") or {}
        prompt_tokens = counts.get("prompt_tokens")
        completion_tokens = counts.get("completion_tokens")
    return generation.text, prompt_tokens, completion_tokens


def _jsonable(value: Any) -> Any:
    """``value`` as JSON: messages as role and content, anything else unknown as text."""
    if isinstance(value, BaseMessage):
        return _message(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "to_messages"):  # a prompt value
        return [_message(m) for m in value.to_messages()]
    return str(value)


def _inputs(pending: _Pending) -> Any:
    """What a run took: a model's rendered messages, a chain's inputs as an object."""
    if pending.run_type == "llm":
        return pending.inputs
    data = _jsonable(pending.inputs)
    return data if isinstance(data, dict) else {"input": data}


def _text(output: Any) -> str | None:
    """A run's output as text: a message's content, a lone string, else JSON."""
    if output is None:
        return None
    if isinstance(output, str):
        return output
    if isinstance(output, BaseMessage):
        return _content(output.content)
    if isinstance(output, Mapping) and len(output) == 1:
        (only,) = output.values()
        if isinstance(only, str | BaseMessage):
            return _text(only)
    if hasattr(output, "to_string"):  # a prompt value
        return str(output.to_string())
    return json.dumps(_jsonable(output), ensure_ascii=False)


def _own(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata without LangChain's bookkeeping (package versions, run-manager internals)."""
    return {k: v for k, v in metadata.items() if not k.startswith("lc_")}


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
