"""Runs logged from outside: create one, read one, list them with filters and a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import Field

from tuneback.domain import Run, validate
from tuneback.domain.criteria import RunCriteria
from tuneback.server.access import key_rule
from tuneback.server.api.deps import ApiDep
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import RunCreate, RunPublic, RunsPublic
from tuneback.server.auth import Caller, CallerDep
from tuneback.server.deps import StoreDep
from tuneback.storage.queries import CURSOR_PATTERN

router = resource_router("/runs", "runs")


def run_from(body: RunCreate, caller: Caller) -> Run:
    data = body.model_dump(exclude_none=True, exclude={"project"})
    data["project"] = caller.project(body.project)
    return validate(Run, data, what="run")


@router.post(
    "",
    status_code=201,
    summary="Log a run that happened in your app",
    dependencies=[key_rule("log")],
)
def create_run(body: RunCreate, caller: CallerDep, api: ApiDep) -> RunPublic:
    return RunPublic.model_validate(api.runs.log_run(run_from(body, caller)).__dict__)


@router.get("/{run_id}", summary="One run", dependencies=[key_rule("read")])
def get_run(run_id: str, caller: CallerDep, store: StoreDep) -> RunPublic:
    run = store.get_run(run_id)
    caller.check(run.project, "run", run_id)
    return RunPublic.model_validate(run.__dict__)


class RunsQuery(RunCriteria):
    """The runs list's query string: which runs, then the page.

    Unknown parameters are refused (a 422 naming them), as unknown body fields
    are: a misspelt filter would otherwise return every run.
    """

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, pattern=CURSOR_PATTERN, max_length=84)
    """Where the page starts: next_cursor of the previous page. A cursor is the last row's
    time in microseconds since 1970 (UTC), `~`, and its id; rows before it come next."""


@router.get("", summary="Runs, newest first, filtered", dependencies=[key_rule("read")])
def list_runs(caller: CallerDep, api: ApiDep, query: Annotated[RunsQuery, Query()]) -> RunsPublic:
    project = query.project
    scope = caller.project(project) if project is not None or caller.scope else None
    criteria = RunCriteria.model_validate(
        {**query.model_dump(exclude={"limit", "cursor"}), "project": scope}
    )
    page = api.queries.runs(criteria, limit=query.limit, cursor=query.cursor)
    data = [RunPublic.model_validate(run.__dict__) for run in page.data]
    return RunsPublic(data=data, count=len(data), next_cursor=page.next_cursor)
