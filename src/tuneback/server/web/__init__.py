"""Server-rendered pages: Jinja templates and small plain JavaScript, no build step, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import Depends, FastAPI

from tuneback.server.deps import refuse_nul
from tuneback.server.web.assets import AssetFiles

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI, *, pages: Sequence[str]) -> None:
    """Mount the static files and the routes of the chosen page groups."""
    from tuneback.server.web import (
        chat,
        compare,
        dashboard,
        datasets,
        leaderboard,
        login,
        people,
        review,
        runs,
    )

    app.state.pages = list(pages)
    app.mount("/static", AssetFiles(directory=STATIC), name="static")
    checked = [Depends(refuse_nul)]
    app.include_router(login.router, dependencies=checked)
    if "chat" in pages:
        app.include_router(chat.router, dependencies=checked)
        app.include_router(compare.router, dependencies=checked)
    if "dashboard" in pages:
        app.include_router(dashboard.router, dependencies=checked)
        app.include_router(runs.router, dependencies=checked)
        app.include_router(people.router, dependencies=checked)
        app.include_router(datasets.router, dependencies=checked)
        app.include_router(leaderboard.router, dependencies=checked)
    if "review" in pages:
        app.include_router(review.router, dependencies=checked)
