"""Server-rendered pages: Jinja templates and small plain JavaScript, no build step, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI, *, pages: Sequence[str]) -> None:
    """Mount the static files and the routes of the chosen page groups."""
    from tuneback.server.web import chat, dashboard, review, runs

    app.state.pages = list(pages)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if "chat" in pages:
        app.include_router(chat.router)
    if "dashboard" in pages:
        app.include_router(dashboard.router)
        app.include_router(runs.router)
    if "review" in pages:
        review.install(app)
