"""Gradio: a ``gr.ChatInterface`` whose answers are runs and whose 👍/👎 are ratings.

::

    import gradio as gr
    from tuneback.integrations.gradio import track

    demo = track(gr.ChatInterface(reply), model="my-model")
    demo.launch()

:func:`track` wraps the interface's function, so each answer is logged as a run
(the messages sent, the answer, latency, time to first token for a streaming
function, the additional inputs as params) inside a tuneback conversation, with
the user's message and the answer as its messages. The answer's message
carries its ids in ``metadata["id"]`` (``tuneback:<conversation>:<message>:<run>``),
which the Chatbot keeps and shows nothing of; the event handlers read them back:

* ``like``: 👍/👎 is a ``thumbs`` rating on the run, clicking it off takes it
  back, and any other feedback option is recorded as a ``flag`` comment;
* ``select`` + a comment box under the chat: text on the selected answer (the
  last one when none is selected);
* ``retry``, ``undo``, ``copy``: implicit feedback (``regenerated``,
  ``dismissed``, ``copied``) on the answer's run;
* ``clear``: the conversation ends.

Everything is sent from one background thread, in order, through
:class:`tuneback.Client`; a failure is logged to ``tuneback.client`` and never
reaches the app or slows an answer.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio.context import LocalContext

from tuneback.client import Client
from tuneback.domain import ChatMessage, new_id

log = logging.getLogger("tuneback.client")

MARK = "tuneback"
_METADATA = {"integration": "gradio"}
# How many answers' ratings (and sessions' conversations) are remembered, to
# take a rating back or end a conversation; the oldest are forgotten first.
_REMEMBERED = 100_000


@dataclass(frozen=True)
class Turn:
    """The ids an answer's message carries: its conversation, its message and its run."""

    run_id: str
    conversation_id: str | None = None
    message_id: str | None = None

    def encode(self) -> str:
        return ":".join((MARK, self.conversation_id or "", self.message_id or "", self.run_id))

    @classmethod
    def decode(cls, value: object) -> Turn | None:
        if not isinstance(value, str):
            return None
        parts = value.split(":")
        if len(parts) != 4 or parts[0] != MARK or not parts[3]:
            return None
        return cls(run_id=parts[3], conversation_id=parts[1] or None, message_id=parts[2] or None)


def turn_of(message: object) -> Turn | None:
    """The ids on a Chatbot message (a dict or ``gr.ChatMessage``); None for others."""
    metadata = (
        message.get("metadata")
        if isinstance(message, Mapping)
        else getattr(message, "metadata", None)
    )
    return Turn.decode(metadata.get("id")) if isinstance(metadata, Mapping) else None


def text_of(content: object) -> str:
    """The text in a Chatbot message's content (its files and components left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        if isinstance(content.get("text"), str):
            return str(content["text"])
        return text_of(content.get("content")) if "content" in content else ""
    if isinstance(content, Sequence):
        return "".join(text_of(part) for part in content)
    if isinstance(content, gr.ChatMessage):
        return text_of(content.content)
    return ""


def _role(message: object) -> str | None:
    role = message.get("role") if isinstance(message, Mapping) else getattr(message, "role", None)
    return role if role in ("user", "assistant", "system") else None


def _last_turn(history: Sequence[object]) -> Turn | None:
    for message in reversed(history):
        turn = turn_of(message)
        if turn is not None:
            return turn
    return None


def _at(chat: Sequence[object], index: object) -> object | None:
    """The message at a Chatbot event's index (an int, or [message, part])."""
    if isinstance(index, (list, tuple)):
        index = index[0] if index else None
    if isinstance(index, int) and -len(chat) <= index < len(chat):
        return chat[index]
    return None


def _answer_at(chat: Sequence[object], index: object) -> Turn | None:
    """The answer at ``index``, or the first after it: retry and undo point at the question."""
    if isinstance(index, (list, tuple)):
        index = index[0] if index else None
    if not isinstance(index, int) or not -len(chat) <= index < len(chat):
        return None
    for message in chat[index % len(chat) :]:
        turn = turn_of(message)
        if turn is not None:
            return turn
    return None


def _with_turn(response: Any, turn: Turn) -> Any:
    """The function's response with ``turn`` in its message's metadata (when it has text)."""
    if isinstance(response, str):
        return {"role": "assistant", "content": response, "metadata": {"id": turn.encode()}}
    if isinstance(response, Mapping) and "content" in response:
        metadata = dict(response.get("metadata") or {})
        if "title" in metadata:  # a "thought": its id places it in a tree of thoughts
            return response
        return {**response, "metadata": {**metadata, "id": turn.encode()}}
    if isinstance(response, gr.ChatMessage) and "title" not in (response.metadata or {}):
        response.metadata = {**(response.metadata or {}), "id": turn.encode()}
        return response
    if isinstance(response, list) and response:
        return [*response[:-1], _with_turn(response[-1], turn)]
    return response


@dataclass
class _Answer:
    """One call of the interface's function, from its start to its logging."""

    turn: Turn
    question: str
    inputs: list[ChatMessage]
    params: dict[str, Any]
    new_conversation: bool
    parent_id: str | None
    session: str | None
    started: float = field(default_factory=time.perf_counter)
    first: float | None = None
    text: str = ""

    def saw(self, response: Any) -> None:
        text = text_of(response[-1] if isinstance(response, list) and response else response)
        if text and self.first is None:
            self.first = time.perf_counter()
        self.text = text


class Tracker:
    """Logs a ChatInterface's answers and its users' feedback to tuneback.

    Made by :func:`track`; :meth:`flush` waits until everything so far is sent.
    """

    def __init__(
        self,
        demo: gr.ChatInterface,
        client: Client,
        *,
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
        demo.fn = self.wrap(demo.fn)
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

    # -- the interface's function ----------------------------------------------

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` (sync or async, returning or yielding) logging each answer."""
        if getattr(fn, "__tuneback_tracker__", None) is self:
            return fn
        if inspect.isasyncgenfunction(fn):

            async def agen(message: Any, history: list[Any], *args: Any) -> AsyncIterator[Any]:
                answer = self._begin(message, history, args)
                status, error = "cancelled", None
                try:
                    async for response in fn(message, history, *args):
                        yield self._tagged(answer, response)
                    status = "ok"
                except Exception as exc:
                    status, error = "error", exc
                    raise
                finally:
                    self._finish(answer, status, error)

            wrapped: Callable[..., Any] = agen
        elif inspect.iscoroutinefunction(fn):

            async def coro(message: Any, history: list[Any], *args: Any) -> Any:
                answer = self._begin(message, history, args)
                try:
                    response = await fn(message, history, *args)
                except BaseException as exc:
                    self._finish(
                        answer, "error" if isinstance(exc, Exception) else "cancelled", exc
                    )
                    raise
                return self._answered(answer, response)

            wrapped = coro
        elif inspect.isgeneratorfunction(fn):

            def gen(message: Any, history: list[Any], *args: Any) -> Iterator[Any]:
                answer = self._begin(message, history, args)
                status, error = "cancelled", None
                try:
                    for response in fn(message, history, *args):
                        yield self._tagged(answer, response)
                    status = "ok"
                except Exception as exc:
                    status, error = "error", exc
                    raise
                finally:
                    self._finish(answer, status, error)

            wrapped = gen
        else:

            def call(message: Any, history: list[Any], *args: Any) -> Any:
                answer = self._begin(message, history, args)
                try:
                    response = fn(message, history, *args)
                except BaseException as exc:
                    self._finish(
                        answer, "error" if isinstance(exc, Exception) else "cancelled", exc
                    )
                    raise
                return self._answered(answer, response)

            wrapped = call
        wrapped.__tuneback_tracker__ = self  # type: ignore[attr-defined]
        wrapped.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapped

    def _tagged(self, answer: _Answer, response: Any) -> Any:
        """The response with the answer's ids on its message (additional outputs kept)."""
        extra: tuple[Any, ...] = ()
        if self.demo.additional_outputs and isinstance(response, tuple):
            response, *rest = response
            extra = tuple(rest)
        answer.saw(response)
        tagged = _with_turn(response, answer.turn)
        return (tagged, *extra) if extra else tagged

    def _answered(self, answer: _Answer, response: Any) -> Any:
        tagged = self._tagged(answer, response)
        answer.first = None  # a function that returns at once has no first token
        self._finish(answer, "ok", None)
        return tagged

    def _begin(self, message: Any, history: Sequence[Any], args: Sequence[Any]) -> _Answer:
        question = text_of(message)
        inputs = [
            ChatMessage(
                role=role, content=text_of(m.get("content") if isinstance(m, Mapping) else m)
            )
            for m in history
            if (role := _role(m)) is not None
        ]
        inputs.append(ChatMessage(role="user", content=question))
        previous = _last_turn(history)
        conversation = previous.conversation_id if previous else None
        request = LocalContext.request.get(None)
        return _Answer(
            turn=Turn(new_id(), conversation or new_id(), new_id()),
            question=question,
            inputs=inputs,
            params=self._params(args),
            new_conversation=conversation is None,
            parent_id=previous.message_id if previous else None,
            session=getattr(request, "session_hash", None),
        )

    def _params(self, args: Sequence[Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for index, (component, value) in enumerate(
            zip(self.demo.additional_inputs, args, strict=False)
        ):
            if isinstance(value, (str, int, float, bool)) or value is None:
                label = getattr(component, "label", None)
                params[str(label) if label else f"input_{index}"] = value
        return params

    def _finish(self, answer: _Answer, status: str, error: BaseException | None) -> None:
        latency = (time.perf_counter() - answer.started) * 1000
        ttft = None if answer.first is None else (answer.first - answer.started) * 1000
        turn = answer.turn
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
        chatbot = self.demo.chatbot
        hidden: dict[str, Any] = {"api_visibility": "undocumented", "queue": False}
        with self.demo:
            chatbot.like(self.on_like, [chatbot], None, api_name="tuneback_like", **hidden)
            chatbot.retry(self.on_retry, [chatbot], None, api_name="tuneback_retry", **hidden)
            chatbot.undo(self.on_undo, [chatbot], None, api_name="tuneback_undo", **hidden)
            chatbot.copy(self.on_copy, [chatbot], None, api_name="tuneback_copy", **hidden)
            chatbot.clear(self.on_clear, None, None, api_name="tuneback_clear", **hidden)
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
        turn = turn_of(_at(chat, data.index))
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
        turn = _answer_at(chat, index)
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
        if turn_of(_at(chat, data.index)) is not None:  # a copied question says nothing
            self._action("copied", chat, data.index)

    def on_clear(self, request: gr.Request) -> None:
        conversation = self._remember(self._sessions, request.session_hash or "", None)
        if conversation is not None:
            self._send(
                "the end of a conversation", lambda: self.client.end_conversation(conversation)
            )

    def on_select(self, data: gr.SelectData) -> tuple[Any, Any]:
        return data.index, gr.update(label="Tell us more about the answer you picked")

    def on_comment(self, text: str, selected: object, chat: list[Any]) -> Any:
        text = (text or "").strip()
        turn = turn_of(_at(chat, selected)) if selected is not None else None
        turn = turn or _last_turn(chat)
        if not text or turn is None:
            return gr.update()
        run_id = turn.run_id
        self._send(
            "a comment", lambda: self._record(run_id, "comment", kind="comment", comment=text)
        )
        return gr.update(value="", placeholder="Thanks, sent. Add more on another answer")


def track(
    demo: gr.ChatInterface,
    client: Client | None = None,
    *,
    model: str | None = None,
    user: str | None = None,
    comment: bool = True,
) -> gr.ChatInterface:
    """Log ``demo``'s answers and its users' feedback to tuneback; returns ``demo``.

    ``client`` is the SDK client (by default one made from ``TUNEBACK_URL`` and
    ``TUNEBACK_API_KEY``); ``model`` and ``user`` go on every run, conversation
    and rating; ``comment=False`` leaves out the comment box. The tracker is
    ``demo.tuneback`` (its ``flush()`` waits until all is sent).
    """
    existing = getattr(demo, "tuneback", None)
    if isinstance(existing, Tracker):
        return demo
    demo.tuneback = Tracker(  # type: ignore[attr-defined]
        demo, client or Client(), model=model, user=user, comment=comment
    )
    return demo


__all__ = ["MARK", "Tracker", "Turn", "text_of", "track", "turn_of"]
