"""The chat page in a real browser against a real server; assertions on the store's events."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.visitors import open_pages_sync, page_identity
from tests.web.conftest import SCREENSHOTS, LiveServer, serving
from tuneback.domain import Run
from tuneback.models import ScriptedModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store


def _button(page: Page, label: str) -> Locator:
    return page.locator(f"button[aria-label='{label}']")


def _events(server: LiveServer, type_: str) -> list:  # type: ignore[type-arg]
    return [e.payload for e in server.store.events_after(0, limit=10_000, types=[type_])]


def _ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def _answered(page: Page, count: int = 1) -> None:
    expect(page.locator(".message.assistant .feedback-row")).to_have_count(count)


def _only_run(server: LiveServer) -> Run:
    [run] = [p.run for p in _events(server, "run.completed")]
    return run


def test_a_message_streams_and_is_recorded(page: Page, live_server: LiveServer) -> None:
    # Chunks far enough apart that the page is seen mid-answer even on a busy machine.
    live_server.scripted.enqueue(chunks=["The capital ", "of France ", "is **Paris**."], delay=0.4)
    page.goto(f"{live_server.url}/")
    expect(page.locator("#model-status")).to_have_text("ready")
    _ask(page, "What is the capital of France?")
    # The answer appears piece by piece, before the run is done.
    expect(page.locator(".assistant-body.streaming")).to_contain_text("The capital")
    _answered(page)
    expect(page.locator(".assistant-body strong")).to_have_text("Paris")
    expect(page.locator(".meta")).to_contain_text("scripted")
    assert page.url.startswith(f"{live_server.url}/c/")

    types = [e.type for e in live_server.store.events_after(0)]
    assert types == ["conversation.started", "message.added", "run.completed", "message.added"]
    run = _only_run(live_server)
    assert (run.user, run.project, run.output) == (
        page_identity(page),
        "web",
        "The capital of France is **Paris**.",
    )
    assert [m.content for m in run.inputs] == ["What is the capital of France?"]  # type: ignore[union-attr]
    expect(page.locator(".conversation-link.active")).to_have_text("What is the capital of France?")


def test_thumbs_down_with_reasons_and_a_comment_then_change_it(
    page: Page, live_server: LiveServer
) -> None:
    live_server.scripted.enqueue("Berlin is the capital of France.")
    page.goto(f"{live_server.url}/")
    _ask(page, "Capital of France?")
    _answered(page)
    page.click("button[aria-label='Bad answer']")
    page.click(".chip:has-text('not factually correct')")
    page.fill(".panel textarea", "It is Paris.")
    page.click("text=Send feedback")
    expect(page.locator(".given")).to_contain_text("not factually correct")
    expect(_button(page, "Bad answer")).to_have_attribute("aria-pressed", "true")

    page.click("button[aria-label='Good answer']")
    expect(_button(page, "Good answer")).to_have_attribute("aria-pressed", "true")
    expect(_button(page, "Bad answer")).to_have_attribute("aria-pressed", "false")

    run = _only_run(live_server)
    thumbs = [p.feedback for p in _events(live_server, "feedback.recorded")]
    assert [(f.value, f.score, f.comment, f.metadata) for f in thumbs] == [
        ("down", 0.0, None, {}),
        ("down", 0.0, "It is Paris.", {"reasons": ["not factually correct"]}),
        ("up", 1.0, None, {}),
    ]
    assert {f.user for f in thumbs} == {page_identity(page)}
    [current] = live_server.store.feedback_for_run(run.id)
    assert (current.key, current.value) == ("thumbs", "up")
    assert len(live_server.store.feedback_for_run(run.id, history=True)) == 3


def test_a_locked_project_keeps_the_first_rating(page: Page, live_server: LiveServer) -> None:
    from tuneback.services.feedback import FeedbackService

    FeedbackService(live_server.store).configure_project("web", {"changeable": False})
    live_server.scripted.enqueue("An answer.")
    page.goto(f"{live_server.url}/")
    _ask(page, "Question?")
    _answered(page)
    page.click("button[aria-label='Good answer']")
    expect(_button(page, "Good answer")).to_have_attribute("aria-pressed", "true")
    expect(_button(page, "Bad answer")).to_be_disabled()
    page.reload()
    expect(_button(page, "Bad answer")).to_be_disabled()
    assert [p.feedback.value for p in _events(live_server, "feedback.recorded")] == ["up"]


def test_faces_stars_and_a_correction(page: Page, live_server: LiveServer) -> None:
    from tuneback.services.feedback import FeedbackService

    FeedbackService(live_server.store).configure_project(
        "web", {"feedback": ["faces", "stars", "correction"]}
    )
    live_server.scripted.enqueue("Two plus two is five.")
    page.goto(f"{live_server.url}/")
    _ask(page, "2+2?")
    _answered(page)
    expect(_button(page, "Good answer")).to_have_count(0)
    page.click("button[aria-label='Rate 4 of 5']")
    expect(_button(page, "Rate 4 of 5")).to_have_attribute("aria-pressed", "true")
    page.click("button[aria-label='5 stars']")
    expect(_button(page, "5 stars")).to_have_attribute("aria-pressed", "true")
    page.click("button[aria-label='Suggest a better answer']")
    page.fill(".panel textarea", "Two plus two is four.")
    page.click(".panel >> text=Save")
    expect(page.locator(".given")).to_contain_text("better answer")

    recorded = [p.feedback for p in _events(live_server, "feedback.recorded")]
    assert [(f.key, f.kind, f.score, f.correction) for f in recorded] == [
        ("faces", "explicit", 0.75, None),
        ("stars", "explicit", 1.0, None),
        ("correction", "correction", None, "Two plus two is four."),
    ]


def test_regenerate_and_copy_are_implicit_feedback(page: Page, live_server: LiveServer) -> None:
    live_server.scripted.enqueue("First try.")
    live_server.scripted.enqueue("Second try.")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live_server.url}/")
    _ask(page, "Say something.")
    _answered(page)
    page.click("button[aria-label='Copy the answer']")
    page.click("button[aria-label='Regenerate the answer']")
    expect(page.locator(".assistant-body")).to_have_text("Second try.")
    expect(page.locator(".feedback-row .branch")).to_have_text("2/2")

    first, second = [p.run for p in _events(live_server, "run.completed")]
    signals = [
        (f.key, f.kind, f.run_id)
        for f in (p.feedback for p in _events(live_server, "feedback.recorded"))
    ]
    assert sorted(signals) == [
        ("copied", "implicit", first.id),
        ("regenerated", "implicit", first.id),
    ]
    assert first.inputs == second.inputs


def test_reload_keeps_the_conversation_and_the_ratings(page: Page, live_server: LiveServer) -> None:
    live_server.scripted.enqueue("Hello there.")
    page.goto(f"{live_server.url}/")
    _ask(page, "Hi!")
    _answered(page)
    page.click("button[aria-label='Bad answer']")
    page.click("text=Skip")
    page.click("button[aria-label='Comment on this answer']")
    page.fill(".panel textarea", "Too short.")
    page.click(".panel >> text=Save")
    expect(page.locator(".given")).to_contain_text("Too short.")
    page.reload()
    expect(page.locator(".bubble-user")).to_have_text("Hi!")
    expect(page.locator(".assistant-body")).to_have_text("Hello there.")
    expect(_button(page, "Bad answer")).to_have_attribute("aria-pressed", "true")
    expect(page.locator(".given")).to_contain_text("Too short.")


def test_html_in_answers_and_questions_never_runs(page: Page, live_server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = "<script>alert(1)</script> and <img src=x onerror=alert(2)> done"
    live_server.scripted.enqueue(hostile)
    page.goto(f"{live_server.url}/")
    _ask(page, "<img src=y onerror=alert(3)>")
    _answered(page)
    page.reload()
    expect(page.locator(".assistant-body")).to_contain_text("<script>alert(1)</script>")
    assert page.locator(".message script, .message img").count() == 0
    page.wait_for_timeout(300)
    assert dialogs == []


def test_people_see_only_their_own_conversations(browser: Browser, live_server: LiveServer) -> None:
    live_server.scripted.enqueue("For Ann.")
    ann = browser.new_context().new_page()
    ann.goto(f"{live_server.url}/")
    _ask(ann, "Ann's secret question")
    _answered(ann)
    ann_url = ann.url

    bob = browser.new_context().new_page()
    bob.goto(f"{live_server.url}/")
    expect(bob.locator(".sidebar-empty")).to_be_visible()
    assert page_identity(bob) != page_identity(ann)
    response = bob.goto(ann_url)
    assert response is not None
    assert response.status == 404
    expect(bob.locator("h1")).to_have_text("This conversation isn't here")
    assert "Ann's secret" not in bob.content()
    ann.context.close()
    bob.context.close()


def test_stop_cancels_the_answer_and_keeps_what_was_said(
    page: Page, live_server: LiveServer
) -> None:
    live_server.scripted.enqueue(chunks=[f"word{i} " for i in range(400)], delay=0.02)
    page.goto(f"{live_server.url}/")
    _ask(page, "Talk for a long time.")
    expect(page.locator(".assistant-body")).to_contain_text("word3")
    page.click("#stop")
    expect(page.locator(".cancelled-note")).to_be_visible()
    [failed] = [p.run for p in _events(live_server, "run.failed")]
    assert failed.status == "cancelled"
    assert failed.output is not None
    assert failed.output.startswith("word0 word1 word2 word3")
    assert len(failed.output.split()) < 400
    expect(page.locator("#send")).to_be_visible()


def test_the_page_shows_the_model_loading(browser: Browser, store: Store) -> None:
    gate = threading.Event()
    slow = ScriptedModel(name="Slow", load_gate=gate)
    page = browser.new_page()
    with serving(store, ModelCatalog([slow])) as url:
        page.goto(f"{url}/", wait_until="domcontentloaded")
        expect(page.locator("#loading-banner")).to_be_visible()
        expect(page.locator("#model-status")).to_have_text("loading…")
        page.fill("#prompt", "typed while loading")
        expect(page.locator("#send")).to_be_disabled()
        gate.set()
        expect(page.locator("#model-status")).to_have_text("ready")
        expect(page.locator("#loading-banner")).to_be_hidden()
        expect(page.locator("#send")).to_be_enabled()
        page.close()


@pytest.mark.parametrize("dialect", ["sqlite"])  # the page, not the database, is under test
def test_screenshots(browser: Browser, live_server: LiveServer, dialect: str) -> None:
    """Desktop and phone pictures of the chat, light and dark, for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    live_server.scripted.enqueue(
        "Gradient descent walks downhill on the loss surface:\n\n"
        "```python\nfor step in range(100):\n    w -= lr * grad(w)\n```\n\n"
        "Each step moves the weights **against** the gradient."
    )
    state: Any = None
    for name, viewport, scheme in (
        ("desktop", {"width": 1280, "height": 800}, "light"),
        ("phone", {"width": 390, "height": 844}, "light"),
        ("desktop-dark", {"width": 1280, "height": 800}, "dark"),
    ):
        # The same browser each time (its cookies): a conversation is its owner's alone.
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            color_scheme=scheme,  # type: ignore[arg-type]
            storage_state=state,
        )
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        if name == "desktop":
            page.screenshot(path=SCREENSHOTS / f"chat-empty-{dialect}.png")
            _ask(page, "How does gradient descent work?")
            _answered(page)
            page.click("button[aria-label='Good answer']")
            conversation_url = page.url
            state = context.storage_state()
        else:
            page.goto(conversation_url)
            _answered(page)
        page.screenshot(path=SCREENSHOTS / f"chat-{name}-{dialect}.png")
        assert (SCREENSHOTS / f"chat-{name}-{dialect}.png").stat().st_size > 10_000
        context.close()


def test_a_closed_tab_cancels_the_answer_and_keeps_it(live_server: LiveServer) -> None:
    import time

    import httpx

    live_server.scripted.enqueue(chunks=[f"part{i} " for i in range(200)], delay=0.05)
    with httpx.Client(base_url=live_server.url) as client:
        open_pages_sync(client)
        with client.stream("POST", "/ui/chat", json={"content": "Go on and on."}) as response:
            seen = ""
            for text in response.iter_text():
                seen += text
                if "part2" in seen:
                    break  # leave while the model is still talking
    deadline = time.monotonic() + 15
    while not _events(live_server, "run.failed"):
        assert time.monotonic() < deadline, "the abandoned answer was never recorded"
        time.sleep(0.05)
    [run] = [p.run for p in _events(live_server, "run.failed")]
    assert run.status == "cancelled"
    assert run.output is not None
    assert run.output.startswith("part0 part1 part2")
    assert len(run.output.split()) < 200
