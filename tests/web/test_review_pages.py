"""Review pages in a real browser against a real server; assertions on the store's events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.visitors import add_account, sign_in_browser
from tests.web.conftest import SCREENSHOTS, serving
from tuneback.domain import ChatMessage, Feedback, FeedbackRecorded, Run, RunCompleted
from tuneback.models import EchoModel, ScriptedModel
from tuneback.services.annotation import AnnotationService
from tuneback.services.catalog import ModelCatalog
from tuneback.services.review import ReviewService
from tuneback.storage import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

QUESTIONS = [
    ("How do I reverse a list in Python?", "Use `reversed()`:\n\n```python\nitems[::-1]\n```"),
    ("What is the capital of Australia?", "The capital of Australia is **Sydney**."),
    ("Summarise the plot of Hamlet in one line.", "A prince avenges his father and dies."),
    ("Is 91 a prime number?", "Yes, 91 is prime."),
    ("Convert 100 °F to Celsius.", "100 °F is about 37.8 °C."),
    ("Name three primary colours.", "Red, green and purple."),
]


@dataclass
class Site:
    url: str
    store: Store
    runs: list[Run]
    scripted: ScriptedModel


def seed(store: Store) -> list[Run]:
    """Answers people rated thumbs-down in the chat, some with a comment."""
    runs = []
    for n, (question, answer) in enumerate(QUESTIONS):
        run = Run(
            project="web",
            model="local",
            user=f"user{n % 3}",
            inputs=[
                ChatMessage(role="system", content="You are a helpful assistant."),
                ChatMessage(role="user", content=question),
            ],
            output=answer,
            latency_ms=800 + n * 40,
            created_at=T0 + timedelta(minutes=n),
        )
        feedback = Feedback(
            project="web",
            run_id=run.id,
            key="thumbs",
            value="down",
            score=0.0,
            user=run.user,
            comment="That is wrong." if n % 2 else None,
            metadata={"reasons": ["not factually correct"]} if n % 2 else {},
            created_at=run.created_at + timedelta(seconds=30),
        )
        store.append_many([RunCompleted(run=run), FeedbackRecorded(feedback=feedback)])
        runs.append(run)
    return runs


@pytest.fixture
def site(store: Store, scripted: ScriptedModel) -> Iterator[Site]:
    runs = seed(store)
    with serving(store, ModelCatalog([scripted, EchoModel()])) as url:
        yield Site(url, store, runs, scripted)


def _queue(site: Site, keys: list[str], **options: object) -> str:
    queue = ReviewService(site.store).create_queue(
        project="web",
        name="Thumbs-down without a correction",
        keys=keys,
        rule={"key": "thumbs", "max_score": 0, "lacks": "correction"},
        **options,  # type: ignore[arg-type]
    )
    return queue.id


def _reviews(store: Store, queue_id: str) -> list[Feedback]:
    found = []
    for event in store.events_after(0, limit=10_000, types=["feedback.recorded"]):
        feedback: Feedback = event.payload.feedback  # type: ignore[attr-defined]
        if feedback.metadata.get("queue_id") == queue_id:
            found.append(feedback)
    return found


def test_two_reviewers_at_once_are_never_served_the_same_item(browser: Browser, site: Site) -> None:
    queue_id = _queue(site, ["thumbs", "comment", "correction"])
    tabs = {}
    for name in ("ann", "bob"):
        add_account(site.store, name, "annotator")
    for name in ("ann", "bob"):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        tabs[name] = context.new_page()
        sign_in_browser(tabs[name], site.url, name)
        tabs[name].goto(f"{site.url}/review/queues/{queue_id}/work")
    served: dict[str, list[str]] = {"ann": [], "bob": []}
    working = dict(tabs)
    while working:
        holding = {}
        for name, tab in list(working.items()):
            layout = tab.locator(".work-layout")
            if tab.locator(".done-card").count():
                del working[name]
                continue
            holding[name] = layout.get_attribute("data-run")
        # Both hold an item at the same moment: never the same one.
        assert len(set(holding.values())) == len(holding)
        for name, run_id in holding.items():
            tab = working[name]
            served[name].append(run_id or "")
            tab.keyboard.press("t" if name == "ann" else "f")
            with tab.expect_navigation():
                tab.keyboard.press("Enter")
    everything = served["ann"] + served["bob"]
    assert sorted(everything) == sorted(r.id for r in site.runs)
    assert served["ann"]
    assert served["bob"]
    reviews = _reviews(site.store, queue_id)
    assert sorted(f.run_id or "" for f in reviews) == sorted(everything)
    by_reviewer = {f.run_id: (f.user, f.value) for f in reviews}
    for name, value in (("ann", "up"), ("bob", "down")):
        assert all(by_reviewer[run_id] == (name, value) for run_id in served[name])
    for tab in tabs.values():
        tab.context.close()


def test_the_keyboard_does_everything(page: Page, site: Site) -> None:
    queue_id = _queue(site, ["faces", "thumbs", "comment", "correction"])
    add_account(site.store, "rita", "annotator")
    sign_in_browser(page, site.url, "rita")
    page.goto(f"{site.url}/review/queues/{queue_id}/work")
    first = page.locator(".work-layout").get_attribute("data-run")
    assert first == site.runs[0].id
    expect(page.locator(".answer-md pre")).to_contain_text("items[::-1]")
    expect(page.locator(".choice[data-shortcut='4']")).to_contain_text("Good")
    page.keyboard.press("Enter")
    expect(page.locator("#work-status")).to_have_text("Answer faces, thumbs first.")
    page.keyboard.press("2")
    page.keyboard.press("4")
    page.keyboard.press("t")
    expect(page.locator(".choice[aria-pressed=true]")).to_have_count(2)
    expect(page.locator(".choice[data-shortcut='4']")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("c")
    expect(page.locator("#comment")).to_be_focused()
    page.keyboard.type("Right idea, wrong code.")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    expect(page.locator("#correction")).to_be_focused()
    page.keyboard.type("Use `reversed(items)` or `items[::-1]`.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    second = page.locator(".work-layout").get_attribute("data-run")
    assert second == site.runs[1].id
    expect(page.locator(".item-said")).to_contain_text("That is wrong.")
    with page.expect_navigation():
        page.keyboard.press("s")
    assert page.locator(".work-layout").get_attribute("data-run") == site.runs[2].id
    expect(page.locator(".work-progress-text")).to_contain_text("you reviewed 1")

    answers = sorted(
        (f.key, f.value, f.score, f.comment, f.correction, f.source)
        for f in _reviews(site.store, queue_id)
    )
    assert answers == [
        ("comment", None, None, "Right idea, wrong code.", None, "annotator"),
        ("correction", None, None, None, "Use `reversed(items)` or `items[::-1]`.", "annotator"),
        ("faces", "🙂", 0.75, None, None, "annotator"),
        ("thumbs", "up", 1.0, None, None, "annotator"),
    ]
    progress = ReviewService(site.store).progress(queue_id)
    [rita] = progress.reviewers
    assert (rita.reviewer, rita.reviewed, rita.skipped, rita.holding) == (
        "rita",
        1,
        1,
        site.runs[2].id,
    )


def test_upload_prompts_and_watch_the_answers_arrive(page: Page, site: Site) -> None:
    prompts = ["Say hi.", "Count to three.", "Name a fruit."]
    for text in prompts:
        site.scripted.enqueue(f"Scripted answer to: {text}", delay=0.4)
    page.goto(f"{site.url}/review")
    expect(page.locator(".empty-card h2")).to_have_text("No review queues yet")
    form = page.locator("#new-task")
    form.locator("input[name=name]").fill("greetings")
    form.locator("input[name=file]").set_input_files(
        files=[
            {
                "name": "prompts.csv",
                "mimeType": "text/csv",
                "buffer": ("prompt\n" + "\n".join(prompts) + "\n").encode(),
            }
        ]
    )
    form.locator("input[name=models][value=echo]").check()
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    row = page.locator("tr[data-task]")
    expect(row.locator(".task-text")).to_have_text("6 of 6 · 100%", timeout=20_000)
    expect(row.locator(".progress")).to_have_attribute("aria-valuenow", "100")
    # The queue's card follows the answers without a reload.
    expect(page.locator(".queue-card .queue-numbers")).to_contain_text("of 6 done", timeout=10_000)
    row.locator("a", has_text="Queue").click()
    expect(page.locator("h1")).to_have_text("greetings")
    expect(page.locator(".items-table tbody tr")).to_have_count(6)
    runs = [r for r in site.store.list_runs("web") if r.metadata.get("annotation_task")]
    assert sorted((r.model, r.output) for r in runs) == sorted(
        [("scripted", f"Scripted answer to: {p}") for p in prompts] + [("echo", p) for p in prompts]
    )


def test_a_queue_made_on_the_page_shows_its_progress_and_agreement(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/review")
    form = page.locator("#new-queue")
    form.locator("input[name=name]").fill("Double-checked")
    form.locator("select[name=preset]").select_option("thumbs_down")
    form.locator("input[name=keys][value=stars]").check()
    form.locator("input[name=reviewers_per_item]").fill("2")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Double-checked")
    expect(page.locator(".page-head")).to_contain_text("thumbs-down · ")
    queue_id = page.url.rsplit("/", 1)[-1]
    reviews = ReviewService(site.store)
    for name, thumbs in (("ann", ["up", "up", "down"]), ("bob", ["up", "down", "down"])):
        for run, value in zip(site.runs, thumbs, strict=False):
            reviews.submit(queue_id, run.id, name, answers={"thumbs": value, "stars": 3})
    page.reload()
    expect(page.locator(".stat", has_text="Completed").locator(".stat-value")).to_have_text("3")
    thumbs_row = page.locator(".agreement-table tr[data-key=thumbs]")
    expect(thumbs_row.locator(".agreement-kappa")).to_have_text("0.40")
    expect(thumbs_row.locator(".agreement-alpha")).to_have_text("0.44")
    expect(page.locator(".items-table tr[data-status=completed]")).to_have_count(3)
    data = page.request.get(f"{site.url}/review/queues/{queue_id}?format=json").json()
    assert data["progress"]["completed"] == 3
    assert data["agreement"][0]["kappa"] == pytest.approx(0.4)


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_screenshots_of_the_review_pages(browser: Browser, site: Site) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    reviews = ReviewService(site.store)
    queue_id = _queue(site, ["faces", "thumbs", "comment", "correction"], reviewers_per_item=2)
    for name, faces in (("ann", ["🙂", "🙁", "😞"]), ("bob", ["🙂", "😐", "😞"])):
        for run, face in zip(site.runs, faces, strict=False):
            reviews.submit(queue_id, run.id, name, answers={"faces": face, "thumbs": "down"})
    empty = reviews.create_queue(
        project="web", name="Low stars", keys=["stars"], rule={"key": "stars", "max_score": 0.25}
    )
    tasks = AnnotationService(site.store, ModelCatalog([EchoModel()]), reviews)
    prompts = [[ChatMessage(role="user", content=q)] for q, _answer in QUESTIONS]
    task = tasks.create(project="web", name="support-questions-v2", prompts=prompts)
    assert tasks.wait(task.id, timeout=30).complete
    pages = {
        "review": "/review",
        "review-queue": f"/review/queues/{queue_id}",
        "review-work": f"/review/queues/{queue_id}/work",
        "review-done": f"/review/queues/{empty.id}/work",
    }
    for width, height, label in ((1280, 800, "desktop"), (390, 844, "phone")):
        context = browser.new_context(viewport={"width": width, "height": height})
        tab = context.new_page()
        for name, path in pages.items():
            tab.goto(site.url + path)
            target = SCREENSHOTS / f"{name}-{label}.png"
            tab.screenshot(path=target, full_page=True)
            assert target.stat().st_size > 10_000
        context.close()
