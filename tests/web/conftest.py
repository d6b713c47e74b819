"""A real tuneback server on loopback and a real browser (Debian's chromium, headless).

The server runs in a thread of the test process, so a test can queue replies on
its scripted model and read the store directly while the browser drives the page.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from tuneback.config import Settings
from tuneback.models import EchoModel, ScriptedModel
from tuneback.server import create_app
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store

CHROMIUM = os.environ.get("TUNEBACK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(
    os.environ.get("TUNEBACK_SCREENSHOTS", Path(__file__).parents[2] / "screenshots")
)


@dataclass
class LiveServer:
    url: str
    store: Store
    scripted: ScriptedModel


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scripted() -> ScriptedModel:
    return ScriptedModel(name="Scripted")


@contextmanager
def serving(store: Store, models: ModelCatalog) -> Iterator[str]:
    """Run the app on a free loopback port in a thread; yields its base URL."""
    port = _free_port()
    settings = Settings(database_url=str(store.url), project="web", port=port)
    app = create_app(settings, store=store, models=models)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(store: Store, scripted: ScriptedModel) -> Iterator[LiveServer]:
    with serving(store, ModelCatalog([scripted, EchoModel()])) as url:
        yield LiveServer(url, store, scripted)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop
    # running while it is open, and pytest-asyncio cannot start one in the same
    # thread, so the browser must be gone before another module's async tests.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"the page raised: {errors}"
