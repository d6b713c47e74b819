"""People at the pages, as tests need them: accounts, sign-ins and a browser's CSRF token.

A page's scripts send the token from ``<meta name="csrf-token">`` with every write;
these helpers read it the same way, from a page the client opened.
"""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page

from tuneback.domain.access import Account, AccountRole
from tuneback.server.access import SESSION_COOKIE
from tuneback.services.accounts import AccountService
from tuneback.storage import Store

PASSWORD = "correct horse battery"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def add_account(
    store: Store, name: str, role: AccountRole = "annotator", projects: tuple[str, ...] = ()
) -> Account:
    return AccountService(store).add(name, role=role, password=PASSWORD, projects=projects)


def csrf_of(html: str) -> str:
    found = CSRF_META.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def open_pages(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Open a page as a browser would: keep its identity cookie, send its CSRF token."""
    page = await client.get("/login", headers={"accept": "text/html"})
    client.headers["x-csrf-token"] = csrf_of(page.text)
    return client


def open_pages_sync(client: httpx.Client) -> httpx.Client:
    page = client.get("/login", headers={"accept": "text/html"})
    client.headers["x-csrf-token"] = csrf_of(page.text)
    return client


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> None:
    """Sign in through the login form, as a person does."""
    await open_pages(client)
    response = await client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": client.headers["x-csrf-token"]},
    )
    assert response.status_code == 303, response.text
    assert client.cookies.get(SESSION_COOKIE)


def sign_in_browser(page: Page, base_url: str, name: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url)


async def identity(client: httpx.AsyncClient) -> str:
    """The name this client's conversations and ratings go under."""
    state = await client.get("/ui/state")
    assert state.status_code == 200, state.text
    name: str = state.json()["user"]
    return name


def page_identity(page: Page) -> str:
    """The name the browser behind ``page`` chats and rates under."""
    name: str = page.evaluate("async () => (await (await fetch('/ui/state')).json()).user")
    return name
