"""``tuneback leaderboard``: the models ranked by people's votes, in the terminal."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tuneback.cli.app import DatabaseOption, app, one_line_errors, open_store, out, settings_with
from tuneback.services.leaderboard import ROUNDS, LeaderboardQuery, leaderboard


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _interval(pair: list[float | None] | None, fmt: Any) -> str:
    return "—" if not pair else f"{fmt(pair[0])} – {fmt(pair[1])}"


@app.command(name="leaderboard")
def leaderboard_command(
    project: Annotated[
        str | None, typer.Option(help="Project to rank.", envvar="TUNEBACK_PROJECT")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only votes from this time on (ISO 8601, UTC if no zone).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Only votes before this time.")] = None,
    tag: Annotated[
        str | None, typer.Option(help="Only battles whose two runs carry this tag.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help='Only comparisons with this metadata "category".')
    ] = None,
    all_votes: Annotated[
        bool,
        typer.Option(
            "--all-votes",
            help="Count named votes and comparisons logged without a mode too "
            "(the main board counts only anonymous battles).",
        ),
    ] = False,
    style_control: Annotated[
        bool,
        typer.Option(
            "--style-control",
            help="Fit the answer-length difference as a covariate, so a model gains "
            "nothing from being wordy.",
        ),
    ] = False,
    rounds: Annotated[
        int, typer.Option(help="Bootstrap rounds for the 95% intervals (0: no intervals).")
    ] = ROUNDS,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Rank the models by people's pairwise votes (Bradley–Terry), with 95% intervals.

    Each comparison of two answers is a battle; a ranking of k answers counts as
    every pair in it. A tie or "both bad" is half a win each way. Battles where a
    side errored or was cut off, or both sides are the same model, are dropped
    and counted. A model's rank is 1 + the number of models whose interval lies
    wholly above its own, so models whose intervals overlap share a rank. Elo
    (K=4, in vote order) is shown beside the score, and under the board each
    model's single-answer ratings (mean score, thumbs-up rate).

    Examples:

    \b
        tuneback leaderboard                            # anonymous votes, all time
        tuneback leaderboard --since 2026-11-01 --style-control
        tuneback leaderboard --all-votes --tag prod --json | jq '.models[0]'
    """
    settings = settings_with(project=project, database_url=database_url)
    with one_line_errors():
        query = LeaderboardQuery.parse(
            {
                "since": since,
                "until": until,
                "tag": tag,
                "category": category,
                "votes": "all" if all_votes else "anonymous",
                "style_control": style_control,
                "rounds": rounds,
            }
        )
        with open_store(settings.database_url) as store:
            data = leaderboard(store, project=settings.project, query=query)
    if as_json:
        out.print(json.dumps(data, ensure_ascii=False), markup=False)
        return
    _print(data)


def _print(data: dict[str, Any]) -> None:
    f = data["filters"]
    scope = ["anonymous votes" if f["votes"] == "anonymous" else "all votes (named included)"]
    for name in ("since", "until", "tag", "category"):
        if f[name]:
            scope.append(f"{name} {f[name]}")
    if f["style_control"]:
        scope.append("style control")
    out.print(f"[bold]{data['project']}[/bold] · " + " · ".join(scope))
    o = data["outcomes"]
    out.print(
        f"{data['battles']:,} battles: {o['a'] + o['b']:,} won, {o['tie']:,} ties, "
        f"{o['both_bad']:,} both bad",
        markup=False,
    )
    for drop in data["dropped"]:
        out.print(f"dropped {drop['count']:,}: {drop['why']}", markup=False)
    if not data["models"]:
        out.print(
            "No battles to rank yet: compare two answers (or rank several) in the web UI, "
            "or record comparisons through the API."
        )
    else:
        board = Table(box=None, pad_edge=False)
        for column in ("rank", "model", "score", "95% interval", "elo", "battles", "win rate"):
            board.add_column(column, justify="left" if column == "model" else "right")
        for row in data["models"]:
            board.add_row(
                str(row["rank"]),
                row["model"],
                _num(row["score"]),
                f"{_num(row['lower'])} – {_num(row['upper'])}",
                _num(row["elo"]),
                f"{row['battles']:,}",
                _pct(row["win_rate"]),
            )
        out.print(board)
        if data["style"]:
            s = data["style"]
            out.print(
                f"length effect: {_num(s['coefficient'], 3)} "
                f"({_interval([s['lower'], s['upper']], lambda v: _num(v, 3))}) "
                "log-odds per standard deviation of the length difference",
                markup=False,
            )
    if data["ratings"]:
        ratings = Table(
            title="single-answer ratings", title_justify="left", box=None, pad_edge=False
        )
        for column in ("model", "runs", "scored", "mean score", "95% interval", "positive",
                       "95% interval"):  # fmt: skip
            ratings.add_column(column, justify="left" if column == "model" else "right")
        for row in data["ratings"]:
            ratings.add_row(
                str(row["model"]),
                f"{row['runs']:,}",
                f"{row['scored']:,}",
                _num(row["mean_score"], 3),
                _interval(row["mean_score_ci"], lambda v: _num(v, 3)),
                _pct(row["positive_rate"]),
                _interval(row["positive_ci"], _pct),
            )
        out.print(ratings)
