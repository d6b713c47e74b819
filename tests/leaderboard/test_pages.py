"""The leaderboard page: the same numbers as its JSON twin and the CLI (the browser's view is
in tests/web/test_leaderboard_page.py)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import httpx
import pytest
from typer.testing import CliRunner

from tests.api.conftest import BASE, make_app
from tests.leaderboard.seed import seed_votes
from tests.leaderboard.test_board import FILTERS, PROJECT, board, cli_flags, shown
from tests.visitors import open_pages
from tuneback.cli import app as cli
from tuneback.services.leaderboard import LeaderboardQuery, battle_list
from tuneback.storage import Store


class _Tables(HTMLParser):
    """Every table cell's text, by the table's class."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = (dict(attrs).get("class") or "").replace("data-table", "").strip()
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.mark.parametrize("filters", FILTERS, ids=["main", "all"])
async def test_page_json_twin_and_cli_show_the_same_numbers(
    store: Store, database_url: str, filters: dict[str, str]
) -> None:
    seed_votes(store, project=PROJECT)
    app = make_app(store, project=PROJECT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await open_pages(client)
        twin = (await client.get("/leaderboard", params={**filters, "format": "json"})).json()
        page = await client.get("/leaderboard", params=filters, headers={"accept": "text/html"})
    assert page.status_code == 200
    assert twin == board(store, **{**filters, "rounds": 1000})
    tables = _Tables()
    tables.feed(page.text)
    assert [r[:7] for r in tables.tables["board"][1:]] == [shown(r) for r in twin["models"]]
    names = twin["matrix"]["models"]
    assert tables.tables["matrix"][0] == ["Win rate · battles", *names]
    for i, row in enumerate(tables.tables["matrix"][1:]):
        assert row[0] == names[i]
        for j, cell in enumerate(row[1:]):
            n = twin["matrix"]["battles"][i][j]
            rate = twin["matrix"]["win_rate"][i][j]
            assert cell == (f"{rate * 100:.1f}% · {n:,}" if n else "—")
    printed = CliRunner().invoke(cli, ["leaderboard", "--json", *cli_flags(filters, database_url)])
    assert json.loads(printed.output) == twin


async def test_a_bad_filter_on_the_page_is_a_422_that_says_which(store: Store) -> None:
    app = make_app(store, project=PROJECT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await open_pages(client)
        response = await client.get("/leaderboard", params={"since": "yesterday-ish"})
        battles = await client.get("/leaderboard/battles", params={"votes": "some"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("since: ")
    assert battles.status_code == 422
    assert battles.json()["error"]["message"].startswith("votes: ")


async def test_an_empty_project_says_what_to_do(store: Store) -> None:
    app = make_app(store, project=PROJECT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await open_pages(client)
        page = await client.get("/leaderboard", headers={"accept": "text/html"})
        twin = (await client.get("/leaderboard", params={"format": "json"})).json()
    assert page.status_code == 200
    assert "No battles to rank yet" in page.text
    assert twin == {
        "project": PROJECT,
        "filters": {
            "since": None, "until": None, "tag": None, "category": None,
            "votes": "anonymous", "style_control": False, "rounds": 1000,
        },
        "battles": 0,
        "outcomes": {"a": 0, "b": 0, "tie": 0, "both_bad": 0},
        "dropped": [],
        "models": [],
        "style": None,
        "matrix": None,
        "ratings": [],
    }  # fmt: skip


async def test_the_battles_behind_a_pair_and_their_json_twin(store: Store) -> None:
    seed_votes(store, project=PROJECT)
    app = make_app(store, project=PROJECT)
    params = {"model": "birch", "opponent": "dune", "votes": "all"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        await open_pages(client)
        twin = await client.get("/leaderboard/battles", params={**params, "format": "json"})
        page = await client.get("/leaderboard/battles", params=params)
    assert twin.json() == battle_list(
        store,
        project=PROJECT,
        query=LeaderboardQuery(votes="all"),
        model="birch",
        opponent="dune",
    )
    rows = twin.json()["data"]
    assert {frozenset((b["model_a"], b["model_b"])) for b in rows} == {frozenset(("birch", "dune"))}
    # The re-vote counts; the vote it replaced is not listed at all.
    revotes = [b for b in rows if b["user"] == "u9"]
    assert [(b["outcome"], b["counted"]) for b in revotes] == [("a", True)]
    # With all votes, every birch–dune battle counts, the one logged without a mode too.
    assert all(b["counted"] and b["why"] is None for b in rows)
    assert sum(1 for b in rows if b["mode"] is None) == 1
    tables = _Tables()
    tables.feed(page.text)
    assert len(tables.tables[""]) == len(rows) + 1
