"""The leaderboard on both databases: which battles count, the filters, the ratings table,
and the same numbers from ``tuneback leaderboard``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.leaderboard.seed import STRENGTH, Votes, seed_votes
from tuneback.cli import app as cli
from tuneback.server.web.templating import number, percent
from tuneback.services.leaderboard import LeaderboardQuery, battle_list, leaderboard
from tuneback.storage import Store

PROJECT = "arena"
FAST = {"rounds": 200}


@pytest.fixture
def votes(store: Store) -> Votes:
    return seed_votes(store, project=PROJECT)


def board(store: Store, **filters: object) -> dict[str, object]:
    return leaderboard(store, project=PROJECT, query=LeaderboardQuery.parse({**FAST, **filters}))


def test_the_board_counts_anonymous_battles_and_says_what_it_dropped(
    store: Store, votes: Votes
) -> None:
    data = board(store)
    assert data["battles"] == votes.counted
    assert data["outcomes"]["both_bad"] == votes.both_bad  # type: ignore[index]
    assert sum(data["outcomes"].values()) == votes.counted  # type: ignore[attr-defined]
    assert data["dropped"] == [
        {"reason": "failed", "why": "a side errored or was cut off", "count": 4},
        {"reason": "self", "why": "the same model on both sides", "count": 1},
        {
            "reason": "not_anonymous",
            "why": "not an anonymous vote (named, resampled or logged without a mode)",
            "count": 2,
        },
    ]
    rows = data["models"]
    assert [r["model"] for r in rows] == sorted(STRENGTH, key=lambda m: -STRENGTH[m])  # type: ignore[union-attr]
    assert sum(r["battles"] for r in rows) == 2 * votes.counted  # type: ignore[union-attr]
    assert sum(r["both_bad"] for r in rows) == 2 * votes.both_bad  # type: ignore[union-attr]
    for r in rows:  # type: ignore[union-attr]
        assert r["lower"] <= r["score"] <= r["upper"]
        assert r["wins"] + r["losses"] + r["ties"] + r["both_bad"] == r["battles"]
    matrix = data["matrix"]
    assert matrix["models"] == [r["model"] for r in rows]  # type: ignore[index, union-attr]
    n = len(rows)  # type: ignore[arg-type]
    for i in range(n):
        assert sum(matrix["battles"][i]) == rows[i]["battles"]  # type: ignore[index]
        for j in range(n):
            rate, back = matrix["win_rate"][i][j], matrix["win_rate"][j][i]  # type: ignore[index]
            if i != j and rate is not None:
                assert rate + back == pytest.approx(1.0, abs=2e-4)

    everyone = board(store, votes="all")
    assert everyone["battles"] == votes.counted + 2
    assert [d["reason"] for d in everyone["dropped"]] == ["failed", "self"]  # type: ignore[attr-defined]


def test_a_ranking_counts_as_every_pair_in_it(store: Store, votes: Votes) -> None:
    listed = battle_list(store, project=PROJECT, query=LeaderboardQuery(), limit=1_000)["data"]
    ranked = [
        (b["model_a"], b["model_b"], b["outcome"], b["counted"])
        for b in listed  # type: ignore[attr-defined]
        if b["ranked"]
    ]
    # Newest first: the ranking with the errored answer, then the ranking of three.
    assert ranked == [
        ("birch", "atlas", "b", False),
        ("birch", "dune", "a", True),
        ("atlas", "dune", "a", False),
        ("cedar", "atlas", "b", True),
        ("cedar", "dune", "a", True),
        ("atlas", "dune", "a", True),
    ]


def test_filters_by_tag_category_and_time(store: Store, votes: Votes) -> None:
    assert board(store, tag="prod")["battles"] == 40  # every third pair's runs are tagged
    assert board(store, category="code")["battles"] == 30  # every fourth vote
    everything = battle_list(store, project=PROJECT, query=LeaderboardQuery(), limit=1_000)
    times = sorted({b["created_at"] for b in everything["data"] if b["counted"]})  # type: ignore[attr-defined]
    assert board(store, until=times[50])["battles"] == 50
    assert board(store, since=times[50])["battles"] == votes.counted - 50
    with pytest.raises(Exception, match="votes"):
        board(store, votes="some")


def test_style_control_reports_the_length_effect(store: Store, votes: Votes) -> None:
    styled = board(store, style_control=True)
    assert styled["battles"] == votes.counted
    style = styled["style"]
    assert style["lower"] <= style["coefficient"] <= style["upper"]  # type: ignore[index]
    assert board(store)["style"] is None


def test_single_answer_ratings_per_model(store: Store, votes: Votes) -> None:
    ratings = {r["model"]: r for r in board(store)["ratings"]}  # type: ignore[attr-defined]
    rated = votes.runs[:60]
    for model in STRENGTH:
        mine = [i for i, r in enumerate(rated) if r.model == model and r.status == "ok"]
        up = sum(1 for i in mine if i % 3)
        row = ratings[model]
        assert row["runs"] == sum(1 for r in votes.runs if r.model == model)
        assert row["thumbs"] == len(mine)
        assert row["positive_rate"] == round(up / len(mine), 4)
        lo, hi = row["positive_ci"]
        assert lo <= row["positive_rate"] <= hi
        scores = [1.0 if i % 3 else 0.0 for i in mine] + [(i % 5) / 4 for i in mine if i % 2 == 0]
        assert row["scored"] == len(scores)
        assert row["mean_score"] == round(sum(scores) / len(scores), 4)


def shown(row: dict[str, object]) -> list[str]:
    """A board row as the page and the CLI print it."""
    return [
        str(row["rank"]),
        str(row["model"]),
        number(row["score"], 1),  # type: ignore[arg-type]
        f"{number(row['lower'], 1)} – {number(row['upper'], 1)}",  # type: ignore[arg-type]
        number(row["elo"], 1),  # type: ignore[arg-type]
        number(row["battles"]),  # type: ignore[arg-type]
        percent(row["win_rate"], 1),  # type: ignore[arg-type]
    ]


def cli_flags(filters: dict[str, str], database_url: str) -> list[str]:
    flags = ["--project", PROJECT, "--database-url", database_url]
    if filters.get("votes") == "all":
        flags.append("--all-votes")
    if filters.get("style_control") == "true":
        flags.append("--style-control")
    if "tag" in filters:
        flags += ["--tag", filters["tag"]]
    return flags


FILTERS = [{}, {"votes": "all", "style_control": "true", "tag": "prod"}]


@pytest.mark.parametrize("filters", FILTERS, ids=["main", "all"])
def test_the_cli_prints_the_services_numbers(
    store: Store, votes: Votes, database_url: str, filters: dict[str, str]
) -> None:
    expected = board(store, **{**filters, "rounds": 1000})
    flags = cli_flags(filters, database_url)
    printed = CliRunner().invoke(cli, ["leaderboard", "--json", *flags])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == expected
    table = CliRunner().invoke(cli, ["leaderboard", *flags], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "model"])
    models = expected["models"]
    rows = [line.split() for line in lines[start + 1 : start + 1 + len(models)]]  # type: ignore[arg-type]
    assert rows == [[c for cell in shown(r) for c in cell.split()] for r in models]  # type: ignore[attr-defined]
    assert f"{expected['battles']:,} battles" in lines[1]
    for drop in expected["dropped"]:  # type: ignore[attr-defined]
        assert f"dropped {drop['count']:,}: {drop['why']}" in lines


def test_a_bad_filter_is_one_line_in_the_cli(store: Store, database_url: str) -> None:
    printed = CliRunner().invoke(
        cli, ["leaderboard", "--since", "soon", "--database-url", database_url]
    )
    assert printed.exit_code == 1
    assert printed.output.startswith("error: since: ")
