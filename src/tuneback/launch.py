"""``tuneback.launch``: a chat with feedback in front of a model object, from a notebook or script.

::

    import tuneback

    def reply(messages):
        return "You said: " + messages[-1]["content"]

    tuneback.launch(reply, feedback="thumbs,comment")   # http://127.0.0.1:8000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tuneback.config import Settings
from tuneback.models import ModelAdapter, adapter_from_callable, resolve_model
from tuneback.models.runnable import RunnableModel, is_runnable


def as_adapter(model: Any) -> ModelAdapter:
    """A spec string, an adapter, a LangChain runnable, or a function/generator as an adapter."""
    if isinstance(model, str):
        return resolve_model(model)
    if isinstance(model, ModelAdapter):
        return model
    if is_runnable(model):
        return RunnableModel(model)
    return adapter_from_callable(model)


def launch(
    model: Any = "local",
    *,
    feedback: str | Sequence[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    project: str | None = None,
    database_url: str | None = None,
) -> None:
    """Serve the chat for ``model`` until interrupted, recording every run and rating.

    ``model`` is a spec (``"local"``, ``"openai:gpt-4o-mini"``), an adapter, a
    LangChain runnable, or a function taking the messages and returning (or
    yielding) the reply. ``feedback`` picks the widgets under each answer
    (``"thumbs,comment"``; any of thumbs, faces, stars, comment, correction).
    ``host="0.0.0.0"`` shares the chat on your network and prints its URLs.
    """
    import uvicorn

    from tuneback.cli.serve import save_widgets, share_urls
    from tuneback.server import create_app
    from tuneback.storage import Store

    overrides: dict[str, Any] = {"host": host, "port": port}
    if project is not None:
        overrides["project"] = project
    if database_url is not None:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)
    store = Store(settings.database_url)
    try:
        if feedback is not None:
            widgets = feedback if isinstance(feedback, str) else ",".join(feedback)
            save_widgets(store, settings.project, widgets)
        app = create_app(settings, store=store, models=[as_adapter(model)])
        for url in share_urls(host, port):
            print(f"tuneback chat: {url}")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        store.close()
