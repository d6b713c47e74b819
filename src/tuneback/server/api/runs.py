"""Runs logged from outside: create one, read one, list them with filters and a cursor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tuneback.domain import Run, RunStatus, validate
from tuneback.domain.common import UtcDatetime
from tuneback.server.access import key_rule
from tuneback.server.api.deps import ApiDep, CursorQuery
from tuneback.server.api.schemas import RunCreate, RunPublic, RunsPublic
from tuneback.server.auth import Caller, CallerDep
from tuneback.server.deps import StoreDep
from tuneback.storage.queries import RunFilter

router = APIRouter(prefix="/runs", tags=["runs"])


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


RAN_SINCE = "Ran at or after (its started_at when given, else when it was recorded)."
RAN_UNTIL = "Ran before (its started_at when given, else when it was recorded)."


@router.get("", summary="Runs, newest first, filtered", dependencies=[key_rule("read")])
def list_runs(
    caller: CallerDep,
    api: ApiDep,
    project: str | None = None,
    model: str | None = None,
    user: str | None = None,
    conversation_id: str | None = None,
    status: RunStatus | None = None,
    since: Annotated[UtcDatetime | None, Query(description=RAN_SINCE)] = None,
    until: Annotated[UtcDatetime | None, Query(description=RAN_UNTIL)] = None,
    tag: str | None = None,
    has_feedback: Annotated[
        str | None, Query(description="Only runs with current feedback on this key.")
    ] = None,
    score_key: Annotated[str | None, Query(description="Key the score range applies to.")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
) -> RunsPublic:
    scope = caller.project(project) if project is not None or caller.scope else None
    page = api.queries.runs(
        RunFilter(
            project=scope,
            model=model,
            user=user,
            conversation_id=conversation_id,
            status=status,
            since=since,
            until=until,
            tag=tag,
            has_feedback=has_feedback,
            score_key=score_key,
            min_score=min_score,
            max_score=max_score,
        ),
        limit=limit,
        cursor=cursor,
    )
    data = [RunPublic.model_validate(run.__dict__) for run in page.data]
    return RunsPublic(data=data, count=len(data), next_cursor=page.next_cursor)
