"""Who may call what: every route of the app, for every kind of caller.

The matrix is built from the app's own route table, so a route added without
a rule fails here, and a rule that the route does not enforce fails too.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from tests.api.conftest import BASE, make_app
from tests.visitors import add_account, open_pages, sign_in
from tuneback.domain.access import AccountRole, allowed
from tuneback.server.access import rule_of
from tuneback.services.keys import KeyService
from tuneback.storage import Store

PROJECT = "default"


@dataclass(frozen=True)
class Caller:
    label: str
    account_role: AccountRole | None = None
    key_role: AccountRole | None = None


CALLERS = [
    Caller("a browser nobody signed in"),
    Caller("user account", account_role="user"),
    Caller("annotator account", account_role="annotator"),
    Caller("owner account", account_role="owner"),
    Caller("user key", key_role="user"),
    Caller("annotator key", key_role="annotator"),
    Caller("owner key", key_role="owner"),
]


def routes(app: FastAPI) -> list[RouteContext]:
    """Every operation the app serves, with the dependencies its routers add."""
    return [r for r in iter_route_contexts(app.routes) if isinstance(r.original_route, APIRoute)]


def rule_for(route: RouteContext) -> str | None:
    return rule_of(route.endpoint, [d.dependency for d in route.dependencies])


def is_api(path: str) -> bool:
    return path.startswith(("/api/", "/v1/"))


def may(caller: Caller, path: str, rule: str) -> bool:
    if rule == "public":
        return True
    if is_api(path):
        return caller.key_role is not None and allowed(caller.key_role, rule)  # type: ignore[arg-type]
    if caller.account_role is not None:
        return allowed(caller.account_role, rule)  # type: ignore[arg-type]
    # Keys do not open pages: to them a page is what it is to any browser.
    return rule == "chat"


@pytest.fixture
async def app(store: Store) -> FastAPI:
    return make_app(store)


@pytest.fixture
async def clients(app: FastAPI, store: Store) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    # One account of each role exists, so nobody is the local owner: everyone signs in.
    for role in ("user", "annotator", "owner"):
        add_account(store, f"{role}-1", role)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    made: dict[str, httpx.AsyncClient] = {}
    try:
        for caller in CALLERS:
            headers = {"accept": "application/json"}
            if caller.key_role is not None:
                key = KeyService(store).create(PROJECT, role=caller.key_role).key
                headers["authorization"] = f"Bearer {key}"
            client = httpx.AsyncClient(transport=transport, base_url=BASE, headers=headers)
            made[caller.label] = client
            if caller.account_role is not None:
                await sign_in(client, f"{caller.account_role}-1")
            else:
                await open_pages(client)
        yield made
    finally:
        for client in made.values():
            await client.aclose()


def test_every_route_declares_who_may_call_it(store: Store) -> None:
    app = make_app(store)
    missing = [f"{sorted(r.methods or ())} {r.path}" for r in routes(app) if rule_for(r) is None]
    assert missing == [], "add dependencies=[rule(...)] (pages) or [key_rule(...)] (API)"
    assert len(routes(app)) > 60


async def test_each_caller_reaches_exactly_what_its_role_allows(
    app: FastAPI, clients: dict[str, httpx.AsyncClient]
) -> None:
    wrong: list[str] = []
    checked = 0
    for route in routes(app):
        rule = rule_for(route)
        assert rule is not None
        if rule == "public":
            continue
        assert route.path is not None
        path = re.sub(r"\{[^}]+\}", "nothing-here", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for caller in CALLERS:
                client = clients[caller.label]
                body = {} if method in ("POST", "PUT", "PATCH") else None
                response = await client.request(method, path, json=body)
                checked += 1
                denied = response.status_code in (401, 403)
                if denied == may(caller, route.path, rule):
                    wrong.append(
                        f"{caller.label}: {method} {route.path} ({rule}) -> "
                        f"{response.status_code} {response.text[:120]}"
                    )
                elif denied and not route.path.startswith("/v1/"):
                    error = response.json()["error"]
                    assert set(error) == {"type", "message", "details"}
                    assert error["type"] in ("unauthorized", "forbidden")
    assert wrong == []
    assert checked > 400


async def test_a_page_opened_without_signing_in_leads_to_the_login(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    client = clients["a browser nobody signed in"]
    response = await client.get("/runs?model=x", headers={"accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fruns%3Fmodel%3Dx"
    denied = await clients["user account"].get("/dashboard", headers={"accept": "text/html"})
    assert denied.status_code == 403
    assert "This page is not for your role" in denied.text
    assert (
        "user-1 is a user; the dashboard, datasets, keys and exports are for an owner"
        in denied.text
    )


async def test_a_write_without_the_pages_csrf_token_is_refused(
    clients: dict[str, httpx.AsyncClient], store: Store
) -> None:
    client = clients["owner account"]
    before = store.last_seq()
    response = await client.post(
        "/ui/datasets", json={"name": "d"}, headers={"x-csrf-token": "0" * 64}
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert store.last_seq() == before
    made = await client.post("/ui/datasets", json={"name": "d"})
    assert made.status_code == 200, made.text
