"""The chat page and the endpoints its script calls (under ``/ui``).

Replies stream as server-sent events over a POST response: ``start`` (the ids
of the run and message to come), ``delta`` (the new text, and the whole answer
so far rendered as safe HTML), then ``done`` (the stored run, with the answer
rendered) or ``error``. Deltas are gathered for at least ``RENDER_EVERY``
seconds (longer when rendering takes longer), so the one markdown renderer runs
a few times a second however fast the model talks. A reply keeps going to the
end when nobody stops it; the stop button and a closed tab cancel it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from tuneback.domain import Conversation, FeedbackRecord, Message, Run, describe_value
from tuneback.domain.feedback import RawValue
from tuneback.errors import ModelError, NotFoundError, ValidationError
from tuneback.server.access import rule, who
from tuneback.server.api.schemas import Body
from tuneback.server.deps import Services, ServicesDep
from tuneback.server.web.markdown import pygments_css, render_markdown
from tuneback.server.web.page import Page, page_view, wants_json
from tuneback.server.web.streaming import (
    close_quietly as _close_quietly,
)
from tuneback.server.web.streaming import event_stream, sampling_options, sse
from tuneback.server.web.templating import sections, templates
from tuneback.services.battles import BATTLE_TAG
from tuneback.services.chat import Reply
from tuneback.storage import Store

router = APIRouter(include_in_schema=False)

RENDER_EVERY = 0.08
"""Seconds between two renders of a streaming answer."""

RENDER_AT_MOST = 1.0
"""Seconds a streaming answer on screen may fall behind the model, however slow a render was."""

ARENA = "arena"
"""Not a page group of its own: served with the chat, it makes the compare page the landing page."""


class SendBody(Body):
    content: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = None
    parent_id: str | None = None
    """The message this one follows: the end of the branch on screen (default: the newest)."""
    model: str | None = None
    system_prompt: str | None = Field(default=None, max_length=20_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)


class RegenerateBody(Body):
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)


class EditBody(RegenerateBody):
    content: str = Field(min_length=1, max_length=100_000)


class RenameBody(Body):
    title: str = Field(min_length=1, max_length=200)


class FeedbackBody(Body):
    key: str = Field(min_length=1, max_length=64)
    value: RawValue = None
    comment: str | None = Field(default=None, max_length=10_000)
    correction: str | None = Field(default=None, max_length=100_000)
    reasons: list[str] = Field(default_factory=list, max_length=20)
    kind: Literal["explicit", "implicit", "comment", "correction"] | None = None


def _user(request: Request) -> str:
    return who(request).chatter


def _own_conversation(services: Services, conversation_id: str, user: str) -> Conversation:
    conversation: Conversation = services.store.get_conversation(conversation_id)
    if conversation.user != user or conversation.deleted_at is not None:
        # Not "forbidden": another user's conversation does not exist for you.
        raise NotFoundError(f"no conversation with id {conversation_id}")
    if BATTLE_TAG in conversation.tags:
        # A battle lives on the compare page, which names its models only after the vote.
        raise NotFoundError(f"no conversation with id {conversation_id}")
    return conversation


def _own_message(request: Request, services: Services, message_id: str) -> Message:
    """A message of one of the caller's own conversations (anyone else's does not exist)."""
    message: Message = services.store.get_message(message_id)
    _own_conversation(services, message.conversation_id, _user(request))
    return message


def run_view(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "model": run.model,
        "status": run.status,
        "error": run.error,
        "latency_ms": run.latency_ms,
        "ttft_ms": run.ttft_ms,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
    }


def feedback_view(feedback: FeedbackRecord) -> dict[str, Any]:
    return {
        "id": feedback.id,
        "key": feedback.key,
        "kind": feedback.kind,
        "value": feedback.value,
        "label": describe_value(feedback.key, feedback.value),
        "score": feedback.score,
        "comment": feedback.comment,
        "correction": feedback.correction,
        "reasons": feedback.metadata.get("reasons", []),
    }


def conversation_view(
    services: Services, conversation: Conversation, user: str, through: str | None = None
) -> dict[str, Any]:
    """Everything the page shows of one conversation: the branch on screen, runs and ratings.

    ``through`` picks the branch holding that message (default: the newest message's).
    Each message lists its versions (``siblings``) for the ‹ 1/2 › buttons.
    """
    path = services.chat.current_path(conversation.id, through=through)
    runs = {r.id: r for r in services.store.conversation_runs(conversation.id)}
    mine: dict[str | None, list[dict[str, Any]]] = {}
    for fb in services.store.feedback_for_runs(list(runs)):
        if fb.user == user:
            mine.setdefault(fb.run_id, []).append(feedback_view(fb))
    siblings: dict[str | None, list[str]] = {}
    for message in services.store.conversation_messages(conversation.id):
        siblings.setdefault(message.parent_id, []).append(message.id)
    messages = []
    for message in path:
        run = runs.get(message.run_id) if message.run_id else None
        family = siblings.get(message.parent_id, [message.id])
        messages.append(
            {
                "id": message.id,
                "role": message.role,
                "content": message.content,
                "html": render_markdown(message.content) if message.role == "assistant" else None,
                "parent_id": message.parent_id,
                "run": run_view(run) if run else None,
                "feedback": mine.get(message.run_id or "", []),
                "branch": {"index": family.index(message.id) + 1, "count": len(family)},
                "siblings": family,
                "created_at": message.created_at.isoformat(),
            }
        )
    return {
        "id": conversation.id,
        "model": conversation.model,
        "title": conversation.title,
        "system_prompt": conversation.system_prompt,
        "ended": conversation.ended_at is not None,
        "messages": messages,
        "pending": _pending(services, path[-1], list(runs.values())) if path else None,
    }


def _pending(services: Services, last: Message, runs: list[Run]) -> dict[str, Any] | None:
    """A question on screen without an answer: still being answered, or failed to be.

    A failed or stopped answer with nothing said has no message; its run names
    the question (``reply_to``), so the error and a Retry survive a reload.
    """
    if last.role != "user":
        return None
    live = services.chat.answering(last.id)
    if live is not None:
        text = live.partial
        return {
            "status": "answering",
            "reply_to": last.id,
            "run_id": live.run_id,
            "html": render_markdown(text) if text else "",
        }
    failed = [r for r in runs if r.message_id is None and r.metadata.get("reply_to") == last.id]
    if not failed:
        return None
    return {"status": failed[-1].status, "reply_to": last.id, "run": run_view(failed[-1])}


def sidebar(services: Services, user: str, query: str | None = None) -> list[dict[str, Any]]:
    project = services.settings.project
    conversations = services.store.list_conversations(project, user=user, limit=200, deleted=False)
    titles = services.store.first_user_messages([c.id for c in conversations])
    items = []
    for conversation in conversations:
        if BATTLE_TAG in conversation.tags:
            continue  # on the compare page: listed here, it would name an anonymous battle's models
        title = conversation.title or titles.get(conversation.id)
        if title is None:
            continue  # started but never used
        if query and query.lower() not in title.lower():
            continue
        items.append(
            {
                "id": conversation.id,
                "title": " ".join(title.split())[:80],
                "started_at": conversation.started_at.isoformat(),
                "ended": conversation.ended_at is not None,
            }
        )
    return items


def page_state(request: Request, services: Services, user: str) -> dict[str, Any]:
    project = services.store.get_project(services.settings.project)
    pages: list[str] = request.app.state.pages
    principal = who(request)
    return {
        "user": user,
        "signed_in": principal.signed_in,
        "local": principal.kind == "local",
        "project": project.name,
        "run_link": "/runs/" if "dashboard" in pages else "/ui/runs/",
        "sections": sections(request),
        "settings": project.settings.model_dump(),
        "models": [
            {"spec": m.spec, "name": m.name, "status": m.status, "error": m.load_error}
            for m in services.models
        ],
    }


@router.get("/", response_class=HTMLResponse, dependencies=[rule("chat")])
@router.get("/c/{conversation_id}", response_class=HTMLResponse, dependencies=[rule("chat")])
@page_view
def chat_page(
    request: Request,
    services: ServicesDep,
    conversation_id: str | None = None,
    m: str | None = None,
) -> Page | Response:
    """The chat; ``/c/{id}?m={message}`` opens the branch holding that message."""
    if (
        conversation_id is None
        and ARENA in request.app.state.pages
        and "chat" not in request.query_params
    ):
        # tuneback serve --arena: people land on the compare page; /?chat opens the chat.
        return RedirectResponse("/compare", status_code=307)
    user = _user(request)
    conversation = None
    if conversation_id is not None:
        try:
            own = _own_conversation(services, conversation_id, user)
        except NotFoundError:
            if wants_json(request):
                raise
            # Without the owner pages' top bar: the chat is a page of its own.
            return templates.TemplateResponse(
                request, "not_found.html", {"what": "conversation"}, status_code=404
            )
        try:
            conversation = conversation_view(services, own, user, through=m)
        except ValidationError:  # a stale ?m= link: show the newest branch
            conversation = conversation_view(services, own, user)
    data = {
        "state": page_state(request, services, user),
        "conversations": sidebar(services, user),
        "conversation": conversation,
    }
    return Page("chat.html", "chat", data)


@router.get("/ui/state", dependencies=[rule("chat")])
def state(request: Request, services: ServicesDep) -> dict[str, Any]:
    return page_state(request, services, _user(request))


@router.get("/ui/conversations", dependencies=[rule("chat")])
def conversations(
    request: Request, services: ServicesDep, q: str | None = None
) -> list[dict[str, Any]]:
    return sidebar(services, _user(request), q)


@router.get("/ui/conversations/{conversation_id}", dependencies=[rule("chat")])
def conversation(
    request: Request, services: ServicesDep, conversation_id: str, through: str | None = None
) -> dict[str, Any]:
    """One conversation; ``through`` picks the branch holding that message."""
    user = _user(request)
    own = _own_conversation(services, conversation_id, user)
    return conversation_view(services, own, user, through=through)


@router.post("/ui/conversations/{conversation_id}/rename", dependencies=[rule("chat")])
def rename(
    request: Request, services: ServicesDep, conversation_id: str, body: RenameBody
) -> dict[str, Any]:
    _own_conversation(services, conversation_id, _user(request))
    renamed = services.chat.rename_conversation(conversation_id, body.title)
    return {"id": renamed.id, "title": renamed.title}


@router.delete("/ui/conversations/{conversation_id}", dependencies=[rule("chat")])
def delete(request: Request, services: ServicesDep, conversation_id: str) -> dict[str, Any]:
    """Take a conversation out of this person's chat (the owner's data keeps it)."""
    _own_conversation(services, conversation_id, _user(request))
    services.chat.delete_conversation(conversation_id)
    return {"deleted": True}


@router.post("/ui/conversations/{conversation_id}/end", dependencies=[rule("chat")])
def end(request: Request, services: ServicesDep, conversation_id: str) -> dict[str, Any]:
    user = _user(request)
    _own_conversation(services, conversation_id, user)
    services.chat.end_conversation(conversation_id)
    return {"ended": True}


@router.post("/ui/chat", dependencies=[rule("chat")])
def send(request: Request, services: ServicesDep, body: SendBody) -> StreamingResponse:
    """Send a message (starting a conversation if needed) and stream the answer."""
    user = _user(request)
    if body.conversation_id:
        conversation = _own_conversation(services, body.conversation_id, user)
    else:
        conversation = services.chat.start_conversation(
            project=services.settings.project,
            user=user,
            model=body.model,
            system_prompt=body.system_prompt,
        )
    message = services.chat.add_user_message(
        conversation.id, body.content, parent_id=body.parent_id
    )
    reply = services.chat.reply(message.id, model=body.model, options=sampling_options(body))
    return _stream(services.store, reply, user_message_id=message.id)


@router.post("/ui/messages/{message_id}/regenerate", dependencies=[rule("chat")])
def regenerate(
    request: Request, services: ServicesDep, message_id: str, body: RegenerateBody
) -> StreamingResponse:
    _own_message(request, services, message_id)
    reply = services.chat.regenerate(message_id, model=body.model, options=sampling_options(body))
    return _stream(services.store, reply, user_message_id=reply.parent.id)


@router.post("/ui/messages/{message_id}/edit", dependencies=[rule("chat")])
def edit(
    request: Request, services: ServicesDep, message_id: str, body: EditBody
) -> StreamingResponse:
    _own_message(request, services, message_id)
    edited = services.chat.edit_user_message(message_id, body.content)
    reply = services.chat.reply(edited.id, model=body.model, options=sampling_options(body))
    return _stream(services.store, reply, user_message_id=edited.id)


@router.post("/ui/messages/{message_id}/retry", dependencies=[rule("chat")])
def retry(
    request: Request, services: ServicesDep, message_id: str, body: RegenerateBody
) -> StreamingResponse:
    """Answer a question again after its answer failed or was stopped with nothing said."""
    _own_message(request, services, message_id)
    reply = services.chat.reply(message_id, model=body.model, options=sampling_options(body))
    return _stream(services.store, reply, user_message_id=message_id)


@router.post("/ui/runs/{run_id}/cancel", dependencies=[rule("chat")])
def cancel(request: Request, services: ServicesDep, run_id: str) -> dict[str, bool]:
    return {"cancelled": services.chat.cancel(run_id, user=_user(request))}


@router.post("/ui/runs/{run_id}/feedback", dependencies=[rule("chat")])
def rate(
    request: Request, services: ServicesDep, run_id: str, body: FeedbackBody
) -> dict[str, Any]:
    user = _user(request)
    run = services.store.get_run(run_id)
    if run.conversation_id is None:
        # Runs logged by apps are rated by their own users, through the API or a token.
        raise NotFoundError(f"no run with id {run_id}")
    _own_conversation(services, run.conversation_id, user)
    recorded = services.feedback.record(
        run_id=run_id,
        key=body.key,
        value=body.value,
        kind=body.kind,
        comment=body.comment or None,
        correction=body.correction or None,
        user=user,
        source="end_user",
        metadata={"reasons": body.reasons} if body.reasons else None,
    )
    return feedback_view(recorded)


@router.delete("/ui/feedback/{feedback_id}", dependencies=[rule("chat")])
def retract(request: Request, services: ServicesDep, feedback_id: str) -> dict[str, Any]:
    user = _user(request)
    if services.store.get_feedback(feedback_id).user != user:
        raise NotFoundError(f"no feedback with id {feedback_id}")
    return feedback_view(services.feedback.retract(feedback_id, user=user))


@router.get("/ui/runs/{run_id}", dependencies=[rule("chat")])
def my_run(request: Request, services: ServicesDep, run_id: str) -> dict[str, Any]:
    """A run of your own conversation as JSON (the owner's pages show every run in full)."""
    user = _user(request)
    run = services.store.get_run(run_id)
    if run.conversation_id is None:
        raise NotFoundError(f"no run with id {run_id}")
    _own_conversation(services, run.conversation_id, user)
    mine = [f for f in services.store.feedback_for_run(run_id, history=True) if f.user == user]
    return {
        "run": run.model_dump(mode="json"),
        "feedback": [f.model_dump(mode="json") | {"current": f.current} for f in mine],
    }


@router.get("/ui/code.css", dependencies=[rule("public")])
def code_css() -> Response:
    return Response(pygments_css(), media_type="text/css")


def _stream(store: Store, reply: Reply, *, user_message_id: str) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        chunks: Iterator[str] = iter(reply)
        try:
            yield sse(
                "start",
                {
                    "conversation_id": reply.conversation.id,
                    "user_message_id": user_message_id,
                    "run_id": reply.run_id,
                    "message_id": reply.message_id,
                    "model": reply.adapter.spec,
                },
            )
            async for batch, html in _rendered(chunks, RENDER_EVERY):
                yield sse("delta", {"text": batch, "html": html})
            yield sse("done", await run_in_threadpool(_done, store, reply))
        except ModelError as exc:
            yield sse(
                "error", {"message": exc.message, **await run_in_threadpool(_done, store, reply)}
            )
        finally:
            # A closed tab ends up here too: stop the model, keep the partial
            # answer. The close runs in a thread of its own because this task
            # may already be cancelled, and an await here would be cut short,
            # leaving the reply unrecorded.
            reply.cancel()
            reply.background.start(
                _close_quietly, chunks, name="tuneback-reply-close", finishing=True
            )

    return event_stream(events())


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


_PUMPS: set[asyncio.Future[None]] = set()


async def _rendered(chunks: Iterator[str], every: float) -> AsyncIterator[tuple[str, str]]:
    """The answer in pieces, each with the whole answer so far rendered as safe HTML.

    A pump drives the model in a thread at its own pace, so rendering never holds
    it up. The first piece goes out at once, then at most one every ``every``
    seconds, or four times the last render's time when that is longer (but no
    more than :data:`RENDER_AT_MOST`): a long answer costs more to render, so it
    is rendered less often, and rendering (pure Python, holding the interpreter)
    takes at most a fifth of the time.
    A model error is raised where it happens.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    async def pump() -> None:
        # It runs to the generator's end even when nobody reads any more: the
        # reply's cancel flag stops it at the next chunk, and that records the run.
        while True:
            try:
                chunk = await run_in_threadpool(next, chunks, end)
            except Exception as exc:  # the model's failure, for the reader to raise
                queue.put_nowait(_Failed(exc))
                return
            queue.put_nowait(chunk)
            if chunk is end:
                return

    pumping = asyncio.ensure_future(pump())
    _PUMPS.add(pumping)
    pumping.add_done_callback(_PUMPS.discard)
    text = held = ""
    due = loop.time()
    finished = False
    while not finished:
        wait = None if not held else max(0.0, due - loop.time())
        try:
            items = [await asyncio.wait_for(queue.get(), wait)]
        except TimeoutError:
            items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        for item in items:
            if isinstance(item, _Failed):
                raise item.error
            if item is end:
                finished = True
            else:
                held += item
        if held and (finished or loop.time() >= due):
            text += held
            started = loop.time()
            html = await run_in_threadpool(render_markdown, text)
            took = loop.time() - started
            yield held, html
            held = ""
            due = loop.time() + render_gap(took, every)


def render_gap(took: float, every: float) -> float:
    """Seconds until the next render, after one that took ``took``.

    Four times the render's time keeps rendering to a fifth of the stream, up to
    :data:`RENDER_AT_MOST` (past that, renders of over a quarter second take a
    bigger share): one slow render (a busy machine, the first code block of its
    language) must not hold the text on screen back for seconds.
    """
    return max(every, min(4 * took, RENDER_AT_MOST))


def _done(store: Store, reply: Reply) -> dict[str, Any]:
    message = reply.message
    branch = None
    if message is not None:
        answers = [
            m.id
            for m in store.conversation_messages(reply.conversation.id)
            if m.parent_id == reply.parent.id
        ]
        branch = {"index": answers.index(message.id) + 1, "count": len(answers)}
    return {
        "run": run_view(reply.run) if reply.run else None,
        "message_id": message.id if message else None,
        "html": render_markdown(message.content) if message else "",
        "branch": branch,
    }
