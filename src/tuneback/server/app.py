"""The web application factory: ``create_app(settings, store=..., models=...)``.

Nothing is built at import time; tests pass in a store on a temporary database
and a scripted model, and everything else is made from those.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from tuneback.__about__ import __version__
from tuneback.config import Settings
from tuneback.errors import ConfigurationError
from tuneback.models import ModelAdapter
from tuneback.server import proxy
from tuneback.server.access import BrowserIdentity, declare_key_security
from tuneback.server.api import health, include_api
from tuneback.server.api.routes import serve_routes
from tuneback.server.deps import Services
from tuneback.server.errors import install_error_handlers
from tuneback.server.limits import BodyLimit
from tuneback.server.rate_limits import WriteRateLimit
from tuneback.server.security import SiteGuard, SitePolicy
from tuneback.server.web import install_web
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store

if TYPE_CHECKING:
    from tuneback.stream import BackgroundRelay

PAGES = ("chat", "dashboard", "review")
"""Every page group ``--pages`` can name."""


def check_pages(pages: Sequence[str]) -> list[str]:
    """The page groups asked for, refusing a name that is not one (``--pages``, ``launch``)."""
    chosen = [p.strip() for p in pages if p.strip()]
    unknown = sorted(set(chosen) - set(PAGES))
    if unknown:
        raise ConfigurationError(
            f"unknown page group {', '.join(unknown)}: choose from {', '.join(PAGES)}"
        )
    return chosen


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    models: ModelCatalog | Sequence[ModelAdapter | str] | None = None,
    pages: Sequence[str] = PAGES,
    own_process: bool = False,
) -> FastAPI:
    """Build the app; collaborators not passed in are made from ``settings``.

    A store passed in stays open when the app stops; one made here is closed.
    ``pages`` picks the page groups to serve (the API is always served).
    ``own_process`` says the process serves this app and nothing else (``tuneback
    serve``): once started, it keeps what start-up built out of the garbage
    collector's passes (see :func:`tune_garbage_collector`).
    """
    settings = settings or Settings()
    owned_store = store is None
    store = store or Store(settings.database_url)
    if not isinstance(models, ModelCatalog):
        models = ModelCatalog(models or [settings.model])
    services = Services.build(settings, store, models)
    relay = _stream_relay(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.models.start_loading()
        if relay is not None:
            relay.start()
        if own_process:
            tune_garbage_collector()
        try:
            yield
        finally:
            # Background work first: it may still be storing what it was asked to.
            # It waits in a thread, so the streams it stops can still reach the loop.
            await asyncio.to_thread(services.background.shutdown)
            if relay is not None:
                await relay.stop()
            if owned_store:
                services.store.close()

    app = FastAPI(
        title="tuneback",
        version=__version__,
        summary="Collect human feedback on language-model answers and turn it into better models.",
        lifespan=lifespan,
    )
    app.state.services = services
    # The same container under the name the proxy and the key check read it by.
    app.state.api = services
    app.state.relay = relay
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(BrowserIdentity)
    if settings.rate_limit != "off":
        # Right after the site guard: a write over the limit costs no more than a count.
        app.add_middleware(
            WriteRateLimit,
            rule=settings.rate_limit,
            exempt=settings.rate_limit_exempt,
            keys=services.keys,
            keyed=settings.auth,
        )
    # Added last, so it runs first: a refused host or cross-site write costs nothing.
    app.state.site = SitePolicy.from_settings(settings)
    app.add_middleware(
        SiteGuard,
        policy=app.state.site,
        docs_paths=(app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url),
    )
    # The router walks its routes in order, so the proxy's few come before the
    # API's many: a chat completion is then matched without trying every API path.
    serve_routes(app, health.router)
    serve_routes(app, proxy.router)
    include_api(app)
    declare_key_security(app)
    install_web(app, pages=pages)
    return app


YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations between two collections of the youngest generation while serving (Python's
default is 700): a request makes a few hundred short-lived objects, nearly all freed by
reference counting, so collecting every 700 mostly walks objects about to die anyway."""


def tune_garbage_collector() -> None:
    """Keep the garbage collector off the request path of a server process.

    Routes, validators, tables and the model catalog live as long as the process,
    yet a full collection walks all of them (about 150,000 objects) every few
    hundred requests, and every request in flight waits. They are frozen out of
    the collector's passes for good (collected first, so no garbage is frozen with
    them), and the youngest generation is collected less often. Measured with
    ``bench/bench_gc_pauses.py`` (3,200 chat completions, 32 in flight): six full
    passes of up to 90 ms each before; none after, and half the time in young ones.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def _stream_relay(settings: Settings, store: Store) -> BackgroundRelay | None:
    """The outbox relay to NATS when TUNEBACK_NATS_URL is set; every worker runs one, one leads."""
    if not settings.nats_url:
        return None
    from tuneback.stream import BackgroundRelay, StreamTarget
    from tuneback.stream.subjects import require_nats

    require_nats()
    return BackgroundRelay(store, StreamTarget.from_settings(settings))
