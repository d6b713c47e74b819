"""Signing in, in a real browser: each role sees the sections it may, and only those."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.analytics.seed import Seeded, seed
from tests.visitors import PASSWORD, add_account, sign_in_browser
from tests.web.conftest import SCREENSHOTS, serving
from tuneback.domain import ProjectSettings
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.services.feedback import FeedbackService
from tuneback.storage import Store

SECTIONS = {
    "owner": [
        "Chat",
        "Compare",
        "Dashboard",
        "Leaderboard",
        "Runs",
        "Conversations",
        "Users",
        "Review",
        "Datasets",
    ],
    "annotator": ["Chat", "Compare", "Runs", "Conversations", "Users", "Review"],
    "user": ["Chat", "Compare"],
}


@pytest.fixture
def site(store: Store) -> Iterator[tuple[str, Seeded]]:
    seeded = seed(store, runs=12, project="web")
    for role in SECTIONS:
        add_account(store, f"{role}-ada", role)  # type: ignore[arg-type]
    with serving(store, ModelCatalog([EchoModel()])) as url:
        yield url, seeded


@pytest.mark.parametrize("role", list(SECTIONS))
def test_each_role_sees_only_its_sections(page: Page, site: tuple[str, Seeded], role: str) -> None:
    url, seeded = site
    page.goto(f"{url}/runs")
    expect(page).to_have_url(f"{url}/login?next=%2Fruns")
    sign_in_browser(page, url, f"{role}-ada")
    page.goto(f"{url}/review")
    nav = page.locator(".shell-nav a")
    if role == "user":
        expect(page.locator("h1")).to_have_text("This page is not for your role")
    expect(nav).to_have_text(SECTIONS[role])
    expect(page.locator(".shell-account")).to_contain_text(f"{role}-ada")
    for path in ("/dashboard", "/runs", f"/runs/{seeded.runs[0].id}", "/review", "/datasets"):
        response = page.goto(url + path)
        assert response is not None
        label = {"/dashboard": "Dashboard", "/datasets": "Datasets", "/review": "Review"}.get(
            path, "Runs"
        )
        assert (response.status == 200) == (label in SECTIONS[role]), (role, path)
        if response.status == 403:
            expect(page.locator(".message-page p").first).to_contain_text(f"{role}-ada is a")


def test_a_wrong_password_is_refused_and_signing_out_ends_the_session(
    page: Page, site: tuple[str, Seeded]
) -> None:
    url, _ = site
    page.goto(f"{url}/login?next=/dashboard")
    page.get_by_label("Name").fill("owner-ada")
    page.get_by_label("Password").fill("not the password")
    with page.expect_response(f"{url}/login") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.locator(".form-error")).to_have_text(
        "That name and password do not match an active account."
    )
    expect(page.get_by_label("Name")).to_have_value("owner-ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{url}/dashboard")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{url}/login")
    page.goto(f"{url}/dashboard")
    expect(page).to_have_url(f"{url}/login?next=%2Fdashboard")


def test_a_chat_for_accounts_sends_guests_to_sign_in(
    page: Page, site: tuple[str, Seeded], store: Store
) -> None:
    url, _ = site
    current = store.get_project("web").settings
    FeedbackService(store).configure_project(
        "web", ProjectSettings.model_validate({**current.model_dump(), "chat_access": "accounts"})
    )
    page.goto(f"{url}/")
    expect(page).to_have_url(f"{url}/login?next=%2F")
    sign_in_browser(page, url, "user-ada")
    expect(page.locator("#identity")).to_contain_text("Signed in as user-ada")
    page.fill("#prompt", "hello")
    page.keyboard.press("Enter")
    expect(page.locator(".assistant-body")).to_contain_text("hello")
    [conversation] = store.list_conversations("web", user="user-ada")
    assert conversation.user == "user-ada"


@pytest.mark.parametrize("dialect", ["sqlite"])  # the page, not the database, is under test
def test_screenshots_of_the_sign_in_page(browser: Browser, site: tuple[str, Seeded]) -> None:
    url, _ = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for width, height, label in ((1280, 800, "desktop"), (390, 844, "phone")):
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": width, "height": height},
                color_scheme=scheme,  # type: ignore[arg-type]
            )
            tab = context.new_page()
            tab.goto(f"{url}/login")
            tab.get_by_label("Name").fill("ada")
            tab.get_by_label("Password").fill("wrong password")
            tab.get_by_role("button", name="Sign in").click()
            expect(tab.locator(".form-error")).to_be_visible()
            target = SCREENSHOTS / f"login-{label}-{scheme}.png"
            tab.screenshot(path=target)
            assert target.stat().st_size > 5_000
            sign_in_browser(tab, url, "user-ada")
            tab.goto(f"{url}/dashboard")
            target = SCREENSHOTS / f"denied-{label}-{scheme}.png"
            tab.screenshot(path=target)
            context.close()
