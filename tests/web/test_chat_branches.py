"""The chat as finished as the big ones: branches, streamed markdown, retry, keys, rename and
delete, in a real browser against a real server; assertions on the store's events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.visitors import open_pages_sync, page_identity
from tests.web.conftest import LiveServer
from tuneback.errors import ModelError
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.services.chat import ChatService

SHOTS = "/tmp/shots"


def _button(page: Page, label: str) -> Locator:
    return page.locator(f"button[aria-label='{label}']")


def _events(server: LiveServer, type_: str) -> list[Any]:
    return [e.payload for e in server.store.events_after(0, limit=10_000, types=[type_])]


def _ask(page: Page, text: str) -> None:
    page.fill("#prompt", text)
    page.keyboard.press("Enter")


def _answers(page: Page) -> list[str]:
    return page.locator(".message.assistant .assistant-body").all_inner_texts()


def _questions(page: Page) -> list[str]:
    return page.locator(".bubble-user").all_inner_texts()


def _settled(page: Page, answers: int) -> None:
    expect(page.locator(".message.assistant .feedback-row")).to_have_count(answers)
    expect(page.locator("#send")).to_be_visible()


def test_branches_of_answers_and_questions_survive_a_reload(
    page: Page, live_server: LiveServer
) -> None:
    for reply in ("First answer.", "Second answer.", "A follow-up answer.", "Edited answer."):
        live_server.scripted.enqueue(reply)
    page.goto(f"{live_server.url}/")
    _ask(page, "Question one?")
    _settled(page, 1)
    _button(page, "Regenerate the answer").click()
    expect(page.locator(".feedback-row .branch")).to_have_text("2/2")
    assert _answers(page) == ["Second answer."]
    _button(page, "Good answer").click()
    expect(_button(page, "Good answer")).to_have_attribute("aria-pressed", "true")

    # Back to the first answer: its own ratings, and the conversation goes on from it.
    _button(page, "Previous answer").click()
    expect(page.locator(".feedback-row .branch")).to_have_text("1/2")
    assert _answers(page) == ["First answer."]
    expect(_button(page, "Good answer")).to_have_attribute("aria-pressed", "false")
    _ask(page, "Question two?")
    _settled(page, 2)
    assert _questions(page) == ["Question one?", "Question two?"]
    assert _answers(page) == ["First answer.", "A follow-up answer."]
    # Only the latest answer offers Regenerate, also after rating an earlier one.
    first = page.locator(".message.assistant").first
    first.locator("button[aria-label='Bad answer']").click()
    page.click("text=Skip")
    expect(first.locator("button[aria-label='Bad answer']")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(_button(page, "Regenerate the answer")).to_have_count(1)
    expect(page.locator(".message.assistant").last.locator(".feedback-row")).to_contain_text(
        "scripted"
    )
    expect(
        page.locator(".message.assistant").last.locator("[aria-label='Regenerate the answer']")
    ).to_have_count(1)

    page.reload()
    assert _questions(page) == ["Question one?", "Question two?"]
    assert _answers(page) == ["First answer.", "A follow-up answer."]
    _button(page, "Next answer").click()
    expect(page.locator(".message.assistant")).to_have_count(1)
    assert _answers(page) == ["Second answer."]
    expect(_button(page, "Good answer")).to_have_attribute("aria-pressed", "true")
    assert "?m=" in page.url
    page.reload()  # the branch on screen is in the address
    assert _answers(page) == ["Second answer."]

    # An edit is a new version of the question; the old one and its answers stay.
    _button(page, "Edit this message").click()
    page.fill("textarea[aria-label='Edit your message']", "Question one, edited?")
    page.keyboard.press("Control+Enter")
    _settled(page, 1)
    assert (_questions(page), _answers(page)) == (["Question one, edited?"], ["Edited answer."])
    expect(page.locator(".message.user .branch")).to_have_text("2/2")
    # The older version opens on its newest branch.
    _button(page, "Previous version").click()
    expect(page.locator(".message.user .branch").first).to_have_text("1/2")
    assert _questions(page) == ["Question one?", "Question two?"]
    assert _answers(page) == ["First answer.", "A follow-up answer."]

    added = [p.message for p in _events(live_server, "message.added")]
    by_content = {m.content: m for m in added}
    assert by_content["Question two?"].parent_id == by_content["First answer."].id
    assert by_content["Second answer."].parent_id == by_content["Question one?"].id
    assert by_content["Question one, edited?"].parent_id is None


def test_markdown_renders_while_it_streams(page: Page, live_server: LiveServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    wide = " | ".join(f"column{n}" for n in range(14))
    chunks = [
        "Here is code:\n\n```python\n",
        "print('hi')\n",
        "x = 1\n",
        "```\n\nAnd a table:\n\n",
        f"| {wide} |\n",
        "|" + "---|" * 14 + "\n",
        "| " + " | ".join("averyveryverylongcellvalue" for _ in range(14)) + " |\n",
        "\nThe **end**.",
    ]
    live_server.scripted.enqueue(chunks=chunks, delay=0.5)
    page.goto(f"{live_server.url}/")
    _ask(page, "Show me code and a table.")
    live = page.locator(".assistant-body.streaming")
    # Half-way, the open fence is already a code block, never raw backticks.
    expect(live.locator("pre code")).to_contain_text("print('hi')")
    assert "```" not in live.inner_text()
    expect(live.locator("table th").first).to_have_text("column0")
    assert "---|" not in live.inner_text()
    _settled(page, 1)
    body = page.locator(".assistant-body")
    expect(body.locator("strong")).to_have_text("end")
    assert "```" not in body.inner_text()

    page.click("button[aria-label='Copy code']")
    expect(page.locator(".copy-code")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')\nx = 1\n"
    # The wide table scrolls in its own box; the page does not.
    box = page.locator(".table-scroll")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_a_failed_answer_keeps_its_error_and_a_retry_after_reload(
    page: Page, live_server: LiveServer
) -> None:
    live_server.scripted.enqueue(error=ModelError("the backend is down"))
    live_server.scripted.enqueue("Back up: here is the answer.")
    page.goto(f"{live_server.url}/")
    _ask(page, "Are you there?")
    expect(page.locator(".error-box")).to_contain_text("the backend is down")
    page.reload()
    expect(page.locator(".bubble-user")).to_have_text("Are you there?")
    expect(page.locator(".error-box .error-text")).to_have_text("the backend is down")
    page.click(".error-box >> text=Retry")
    _settled(page, 1)
    assert _answers(page) == ["Back up: here is the answer."]
    expect(page.locator(".error-box")).to_have_count(0)
    page.reload()
    assert _answers(page) == ["Back up: here is the answer."]
    expect(page.locator(".error-box")).to_have_count(0)

    [failed] = [p.run for p in _events(live_server, "run.failed")]
    [question] = [
        m
        for m in live_server.store.conversation_messages(failed.conversation_id or "")
        if m.role == "user"
    ]
    assert (failed.status, failed.error, failed.metadata) == (
        "error",
        "the backend is down",
        {"reply_to": question.id},
    )


def test_a_reload_while_answering_shows_the_answer_so_far(
    page: Page, live_server: LiveServer
) -> None:
    live_server.scripted.enqueue(chunks=[f"word{i} " for i in range(30)], delay=0.15)
    page.goto(f"{live_server.url}/")
    _ask(page, "Talk slowly.")
    expect(page.locator(".assistant-body")).to_contain_text("word2")
    # A second tab of the same browser sees the answer being written.
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.locator(".still-answering")).to_have_text("Still answering…")
    expect(other.locator(".assistant-body")).to_contain_text("word1")
    expect(other.locator(".assistant-body")).to_contain_text("word29", timeout=15_000)
    expect(other.locator(".still-answering")).to_have_count(0)
    expect(other.locator(".feedback-row")).to_have_count(1)
    other.close()

    # A reload ends the answer where it was (the page that asked has gone) and shows it.
    live_server.scripted.enqueue(chunks=[f"part{i} " for i in range(100)], delay=0.1)
    _ask(page, "Again, slowly.")
    expect(page.locator(".message.assistant").last).to_contain_text("part2")
    page.reload()
    last = page.locator(".message.assistant").last
    expect(last).to_contain_text("part1")
    expect(last.locator(".cancelled-note")).to_have_text("Stopped.", timeout=10_000)


def test_everything_given_is_shown_back_and_corrections_start_from_markdown(
    page: Page, live_server: LiveServer
) -> None:
    answer = "Use this:\n\n```sh\nls -la\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    live_server.scripted.enqueue(chunks=[answer])
    page.goto(f"{live_server.url}/")
    _ask(page, "How do I list files?")
    _settled(page, 1)
    page.click("button[aria-label='Bad answer']")
    page.click(".chip:has-text('too verbose')")
    page.fill(".panel textarea", "Just the command, please.")
    page.click("text=Send feedback")
    page.click("button[aria-label='Suggest a better answer']")
    editor = page.locator("textarea[aria-label='A better answer']")
    expect(editor).to_have_value(answer)
    editor.fill("```sh\nls -la\n```")
    editor.press("Control+Enter")
    expect(page.locator(".panel")).to_have_count(0)
    page.reload()
    given = page.locator(".given")
    expect(given).to_contain_text("Reasons: too verbose")
    expect(given).to_contain_text("You added: Just the command, please.")
    given.locator("summary").click()
    expect(given.locator(".correction-text")).to_have_text("```sh\nls -la\n```")

    recorded = [p.feedback for p in _events(live_server, "feedback.recorded")]
    assert [(f.key, f.comment, f.correction) for f in recorded] == [
        ("thumbs", None, None),
        ("thumbs", "Just the command, please.", None),
        ("correction", None, "```sh\nls -la\n```"),
    ]


def test_a_rating_saved_late_keeps_the_better_answer_being_written(
    page: Page, live_server: LiveServer
) -> None:
    # The reasons are sent, and before the server answers the person starts a
    # better answer: the redraw the late answer brings keeps that panel as typed.
    live_server.scripted.enqueue(chunks=["Use ls."])
    page.goto(f"{live_server.url}/")
    _ask(page, "How do I list files?")
    _settled(page, 1)
    page.click("button[aria-label='Bad answer']")
    page.click(".chip:has-text('too verbose')")
    held: list[Route] = []
    page.route("**/ui/runs/*/feedback", lambda route: held.append(route))
    page.click("text=Send feedback")
    page.click("button[aria-label='Suggest a better answer']")
    editor = page.locator("textarea[aria-label='A better answer']")
    editor.fill("ls -la")
    for _ in range(100):  # the held request reaches the route while Playwright waits
        if held:
            break
        page.wait_for_timeout(50)
    assert len(held) == 1
    held[0].continue_()
    page.unroute("**/ui/runs/*/feedback")
    expect(page.locator(".given")).to_contain_text("Reasons: too verbose")
    expect(editor).to_have_value("ls -la")
    editor.press("Control+Enter")
    expect(page.locator(".panel")).to_have_count(0)
    recorded = [p.feedback for p in _events(live_server, "feedback.recorded")]
    assert [(f.key, f.metadata.get("reasons"), f.correction) for f in recorded][1:] == [
        ("thumbs", ["too verbose"], None),
        ("correction", None, "ls -la"),
    ]


def test_keys_escape_and_ctrl_enter(page: Page, live_server: LiveServer) -> None:
    live_server.scripted.enqueue(chunks=[f"w{i} " for i in range(300)], delay=0.03)
    page.goto(f"{live_server.url}/")
    _ask(page, "Go on.")
    expect(page.locator(".assistant-body")).to_contain_text("w3")
    page.keyboard.press("Escape")
    expect(page.locator(".cancelled-note")).to_be_visible()
    _settled(page, 1)
    [stopped] = [p.run for p in _events(live_server, "run.failed")]
    assert stopped.status == "cancelled"

    page.click("button[aria-label='Comment on this answer']")
    expect(page.locator(".panel")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator(".panel")).to_have_count(0)
    page.click("button[aria-label='Comment on this answer']")
    page.fill(".panel textarea", "Stopped too late.")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".given")).to_contain_text("Stopped too late.")


def test_phones_get_a_newline_key_and_escape_closes_the_sidebar(
    browser: Browser, live_server: LiveServer
) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    page = context.new_page()
    live_server.scripted.enqueue("Two lines received.")
    page.goto(f"{live_server.url}/")
    expect(page.locator("#composer-hint")).to_have_text(
        "Return adds a new line · tap the arrow to send"
    )
    page.click("#prompt")
    page.keyboard.type("line one")
    page.keyboard.press("Enter")
    page.keyboard.type("line two")
    expect(page.locator("#prompt")).to_have_value("line one\nline two")
    assert _events(live_server, "message.added") == []
    page.tap("#send")
    expect(page.locator(".bubble-user")).to_have_text("line one\nline two")
    _settled(page, 1)
    page.tap("#open-sidebar")
    expect(page.locator("#app")).to_have_class("app sidebar-open")
    page.keyboard.press("Escape")
    expect(page.locator("#app")).to_have_class("app")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    context.close()


def _long_conversation(live_server: LiveServer, user: str, turns: int) -> str:
    chat = ChatService(live_server.store, ModelCatalog([EchoModel()]))
    conversation = chat.start_conversation(project="web", user=user, model="echo")
    for n in range(turns):
        question = chat.add_user_message(conversation.id, f"Question number {n}?\n\nwith detail")
        for _ in chat.reply(question.id):
            pass
    return conversation.id


def test_a_long_conversation_opens_on_its_latest_message(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(f"{live_server.url}/")
    conversation_id = _long_conversation(live_server, page_identity(page), 40)
    page.goto(f"{live_server.url}/c/{conversation_id}")
    # At once: measured as soon as the page has loaded, with no waiting for a scroll.
    at_end = page.evaluate(
        """() => { const t = document.getElementById('thread');
                   return t.scrollHeight - t.scrollTop - t.clientHeight; }"""
    )
    assert at_end < 2
    expect(page.locator(".bubble-user").last).to_be_in_viewport()
    expect(page.locator(".message.assistant").last).to_be_in_viewport()
    # Each message tells its time on hover.
    stamp = page.locator(".message.assistant").last.locator("time.msg-time")
    created = live_server.store.conversation_messages(conversation_id)[-1].created_at
    assert stamp.get_attribute("datetime") == created.isoformat()
    assert str(created.year) in (stamp.get_attribute("title") or "")


def test_conversations_can_be_renamed_and_deleted(page: Page, live_server: LiveServer) -> None:
    live_server.scripted.enqueue("Keep me.")
    live_server.scripted.enqueue("Drop me.")
    page.goto(f"{live_server.url}/")
    _ask(page, "The one to keep")
    _settled(page, 1)
    kept_url = page.url
    page.goto(f"{live_server.url}/")
    _ask(page, "The one to drop")
    _settled(page, 1)
    items = page.locator(".conversation-item")
    expect(items).to_have_count(2)

    kept = items.filter(has_text="The one to keep")
    kept.hover()
    kept.locator("button[aria-label='Rename conversation']").click()
    page.fill("input[aria-label='Conversation title']", "  Trip   to Lisbon ")
    page.keyboard.press("Enter")
    expect(page.locator(".conversation-link")).to_have_text(["The one to drop", "Trip to Lisbon"])

    dropped = items.filter(has_text="The one to drop")
    dropped.hover()
    dropped.locator("button[aria-label='Delete conversation']").click()
    page.keyboard.press("Escape")  # changed my mind
    expect(page.locator(".conversation-link")).to_have_count(2)
    dropped.hover()
    dropped.locator("button[aria-label='Delete conversation']").click()
    page.click(".conversation-item .danger-btn")
    page.wait_for_url(f"{live_server.url}/")  # the open conversation was the deleted one
    expect(page.locator(".conversation-link")).to_have_text(["Trip to Lisbon"])
    page.goto(kept_url)
    assert page.title() == "Trip to Lisbon · tuneback"

    [renamed] = _events(live_server, "conversation.renamed")
    [deleted] = _events(live_server, "conversation.deleted")
    assert renamed.title == "Trip to Lisbon"
    assert kept_url.endswith(renamed.conversation_id)
    response = page.goto(f"{live_server.url}/c/{deleted.conversation_id}")
    assert response is not None
    assert response.status == 404
    # The owner's data keeps it: the run is still there.
    runs = live_server.store.conversation_runs(deleted.conversation_id)
    assert [r.output for r in runs] == ["Drop me."]


def test_rename_and_delete_refuse_bad_input_and_other_peoples_conversations(
    live_server: LiveServer,
) -> None:
    import httpx

    live_server.scripted.enqueue("Hi.")
    with (
        httpx.Client(base_url=live_server.url) as ann,
        httpx.Client(base_url=live_server.url) as bob,
    ):
        open_pages_sync(ann)
        open_pages_sync(bob)
        with ann.stream("POST", "/ui/chat", json={"content": "Hello"}) as response:
            start = next(line for line in response.iter_lines() if line.startswith("data: "))
        conversation_id = json.loads(start.removeprefix("data: "))["conversation_id"]
        path = f"/ui/conversations/{conversation_id}"

        blank = ann.post(f"{path}/rename", json={"title": "   "})
        assert (blank.status_code, blank.json()["error"]["message"]) == (
            422,
            "a title needs some text",
        )
        assert bob.post(f"{path}/rename", json={"title": "Mine now"}).status_code == 404
        assert bob.delete(path).status_code == 404
        renamed = ann.post(f"{path}/rename", json={"title": "Greeting"})
        assert renamed.json() == {"id": conversation_id, "title": "Greeting"}
        assert [c["title"] for c in ann.get("/ui/conversations").json()] == ["Greeting"]
        assert ann.delete(path).json() == {"deleted": True}
        assert ann.get("/ui/conversations").json() == []
        assert ann.get(path).status_code == 404
        assert ann.delete(path).status_code == 404
    conversation_events = [
        e.type for e in live_server.store.events_after(0) if e.type.startswith("conversation.")
    ]
    assert conversation_events == [
        "conversation.started",
        "conversation.renamed",
        "conversation.deleted",
    ]


@pytest.mark.parametrize("dialect", ["sqlite"])  # the page, not the database, is under test
def test_screenshots(browser: Browser, live_server: LiveServer, dialect: str) -> None:
    """The chat with branches, code and a table, at desktop and phone width, light and dark."""
    live_server.scripted.enqueue("A first try.")
    live_server.scripted.enqueue(
        "Gradient descent walks downhill on the loss:\n\n"
        "```python\nfor step in range(100):\n    w -= lr * grad(w)\n```\n\n"
        "| rate | steps to converge | note |\n|---|---|---|\n"
        "| 0.1 | 120 | safe default for most problems |\n| 1.0 | diverges | too large |\n\n"
        "Each step moves the weights **against** the gradient."
    )
    state: Any = None
    url = ""
    for name, viewport, scheme in (
        ("1280-light", {"width": 1280, "height": 860}, "light"),
        ("1280-dark", {"width": 1280, "height": 860}, "dark"),
        ("390-light", {"width": 390, "height": 844}, "light"),
        ("390-dark", {"width": 390, "height": 844}, "dark"),
    ):
        context = browser.new_context(
            viewport=viewport,  # type: ignore[arg-type]
            color_scheme=scheme,  # type: ignore[arg-type]
            storage_state=state,
        )
        page = context.new_page()
        if not url:
            page.goto(f"{live_server.url}/")
            _ask(page, "How does gradient descent work?")
            _settled(page, 1)
            _button(page, "Regenerate the answer").click()
            expect(page.locator(".feedback-row .branch")).to_have_text("2/2")
            _button(page, "Good answer").click()
            url = page.url
            state = context.storage_state()
        else:
            page.goto(url)
            _settled(page, 1)
        page.locator(".message.assistant").hover()
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        page.screenshot(path=f"{SHOTS}/chat-{name}-{dialect}.png")
        if name == "390-dark":
            page.click("#open-sidebar")
            page.wait_for_timeout(400)  # the sidebar slides in
            page.screenshot(path=f"{SHOTS}/chat-390-dark-sidebar-{dialect}.png")
        context.close()
    # A failed answer with its Retry, and the question's time and tools on hover.
    context = browser.new_context(viewport={"width": 1280, "height": 860}, storage_state=state)
    page = context.new_page()
    page.goto(url)
    live_server.scripted.enqueue(error=ModelError("the model server did not answer"))
    _ask(page, "And in two sentences?")
    expect(page.locator(".error-box .retry-btn")).to_be_visible()
    page.reload()
    expect(page.locator(".error-box .retry-btn")).to_be_visible()
    page.locator(".bubble-user").last.hover()
    page.screenshot(path=f"{SHOTS}/chat-1280-light-retry-{dialect}.png")
    context.close()
