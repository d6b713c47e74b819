"""Conversations and users pages: list, filter, open (each with its JSON twin)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tuneback.domain import Conversation, Message
from tuneback.domain.common import UtcDatetime
from tuneback.errors import NotFoundError
from tuneback.server.access import in_this_project, rule
from tuneback.server.deps import Services, ServicesDep
from tuneback.server.web.labels import last_question
from tuneback.server.web.markdown import render_markdown
from tuneback.server.web.page import Page, kept_params, page_count, page_view, parse_query
from tuneback.storage.browse import Slice
from tuneback.storage.queries import RunFilter

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


class ListQuery(BaseModel):
    """A list page's URL: the filters, shared with the dashboard's links, and the page."""

    model_config = ConfigDict(extra="ignore")

    user: str | None = Field(default=None, max_length=200)
    model: str | None = Field(default=None, max_length=200)
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    q: str | None = Field(default=None, max_length=200)
    page: int = Field(default=1, ge=1, le=10_000)

    def slice(self, project: str, **fixed: Any) -> Slice:
        return Slice(
            project=project,
            user=fixed.get("user", self.user),
            model=self.model,
            since=self.since,
            until=self.until,
            text=self.q or None,
        )


def _chips(request: Request, base: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    params = kept_params(request)
    chips = []
    for name in names:
        if name in params:
            rest = {k: v for k, v in params.items() if k != name}
            value = params[name]
            label = {
                "q": f"“{value}”",
                "since": f"since {value[:16]}",
                "until": f"until {value[:16]}",
            }.get(name, f"{name} {value}")
            chips.append({"label": label, "remove": f"{base}?{urlencode(rest)}"})
    return chips


@router.get("/conversations", dependencies=[rule("read")])
@page_view
def conversations_page(request: Request, services: ServicesDep) -> Page:
    """Conversations, latest activity first, filtered by user, model, time and words."""
    return _list_page(request, services, "conversations", ("q", "user", "model", "since", "until"))


@router.get("/conversations/{conversation_id}", dependencies=[rule("read")])
@page_view
def conversation_page(request: Request, services: ServicesDep, conversation_id: str) -> Page:
    """One conversation: its messages (every branch) and its runs with their feedback."""
    store = services.store
    project = services.project
    rows, _ = services.queries.explore(
        RunFilter(project=project, conversation_id=conversation_id), sort="oldest", limit=500
    )
    try:
        conversation = store.get_conversation(conversation_id)
    except NotFoundError:
        conversation = None
        if not rows:
            raise NotFoundError(f"no conversation with id {conversation_id}") from None
    if conversation is not None:
        in_this_project(request, conversation.project, "conversation", conversation_id)
    messages = store.conversation_messages(conversation_id) if conversation else []
    data = {"conversation": conversation, "messages": messages, "runs": rows}
    return Page(
        "conversation.html",
        "conversations",
        data,
        extra=lambda: _transcript(conversation, conversation_id, messages, rows),
    )


def _transcript(
    conversation: Conversation | None,
    conversation_id: str,
    messages: list[Message],
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    """The conversation as the page shows it: rendered messages, its people, a title."""
    runs = [row["run"] for row in rows]
    users = sorted(
        {r.user for r in runs if r.user}
        | ({conversation.user} if conversation and conversation.user else set())
    )
    transcript = [
        {
            "role": m.role,
            "content": m.content,
            "html": render_markdown(m.content),
            "run_id": m.run_id,
            "time": m.created_at,
        }
        for m in messages
    ]
    return {
        "conversation_id": conversation_id,
        "transcript": transcript,
        "rows": rows,
        "users": users,
        "title": _title(conversation.title if conversation else None, transcript, runs),
    }


def _title(own: str | None, transcript: list[dict[str, Any]], runs: list[Any]) -> str | None:
    """The conversation's own title, else the first thing the user asked."""
    if own:
        return own
    asked = [m["content"] for m in transcript if m["role"] == "user"]
    if asked:
        return str(asked[0])
    return next((q for q in (last_question(run.inputs) for run in runs) if q), None)


@router.get("/users", dependencies=[rule("read")])
@page_view
def users_page(request: Request, services: ServicesDep) -> Page:
    """People whose runs are recorded, most recently active first, with their feedback."""
    return _list_page(request, services, "users", ("q", "model", "since", "until"))


def _list_page(
    request: Request, services: Services, section: str, filters: tuple[str, ...]
) -> Page:
    """A page of conversations or users; the filter fields offer known values."""
    query, problem = parse_query(ListQuery, request)
    project = services.project
    browse = services.browse
    listing = browse.conversations if section == "conversations" else browse.users
    rows, total = listing(
        query.slice(project), limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE
    )

    def extra() -> dict[str, Any]:
        known = {
            f"{field}s": browse.known_values(project, field)
            for field in ("user", "model")
            if field in filters
        }
        return {
            **known,
            "rows": rows,
            "total": total,
            "query": query,
            "problem": problem,
            "params": kept_params(request),
            "chips": _chips(request, f"/{section}", filters),
            "pages": page_count(total, PAGE_SIZE),
        }

    return Page(
        f"{section}.html", section, {"data": rows, "count": total, "page": query.page}, extra
    )


@router.get("/users/{name}", dependencies=[rule("read")])
@page_view
def user_page(request: Request, services: ServicesDep, name: str) -> Page:
    """One person: their numbers and their conversations."""
    query, problem = parse_query(ListQuery, request)
    project = services.project
    browse = services.browse
    found, _ = browse.users(Slice(project=project, user=name), limit=1)
    if not found:
        raise NotFoundError(f"no runs by user {name!r} in project {project!r}")
    summary = found[0]
    rows, total = browse.conversations(
        query.slice(project, user=name), limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE
    )
    data = {
        "user": summary,
        "conversations": {"data": rows, "count": total, "page": query.page},
    }
    return Page(
        "user.html",
        "users",
        data,
        extra=lambda: {
            "name": name,
            "summary": summary,
            "rows": rows,
            "total": total,
            "problem": problem,
            "params": kept_params(request),
            "page": query.page,
            "pages": page_count(total, PAGE_SIZE),
        },
    )
