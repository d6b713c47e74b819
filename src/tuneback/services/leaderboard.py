"""The leaderboard: which model people prefer, from their votes, with honest intervals.

One function, :func:`leaderboard`, returns everything the page, its JSON twin
and ``tuneback leaderboard`` show, already rounded, so the three always agree.
The statistics live in :mod:`tuneback.services.pairwise`; which battles count
is decided in :mod:`tuneback.storage.leaderboard`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from tuneback.domain.common import UtcDatetime
from tuneback.errors import ValidationError
from tuneback.services import pairwise
from tuneback.storage import Store
from tuneback.storage.analytics import Analytics, Window
from tuneback.storage.leaderboard import DROP_REASONS, BattleColumns, BattleFilter, BattleReader
from tuneback.storage.queries import RunFilter

ROUNDS = 1000
SEED = 0
"""The bootstrap's seed: the same votes give the same intervals on every screen."""


class LeaderboardQuery(BaseModel):
    """The board's filters, as the page's URL, the JSON twin and the CLI take them."""

    model_config = ConfigDict(extra="ignore")

    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    tag: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=200)
    votes: Literal["anonymous", "all"] = "anonymous"
    style_control: bool = False
    rounds: int = Field(default=ROUNDS, ge=0, le=10_000)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> LeaderboardQuery:
        """Validate filters from a URL or the command line; a bad one is a ValidationError."""
        try:
            return cls.model_validate({k: v for k, v in raw.items() if v not in (None, "")})
        except PydanticValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValidationError(
                f"{where}: {first['msg']}",
                details=[{k: e[k] for k in ("loc", "msg", "type")} for e in exc.errors()],
            ) from None

    def battle_filter(self, project: str) -> BattleFilter:
        return BattleFilter(
            project=project,
            since=self.since,
            until=self.until,
            category=self.category,
            runs=RunFilter(tag=self.tag),
            votes=self.votes,
        )

    def params(self) -> dict[str, str]:
        """The filters as URL parameters (the defaults left out), for links to the battles."""
        given = {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "tag": self.tag,
            "category": self.category,
            "votes": None if self.votes == "anonymous" else self.votes,
        }
        return {k: v for k, v in given.items() if v is not None}


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _round_pair(pair: list[float] | None) -> list[float | None] | None:
    return None if pair is None else [_round(v, 4) for v in pair]


def _score_rows(found: BattleColumns, query: LeaderboardQuery) -> dict[str, Any]:
    battles = pairwise.battles_from(
        found.model_a,
        found.model_b,
        found.outcome,
        found.len_a,
        found.len_b,
    )
    tally = pairwise.tally(battles, style=query.style_control)
    strengths, gamma = pairwise.fit(tally)
    sampled, gammas = pairwise.bootstrap(tally, rounds=query.rounds, seed=SEED)
    score = pairwise.to_score(strengths)
    if query.rounds:
        low, high = np.percentile(pairwise.to_score(sampled), [2.5, 97.5], axis=0)
    else:
        low, high = score, score
    lower = [float(_round(v, 1) or 0.0) for v in low]
    upper = [float(_round(v, 1) or 0.0) for v in high]
    rank = pairwise.ranks(lower, upper)
    elo = pairwise.elo(battles)
    counts = pairwise.pair_counts(tally)
    rates = pairwise.win_rates(counts)
    per_model = counts.sum(axis=1)
    models = battles.models
    rows = [
        {
            "model": name,
            "rank": rank[i],
            "score": _round(float(score[i]), 1),
            "lower": lower[i],
            "upper": upper[i],
            "elo": _round(float(elo[i]), 1),
            "battles": int(per_model[i].sum()),
            "wins": int(per_model[i][0]),
            "losses": int(per_model[i][1]),
            "ties": int(per_model[i][2]),
            "both_bad": int(per_model[i][3]),
            "win_rate": _round(
                (per_model[i][0] + 0.5 * (per_model[i][2] + per_model[i][3])) / per_model[i].sum(),
                4,
            ),
        }
        for i, name in enumerate(models)
    ]
    order = sorted(range(len(models)), key=lambda i: (-score[i], models[i]))
    style = None
    if query.style_control:
        g_low, g_high = np.percentile(gammas, [2.5, 97.5]) if query.rounds else (gamma, gamma)
        style = {
            "coefficient": _round(gamma, 3),
            "lower": _round(float(g_low), 3),
            "upper": _round(float(g_high), 3),
        }
    return {
        "models": [rows[i] for i in order],
        "style": style,
        "matrix": {
            "models": [models[i] for i in order],
            "win_rate": [[_round(float(rates[i, j]), 4) for j in order] for i in order],
            "battles": [[int(counts[i, j].sum()) for j in order] for i in order],
        },
    }


def _ratings(store: Store, project: str, query: LeaderboardQuery) -> list[dict[str, Any]]:
    """Single-answer ratings per model: the dashboard's per-model numbers for the period."""
    window = Window(project, since=query.since, until=query.until)
    rows = Analytics(store).ratings(window, "model")
    return [
        {
            "model": row["group"],
            "raw_model": row["raw_group"],
            "runs": row["runs"],
            "scored": row["scored"],
            "mean_score": _round(row["mean_score"], 4),
            "mean_score_ci": _round_pair(row["mean_score_ci"]),
            "thumbs": row["thumbs"],
            "positive_rate": _round(row["positive_rate"], 4),
            "positive_ci": _round_pair(row["positive_ci"]),
        }
        for row in sorted(rows, key=lambda r: (-(r["mean_score"] or -1), str(r["group"])))
    ]


def leaderboard(store: Store, *, project: str, query: LeaderboardQuery) -> dict[str, Any]:
    """Everything the leaderboard page (and ``tuneback leaderboard``) shows, as plain data."""
    found = BattleReader(store).read(query.battle_filter(project), lengths=query.style_control)
    outcomes = dict.fromkeys(pairwise.OUTCOMES, 0)
    for word in found.outcome:
        outcomes[word] += 1
    board: dict[str, Any] = {"models": [], "style": None, "matrix": None}
    if len(found):
        board = _score_rows(found, query)
    return {
        "project": project,
        "filters": query.model_dump(mode="json"),
        "battles": len(found),
        "outcomes": outcomes,
        "dropped": [
            {"reason": reason, "why": why, "count": found.dropped.get(reason, 0)}
            for reason, why in DROP_REASONS.items()
            if found.dropped.get(reason)
        ],
        **board,
        "ratings": _ratings(store, project, query),
    }


def battle_list(
    store: Store,
    *,
    project: str,
    query: LeaderboardQuery,
    model: str | None = None,
    opponent: str | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """The newest battles behind a number on the board, each with why it counts or not."""
    rows = BattleReader(store).listing(
        query.battle_filter(project), model=model, opponent=opponent, limit=limit
    )
    return {
        "project": project,
        "filters": query.model_dump(mode="json"),
        "model": model,
        "opponent": opponent,
        "data": [
            {
                **row,
                "created_at": row["created_at"].isoformat(),
                "counted": row["reason"] is None,
                "why": DROP_REASONS.get(row["reason"]) if row["reason"] else None,
            }
            for row in rows
        ],
    }
