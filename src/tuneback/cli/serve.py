"""``tuneback serve``: run the web app and API."""

from __future__ import annotations

from typing import Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, err, settings_with


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on; 0.0.0.0 shares it on your network."),
    ] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on.")] = None,
    database_url: DatabaseOption = None,
) -> None:
    """Serve tuneback over HTTP (health check at /healthz, API docs at /docs)."""
    import uvicorn

    from tuneback.server import create_app
    from tuneback.storage import Store

    settings = settings_with(host=host, port=port, database_url=database_url)
    store = Store(settings.database_url)
    try:
        err.print(f"tuneback on http://{settings.host}:{settings.port} (data: {store.display_url})")
        uvicorn.run(
            create_app(settings, store=store),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
        )
    finally:
        store.close()
