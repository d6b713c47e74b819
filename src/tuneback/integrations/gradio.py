"""Gradio: a ``gr.ChatInterface`` or ``gr.Blocks`` chat whose answers are runs, 👍/👎 ratings.

::

    import gradio as gr
    from tuneback.integrations.gradio import track

    demo = track(gr.ChatInterface(reply), model="my-model")
    demo.launch()

    with gr.Blocks() as chat:           # Gradio's "chatbot with like" app
        chatbot = gr.Chatbot()
        box = gr.Textbox()
        box.submit(add_message, [chatbot, box], [chatbot, box]).then(bot, chatbot, chatbot)
        chatbot.like(vote, None, None)
    track(chat, model="my-model").launch()

:func:`track` wraps the interface's function, or the Blocks' handlers that
return the Chatbot's messages, so each answer is logged as a run (the messages
sent, the answer, latency, time to first token for a streaming function, a
ChatInterface's additional inputs as params) inside a tuneback conversation,
with the user's message and the answer as its messages. The answer's message
carries its ids in ``metadata["id"]`` (``tuneback:<conversation>:<message>:<run>``),
which the Chatbot keeps and shows nothing of; the event handlers read them back:

* ``like``: 👍/👎 is a ``thumbs`` rating on the run, clicking it off takes it
  back, and any other feedback option is recorded as a ``flag`` comment;
* ``select`` + a comment box under the chat: text on the selected answer (the
  last one when none is selected);
* ``retry``, ``undo`` (where the app has them), ``copy``: implicit feedback
  (``regenerated``, ``dismissed``, ``copied``) on the answer's run;
* ``clear`` (the Chatbot's, a ``gr.ClearButton``'s, or a handler that empties
  the chat): the conversation ends.

Everything is sent from one background thread, in order, through
:class:`tuneback.Client`; a failure is logged to ``tuneback.client`` and never
reaches the app or slows an answer.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gradio as gr
from gradio.context import LocalContext

from tuneback.client import Client
from tuneback.domain import ChatMessage, new_id
from tuneback.errors import ConfigurationError
from tuneback.integrations.gradio_handlers import (
    HOW_TO_TRACK,
    Asked,
    Calls,
    HandlerCalls,
    InterfaceCalls,
    answering_handlers,
    chatbot_of,
    clearing_triggers,
    interface_in,
)
from tuneback.integrations.gradio_messages import (
    MARK,
    Turn,
    answer_at,
    last_turn,
    message_at,
    role_of,
    text_of,
    turn_of,
)

log = logging.getLogger("tuneback.client")
Demo = TypeVar("Demo", bound=gr.Blocks)

_METADATA = {"integration": "gradio"}
# How many answers' ratings (and sessions' conversations) are remembered, to
# take a rating back or end a conversation; the oldest are forgotten first.
_REMEMBERED = 100_000


@dataclass
class _Answer:
    """One call of a wrapped function, from its start to its logging."""

    calls: Calls
    asked: Asked | None
    session: str | None
    conversation_id: str | None = None
    turn: Turn | None = None
    question: str = ""
    inputs: list[ChatMessage] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    new_conversation: bool = False
    parent_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    text: str = ""

    def start(self, asked: Asked) -> Turn:
        """Give the answer its ids, in the conversation of the chat before the question."""
        previous = last_turn(asked.before)
        conversation = previous.conversation_id if previous else self.conversation_id
        self.turn = Turn(new_id(), conversation or new_id(), new_id())
        self.question = asked.text
        self.inputs = [
            ChatMessage(role=role, content=text_of(m))
            for m in asked.before
            if (role := role_of(m)) is not None
        ]
        self.inputs.append(ChatMessage(role="user", content=asked.text))
        self.params = asked.params
        self.new_conversation = conversation is None
        self.parent_id = previous.message_id if previous else None
        return self.turn

    def saw(self, text: str) -> None:
        if text and self.first is None:
            self.first = time.perf_counter()
        self.text = text


class Tracker:
    """Logs a Gradio chat's answers and its users' feedback to tuneback.

    Made by :func:`track`; :meth:`flush` waits until everything so far is sent.
    """

    def __init__(
        self,
        demo: gr.Blocks,
        client: Client,
        *,
        chatbot: gr.Chatbot | None = None,
        model: str | None = None,
        user: str | None = None,
        comment: bool = True,
    ) -> None:
        self.demo = demo
        self.client = client
        self.model = model
        self.user = user
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tuneback-gradio")
        self._lock = threading.Lock()
        self._ratings: OrderedDict[str, str] = OrderedDict()
        self._sessions: OrderedDict[str, str] = OrderedDict()
        self.comment_box: gr.Textbox | None = None
        self.selected: gr.State | None = None
        interface = interface_in(demo, chatbot)
        if interface is not None:
            self.chatbot = interface.chatbot
            interface.fn = self.wrap(interface.fn, InterfaceCalls(interface))
        else:
            self.chatbot = chatbot or chatbot_of(demo)
            for handler, fn in answering_handlers(demo, self.chatbot):
                handler.fn = self.wrap(fn, HandlerCalls(handler, self.chatbot))
        self._wire(comment)

    # -- background sending ----------------------------------------------------

    def _send(self, what: str, job: Callable[[], object]) -> Future[None]:
        def run() -> None:
            try:
                job()
            except Exception:
                log.warning("tuneback: could not record %s from Gradio", what, exc_info=True)

        return self._jobs.submit(run)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every answer and rating so far is sent (or given up on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._send("nothing", lambda: None).result(timeout)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.client.flush(remaining)

    def _remember(self, table: OrderedDict[str, str], key: str, value: str | None) -> str | None:
        with self._lock:
            old = table.pop(key, None)
            if value is not None:
                table[key] = value
                while len(table) > _REMEMBERED:
                    table.popitem(last=False)
            return old

    # -- the wrapped functions ------------------------------------------------

    def wrap(self, fn: Callable[..., Any], calls: Calls) -> Callable[..., Any]:
        """``fn`` (sync or async, returning or yielding) logging each answer it shows."""
        if getattr(fn, "__tuneback_tracker__", None) is self:
            return fn
        if inspect.isasyncgenfunction(fn):

            async def agen(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                answer = self._begin(calls, args)
                with self._running(answer):
                    async for result in fn(*args, **kwargs):
                        yield self._shown(answer, result)

            wrapped: Callable[..., Any] = agen
        elif inspect.iscoroutinefunction(fn):

            async def coro(*args: Any, **kwargs: Any) -> Any:
                answer = self._begin(calls, args)
                with self._running(answer):
                    return self._returned(answer, await fn(*args, **kwargs))

            wrapped = coro
        elif inspect.isgeneratorfunction(fn):

            def gen(*args: Any, **kwargs: Any) -> Iterator[Any]:
                answer = self._begin(calls, args)
                with self._running(answer):
                    for result in fn(*args, **kwargs):
                        yield self._shown(answer, result)

            wrapped = gen
        else:

            def call(*args: Any, **kwargs: Any) -> Any:
                answer = self._begin(calls, args)
                with self._running(answer):
                    return self._returned(answer, fn(*args, **kwargs))

            wrapped = call
        # Gradio reads the function's signature (through __wrapped__) to pass a
        # gr.Request or event data, so the wrapper keeps the function's own.
        functools.update_wrapper(wrapped, fn)
        wrapped.__tuneback_tracker__ = self  # type: ignore[attr-defined]
        return wrapped

    def _begin(self, calls: Calls, args: tuple[Any, ...]) -> _Answer:
        request = LocalContext.request.get(None)
        answer = _Answer(
            calls=calls,
            asked=calls.asked(args),
            session=getattr(request, "session_hash", None),
            conversation_id=calls.conversation(args),
        )
        if calls.every_call_answers and answer.asked is not None:
            answer.start(answer.asked)
        return answer

    @contextmanager
    def _running(self, answer: _Answer) -> Iterator[None]:
        """Log the answer when the function ends: ok, failed, or stopped (cancelled)."""
        status, error = "cancelled", None
        try:
            yield
            status = "ok"
        except Exception as exc:
            status, error = "error", exc
            raise
        finally:
            self._finish(answer, status, error)

    def _shown(self, answer: _Answer, result: Any) -> Any:
        """The function's result, with the answer it shows marked with the answer's ids."""
        shown = answer.calls.shown(result, answer.turn)
        if shown is None:
            if answer.calls.cleared(result):
                self._end(answer.session)
            return result
        asked = shown.asked or answer.asked
        turn = answer.turn
        if turn is None and asked is not None:
            turn = answer.start(asked)
        if turn is None:
            return result
        answer.saw(text_of(shown.message))
        return shown.marked(turn)

    def _returned(self, answer: _Answer, result: Any) -> Any:
        shown = self._shown(answer, result)
        answer.first = None  # a function that returns at once has no first token
        return shown

    def _finish(self, answer: _Answer, status: str, error: BaseException | None) -> None:
        latency = (time.perf_counter() - answer.started) * 1000
        ttft = None if answer.first is None else (answer.first - answer.started) * 1000
        turn = answer.turn
        if turn is None:
            if status == "ok" or answer.asked is None:
                return  # a handler that showed no answer (it added the question, say)
            turn = answer.start(answer.asked)
        if answer.session and turn.conversation_id:
            self._remember(self._sessions, answer.session, turn.conversation_id)

        def send() -> None:
            tb = self.client
            assert turn.conversation_id is not None
            if answer.new_conversation:
                tb.start_conversation(
                    id=turn.conversation_id,
                    user=self.user,
                    model=self.model,
                    title=answer.question[:80] or None,
                    metadata=_METADATA,
                )
            asked = tb.add_message(
                turn.conversation_id, "user", answer.question, parent_id=answer.parent_id
            )
            tb.log_run(
                id=turn.run_id,
                inputs=answer.inputs,
                output=answer.text if status != "error" else None,
                model=self.model,
                user=self.user,
                conversation_id=turn.conversation_id,
                status=status,
                error=None if error is None else f"{type(error).__name__}: {error}",
                latency_ms=latency,
                ttft_ms=ttft,
                params=answer.params or None,
                metadata=_METADATA,
            )
            if status != "error":
                tb.add_message(
                    turn.conversation_id,
                    "assistant",
                    answer.text,
                    id=turn.message_id,
                    parent_id=asked,
                    run_id=turn.run_id,
                )

        self._send("an answer", send)

    # -- the Chatbot's events --------------------------------------------------

    def _wire(self, comment: bool) -> None:
        chatbot = self.chatbot
        hidden: dict[str, Any] = {"api_visibility": "undocumented", "queue": False}
        # A listener shows the Chatbot's retry and undo buttons: listen only
        # where the app already does, so tracking adds no button that does nothing.
        retries = getattr(chatbot, "_retryable", False)
        undoes = getattr(chatbot, "_undoable", False)
        cleared_by = clearing_triggers(self.demo, chatbot)
        with self.demo:
            chatbot.like(self.on_like, [chatbot], None, api_name="tuneback_like", **hidden)
            if retries:
                chatbot.retry(self.on_retry, [chatbot], None, api_name="tuneback_retry", **hidden)
            if undoes:
                chatbot.undo(self.on_undo, [chatbot], None, api_name="tuneback_undo", **hidden)
            chatbot.copy(self.on_copy, [chatbot], None, api_name="tuneback_copy", **hidden)
            for listener in [chatbot.clear, *cleared_by]:
                listener(self.on_clear, None, None, api_name="tuneback_clear", **hidden)
            if comment:
                self.selected = gr.State(None)
                self.comment_box = gr.Textbox(
                    label="Tell us more about an answer",
                    placeholder="Click an answer to pick it (the last one otherwise), then type",
                    lines=1,
                )
                chatbot.select(
                    self.on_select,
                    None,
                    [self.selected, self.comment_box],
                    api_name="tuneback_select",
                    **hidden,
                )
                self.comment_box.submit(
                    self.on_comment,
                    [self.comment_box, self.selected, chatbot],
                    [self.comment_box],
                    api_name="tuneback_comment",
                    **hidden,
                )

    def on_like(self, chat: list[Any], data: gr.LikeData) -> None:
        turn = turn_of(message_at(chat, data.index))
        if turn is None:
            return
        liked = data.liked
        if isinstance(liked, bool):
            self._rate(turn.run_id, "up" if liked else "down")
        elif liked:
            self._send(
                "a feedback option",
                lambda: self._record(turn.run_id, "flag", kind="comment", comment=str(liked)),
            )
        else:
            self._rate(turn.run_id, None)

    def _rate(self, run_id: str, value: str | None) -> None:
        def send() -> None:
            old = self._remember(self._ratings, run_id, None)
            if value is None:
                if old is not None:
                    self.client.retract(old)
                return
            # A new rating from the same user supersedes the old one on the server.
            new = self._record(run_id, "thumbs", kind="explicit", value=value)
            self._remember(self._ratings, run_id, new)

        self._send("a rating", send)

    def _record(self, run_id: str, key: str, **fields: Any) -> str:
        return self.client.record_feedback(
            run_id, key, user=self.user, source="end_user", metadata=_METADATA, **fields
        )

    def _action(self, what: str, chat: list[Any], index: object) -> None:
        turn = answer_at(chat, index)
        if turn is not None:
            run_id = turn.run_id
            self._send(
                what,
                lambda: self.client.feedback(run_id, type="action", value=what, user=self.user),
            )

    def on_retry(self, chat: list[Any], data: gr.RetryData) -> None:
        self._action("regenerated", chat, data.index)

    def on_undo(self, chat: list[Any], data: gr.UndoData) -> None:
        self._action("dismissed", chat, data.index)

    def on_copy(self, chat: list[Any], data: gr.CopyData) -> None:
        if turn_of(message_at(chat, data.index)) is not None:  # a copied question says nothing
            self._action("copied", chat, data.index)

    def on_clear(self, request: gr.Request) -> None:
        self._end(request.session_hash)

    def _end(self, session: str | None) -> None:
        """End the conversation the browser session ``session`` was having, if any."""
        conversation = self._remember(self._sessions, session or "", None)
        if conversation is not None:
            self._send(
                "the end of a conversation", lambda: self.client.end_conversation(conversation)
            )

    def on_select(self, data: gr.SelectData) -> tuple[Any, Any]:
        return data.index, gr.update(label="Tell us more about the answer you picked")

    def on_comment(self, text: str, selected: object, chat: list[Any]) -> Any:
        text = (text or "").strip()
        turn = turn_of(message_at(chat, selected)) if selected is not None else None
        turn = turn or last_turn(chat)
        if not text or turn is None:
            return gr.update()
        run_id = turn.run_id
        self._send(
            "a comment", lambda: self._record(run_id, "comment", kind="comment", comment=text)
        )
        return gr.update(value="", placeholder="Thanks, sent. Add more on another answer")


def track(
    demo: Demo,
    client: Client | None = None,
    *,
    chatbot: gr.Chatbot | None = None,
    model: str | None = None,
    user: str | None = None,
    comment: bool = True,
) -> Demo:
    """Log ``demo``'s answers and its users' feedback to tuneback; returns ``demo``.

    ``demo`` is a ``gr.ChatInterface``, or a ``gr.Blocks`` with a ``gr.Chatbot``
    (``chatbot`` picks one when there are several) and handlers that return its
    messages with the answer; a Blocks of another shape raises
    :class:`~tuneback.errors.ConfigurationError` saying what is needed.
    ``client`` is the SDK client (by default one made from ``TUNEBACK_URL`` and
    ``TUNEBACK_API_KEY``); ``model`` and ``user`` go on every run, conversation
    and rating; ``comment=False`` leaves out the comment box. The tracker is
    ``demo.tuneback`` (its ``flush()`` waits until all is sent).
    """
    existing = getattr(demo, "tuneback", None)
    if isinstance(existing, Tracker):
        return demo
    if not isinstance(demo, gr.Blocks):
        raise ConfigurationError(f"track() was given a {type(demo).__name__}: {HOW_TO_TRACK}")
    tracker = Tracker(
        demo, client or Client(), chatbot=chatbot, model=model, user=user, comment=comment
    )
    demo.tuneback = tracker  # type: ignore[attr-defined]
    return demo


__all__ = ["MARK", "Tracker", "Turn", "text_of", "track", "turn_of"]
