"""The one Jinja environment every page renders with, and the shell's shared context."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from tuneback.domain.access import Permission, Principal
from tuneback.server.access import csrf_token
from tuneback.server.deps import services_of
from tuneback.server.web.assets import plotly_url, versioned
from tuneback.server.web.markdown import render_markdown

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def percent(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def change(value: float | None) -> str:
    """+12% / −5% against the previous period."""
    if value is None:
        return ""
    sign = "+" if value >= 0 else "−"
    return f"{sign}{abs(value) * 100:.0f}%"


def query(params: dict[str, Any]) -> str:
    """A query string for the given parameters, leaving out the empty ones."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return urlencode(kept)


templates.env.filters.update(
    markdown=render_markdown,
    percent=percent,
    ms=milliseconds,
    number=number,
    change=change,
    query=query,
)


def principal(request: Request) -> Principal | None:
    """Who this page is for, as the route's guard found them (None on public pages)."""
    found: Principal | None = getattr(request.state, "principal", None)
    return found


def page_csrf(request: Request) -> str:
    """The CSRF token a page's scripts send; none on a page that no browser identity reaches.

    The feedback link page lives under /api/ (the link is the API's URL), where
    browsers get no identity: its form is authorised by the link's token instead.
    """
    if getattr(request.state, "browser", None) is None:
        return ""
    return csrf_token(request)


templates.env.globals.update(csrf=page_csrf, principal=principal, plotly_url=plotly_url)
# Static URLs carry their file's content version, so browsers may keep them for good.
templates.env.globals["url_for"] = versioned(templates.env.globals["url_for"])  # type: ignore[arg-type]

SECTIONS_OF_PAGE_GROUP = {
    "chat": ("chat", "compare"),
    "dashboard": ("dashboard", "leaderboard", "runs", "conversations", "users", "datasets"),
    "review": ("review",),
}
PERMISSION_OF_SECTION: dict[str, Permission] = {
    "chat": "chat",
    "compare": "chat",
    "dashboard": "manage",
    "leaderboard": "manage",
    "runs": "read",
    "conversations": "read",
    "users": "read",
    "datasets": "manage",
    "review": "review",
}


def sections(request: Request) -> list[str]:
    """The sections of this server's page groups that the visitor may open."""
    groups: list[str] = request.app.state.pages
    who = principal(request)
    return [
        s
        for group in groups
        for s in SECTIONS_OF_PAGE_GROUP.get(group, ())
        if who is not None and who.may(PERMISSION_OF_SECTION[s])
    ]


def render_page(
    request: Request,
    template: str,
    *,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page inside the shell (top bar with the sections, the project's name)."""
    services = services_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "section": section,
            "sections": sections(request),
            "project": services.settings.project,
            **context,
        },
        status_code=status_code,
    )
