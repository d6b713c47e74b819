"""The leaderboard page and the battles behind its numbers (each with a JSON twin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tuneback.server.access import rule
from tuneback.server.deps import ServicesDep
from tuneback.server.web.templating import render_page
from tuneback.services.leaderboard import LeaderboardQuery, battle_list, leaderboard

router = APIRouter(include_in_schema=False)


def _query(request: Request) -> LeaderboardQuery:
    raw = dict(request.query_params)
    # A checkbox sends "on"; the JSON twin takes true/false.
    if raw.get("style_control") == "on":
        raw["style_control"] = "true"
    return LeaderboardQuery.parse(raw)


@router.get("/leaderboard", dependencies=[rule("manage")])
def leaderboard_page(request: Request, services: ServicesDep) -> Response:
    query = _query(request)
    data = leaderboard(services.store, project=services.settings.project, query=query)
    if request.query_params.get("format") == "json":
        return JSONResponse(data)
    return render_page(
        request, "leaderboard.html", section="leaderboard", data=data, params=query.params()
    )


@router.get("/leaderboard/battles", dependencies=[rule("manage")])
def battles_page(
    request: Request,
    services: ServicesDep,
    model: str | None = None,
    opponent: str | None = None,
) -> Response:
    query = _query(request)
    data = battle_list(
        services.store,
        project=services.settings.project,
        query=query,
        model=model or None,
        opponent=opponent or None,
    )
    if request.query_params.get("format") == "json":
        return JSONResponse(data)
    return render_page(
        request, "battles.html", section="leaderboard", data=data, params=query.params()
    )
