"""``scripted``: a fake model that plays back replies queued by a test.

Tests of the chat service, the server and the UI need a model whose every answer,
failure and pause they choose. :class:`ScriptedModel` is that fake, built on the real
contract instead of mocks: ``enqueue()`` a script per expected call, run the code
under test, then assert on ``calls`` (what was sent, whether the stream was
cancelled). ``load_gate`` and ``load_error`` exercise the loading states.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from tuneback.domain.conversation import ChatMessage
from tuneback.errors import ModelError
from tuneback.models.base import ModelAdapter, ModelOptions, Usage, estimate_usage
from tuneback.models.echo import split_words


@dataclass(frozen=True)
class Script:
    """One queued answer: its chunks, and optionally a failure after some of them."""

    chunks: tuple[str, ...]
    error: Exception | None = None
    error_after: int | None = None
    delay: float = 0.0
    usage: Usage | None = None


@dataclass
class ScriptedCall:
    """What one ``stream()`` call received, and how far it got."""

    messages: list[ChatMessage]
    options: ModelOptions
    chunks_sent: int = 0
    finished: bool = False
    """True once the whole script ran (including a scripted error being raised)."""
    closed_early: bool = False
    """True when the caller closed the stream before the script ended: a cancel."""
    script: Script | None = field(default=None, repr=False)


class ScriptedModel(ModelAdapter):
    """A model whose replies are queued by the test that uses it."""

    def __init__(
        self,
        replies: list[str] | None = None,
        *,
        spec: str = "scripted",
        name: str | None = None,
        context_window: int = 4096,
        load_gate: threading.Event | None = None,
        load_error: str | None = None,
    ) -> None:
        # A scripted model loads only when the test asked to watch loading happen.
        self.needs_loading = load_gate is not None or load_error is not None
        super().__init__(spec=spec, name=name or "Scripted", context_window=context_window)
        self._queue: deque[Script] = deque()
        self._queue_lock = threading.Lock()
        self._load_gate = load_gate
        self._scripted_load_error = load_error
        self.calls: list[ScriptedCall] = []
        for reply in replies or []:
            self.enqueue(reply)

    def _load(self) -> None:
        if self._load_gate is not None:
            self._load_gate.wait()
        if self._scripted_load_error is not None:
            raise ModelError(self._scripted_load_error)

    def enqueue(
        self,
        reply: str | None = None,
        *,
        chunks: list[str] | None = None,
        error: Exception | None = None,
        delay: float = 0.0,
        error_after: int | None = None,
        usage: Usage | None = None,
    ) -> None:
        """Queue the answer to the next ``stream()`` call.

        ``reply`` is streamed word by word (``chunks`` gives the exact chunks
        instead). ``error`` is raised before the first chunk, or after
        ``error_after`` chunks; ``error_after`` alone raises a ``ModelError``.
        ``delay`` seconds pass before each chunk, leaving time to cancel.
        ``usage`` replaces the estimated usage.
        """
        if reply is not None and chunks is not None:
            raise ValueError("give reply or chunks, not both")
        pieces = tuple(chunks) if chunks is not None else tuple(split_words(reply or ""))
        if error is None and error_after is not None:
            error = ModelError(f"scripted failure after {error_after} chunks")
        with self._queue_lock:
            self._queue.append(Script(pieces, error, error_after, delay, usage))

    @property
    def pending(self) -> int:
        """Scripts still queued."""
        with self._queue_lock:
            return len(self._queue)

    def _next_script(self) -> Script:
        with self._queue_lock:
            if not self._queue:
                raise ModelError(
                    f"scripted model: no reply queued for call {len(self.calls)} "
                    "— call enqueue() before the code under test streams",
                    details={"backend": self.spec, "reason": "script_exhausted"},
                )
            return self._queue.popleft()

    def _generate(
        self, messages: list[ChatMessage], options: ModelOptions
    ) -> Iterator[str | Usage]:
        call = ScriptedCall(messages=list(messages), options=options.model_copy(deep=True))
        self.calls.append(call)
        script = self._next_script()
        call.script = script
        try:
            fail_at = script.error_after if script.error_after is not None else 0
            for index, chunk in enumerate(script.chunks):
                if script.error is not None and index == fail_at:
                    break
                if script.delay:
                    time.sleep(script.delay)
                call.chunks_sent += 1
                yield chunk
            if script.error is not None:
                call.finished = True
                raise script.error
            call.finished = True
            yield script.usage or estimate_usage(messages, "".join(script.chunks))
        finally:
            call.closed_early = not call.finished


def create_scripted(argument: str | None = None) -> ScriptedModel:
    """Factory for ``scripted``: a new, empty model each time it is resolved."""
    return ScriptedModel(spec="scripted" if argument is None else f"scripted:{argument}")
