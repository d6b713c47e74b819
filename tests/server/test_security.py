"""Other sites cannot frame the pages, drive them, or reach the server through a rebound name.

The real app in-process; the browser's own headers (Sec-Fetch-Site, Origin,
Referer) are sent as a browser would send them. The same attacks from a real
browser are in tests/web/test_other_sites.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import run_body
from tests.visitors import identity, open_pages
from tuneback.config import Settings
from tuneback.domain import Conversation
from tuneback.domain.events import ConversationStarted
from tuneback.models import EchoModel
from tuneback.server import create_app
from tuneback.server.proxy import FEEDBACK_HEADER
from tuneback.server.security import EMPTY_STYLE_HASH, PAGE_POLICY, SitePolicy, machine_addresses
from tuneback.services.keys import KeyService
from tuneback.storage import Store

OWN = "http://127.0.0.1:8000"


def _app(store: Store, **settings: object) -> FastAPI:
    return create_app(
        Settings(database_url=str(store.url), project="p", **settings),  # type: ignore[arg-type]
        store=store,
        models=[EchoModel()],
    )


@pytest.fixture
async def client(store: Store) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=OWN) as client:
        yield await open_pages(client)


def _conversation(store: Store, user: str = "ann") -> str:
    conversation = Conversation(project="p", user=user, model="echo")
    store.append(ConversationStarted(conversation=conversation))
    return conversation.id


def _event_types(store: Store) -> list[str]:
    return [event.type for event in store.events_after(0)]


async def test_a_page_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/", params={"user": "ann"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == PAGE_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    directives = dict(part.strip().split(" ", 1) for part in PAGE_POLICY.split(";"))
    assert directives == {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "style-src-elem": f"'self' '{EMPTY_STYLE_HASH}' 'report-sample'",
        "style-src-attr": "'unsafe-inline'",
        "img-src": "'self' data:",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


async def test_an_api_answer_and_an_error_carry_them_too(store: Store) -> None:
    key = KeyService(store).create("p").key
    transport = httpx.ASGITransport(app=_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=OWN) as client:
        answered = await client.get("/api/v1/runs", headers={"X-API-Key": key})
        refused = await client.get("/api/v1/runs")
    assert (answered.status_code, refused.status_code) == (200, 401)
    for response in (answered, refused):
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


CROSS_SITE = {
    "fetch metadata says cross-site": {"sec-fetch-site": "cross-site"},
    "another port on this host": {"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:9"},
    "same-site with no origin": {"sec-fetch-site": "same-site"},
    "an old browser's origin": {"origin": "https://evil.example"},
    "an opaque origin": {"origin": "null"},
    "only a referer": {"referer": "https://evil.example/page.html"},
    "another scheme": {"origin": "https://127.0.0.1:8000"},
}


@pytest.mark.parametrize("headers", CROSS_SITE.values(), ids=CROSS_SITE.keys())
async def test_a_cross_site_write_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, store: Store, headers: dict[str, str]
) -> None:
    conversation_id = _conversation(store)
    before = _event_types(store)
    response = await client.post(
        f"/ui/conversations/{conversation_id}/end", params={"user": "ann"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "type": "cross_site_request",
            "message": f"POST /ui/conversations/{conversation_id}/end was refused: it came "
            "from another site, and only tuneback's own pages may send it",
            "details": {
                "origin": headers.get("origin"),
                "sec_fetch_site": headers.get("sec-fetch-site"),
            },
        }
    }
    assert response.headers["x-frame-options"] == "DENY"
    assert _event_types(store) == before == ["conversation.started"]


SAME_SITE = {
    "fetch metadata says same-origin": {"sec-fetch-site": "same-origin", "origin": OWN},
    "typed in the address bar": {"sec-fetch-site": "none"},
    "an old browser's own origin": {"origin": OWN},
    "an old browser's own referer": {"referer": f"{OWN}/?user=ann"},
    "a program (no browser headers)": {},
}


@pytest.mark.parametrize("headers", SAME_SITE.values(), ids=SAME_SITE.keys())
async def test_a_write_from_the_pages_themselves_is_accepted(
    client: httpx.AsyncClient, store: Store, headers: dict[str, str]
) -> None:
    conversation_id = _conversation(store, await identity(client))
    response = await client.post(f"/ui/conversations/{conversation_id}/end", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"ended": True}
    assert _event_types(store) == ["conversation.started", "conversation.ended"]


async def test_the_origin_of_the_base_url_is_the_servers_own(store: Store) -> None:
    # Behind a TLS proxy the app sees http://127.0.0.1:8000; the browser says https.
    app = _app(store, base_url="https://feedback.example.com", allowed_hosts="127.0.0.1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN) as client:
        await open_pages(client)
        conversation_id = _conversation(store, await identity(client))
        response = await client.post(
            f"/ui/conversations/{conversation_id}/end",
            headers={"sec-fetch-site": "same-site", "origin": "https://feedback.example.com"},
        )
    assert response.status_code == 200, response.text


RUN = run_body()
CROSS = {"sec-fetch-site": "cross-site", "origin": "https://evil.example"}


async def test_the_keyed_api_is_left_to_programs(store: Store) -> None:
    key = KeyService(store).create("p").key
    transport = httpx.ASGITransport(app=_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=OWN) as client:
        response = await client.post(
            "/api/v1/runs", json=RUN, headers={**CROSS, "Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 201, response.text


async def test_without_auth_the_api_refuses_other_sites_too(store: Store) -> None:
    transport = httpx.ASGITransport(app=_app(store, auth=False))
    async with httpx.AsyncClient(transport=transport, base_url=OWN) as client:
        refused = await client.post("/api/v1/runs", json=RUN, headers=CROSS)
        proxied = await client.post(
            "/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
            headers=CROSS,
        )
        assert _event_types(store) == []
        accepted = await client.post("/api/v1/runs", json=RUN)
    assert (refused.status_code, proxied.status_code, accepted.status_code) == (403, 403, 201)
    assert refused.json()["error"]["type"] == "cross_site_request"


async def test_a_host_that_is_not_allowed_gets_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/", headers={"host": "rebound.evil.example:8000"})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "type": "host_not_allowed",
            "message": "this server does not answer to host 'rebound.evil.example': add it to "
            "TUNEBACK_ALLOWED_HOSTS (comma-separated, * admits any host)",
            "details": {"host": "rebound.evil.example"},
        }
    }
    assert response.headers["x-content-type-options"] == "nosniff"
    health = await client.get("/healthz", headers={"host": "10.1.2.3:8000"})
    assert health.status_code == 200


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8000", "localhost", "LOCALHOST.", "[::1]:8000", "127.0.0.1"]
)
async def test_loopback_names_are_allowed_by_default(client: httpx.AsyncClient, host: str) -> None:
    response = await client.get("/api/v1/runs", headers={"host": host})
    assert response.status_code == 401, response.text


async def test_a_token_url_is_built_on_the_base_url_whatever_the_host_says(
    store: Store,
) -> None:
    key = KeyService(store).create("p").key
    app = _app(store, base_url="https://feedback.example.com/", allowed_hosts="*")
    headers = {"X-API-Key": key, "host": "evil.example"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN) as client:
        await client.post("/api/v1/runs", json={**RUN, "id": "r1"}, headers=headers)
        token = (
            await client.post("/api/v1/feedback/tokens", json={"run_id": "r1"}, headers=headers)
        ).json()
        proxied = await client.post(
            "/v1/chat/completions",
            json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
    assert token["url"] == f"https://feedback.example.com/api/v1/feedback/tokens/{token['token']}"
    assert proxied.status_code == 200, proxied.text
    assert proxied.headers[FEEDBACK_HEADER].startswith(
        "https://feedback.example.com/api/v1/feedback/tokens/"
    )


@pytest.mark.parametrize(
    ("settings", "host", "expected"),
    [
        ({}, "localhost:8000", "http://localhost:8000"),
        ({"allowed_hosts": "*"}, "evil.example", "http://127.0.0.1:8000"),
        ({"allowed_hosts": "*", "host": "0.0.0.0", "port": 9000}, "evil", "http://127.0.0.1:9000"),
        ({"allowed_hosts": "*", "host": "10.0.0.5"}, "evil.example", "http://10.0.0.5:8000"),
    ],
)
async def test_without_a_base_url_only_an_allowed_host_is_trusted(
    store: Store, settings: dict[str, object], host: str, expected: str
) -> None:
    key = KeyService(store).create("p").key
    app = _app(store, **settings)
    headers = {"X-API-Key": key, "host": host}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=OWN) as client:
        await client.post("/api/v1/runs", json={**RUN, "id": "r1"}, headers=headers)
        response = await client.post(
            "/api/v1/feedback/tokens", json={"run_id": "r1"}, headers=headers
        )
    token = response.json()
    assert token["url"] == f"{expected}/api/v1/feedback/tokens/{token['token']}"


def test_the_allow_list_setting_and_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNEBACK_ALLOWED_HOSTS", " feedback.example.com, Tuneback.Lan ")
    assert Settings().allowed_hosts == ["feedback.example.com", "tuneback.lan"]
    assert SitePolicy.from_settings(Settings()).hosts == {"feedback.example.com", "tuneback.lan"}
    monkeypatch.delenv("TUNEBACK_ALLOWED_HOSTS")
    assert SitePolicy.from_settings(Settings()).hosts == {"127.0.0.1", "localhost", "::1"}
    named = SitePolicy.from_settings(Settings(host="192.168.1.20"))
    assert named.hosts == {"127.0.0.1", "localhost", "::1", "192.168.1.20"}
    shared = SitePolicy.from_settings(Settings(host="0.0.0.0"))
    assert shared.hosts is not None
    assert {"127.0.0.1", "localhost", "::1", *machine_addresses()} <= shared.hosts
    assert "0.0.0.0" not in shared.hosts
    assert SitePolicy.from_settings(Settings(allowed_hosts="*")).hosts is None
    with pytest.raises(ValueError, match="is not an http"):
        Settings(base_url="feedback.example.com")
