"""The dashboard page: headline numbers, trends and splits for a project and period."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from tuneback.domain import utcnow
from tuneback.errors import NotFoundError
from tuneback.server.access import rule
from tuneback.server.deps import ServicesDep
from tuneback.server.web.templating import render_page
from tuneback.services.analytics import PERIODS, dashboard

router = APIRouter(include_in_schema=False)


@router.get("/dashboard", dependencies=[rule("manage")])
def dashboard_page(
    request: Request, services: ServicesDep, period: str = "7d", model: str | None = None
) -> Response:
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
    if request.query_params.get("format") == "json":
        return JSONResponse(data)
    return render_page(
        request,
        "dashboard.html",
        section="dashboard",
        data=data,
        periods=list(PERIODS),
        models=[row["group"] for row in data["by_model"]],
    )


@router.get("/ui/plotly.js", dependencies=[rule("public")])
def plotly_js() -> FileResponse:
    """Plotly's browser bundle, as the plotly package ships it: no CDN, nothing vendored."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError("charts need the plotly package: pip install plotly")
    bundle = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    return FileResponse(
        bundle, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )
