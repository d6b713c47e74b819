"""The dashboard as JSON: headline numbers against the period before, trends and splits."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from tuneback.server.access import key_rule
from tuneback.server.api.routes import resource_router
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep
from tuneback.services.analytics import Period, dashboard

router = resource_router("/stats", "stats")


@router.get(
    "",
    summary="What the feedback says: the dashboard's numbers for a project",
    dependencies=[key_rule("read")],
)
def project_stats(
    caller: CallerDep,
    services: ServicesDep,
    project: Annotated[str | None, Query(max_length=64)] = None,
    period: Annotated[
        Period, Query(description="The span the numbers cover, compared with the span before.")
    ] = "7d",
    model: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    return dashboard(services.store, project=caller.project(project), period=period, model=model)
