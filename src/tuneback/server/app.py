"""The web application factory: ``create_app(settings, store=...)``, nothing global at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tuneback.__about__ import __version__
from tuneback.config import Settings
from tuneback.server.api import health
from tuneback.server.errors import install_error_handlers
from tuneback.storage import Store


def create_app(settings: Settings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the app; collaborators not passed in are made from ``settings``.

    A store passed in stays open when the app stops; one made here is closed.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = None
        if app.state.store is None:
            owned = app.state.store = Store(settings.database_url)
        try:
            yield
        finally:
            if owned is not None:
                owned.close()
                app.state.store = None

    app = FastAPI(
        title="tuneback",
        version=__version__,
        summary="Collect human feedback on language-model answers and turn it into better models.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    install_error_handlers(app)
    app.include_router(health.router)
    return app
