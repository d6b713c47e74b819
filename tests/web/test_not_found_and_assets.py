"""A styled 404 for people, JSON for programs; static assets gzipped and cacheable."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import BASE, make_app
from tests.visitors import open_pages
from tuneback.server.web.assets import STATIC, plotly_bundle, version_of
from tuneback.storage import Store

HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(store, project="default"))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield await open_pages(client)


class _Outline(HTMLParser):
    """The title, the heading, the way back and the section links of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[str, str] = {"title": "", "h1": "", "back": ""}
        self.back_href: str | None = None
        self.nav: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag in ("title", "h1"):
            self._in.append(tag)
        elif tag == "a" and "primary-btn" in classes:
            self._in.append("back")
            self.back_href = found.get("href")
        elif tag == "a" and self._in and self._in[-1] == "nav":
            self.nav.append("")
        elif tag == "nav":
            self._in.append("nav")

    def handle_endtag(self, tag: str) -> None:
        if self._in and (tag == self._in[-1] or (tag == "a" and self._in[-1] == "back")):
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if not self._in:
            return
        where = self._in[-1]
        if where == "nav" and self.nav:
            self.nav[-1] += data.strip()
        elif where != "nav":
            self.texts[where] += data.strip()


def _page(response: httpx.Response) -> dict[str, object]:
    outline = _Outline()
    outline.feed(response.text)
    return {
        "status": response.status_code,
        "type": response.headers["content-type"],
        "title": outline.texts["title"],
        "h1": outline.texts["h1"],
        "back": (outline.texts["back"], outline.back_href),
        "nav": [name for name in outline.nav if name],
    }


async def test_unknown_runs_datasets_and_pages_get_the_styled_404(
    client: httpx.AsyncClient,
) -> None:
    run = await client.get("/runs/01NOSUCHRUN", headers=HTML)
    outline = _page(run)
    # Inside the shell: the visitor's sections stay one click away.
    assert {"Chat", "Dashboard", "Runs", "Review", "Datasets"} <= set(outline.pop("nav"))  # type: ignore[arg-type]
    assert outline == {
        "status": 404,
        "type": "text/html; charset=utf-8",
        "title": "Not found · tuneback",
        "h1": "This run isn't here",
        "back": ("Back to the runs", "/runs"),
    }
    assert "no run with id 01NOSUCHRUN" in run.text
    dataset = await client.get("/datasets/nope", headers=HTML)
    assert _page(dataset)["h1"] == "This dataset isn't here"
    assert _page(dataset)["back"] == ("Back to the datasets", "/datasets")
    unknown = await client.get("/no/such/page", headers=HTML)
    assert {k: v for k, v in _page(unknown).items() if k != "nav"} == {
        "status": 404,
        "type": "text/html; charset=utf-8",
        "title": "Not found · tuneback",
        "h1": "This page isn't here",
        "back": ("Go to the start page", "/"),
    }


async def test_programs_still_get_json_404s(client: httpx.AsyncClient) -> None:
    twin = await client.get("/runs/01NOSUCHRUN?format=json", headers=HTML)
    asked = await client.get("/runs/01NOSUCHRUN", headers={"accept": "application/json"})
    api = await client.get("/api/v1/runs/01NOSUCHRUN", headers=HTML)
    route = await client.get("/no/such/page", headers={"accept": "application/json"})
    for response in (twin, asked):
        assert (response.status_code, response.json()) == (
            404,
            {
                "error": {
                    "type": "not_found",
                    "message": "no run with id 01NOSUCHRUN",
                    "details": None,
                }
            },
        )
    assert api.status_code in (401, 404)
    assert api.headers["content-type"] == "application/json"
    assert (route.status_code, route.json()["error"]["type"]) == (404, "not_found")


async def test_static_files_are_gzipped_versioned_and_revalidated(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/runs", headers=HTML)
    css = STATIC / "tuneback.css"
    href = f"/static/tuneback.css?v={version_of(css)}"
    assert f'href="{BASE}{href}"' in page.text or f'href="{href}"' in page.text
    versioned = await client.get(href, headers={"accept-encoding": "gzip"})
    assert versioned.status_code == 200
    assert versioned.headers["content-encoding"] == "gzip"
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.content == css.read_bytes()  # httpx undoes the gzip
    plain = await client.get("/static/tuneback.css", headers={"accept-encoding": "identity"})
    assert plain.headers["cache-control"] == "no-cache"
    assert "content-encoding" not in plain.headers
    assert plain.content == css.read_bytes()
    again = await client.get(
        "/static/tuneback.css",
        headers={"accept-encoding": "gzip", "if-none-match": versioned.headers["etag"]},
    )
    assert (again.status_code, again.content) == (304, b"")
    assert (await client.get("/static/nope.css")).status_code == 404


async def test_plotly_goes_out_compressed_for_a_year(client: httpx.AsyncClient) -> None:
    bundle = plotly_bundle()
    assert isinstance(bundle, Path)
    dashboard = await client.get("/dashboard", headers=HTML)
    src = f"/ui/plotly.js?v={version_of(bundle)}"
    assert f'data-plotly="{src}"' in dashboard.text
    raw = await client.get(src, headers={"accept-encoding": "gzip"}, extensions={})
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert raw.content == bundle.read_bytes()
    sent = int(raw.headers["content-length"])
    assert sent == len(gzip.compress(bundle.read_bytes(), compresslevel=6, mtime=0))
    assert sent < bundle.stat().st_size / 3


async def test_the_chat_modules_import_each_other_by_versioned_urls(
    client: httpx.AsyncClient,
) -> None:
    """Every module the chat page loads is a versioned URL, cached for a year: none revalidates."""
    page = await client.get("/", headers=HTML)
    entry = f"/static/chat.js?v={version_of(STATIC / 'chat.js')}"
    assert f'<script type="module" src="{BASE}{entry}"></script>' in page.text
    loaded: dict[str, str] = {}
    waiting = [entry]
    while waiting:
        url = waiting.pop()
        for encoding in ("gzip", "identity"):
            answer = await client.get(url, headers={"accept-encoding": encoding})
            assert answer.status_code == 200, url
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert answer.headers["content-type"].startswith("text/javascript")
            loaded[url] = answer.text
        for name in re.findall(r'from "\./([\w.-]+\.js)(\?v=\w+)?"', answer.text):
            assert name[1] == f"?v={version_of(STATIC / name[0])}", (url, name)
            waiting.append(f"/static/{name[0]}{name[1]}")
    assert sorted(url.split("?")[0] for url in loaded) == [
        "/static/chat-panels.js",
        "/static/chat-sidebar.js",
        "/static/chat.js",
        "/static/dom.js",
        "/static/http.js",
    ]
    # The served module is the file with only its sibling imports versioned.
    unversioned = re.sub(r"\?v=\w+", "", loaded[entry])
    assert unversioned == (STATIC / "chat.js").read_text()


def test_a_module_version_covers_what_it_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed import is a new URL for the module importing it, so no stale copy is kept."""
    from tuneback.server.web import assets

    monkeypatch.setattr(assets, "STATIC", tmp_path)
    (tmp_path / "page.js").write_text('import { api } from "./http.js";\napi();\n')
    (tmp_path / "http.js").write_text("export function api() { return 1; }\n")
    (tmp_path / "other.css").write_text("body { color: red }\n")
    before = version_of(tmp_path / "page.js")
    css_before = version_of(tmp_path / "other.css")
    (tmp_path / "http.js").write_text("export function api() { return 2; }\n")
    assert version_of(tmp_path / "page.js") != before
    assert version_of(tmp_path / "other.css") == css_before
    http = version_of(tmp_path / "http.js")
    sent = assets._module(
        str(tmp_path / "page.js"),
        (tmp_path / "page.js").stat().st_mtime_ns,
        (tmp_path / "page.js").stat().st_size,
        (("http.js", http),),
    )
    assert sent.decode() == f'import {{ api }} from "./http.js?v={http}";\napi();\n'
