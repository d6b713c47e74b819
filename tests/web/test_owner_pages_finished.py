"""The owner pages in a browser: back-dated runs, phones, dark mode, 404, run trees, lists.

Every page is opened at 1280x860 and 390x844, light and dark, and screenshotted
(into ``screenshots/``); on a phone nothing may be wider than the screen, and
all text keeps a contrast of at least 4.5:1 against what is behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.conftest import SCREENSHOTS, serving
from tuneback.domain import (
    ChatMessage,
    Conversation,
    ConversationStarted,
    Feedback,
    FeedbackRecorded,
    Message,
    MessageAdded,
    Run,
    RunCompleted,
    normalize_score,
    utcnow,
)
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.services.datasets import DatasetService
from tuneback.storage import Store

# The WCAG contrast of every visible text against the colours painted behind it.
CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lin = (v) => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = (c) => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a), b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const behind = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = {r: 255, g: 255, b: 255, a: 1};
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const low = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
    seen.add(el);
    if (el.closest("script, style, option, datalist, .js-plotly-plot, .visually-hidden")) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || !box.width || !box.height) continue;
    const bg = behind(el);
    const fg = over({...parse(style.color), a: parse(style.color).a * Number(style.opacity)}, bg);
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = walker.currentNode.textContent.trim().slice(0, 30);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className} "${text}" ${ratio.toFixed(2)}`);
  }
  return low;
}"""
FITS = "() => document.documentElement.scrollWidth <= window.innerWidth"


@dataclass
class Site:
    url: str
    store: Store
    runs: list[Run]
    chain: list[Run]
    conversation: Conversation
    dataset_id: str


def _seed(store: Store) -> tuple[list[Run], list[Run], Conversation, str]:
    now = utcnow()
    chat = Conversation(project="web", user="ann", title="Planning a trip")
    events: list[object] = [ConversationStarted(conversation=chat)]
    asked = Message(conversation_id=chat.id, project="web", role="user", content="Where to?")
    events.append(MessageAdded(message=asked))
    # One run a day for 13 days, all logged now with the time they ran.
    runs = []
    for n in range(13):
        run = Run(
            project="web",
            model=("alpha", "beta")[n % 2],
            user=("ann", "bob")[n % 2],
            conversation_id=chat.id if n % 2 == 0 else f"app-{n}",
            inputs=[ChatMessage(role="user", content=f"Question {n}?")],
            output=f"Answer {n}.",
            latency_ms=100.0 + n,
            started_at=now - timedelta(days=n, minutes=30),
        )
        runs.append(run)
        events.append(RunCompleted(run=run))
    events.append(
        MessageAdded(
            message=Message(
                conversation_id=chat.id,
                project="web",
                role="assistant",
                content="Lisbon.",
                parent_id=asked.id,
                run_id=runs[0].id,
            )
        )
    )
    for run, value in zip(runs[:4], ("up", "down", "up", "up"), strict=True):
        events.append(
            FeedbackRecorded(
                feedback=Feedback(
                    project="web",
                    run_id=run.id,
                    key="thumbs",
                    value=value,
                    score=normalize_score("thumbs", value),
                    user=run.user,
                )
            )
        )
    # The chain ran two months ago: outside every period the dashboard test looks at.
    then = now - timedelta(days=60)
    root = Run(
        project="web",
        run_type="chain",
        name="agent",
        inputs={"q": "x"},
        latency_ms=900,
        started_at=then,
    )
    search = Run(
        project="web",
        run_type="retriever",
        name="search",
        parent_run_id=root.id,
        inputs={"q": "x"},
        latency_ms=200,
        started_at=then + timedelta(milliseconds=50),
    )
    model = Run(
        project="web",
        name="llm",
        model="alpha",
        parent_run_id=root.id,
        inputs=[ChatMessage(role="user", content="x " * 80 + "y" * 90)],
        output="z",
        latency_ms=600,
        started_at=then + timedelta(milliseconds=260),
    )
    events += [RunCompleted(run=r) for r in (root, search, model)]
    store.append_many(events)  # type: ignore[arg-type]
    datasets = DatasetService(store)
    dataset = datasets.create(project="web", name="liked", description="Answers people liked")
    datasets.add_runs(dataset.id, [r.id for r in runs[:3]])
    return runs, [root, search, model], chat, dataset.id


@pytest.fixture
def site(store: Store) -> Iterator[Site]:
    runs, chain, chat, dataset_id = _seed(store)
    with serving(store, ModelCatalog([EchoModel()])) as url:
        yield Site(url, store, runs, chain, chat, dataset_id)


def _data(page: Page) -> dict[str, object]:
    data: dict[str, object] = json.loads(page.locator("#dashboard-data").text_content() or "")
    return data


def test_back_dated_runs_land_on_the_days_they_ran(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/dashboard?period=7d")
    expect(page.locator(".stat", has_text="Runs").first.locator(".stat-value")).to_have_text("7")
    over_time = _data(page)["over_time"]
    assert isinstance(over_time, list)
    ran = {r.happened_at.strftime("%Y-%m-%d") for r in site.runs[:7]}
    assert {b["bucket"][:10] for b in over_time if b["runs"]} == ran
    assert all(b["runs"] == 1 for b in over_time if b["runs"])
    page.goto(f"{site.url}/dashboard?period=30d")
    expect(page.locator(".stat", has_text="Runs").first.locator(".stat-value")).to_have_text("13")
    # No run measured its first token: a dash, not "0 ms".
    expect(page.locator(".stat", has_text="First token").locator(".stat-value")).to_have_text("—")
    expect(page.locator("#chart-volume .main-svg").first).to_be_attached(timeout=20_000)
    # The explorer lists them by when they ran, newest first, and says when each was logged.
    page.goto(f"{site.url}/runs?model=alpha")
    times = page.locator(".runs-table tbody tr td:first-child a")
    alpha = sorted(
        (r for r in [*site.runs, *site.chain] if r.model == "alpha"),
        key=lambda r: r.happened_at,
        reverse=True,
    )
    expect(times).to_have_text([r.happened_at.strftime("%m-%d %H:%M") for r in alpha])
    oldest = alpha[-1]
    ran, logged = oldest.happened_at, oldest.created_at
    assert times.last.get_attribute("title") == (
        f"ran {ran:%Y-%m-%d %H:%M:%S}, recorded {logged:%Y-%m-%d %H:%M:%S} UTC"
    )


def test_positive_links_to_the_thumbs_up(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/dashboard?period=30d")
    row = page.locator(".card", has_text="By model").locator("tbody tr", has_text="alpha")
    row.locator("td").nth(3).locator("a").click()
    chips = page.locator(".filter-chip")
    expect(chips.filter(has_text="score")).to_have_text(["score ≥ 1 ×"])
    assert "key=thumbs&min_score=1" in page.url
    up = [r for r in site.runs[:4] if r.model == "alpha"]  # alpha got up, up
    expect(page.locator(".runs-table tbody tr")).to_have_count(len(up))


def test_counts_open_the_conversations_and_users_pages(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/dashboard?period=all")
    page.locator(".stat", has_text="Conversations").click()
    expect(page.locator("h1")).to_have_text("Conversations")
    expect(page.locator(".page-head p")).to_have_text("7 conversations.")
    page.locator(".conversations-table a", has_text="Planning a trip").click()
    expect(page.locator("h1")).to_have_text("Planning a trip")
    expect(page.locator(".transcript-msg .md")).to_have_text(["Where to?", "Lisbon."])
    page.goto(f"{site.url}/dashboard?period=all")
    page.locator(".stat", has_text="Users").click()
    expect(page.locator(".users-table tbody td:first-child")).to_have_text(["ann", "bob"])
    page.locator(".users-table a", has_text="bob").first.click()
    expect(page.locator("h1")).to_have_text("bob")
    expect(page.locator(".conversations-table tbody tr")).to_have_count(6)
    page.goto(f"{site.url}/conversations?user=ann")
    expect(page.locator(".filter-chip")).to_have_text(["user ann ×"])
    expect(page.locator(".conversations-table tbody tr")).to_have_count(1)


def test_runs_filters_offer_the_known_models_and_users(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/runs")
    models = page.locator("#known-models option")
    expect(models).to_have_count(2)
    assert sorted(models.evaluate_all("(os) => os.map((o) => o.value)")) == ["alpha", "beta"]
    assert page.locator("input[name=model]").get_attribute("list") == "known-models"
    users = page.locator("#known-users option").evaluate_all("(os) => os.map((o) => o.value)")
    assert sorted(users) == ["ann", "bob"]


def test_a_chain_shows_its_run_tree(page: Page, site: Site) -> None:
    model = site.chain[2]
    page.goto(f"{site.url}/runs/{model.id}")
    rows = page.locator(".run-tree .tree-row")
    expect(rows.locator(".tree-name > :first-child")).to_have_text(["agent", "search", "llm"])
    expect(rows.locator(".tree-time")).to_have_text(["900 ms", "200 ms", "600 ms"])
    expect(page.locator(".tree-row.this-run strong")).to_have_text("llm")
    rows.locator("a", has_text="agent").click()
    expect(page.locator("h1")).to_contain_text("agent")
    expect(page.locator(".tree-row.this-run strong")).to_have_text("agent")
    page.goto(f"{site.url}/runs/{site.runs[0].id}")
    expect(page.locator(".run-tree")).to_have_count(0)


def test_unknown_pages_and_runs_get_the_styled_404(page: Page, site: Site) -> None:
    response = page.goto(f"{site.url}/runs/no-such-run")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("This run isn't here")
    page.click("text=Back to the runs")
    expect(page.locator("h1")).to_have_text("Runs")
    response = page.goto(f"{site.url}/nowhere")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("This page isn't here")


def test_a_dataset_removal_can_be_undone_and_it_downloads(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.dataset_id}")
    rows = page.locator("[data-dataset] tbody tr")
    expect(rows).to_have_count(3)
    rows.first.locator("[data-remove-item]").click()
    expect(rows).to_have_count(2)
    with page.expect_navigation():
        page.click("#undo-remove")
    expect(rows).to_have_count(3)
    expect(page.locator("h1 .badge")).to_have_text("v3")
    page.select_option("select[name=format]", "kto")
    with page.expect_download() as download:
        page.click("text=Download")
    assert download.value.suggested_filename == "liked-v3-kto.jsonl"


@pytest.mark.parametrize("dialect", ["sqlite"])  # the page, not the database, is under test
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_owner_page_fits_a_phone_and_reads_clearly(
    browser: Browser, site: Site, scheme: str, dialect: str
) -> None:
    pages = {
        "dashboard": "/dashboard?period=30d",
        "runs": "/runs",
        "run": f"/runs/{site.chain[2].id}",
        "conversations": "/conversations",
        "conversation": f"/conversations/{site.conversation.id}",
        "users": "/users",
        "user": "/users/ann",
        "datasets": "/datasets",
        "dataset": f"/datasets/{site.dataset_id}",
        "not-found": "/runs/no-such-run",
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, object] = {}
    for width, height, label in ((1280, 860, "desktop"), (390, 844, "phone")):
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=scheme
        )
        tab = context.new_page()
        for name, path in pages.items():
            tab.goto(site.url + path)
            if name == "dashboard":
                expect(tab.locator("#chart-volume .main-svg").first).to_be_attached(timeout=20_000)
            if not tab.evaluate(FITS):
                problems[f"{name} {label}: wider than the screen"] = tab.evaluate(
                    "() => document.documentElement.scrollWidth"
                )
            low = tab.evaluate(CONTRAST)
            if low:
                problems[f"{name} {label}: low contrast"] = low[:5]
            tab.screenshot(
                path=SCREENSHOTS / f"owner-{name}-{label}-{scheme}-{dialect}.png", full_page=True
            )
        context.close()
    assert problems == {}
