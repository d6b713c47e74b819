"""Comparisons of two or more runs: which answer a person preferred."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from tuneback.domain import Comparison, validate
from tuneback.server.access import key_rule
from tuneback.server.api.deps import CursorQuery
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import ComparisonCreate, ComparisonPublic, ComparisonsPublic
from tuneback.server.auth import CallerDep
from tuneback.server.deps import ServicesDep

router = resource_router("/comparisons", "comparisons")


@router.post(
    "", status_code=201, summary="Record a comparison of runs", dependencies=[key_rule("log")]
)
def create_comparison(
    body: ComparisonCreate, caller: CallerDep, services: ServicesDep
) -> ComparisonPublic:
    data = body.model_dump(exclude_none=True, exclude={"project"})
    data["project"] = caller.project(body.project)
    comparison = services.comparisons.record(validate(Comparison, data, what="comparison"))
    return ComparisonPublic.model_validate(comparison.__dict__)


@router.get("/{comparison_id}", summary="One comparison", dependencies=[key_rule("read")])
def get_comparison(
    comparison_id: str, caller: CallerDep, services: ServicesDep
) -> ComparisonPublic:
    comparison = services.store.get_comparison(comparison_id)
    caller.check(comparison.project, "comparison", comparison_id)
    return ComparisonPublic.model_validate(comparison.__dict__)


@router.get("", summary="Comparisons, newest first", dependencies=[key_rule("read")])
def list_comparisons(
    caller: CallerDep,
    services: ServicesDep,
    run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
) -> ComparisonsPublic:
    page = services.queries.comparisons(
        project=caller.scope, run_id=run_id, limit=limit, cursor=cursor
    )
    data = [ComparisonPublic.model_validate(c.__dict__) for c in page.data]
    return ComparisonsPublic(data=data, count=len(data), next_cursor=page.next_cursor)
