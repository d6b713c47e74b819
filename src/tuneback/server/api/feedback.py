"""Feedback on runs: record, list, retract, batches, and presigned tokens for end users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.exceptions import HTTPException

from tuneback.domain import new_id
from tuneback.domain.feedback import FeedbackSource
from tuneback.errors import NotFoundError
from tuneback.server.api.deps import ApiDep, CursorQuery, feedback_public
from tuneback.server.api.ingest import respond
from tuneback.server.api.schemas import (
    FeedbackBatch,
    FeedbackCreate,
    FeedbackFields,
    FeedbackPublic,
    FeedbacksPublic,
    FeedbackTokenCreate,
    FeedbackTokenPublic,
    IngestResults,
    TokenFeedback,
)
from tuneback.server.auth import CallerDep, unauthorized
from tuneback.server.deps import FeedbackDep, StoreDep
from tuneback.server.security import public_url
from tuneback.services.feedback import FeedbackService
from tuneback.services.ingest import FeedbackDraft
from tuneback.services.keys import TokenError

router = APIRouter(prefix="/feedback", tags=["feedback"])

MULTI_STATUS: dict[int | str, dict[str, Any]] = {
    207: {"model": IngestResults, "description": "Some items failed; see errors."}
}


def draft_from(body: FeedbackCreate) -> FeedbackDraft:
    return FeedbackDraft(
        id=body.id or new_id(),
        run_id=body.run_id,
        key=body.key,
        value=body.value,
        score=body.score,
        kind=body.kind,
        comment=body.comment,
        correction=body.correction,
        user=body.user,
        source=body.source,
        metadata=body.metadata,
    )


async def record(
    service: FeedbackService,
    *,
    run_id: str,
    key: str,
    fields: FeedbackFields,
    source: FeedbackSource,
    feedback_id: str | None = None,
    scope: str | None = None,
) -> FeedbackPublic:
    """Check and store one piece of feedback; acknowledged once committed."""
    recorded = await service.record_async(
        run_id=run_id,
        key=key,
        value=fields.value,
        score=fields.score,
        kind=fields.kind,
        comment=fields.comment,
        correction=fields.correction,
        user=fields.user,
        source=source,
        metadata=fields.metadata,
        feedback_id=feedback_id,
        scope=scope,
    )
    return feedback_public(recorded)


@router.post("", status_code=201, response_model=FeedbackPublic, summary="Record feedback on a run")
async def create_feedback(
    body: FeedbackCreate, caller: CallerDep, service: FeedbackDep
) -> Response:
    # The answer is built and checked once, by FeedbackPublic itself, and sent as
    # is: the hottest route of the API skips FastAPI's second pass over it.
    recorded = await record(
        service,
        run_id=body.run_id,
        key=body.key,
        fields=body,
        source=body.source,
        feedback_id=body.id,
        scope=caller.scope,
    )
    return Response(recorded.model_dump_json(), status_code=201, media_type="application/json")


@router.post(
    "/batch",
    summary="Record many pieces of feedback, each checked on its own",
    responses=MULTI_STATUS,
)
def create_feedback_batch(
    body: FeedbackBatch, caller: CallerDep, api: ApiDep, response: Response
) -> IngestResults:
    items = [draft_from(item) for item in body.feedback]
    return respond(api.ingest.ingest(items, scope=caller.scope), response)


@router.get("", summary="Feedback, newest first")
def list_feedback(
    caller: CallerDep,
    api: ApiDep,
    run_id: str | None = None,
    key: str | None = None,
    user: str | None = None,
    history: Annotated[
        bool, Query(description="Include superseded and retracted feedback.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: CursorQuery = None,
) -> FeedbacksPublic:
    page = api.queries.feedback(
        project=caller.scope,
        run_id=run_id,
        key=key,
        user=user,
        history=history,
        limit=limit,
        cursor=cursor,
    )
    data = [feedback_public(f) for f in page.data]
    return FeedbacksPublic(data=data, count=len(data), next_cursor=page.next_cursor)


@router.get("/{feedback_id}", summary="One piece of feedback")
def get_feedback(feedback_id: str, caller: CallerDep, store: StoreDep) -> FeedbackPublic:
    feedback = store.get_feedback(feedback_id)
    caller.check(feedback.project, "feedback", feedback_id)
    return feedback_public(feedback)


@router.delete("/{feedback_id}", summary="Retract feedback (it stays in the history)")
def retract_feedback(
    feedback_id: str, caller: CallerDep, store: StoreDep, service: FeedbackDep
) -> FeedbackPublic:
    caller.check(store.get_feedback(feedback_id).project, "feedback", feedback_id)
    return feedback_public(service.retract(feedback_id))


# -- presigned tokens ---------------------------------------------------------------


@router.post("/tokens", status_code=201, summary="A token that lets anyone rate one run")
def create_token(
    body: FeedbackTokenCreate, request: Request, caller: CallerDep, api: ApiDep, store: StoreDep
) -> FeedbackTokenPublic:
    run = store.get_run(body.run_id)
    caller.check(run.project, "run", body.run_id)
    token, claims = api.keys.issue_token(
        run_id=run.id,
        key=body.key,
        project=run.project,
        api_key_id=caller.key_id,
        expires_in=timedelta(seconds=body.expires_in),
    )
    return FeedbackTokenPublic(
        token=token,
        url=token_url(request, token),
        run_id=run.id,
        key=body.key,
        expires_at=claims.expires_at,
    )


def token_url(request: Request, token: str) -> str:
    return public_url(request, "feedback_with_token", token=token)


async def _use_token(
    token: str, fields: TokenFeedback, api: ApiDep, service: FeedbackService
) -> FeedbackPublic:
    try:
        claims = api.keys.check_token(token)
    except TokenError as exc:
        raise unauthorized(str(exc)) from None
    try:
        return await record(
            service,
            run_id=claims.run_id,
            key=claims.key,
            fields=fields,
            source="end_user",
            scope=claims.project,
        )
    except NotFoundError:
        raise HTTPException(403, "the feedback token does not match this run's project") from None


@router.post(
    "/tokens/{token}",
    status_code=201,
    name="feedback_with_token",
    summary="Rate the run a token names; no API key needed",
)
async def feedback_with_token(
    token: str, body: TokenFeedback, api: ApiDep, service: FeedbackDep
) -> FeedbackPublic:
    return await _use_token(token, body, api, service)


@router.get(
    "/tokens/{token}",
    summary="One-click rating from a link: the feedback goes in the query string",
)
async def feedback_with_token_link(
    token: str,
    api: ApiDep,
    service: FeedbackDep,
    value: Annotated[str | None, Query(max_length=200)] = None,
    score: Annotated[float | None, Query(ge=0, le=1)] = None,
    comment: Annotated[str | None, Query(max_length=2000)] = None,
    user: Annotated[str | None, Query(max_length=200)] = None,
) -> FeedbackPublic:
    parsed: Any = value
    if value is not None and value.lstrip("-").replace(".", "", 1).isdigit():
        # Links carry text; "4" on a stars link means the number 4.
        parsed = float(value) if "." in value else int(value)
    fields = TokenFeedback(value=parsed, score=score, comment=comment, user=user)
    return await _use_token(token, fields, api, service)
