"""The leaderboard page and the battles behind its numbers (each with a JSON twin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tuneback.server.access import rule
from tuneback.server.deps import ServicesDep
from tuneback.server.web.page import Page, page_view
from tuneback.services.leaderboard import LeaderboardQuery, battle_list, leaderboard

router = APIRouter(include_in_schema=False)


def _query(request: Request) -> LeaderboardQuery:
    raw = dict(request.query_params)
    # A checkbox sends "on"; the JSON twin takes true/false.
    if raw.get("style_control") == "on":
        raw["style_control"] = "true"
    return LeaderboardQuery.parse(raw)


@router.get("/leaderboard", dependencies=[rule("manage")])
@page_view
def leaderboard_page(request: Request, services: ServicesDep) -> Page:
    query = _query(request)
    data = leaderboard(services.store, project=services.project, query=query)
    return Page("leaderboard.html", "leaderboard", data, name="data", extra=lambda: _params(query))


@router.get("/leaderboard/battles", dependencies=[rule("manage")])
@page_view
def battles_page(
    request: Request,
    services: ServicesDep,
    model: str | None = None,
    opponent: str | None = None,
) -> Page:
    query = _query(request)
    data = battle_list(
        services.store,
        project=services.project,
        query=query,
        model=model or None,
        opponent=opponent or None,
    )
    return Page("battles.html", "leaderboard", data, name="data", extra=lambda: _params(query))


def _params(query: LeaderboardQuery) -> dict[str, Any]:
    """The board's filters, for the links that keep them."""
    return {"params": query.params()}
