"""Dashboard, runs explorer, run detail and datasets in a browser, checked against the store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.analytics.seed import Seeded, seed
from tests.web.conftest import SCREENSHOTS, serving
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store


@pytest.fixture
def site(store: Store) -> Iterator[tuple[str, Seeded]]:
    seeded = seed(store, runs=120, project="web")
    with serving(store, ModelCatalog([EchoModel()])) as url:
        yield url, seeded


def test_dashboard_numbers_link_to_the_runs_behind_them(
    page: Page, site: tuple[str, Seeded]
) -> None:
    url, seeded = site
    page.goto(f"{url}/dashboard?period=all")
    runs_card = page.locator(".stat", has_text="Runs")
    expect(runs_card.locator(".stat-value")).to_have_text(str(len(seeded.runs)))
    expect(page.locator("#chart-volume .main-svg").first).to_be_attached()
    by_model = page.locator(".card", has_text="By model")
    model = by_model.locator("tbody tr").first.locator("td").first.inner_text()
    by_model.locator("tbody tr").first.locator("a").first.click()
    expect(page).to_have_url(f"{url}/runs?model={model}")
    expected = sum(r.model == model for r in seeded.runs)
    expect(page.locator(".page-head p")).to_have_text(f"{expected} runs match these filters.")
    expect(page.locator(".filter-chip")).to_have_text(f"model {model} ×")


def test_explorer_filters_are_chips_and_live_in_the_url(
    page: Page, site: tuple[str, Seeded]
) -> None:
    url, seeded = site
    page.goto(f"{url}/runs")
    expect(page.locator(".page-head p")).to_have_text(f"{len(seeded.runs)} runs match.")
    page.click("text=Thumbs down")
    down = {f.run_id for f in seeded.current_feedback() if f.key == "thumbs" and f.score == 0}
    expect(page.locator(".page-head p")).to_have_text(f"{len(down)} runs match these filters.")
    assert page.url == f"{url}/runs?key=thumbs&max_score=0"
    expect(page.locator(".runs-table tbody tr")).to_have_count(min(len(down), 50))
    page.click("[aria-label='Remove filter score ≤ 0']")
    with_thumbs = {f.run_id for f in seeded.current_feedback() if f.key == "thumbs"}
    expect(page.locator(".page-head p")).to_have_text(
        f"{len(with_thumbs)} runs match these filters."
    )
    page.goto(f"{url}/runs?has=none")
    rated = {f.run_id for f in seeded.current_feedback()}
    unrated = [r for r in seeded.runs if r.id not in rated]
    expect(page.locator(".page-head p")).to_have_text(f"{len(unrated)} runs match these filters.")
    page.goto(f"{url}/runs?min_score=2")
    expect(page.locator(".banner.error")).to_contain_text("min_score")


def test_review_a_run_and_add_it_to_a_dataset(
    page: Page, site: tuple[str, Seeded], store: Store
) -> None:
    url, seeded = site
    page.goto(f"{url}/datasets")
    expect(page.locator(".empty-card h2")).to_have_text("No datasets yet")
    page.fill("input[name=name]", "corrected")
    page.click("text=Create dataset")
    expect(page.locator("h1")).to_contain_text("corrected")

    run = next(r for r in seeded.runs if r.status == "ok")
    page.goto(f"{url}/runs/{run.id}")
    # Each action reloads the page a moment after it says so: wait for the reload,
    # or the next action types into a page that is about to go away.
    with page.expect_navigation():
        page.click("[data-annotate=thumbs][data-value=down]")
        expect(page.locator("#action-status")).to_have_text("Saved your thumbs rating.")
    page.fill("#correction", "A much better answer.")
    with page.expect_navigation():
        page.click("#save-correction")
        expect(page.locator("#action-status")).to_have_text("Correction saved.")
    expect(page.locator(".correction")).to_have_text("A much better answer.")
    page.click("#add-to-dataset")
    expect(page.locator("#action-status")).to_have_text("Added to the dataset.")

    # On loopback with no account yet, whoever opens the pages is the owner.
    mine = [f for f in store.feedback_for_run(run.id) if f.user == "owner"]
    assert sorted((f.key, f.source, f.value, f.correction) for f in mine) == [
        ("correction", "annotator", None, "A much better answer."),
        ("thumbs", "annotator", "down", None),
    ]
    [dataset] = store.list_datasets("web")
    [item] = store.dataset_items(dataset.id)
    assert (item.output, item.source, item.source_run_id) == (
        "A much better answer.",
        "correction",
        run.id,
    )
    page.goto(f"{url}/datasets/{dataset.id}")
    page.click("[data-remove-item]")
    expect(page.locator("#action-status")).to_contain_text("Removed")
    assert store.dataset_items(dataset.id) == []
    assert store.list_datasets("web")[0].version == 2


def test_pages_have_json_twins(page: Page, site: tuple[str, Seeded]) -> None:
    url, seeded = site
    data = page.request.get(f"{url}/runs?format=json&has=none").json()
    assert data["count"] == len(data["data"]) or data["count"] > 50
    run = seeded.runs[0]
    detail = page.request.get(f"{url}/runs/{run.id}", headers={"accept": "application/json"})
    assert detail.json()["run"]["id"] == run.id


@pytest.mark.parametrize("dialect", ["sqlite"])  # the page, not the database, is under test
def test_screenshots_of_the_owner_pages(
    browser: Browser, site: tuple[str, Seeded], dialect: str
) -> None:
    url, seeded = site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        "dashboard": "/dashboard?period=all",
        "runs": "/runs?key=thumbs&max_score=0",
        "run": f"/runs/{seeded.runs[3].id}",
        "datasets": "/datasets",
    }
    for width, height, label in ((1280, 800, "desktop"), (390, 844, "phone")):
        context = browser.new_context(viewport={"width": width, "height": height})
        tab = context.new_page()
        for name, path in pages.items():
            tab.goto(url + path)
            if name == "dashboard":
                expect(tab.locator("#chart-volume .main-svg").first).to_be_attached()
            target = SCREENSHOTS / f"{name}-{label}-{dialect}.png"
            tab.screenshot(path=target, full_page=True)
            assert target.stat().st_size > 10_000
        context.close()
