"""Conversations and users pages: list, filter, open (each with its JSON twin)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from tuneback.domain.common import UtcDatetime
from tuneback.errors import NotFoundError
from tuneback.server.access import in_this_project, rule
from tuneback.server.deps import ServicesDep
from tuneback.server.web.markdown import render_markdown
from tuneback.server.web.runs import wants_json
from tuneback.server.web.templating import render_page
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


def _list_query(request: Request) -> tuple[ListQuery, str | None]:
    raw = {k: v for k, v in request.query_params.items() if v != ""}
    try:
        return ListQuery.model_validate(raw), None
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return ListQuery(), f"{where}: {first['msg']} — the filter was ignored"


def _chips(request: Request, base: str, names: tuple[str, ...]) -> list[dict[str, str]]:
    params = {k: v for k, v in request.query_params.items() if v != "" and k != "page"}
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


def _json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in rows
    ]


@router.get("/conversations", dependencies=[rule("read")])
def conversations_page(request: Request, services: ServicesDep) -> Response:
    """Conversations, latest activity first, filtered by user, model, time and words."""
    return _list_page(request, services, "conversations", ("q", "user", "model", "since", "until"))


@router.get("/conversations/{conversation_id}", dependencies=[rule("read")])
def conversation_page(request: Request, services: ServicesDep, conversation_id: str) -> Response:
    """One conversation: its messages (every branch) and its runs with their feedback."""
    store = services.store
    project = services.settings.project
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
    if wants_json(request):
        return JSONResponse(
            {
                "conversation": conversation.model_dump(mode="json") if conversation else None,
                "messages": [m.model_dump(mode="json") for m in messages],
                "runs": [
                    {
                        "run": row["run"].model_dump(mode="json"),
                        "feedback": [f.model_dump(mode="json") for f in row["feedback"]],
                    }
                    for row in rows
                ],
            }
        )
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
    return render_page(
        request,
        "conversation.html",
        section="conversations",
        conversation=conversation,
        conversation_id=conversation_id,
        transcript=transcript,
        rows=rows,
        users=sorted(users),
        title=_title(conversation.title if conversation else None, transcript, runs),
    )


def _title(own: str | None, transcript: list[dict[str, Any]], runs: list[Any]) -> str | None:
    """The conversation's own title, else the first thing the user asked."""
    if own:
        return own
    asked = [m["content"] for m in transcript if m["role"] == "user"]
    if asked:
        return str(asked[0])
    for run in runs:
        if isinstance(run.inputs, list):
            questions = [m.content for m in run.inputs if m.role == "user"]
            if questions:
                return str(questions[-1])
    return None


@router.get("/users", dependencies=[rule("read")])
def users_page(request: Request, services: ServicesDep) -> Response:
    """People whose runs are recorded, most recently active first, with their feedback."""
    return _list_page(request, services, "users", ("q", "model", "since", "until"))


def _list_page(
    request: Request, services: ServicesDep, section: str, filters: tuple[str, ...]
) -> Response:
    """A page of conversations or users as HTML or JSON; the filter fields offer known values."""
    query, problem = _list_query(request)
    project = services.settings.project
    browse = services.browse
    listing = browse.conversations if section == "conversations" else browse.users
    rows, total = listing(
        query.slice(project), limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE
    )
    if wants_json(request):
        return JSONResponse({"data": _json_rows(rows), "count": total, "page": query.page})
    params = {k: v for k, v in request.query_params.items() if v != "" and k != "page"}
    known: dict[str, Any] = {
        f"{field}s": browse.known_values(project, field)
        for field in ("user", "model")
        if field in filters
    }
    return render_page(
        request,
        f"{section}.html",
        section=section,
        rows=rows,
        total=total,
        query=query,
        problem=problem,
        params=params,
        chips=_chips(request, f"/{section}", filters),
        page=query.page,
        pages=max(1, -(-total // PAGE_SIZE)),
        **known,
    )


@router.get("/users/{name}", dependencies=[rule("read")])
def user_page(request: Request, services: ServicesDep, name: str) -> Response:
    """One person: their numbers and their conversations."""
    query, problem = _list_query(request)
    project = services.settings.project
    browse = services.browse
    found, _ = browse.users(Slice(project=project, user=name), limit=1)
    if not found:
        raise NotFoundError(f"no runs by user {name!r} in project {project!r}")
    summary = found[0]
    rows, total = browse.conversations(
        query.slice(project, user=name), limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE
    )
    if wants_json(request):
        return JSONResponse(
            {
                "user": _json_rows([summary])[0],
                "conversations": {"data": _json_rows(rows), "count": total, "page": query.page},
            }
        )
    params = {k: v for k, v in request.query_params.items() if v != "" and k != "page"}
    return render_page(
        request,
        "user.html",
        section="users",
        name=name,
        summary=summary,
        rows=rows,
        total=total,
        problem=problem,
        params=params,
        page=query.page,
        pages=max(1, -(-total // PAGE_SIZE)),
    )
