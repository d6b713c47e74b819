"""The dashboard page: headline numbers, trends and splits for a project and period."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tuneback.domain import utcnow
from tuneback.errors import NotFoundError
from tuneback.server.access import rule
from tuneback.server.deps import ServicesDep
from tuneback.server.web.assets import asset_response, plotly_bundle
from tuneback.server.web.page import Page, page_view
from tuneback.services.analytics import PERIODS, dashboard

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", dependencies=[rule("manage")])
@page_view
def dashboard_page(
    request: Request, services: ServicesDep, period: str = "7d", model: str | None = None
) -> Page:
    data = dashboard(
        services.store, project=services.settings.project, period=period, model=model or None
    )
    now = utcnow()
    data["stream"] = [
        {
            "name": relay["name"],
            "seq": relay["seq"],
            "behind": relay["behind"],
            # How long the oldest event still waiting has waited: the lag in time.
            "lag_s": (
                round((now - relay["waiting_since"]).total_seconds(), 1)
                if relay["waiting_since"] is not None
                else 0.0
            ),
        }
        for relay in services.store.relay_lag()
    ]
    return Page(
        "dashboard.html",
        "dashboard",
        data,
        name="data",
        extra=lambda: {
            "periods": list(PERIODS),
            "models": [row["group"] for row in data["by_model"]],
        },
    )


@router.get("/ui/plotly.js", dependencies=[rule("public")])
def plotly_js(request: Request) -> Response:
    """Plotly's browser bundle, as the plotly package ships it: no CDN, nothing vendored.

    Gzipped and cacheable (see :mod:`tuneback.server.web.assets`).
    """
    bundle = plotly_bundle()
    if bundle is None:
        raise NotFoundError("charts need the plotly package: pip install plotly")
    return asset_response(bundle, media_type="text/javascript", scope=request.scope)
