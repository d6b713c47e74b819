"""The leaderboard in a browser: charts drawn, numbers leading to the battles behind them,
both widths, light and dark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.leaderboard.seed import Votes, seed_votes
from tests.web.conftest import SCREENSHOTS, serving
from tuneback.models import EchoModel
from tuneback.services.catalog import ModelCatalog
from tuneback.storage import Store


@pytest.fixture
def site(store: Store) -> Iterator[tuple[str, Votes]]:
    votes = seed_votes(store, project="web")
    with serving(store, ModelCatalog([EchoModel()])) as url:
        yield url, votes


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("width", "height"), [(1280, 860), (390, 844)], ids=["wide", "phone"])
def test_the_page_in_a_browser(
    browser: Browser, site: tuple[str, Votes], scheme: str, width: int, height: int
) -> None:
    url, votes = site
    context = browser.new_context(
        viewport={"width": width, "height": height},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{url}/leaderboard")
        # Plotly is 4.8 MB of script: on a busy machine parsing it takes a while.
        expect(page.locator("html")).to_have_attribute("data-charts", "drawn", timeout=30_000)
        counted = page.locator(".stat", has_text="Battles counted").locator(".stat-value")
        expect(counted).to_have_text(str(votes.counted))
        expect(page.locator("#chart-scores .main-svg").first).to_be_attached()
        expect(page.locator("#chart-winrate .main-svg").first).to_be_attached()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        name = f"leaderboard-{'wide' if width > 800 else 'phone'}-{scheme}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if width > 800 and scheme == "light":
            top = page.locator("table.board tbody tr").first.locator("td").nth(1)
            model = top.inner_text()
            top.locator("a").click()
            expect(page.locator("h1")).to_have_text(f"Battles of {model}")
            rows = page.locator("tbody tr")
            expect(rows.first).to_be_visible()
            for text in rows.all_inner_texts():
                assert model in text
            page.screenshot(path=str(SCREENSHOTS / "battles-wide-light.png"), full_page=True)
    finally:
        context.close()
    assert errors == []
