"""The one Jinja environment every page renders with, and the shell's shared context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from tuneback.server.web.markdown import render_markdown

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["markdown"] = render_markdown

SECTIONS_OF_PAGE_GROUP = {
    "chat": ("chat",),
    "dashboard": ("dashboard", "runs", "datasets"),
    "review": ("review",),
}


def sections(request: Request) -> list[str]:
    """The sections this server shows in its top bar, from its page groups."""
    groups: list[str] = request.app.state.pages
    return [s for group in groups for s in SECTIONS_OF_PAGE_GROUP.get(group, ())]


def render_page(
    request: Request,
    template: str,
    *,
    section: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render a page inside the shell (top bar with the sections, the project's name)."""
    services = request.app.state.services
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
