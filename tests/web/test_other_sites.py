"""Another site cannot frame tuneback or post its forms; tuneback's own pages keep working.

The other site is a real HTTP server on another loopback port: reached as
127.0.0.1 it is the same site on another origin (the browser says same-site and
tuneback checks the Origin), reached as localhost it is another site altogether.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.analytics.seed import Seeded, seed
from tests.web.conftest import serving
from tuneback.domain import Conversation
from tuneback.domain.events import ConversationStarted
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store

COLLECT_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  // Plotly's bundle injects maplibre's styles for map traces, which the dashboard never draws.
  if (event.sample.startsWith(".maplibregl-map")) return;
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


@contextmanager
def other_site(pages: dict[str, str]) -> Iterator[int]:
    """Serve fixed HTML pages on a free loopback port; yields the port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "not here").encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site(store: Store) -> Iterator[tuple[str, Seeded]]:
    seeded = seed(store, runs=40, project="web")
    with serving(store, ModelCatalog([EchoModel()])) as url:
        yield url, seeded


def _conversation(store: Store, user: str = "ann") -> str:
    conversation = Conversation(project="web", user=user, model="echo")
    store.append(ConversationStarted(conversation=conversation))
    return conversation.id


def _ended(store: Store) -> list[str]:
    return [
        e.payload.conversation_id  # type: ignore[attr-defined]
        for e in store.events_after(0, limit=10_000, types=["conversation.ended"])
    ]


def test_no_page_breaks_its_content_security_policy(page: Page, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    page.add_init_script(COLLECT_VIOLATIONS)
    paths = [
        "/?user=ann",
        "/dashboard?period=all",
        "/runs",
        f"/runs/{seeded.runs[0].id}",
        "/datasets",
        "/review",
    ]
    for path in paths:
        page.goto(url + path)
        page.wait_for_load_state("networkidle")
        if path.startswith("/dashboard"):
            expect(page.locator("#chart-volume .main-svg").first).to_be_attached()
            page.select_option("select[name=period]", "30d")
            expect(page).to_have_url(f"{url}/dashboard?period=30d&model=")
        violations = page.evaluate("window.cspViolations")
        assert violations == [], (path, violations)


@pytest.mark.parametrize("other_host", ["127.0.0.1", "localhost"], ids=["same-site", "cross-site"])
def test_a_form_on_another_site_cannot_end_a_conversation(
    page: Page, site: tuple[str, Seeded], store: Store, other_host: str
) -> None:
    url, _ = site
    page.goto(f"{url}/")
    user = page.evaluate("async () => (await (await fetch('/ui/state')).json()).user")
    conversation_id = _conversation(store, user)
    action = f"{url}/ui/conversations/{conversation_id}/end"
    form = f'<form method="post" action="{action}"><button>Win a prize</button></form>'
    with other_site({"/": form}) as port:
        page.goto(f"http://{other_host}:{port}/")
        with page.expect_response(action) as answer:
            page.click("text=Win a prize")
        assert answer.value.status == 403
        assert answer.value.json()["error"]["type"] == "cross_site_request"
    assert _ended(store) == []
    assert store.get_conversation(conversation_id).ended_at is None

    # The chat page itself may: same request, from tuneback's own origin, with its token.
    page.goto(f"{url}/")
    status = page.evaluate(
        "async (path) => { const { csrfHeaders } = await import('/static/http.js');"
        " return (await fetch(path, { method: 'POST', headers: csrfHeaders() })).status; }",
        f"/ui/conversations/{conversation_id}/end",
    )
    assert status == 200
    assert _ended(store) == [conversation_id]


def test_a_page_on_another_site_cannot_frame_the_chat(page: Page, site: tuple[str, Seeded]) -> None:
    url, _ = site
    console: list[ConsoleMessage] = []
    page.on("console", lambda message: console.append(message))
    framing = (
        f'<iframe id="theirs" src="/inner"></iframe>'
        f'<iframe id="ours" src="{url}/?user=ann"></iframe>'
    )
    with other_site({"/": framing, "/inner": "<p id=inner>their own page</p>"}) as port:
        page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
        frames = {frame.name or frame.url: frame for frame in page.frames[1:]}
        theirs = page.frame_locator("#theirs")
        expect(theirs.locator("#inner")).to_have_text("their own page")  # framing works...
        ours = page.frame_locator("#ours")
        expect(ours.locator("#composer")).to_have_count(0)  # ...but not tuneback
        assert f"{url}/?user=ann" not in frames
    assert any("frame-ancestors 'none'" in message.text for message in console), [
        message.text for message in console
    ]
