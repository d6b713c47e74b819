"""``tuneback serve``: the chat, the pages and the API over HTTP."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from contextlib import suppress
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from tuneback.cli.app import DatabaseOption, app, err, settings_with
from tuneback.domain import ProjectSettings
from tuneback.errors import ConfigurationError
from tuneback.server.access import listens_on_loopback
from tuneback.server.security import machine_addresses
from tuneback.server.slow_clients import (
    HEADER_TIMEOUT_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_CONNECTIONS,
    DrainingServer,
    ServerLimits,
)
from tuneback.server.workers import refuse_sqlite, worker_environment
from tuneback.storage import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tuneback.config import Settings


def share_urls(host: str, port: int) -> list[str]:
    """The URLs people can open: this machine's, and its network addresses when shared."""
    if host not in ("0.0.0.0", "::"):
        return [f"http://{host}:{port}/"]
    urls = [f"http://127.0.0.1:{port}/"]
    for address in machine_addresses():
        if ":" not in address and not address.startswith("127."):
            urls.append(f"http://{address}:{port}/")
    return urls


@app.command()
def serve(
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="SPEC",
            help="Model spec to chat with (repeat to offer several; the first is the default): "
            "local, echo, gguf:PATH, transformers:DIR, openai:MODEL, hf:MODEL, "
            "python:MODULE:FUNCTION. NAME=SPEC shows the model as NAME on the pages.",
        ),
    ] = None,
    feedback: Annotated[
        str | None,
        typer.Option(
            metavar="WIDGETS",
            help="Feedback widgets under each answer, comma-separated: "
            "thumbs, faces, stars, comment, correction (saved as the project's setting); "
            "rank opens the compare page, as --arena does.",
        ),
    ] = None,
    chat_access: Annotated[
        ChatAccessChoice | None,
        typer.Option(
            help="Who may use the chat: open (anyone; each browser keeps its own "
            "conversations), link (browsers that opened an invitation: tuneback users "
            "invite) or accounts (signed-in accounts only). Saved as the project's setting.",
        ),
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="Project the chat records into.", envvar="TUNEBACK_PROJECT")
    ] = None,
    pages: Annotated[
        str,
        typer.Option(help="Page groups to serve, comma-separated (the API is always served)."),
    ] = "chat",
    arena: Annotated[
        bool,
        typer.Option(
            "--arena",
            help="Open on the compare page: people ask once and vote on two answers side by "
            "side; with several models, two are picked at random and named only after the "
            "vote. The chat stays at /?chat.",
        ),
    ] = False,
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on; 0.0.0.0 shares it on your network."),
    ] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on.")] = None,
    no_auth: Annotated[
        bool,
        typer.Option("--no-auth", help="Serve /api/v1 without API keys (loopback only)."),
    ] = False,
    any_model: Annotated[
        bool,
        typer.Option(
            "--any-model",
            help="The OpenAI-compatible proxy (/v1/chat/completions) answers a request that "
            "names no model, or one not offered here (TGI-style clients send 'tgi'), with the "
            "default model; the run records the name asked for.",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes to run (PostgreSQL only); each commits its requests "
            "together, and all of them share the database.",
        ),
    ] = 1,
    keep_alive: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Close a connection idle this long after its last response.",
        ),
    ] = KEEP_ALIVE_SECONDS,
    header_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="Close a connection whose request headers take longer than this to arrive "
            "(slow or idle clients).",
        ),
    ] = HEADER_TIMEOUT_SECONDS,
    max_connections: Annotated[
        int,
        typer.Option(
            min=1,
            help="Open connections (or requests in progress) per process beyond which "
            "requests are answered 503 at once.",
        ),
    ] = MAX_CONNECTIONS,
    gradio: Annotated[
        str | None,
        typer.Option(
            metavar="FILE.py:NAME",
            help="Also serve a Gradio app (a gr.Blocks chat or gr.ChatInterface, e.g. "
            "examples/gradio_chat.py:demo) inside this server at --gradio-path; its answers "
            "and ratings are logged here (tracked with tuneback.integrations.gradio.track if "
            "the app is not already) over loopback, with an API key made for it at start and "
            "revoked at exit. MODULE:NAME works too.",
        ),
    ] = None,
    gradio_path: Annotated[
        str, typer.Option(metavar="PATH", help="Where the --gradio app is served.")
    ] = "/gradio",
    database_url: DatabaseOption = None,
) -> None:
    """Serve the chat, the pages and the API over HTTP.

    Examples:

    \b
        tuneback serve                                  # chat with the embedded local model
        tuneback serve -m openai:gpt-4o-mini -m echo    # offer two models
        tuneback serve -m a=openai:gpt-4o-mini -m b=local --arena   # battle them, vote
        tuneback serve --feedback faces,comment --host 0.0.0.0
        tuneback serve -m openai:llama3.2 --any-model   # a proxy for clients that name no model
        tuneback serve --workers 4 --database-url postgresql://localhost/tuneback
        TUNEBACK_NATS_URL=nats://127.0.0.1:4222 tuneback serve   # also stream every event
        tuneback serve --gradio examples/gradio_blocks.py:demo   # a Gradio chat at /gradio

    With TUNEBACK_NATS_URL set, the server also publishes every committed event
    to NATS JetStream (see tuneback relay --help); with several workers one of
    them relays, elected by a lock in the database, and another takes over if
    it stops.
    """
    import uvicorn

    from tuneback.server import create_app
    from tuneback.server.app import check_pages
    from tuneback.server.web.chat import ARENA

    settings = settings_with(
        host=host,
        port=port,
        database_url=database_url,
        project=project,
        auth=False if no_auth else None,
        proxy_any_model=True if any_model else None,
    )
    if no_auth and not listens_on_loopback(settings.host):
        raise ConfigurationError(
            f"--no-auth is allowed only on loopback, not on {settings.host}: "
            "create a key with `tuneback keys create` instead"
        )
    chosen_pages = check_pages(pages.split(","))
    if feedback is not None:
        words = [w.strip() for w in feedback.split(",") if w.strip()]
        arena = arena or "rank" in words
        feedback = ",".join(w for w in words if w != "rank") or None
    if arena:
        if "chat" not in chosen_pages:
            raise ConfigurationError(
                "--arena (or --feedback rank) opens the compare page, which comes with the chat: "
                "add chat to --pages"
            )
        chosen_pages.append(ARENA)
    refuse_sqlite(settings.database_url, workers)
    if gradio is not None and workers > 1:
        raise ConfigurationError(
            "--gradio serves the Gradio app in one server process: leave out --workers"
        )
    limits = ServerLimits(
        keep_alive=keep_alive, header_timeout=header_timeout, max_connections=max_connections
    ).uvicorn_options()
    models = model or [settings.model]
    store = Store(settings.database_url)
    gradio_key: str | None = None
    try:
        if feedback is not None:
            save_widgets(store, settings.project, feedback)
        if chat_access is not None:
            save_chat_access(store, settings.project, chat_access.value)
        access_line = who_may_open_the_pages(store, settings.host)
        if workers > 1:
            store.close()
            err.print(
                f"tuneback {', '.join(chosen_pages)} · {workers} workers · data in "
                f"{store.display_url}"
            )
            for url in share_urls(settings.host, settings.port):
                err.print(f"  open {url}{'compare' if arena else ''}")
            err.print(access_line)
            os.environ.update(worker_environment(settings, models=models, pages=chosen_pages))
            uvicorn.run(
                "tuneback.server.workers:create_worker_app",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level=settings.log_level,
                **limits,
            )
            return
        application = create_app(
            settings, store=store, models=models, pages=chosen_pages, own_process=True
        )
        err.print(f"tuneback {', '.join(chosen_pages)} · data in {store.display_url}")
        for url in share_urls(settings.host, settings.port):
            err.print(f"  open {url}{'compare' if arena else ''}")
        err.print(access_line)
        stop_first: Callable[[], Awaitable[object]] | None = None
        if gradio is not None:
            gradio_key, stop_first = mount_gradio_app(
                application, store, settings, gradio, gradio_path
            )
        config = uvicorn.Config(
            application,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            **limits,
        )
        with suppress(KeyboardInterrupt):  # uvicorn raises Ctrl-C again once it has stopped
            DrainingServer(config, stop_first).run()
    finally:
        if gradio_key is not None:
            from tuneback.services.keys import KeyService

            KeyService(store).revoke(gradio_key, actor="tuneback serve --gradio")
        store.close()


def loopback_url(host: str, port: int) -> str:
    """This server's URL from this machine."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def mount_gradio_app(
    application: FastAPI, store: Store, settings: Settings, spec: str, path: str
) -> tuple[str | None, Callable[[], Awaitable[object]]]:
    """Load the Gradio app ``spec`` and serve it at ``path``; the id of the key made for
    it, and what stops the app (awaited before the server stops): its writes still
    queued are sent and its open streams ended.

    The app logs over loopback, as any app does, rather than calling the
    services in-process: its writes then pass the same key checks, rate limits
    and commits, and its SDK client needs no second way in. With auth on it
    gets a key of its own (role user: log and chat, nothing else), made here
    and revoked when the server stops, so no key has to be copied anywhere.
    """
    from tuneback.integrations.gradio_mount import check_mount_path, load_blocks, mount_gradio
    from tuneback.services.keys import KeyService

    check_mount_path(application, path)
    os.environ["TUNEBACK_URL"] = loopback_url(settings.host, settings.port)
    key_id = None
    if settings.auth:
        made = KeyService(store).create(
            settings.project, name="gradio app (tuneback serve --gradio)", role="user"
        )
        os.environ["TUNEBACK_API_KEY"] = made.key
        key_id = made.record.id
    try:
        mounted = mount_gradio(application, load_blocks(spec), path)
    except BaseException:
        if key_id is not None:
            KeyService(store).revoke(key_id, actor="tuneback serve --gradio")
        raise
    for url in share_urls(settings.host, settings.port):
        err.print(f"  gradio app {spec} at {url.rstrip('/')}/{path.strip('/')}/")
    return key_id, partial(mounted.stop, GRADIO_DRAIN_SECONDS)


GRADIO_DRAIN_SECONDS = 10.0
"""How long a stopping server waits for its Gradio app's queued writes to reach it."""


class ChatAccessChoice(StrEnum):
    open = "open"
    link = "link"
    accounts = "accounts"


def who_may_open_the_pages(store: Store, host: str) -> str:
    """A line saying who may open the owner pages, and how to change it."""
    from tuneback.services.accounts import AccountService

    if AccountService(store).any_account():
        return "  pages: sign in at /login (accounts: tuneback users list)"
    if listens_on_loopback(host):
        return (
            "  pages: no accounts yet, so on this machine you are the owner; before "
            "sharing, add one: tuneback users add NAME --role owner"
        )
    return (
        "  pages: no accounts yet, so the dashboard, runs, review and datasets are "
        "closed to everyone; add an owner: tuneback users add NAME --role owner"
    )


def save_chat_access(store: Store, project: str, access: str) -> None:
    from tuneback.services.feedback import FeedbackService

    current = store.get_project(project).settings
    if current.chat_access != access:
        wanted = current.model_copy(update={"chat_access": access})
        FeedbackService(store).configure_project(project, wanted)


def save_widgets(store: Store, project: str, feedback: str) -> None:
    from tuneback.services.feedback import FeedbackService

    widgets = [w.strip() for w in feedback.split(",") if w.strip()]
    if not widgets:
        return
    current = store.get_project(project).settings
    wanted = ProjectSettings.model_validate({**current.model_dump(), "feedback": widgets})
    if wanted != current:
        FeedbackService(store).configure_project(project, wanted)
