"""``tuneback.launch``: a chat with feedback in front of a model object, from a notebook or script.

::

    import tuneback

    def reply(messages):
        return "You said: " + messages[-1]["content"]

    tuneback.launch(reply, feedback="thumbs,comment")   # http://127.0.0.1:8000

    # Two models side by side; people vote which answer is better (pykoi's "rank").
    tuneback.launch("openai:gpt-4o-mini", reply, feedback="rank")   # .../compare

    # The chat for users on 8000; the dashboard and review pages on 8001 only.
    tuneback.launch(reply, pages=("chat",), dashboard_port=8001)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tuneback.config import Settings
from tuneback.errors import ConfigurationError
from tuneback.models import ModelAdapter, adapter_from_callable
from tuneback.models.registry import resolve_labelled
from tuneback.models.runnable import RunnableModel, is_runnable


def as_adapter(model: Any) -> ModelAdapter:
    """A spec string, an adapter, a LangChain runnable, or a function/generator as an adapter."""
    if isinstance(model, str):
        return resolve_labelled(model)
    if isinstance(model, ModelAdapter):
        return model
    if is_runnable(model):
        return RunnableModel(model)
    return adapter_from_callable(model)


def launch(
    model: Any = "local",
    *more_models: Any,
    feedback: str | Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    project: str | None = None,
    database_url: str | None = None,
    pages: Sequence[str] | None = None,
    dashboard_port: int | None = None,
) -> None:
    """Serve the chat for ``model`` until interrupted, recording every run and rating.

    ``model`` is a spec (``"local"``, ``"openai:gpt-4o-mini"``), an adapter, a
    LangChain runnable, or a function taking the messages and returning (or
    yielding) the reply; pass more models to offer several. ``feedback`` picks
    the widgets under each answer (``"thumbs,comment"``; any of thumbs, faces,
    stars, comment, correction). ``feedback="rank"`` opens the compare page
    instead: two answers side by side, a vote for the better one (with several
    models, two are picked at random and named after the vote; with one, it
    answers twice). ``host="0.0.0.0"`` shares it on your network and prints its URLs.

    ``pages`` picks the page groups served on ``port`` (chat, dashboard,
    review; all of them by default, the API always). ``dashboard_port`` serves
    the owner's pages (dashboard and review) on a second port of their own, and
    then ``port`` serves only the chat unless ``pages`` says otherwise, so the
    people chatting never see the dashboard.
    """
    import uvicorn

    from tuneback.cli.serve import save_widgets, share_urls
    from tuneback.server import create_app
    from tuneback.server.app import PAGES, check_pages
    from tuneback.server.web.chat import ARENA
    from tuneback.storage import Store

    owners = [p for p in PAGES if p != "chat"]
    chat_pages = check_pages(pages if pages is not None else ["chat"] if dashboard_port else PAGES)
    if dashboard_port is not None and dashboard_port == port:
        raise ConfigurationError(f"dashboard_port must differ from port ({port})")

    overrides: dict[str, Any] = {"host": host, "port": port}
    if project is not None:
        overrides["project"] = project
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    chosen = [feedback] if isinstance(feedback, str) else list(feedback or [])
    words = [w.strip() for text in chosen for w in text.split(",") if w.strip()]
    arena = "rank" in words
    widgets = [w for w in words if w != "rank"]
    adapters = [as_adapter(m) for m in (model, *more_models)]
    store = Store(settings.database_url)
    try:
        if widgets:
            save_widgets(store, settings.project, ",".join(widgets))
        served = [*chat_pages, ARENA] if arena and "chat" in chat_pages else chat_pages
        apps = [(create_app(settings, store=store, models=adapters, pages=served), port)]
        for url in share_urls(host, port):
            print(f"tuneback {'compare' if arena else 'chat'}: {url}{'compare' if arena else ''}")
        if dashboard_port is not None:
            dashboard = create_app(settings, store=store, models=adapters, pages=owners)
            apps.append((dashboard, dashboard_port))
            for url in share_urls(host, dashboard_port):
                print(f"tuneback dashboard: {url}dashboard")
        servers = [
            uvicorn.Server(uvicorn.Config(app, host=host, port=p, log_level="warning"))
            for app, p in apps
        ]
        asyncio.run(_serve(servers))
    finally:
        store.close()


async def _serve(servers: list[Any]) -> None:
    """Run uvicorn servers until one stops (Ctrl-C), then stop the others."""
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*pending)
