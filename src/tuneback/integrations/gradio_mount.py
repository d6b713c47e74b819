"""A Gradio app served inside tuneback's own server: ``tuneback serve --gradio FILE.py:NAME``.

The app is loaded from a file (or a module), tracked with
:func:`tuneback.integrations.gradio.track` unless it already is, and mounted
under a path of the server with ``gr.mount_gradio_app``. Its answers and
ratings reach the server the way any app's do, through the SDK over HTTP, so
they pass the same keys, limits and checks; the caller points ``TUNEBACK_URL``
and ``TUNEBACK_API_KEY`` at the server before the app is loaded.

Gradio (five seconds to import) is imported only once there is an app to
serve, so a missing file or a taken path is refused at once.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tuneback.errors import ConfigurationError

if TYPE_CHECKING:
    import gradio as gr
    from gradio.routes import App

    from tuneback.integrations.gradio import Tracker

# Gradio's page runs its own inline scripts and styles and loads its fonts, which
# the strict policy of tuneback's pages refuses: its pages get Gradio's own
# (none), save that they are framed by this site only.
GRADIO_PAGE_POLICY = "frame-ancestors 'self'"


def load_blocks(spec: str) -> gr.Blocks:
    """The ``gr.Blocks`` (or ``gr.ChatInterface``) named by ``FILE.py:NAME`` or ``MODULE:NAME``."""
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise ConfigurationError(
            f"--gradio {spec!r}: name the app as FILE.py:NAME or MODULE:NAME, "
            "e.g. examples/gradio_chat.py:demo"
        )
    if where.endswith(".py") or "/" in where:
        path = Path(where)
        if not path.is_file():
            raise ConfigurationError(f"--gradio {spec!r}: there is no file {where}")
        # The app's own imports of its neighbours work as when it is run as a script.
        sys.path.insert(0, str(path.resolve().parent))
        module_spec = importlib.util.spec_from_file_location(f"gradio_app_{path.stem}", path)
        assert module_spec is not None
        assert module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(f"--gradio {spec!r}: no module {where} ({exc})") from exc
    import gradio as gr

    demo = getattr(module, name, None)
    if not isinstance(demo, gr.Blocks):
        found = "nothing" if demo is None else f"a {type(demo).__name__}"
        raise ConfigurationError(
            f"--gradio {spec!r}: {name} in {where} is {found}, not a gr.Blocks or gr.ChatInterface"
        )
    return demo


def check_mount_path(app: FastAPI, path: str) -> str:
    """``path`` as a mount point: one or more segments, none of tuneback's own."""
    cleaned = "/" + path.strip().strip("/")
    if cleaned == "/":
        raise ConfigurationError(
            "--gradio-path must name a path below the site, such as /gradio: "
            "the root serves tuneback's own pages"
        )
    for route in iter_route_contexts(app.routes):
        taken = route.path or ""
        if taken == cleaned or taken.startswith(cleaned + "/"):
            raise ConfigurationError(
                f"--gradio-path {cleaned} is taken by tuneback's own {taken}: choose another"
            )
    return cleaned


@dataclass(frozen=True)
class MountedGradio:
    """A Gradio app served inside tuneback's server: its tracker, and how it stops."""

    tracker: Tracker
    app: App
    """Gradio's own ASGI app, mounted at the path."""

    async def stop(self, drain_seconds: float) -> None:
        """Send the app's queued writes while the server still listens, then end the
        browsers' heartbeat streams, which would otherwise hold the server's graceful
        shutdown for its whole timeout."""
        await asyncio.to_thread(self.tracker.flush, drain_seconds)
        self.app.stop_event.set()


def mount_gradio(app: FastAPI, demo: gr.Blocks, path: str) -> MountedGradio:
    """Serve ``demo`` at ``path`` in ``app``, tracking it if it is not already."""
    import gradio as gr
    from gradio.routes import App

    from tuneback.integrations.gradio import Tracker, track

    path = check_mount_path(app, path)
    tracker = getattr(demo, "tuneback", None)
    if not isinstance(tracker, Tracker):
        tracker = track(demo).tuneback  # type: ignore[attr-defined]
        assert isinstance(tracker, Tracker)
    gr.mount_gradio_app(app, demo, path=path)
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == path]
    gradio_app = mount.app
    assert isinstance(gradio_app, App)
    mount.app = GradioPagePolicy(gradio_app)
    return MountedGradio(tracker, gradio_app)


class GradioPagePolicy:
    """Gives the mounted app's responses their own Content-Security-Policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["content-security-policy"] = GRADIO_PAGE_POLICY
            await send(message)

        await self.app(scope, receive, send_with_policy if scope["type"] == "http" else send)


__all__ = [
    "GRADIO_PAGE_POLICY",
    "MountedGradio",
    "check_mount_path",
    "load_blocks",
    "mount_gradio",
]
