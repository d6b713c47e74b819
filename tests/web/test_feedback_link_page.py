"""A feedback link opens a page that records nothing; a press of its button records the rating."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import SCREENSHOTS, LiveServer
from tuneback.domain import ChatMessage, Run, RunCompleted
from tuneback.services.keys import KeyService
from tuneback.storage import Store

ANSWER = (
    "Paris is the capital of France. It has been the seat of government since the "
    "tenth century, apart from a few short spells."
)


def _run(store: Store) -> Run:
    run = Run(
        project="web",
        model="echo",
        inputs=[ChatMessage(role="user", content="What is the capital of France?")],
        output=ANSWER,
    )
    store.append(RunCompleted(run=run))
    return run


def _link(
    live_server: LiveServer, key: str = "thumbs", value: str | None = "up"
) -> tuple[str, Run]:
    """A feedback link to a new run, as an app would hand it out; and the run."""
    run = _run(live_server.store)
    api_key = KeyService(live_server.store).create("web").key
    made = httpx.post(
        f"{live_server.url}/api/v1/feedback/tokens",
        json={"run_id": run.id, "key": key},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert made.status_code == 201, made.text
    url: str = made.json()["url"]
    return url + (f"?value={value}" if value else ""), run


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    yield page
    context.close()


def test_opening_the_link_records_nothing_and_the_button_does(
    live_server: LiveServer, page: Page
) -> None:
    url, run = _link(live_server)
    before = live_server.store.events_after(0)

    response = page.goto(url)
    assert response is not None
    assert response.status == 200
    expect(page.get_by_role("heading", name="How was this answer?")).to_be_visible()
    expect(page.locator(".link-question")).to_have_text("What is the capital of France?")
    expect(page.locator(".link-answer")).to_have_text(ANSWER)
    expect(page.locator(".link-choice .choice-label")).to_have_text(["Good", "Bad"])
    expect(page.locator(".link-choice.suggested .choice-label")).to_have_text("Good")
    # Opening it again, as a mail scanner would, changes nothing either.
    assert httpx.get(url).status_code == 200
    assert live_server.store.events_after(0) == before
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "feedback-link.png", full_page=True)

    page.get_by_label("Comment").fill("Short and right.")
    page.get_by_role("button", name="Good").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    expect(page.locator(".link-lead")).to_have_text(
        "Your rating Good was recorded, with your comment."
    )
    page.screenshot(path=SCREENSHOTS / "feedback-link-thanks.png", full_page=True)
    [event] = live_server.store.events_after(before[-1].seq)
    assert event.type == "feedback.recorded"
    feedback = event.payload.feedback  # type: ignore[attr-defined]
    assert (feedback.run_id, feedback.key, feedback.value, feedback.score) == (
        run.id,
        "thumbs",
        "up",
        1.0,
    )
    assert (feedback.comment, feedback.source, feedback.user) == (
        "Short and right.",
        "end_user",
        None,
    )


def test_stars_on_a_phone_in_the_dark(live_server: LiveServer, phone: Page) -> None:
    url, _run = _link(live_server, key="stars", value="4")
    phone.goto(url)
    expect(phone.locator(".link-choice .choice-label")).to_have_text(
        ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    )
    expect(phone.locator(".link-choice.suggested .choice-label")).to_have_text("4 stars")
    phone.screenshot(path=SCREENSHOTS / "feedback-link-phone-dark.png", full_page=True)
    phone.get_by_role("button", name="5 stars").click()
    expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
    [rating] = live_server.store.events_after(0, types=["feedback.recorded"])
    assert rating.payload.feedback.value == 5  # type: ignore[attr-defined]


def test_a_link_that_does_not_work_says_so(live_server: LiveServer, page: Page) -> None:
    url, _run = _link(live_server, value=None)
    forged = url + "x"
    response = page.goto(forged)
    assert response is not None
    assert response.status == 401
    expect(page.get_by_role("heading", name="This rating link does not work")).to_be_visible()
    expect(page.locator(".link-lead")).to_have_text(
        "The feedback token's signature does not match."
    )
    page.screenshot(path=SCREENSHOTS / "feedback-link-refused.png", full_page=True)
