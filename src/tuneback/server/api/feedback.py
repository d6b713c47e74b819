"""Feedback on runs: record, list, retract, batches, and presigned tokens for end users."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from tuneback.domain.common import validate
from tuneback.domain.feedback import FeedbackSource
from tuneback.errors import NotFoundError, ValidationError
from tuneback.server.access import RequireKey, checks_itself, key_rule
from tuneback.server.api.deps import (
    ApiDep,
    CursorQuery,
    feedback_public,
    json_body,
    json_body_doc,
)
from tuneback.server.api.ingest import feedback_draft, respond
from tuneback.server.api.routes import resource_router
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
    error_responses,
)
from tuneback.server.auth import CallerDep, authenticate, unauthorized
from tuneback.server.deps import FeedbackDep, StoreDep
from tuneback.server.security import public_url
from tuneback.server.web.feedback_link import link_page, link_value, open_link, read_form
from tuneback.services.feedback import FeedbackService
from tuneback.services.keys import TokenError

router = resource_router("/feedback", "feedback")

ERROR_SCHEMA = "#/components/schemas/ErrorPublic"
MULTI_STATUS: dict[int | str, dict[str, Any]] = {
    207: {"model": IngestResults, "description": "Some items failed; see errors."}
}


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


_LOG_KEY = RequireKey("log")


@router.post(
    "",
    status_code=201,
    response_model=FeedbackPublic,
    summary="Record feedback on a run",
    openapi_extra=json_body_doc(FeedbackCreate),
)
@checks_itself("log")
async def create_feedback(request: Request) -> Response:
    # The hottest route of the API: it has no dependencies for FastAPI to solve
    # (about a tenth of a rating's time in the event loop, even for one guard).
    # Its guard is called first, as a dependency would be; the body is read
    # straight into its model, the service comes from the request, and the
    # answer is built and checked once, by FeedbackPublic itself, and sent as is.
    await _LOG_KEY(request)
    body = await json_body(request, FeedbackCreate)
    caller = await authenticate(request)
    recorded = await record(
        request.app.state.services.feedback,
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
    dependencies=[key_rule("log")],
)
def create_feedback_batch(
    body: FeedbackBatch, caller: CallerDep, api: ApiDep, response: Response
) -> IngestResults:
    items = [feedback_draft(item) for item in body.feedback]
    return respond(api.ingest.ingest(items, scope=caller.scope), response)


@router.get("", summary="Feedback, newest first", dependencies=[key_rule("read")])
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


@router.get("/{feedback_id}", summary="One piece of feedback", dependencies=[key_rule("read")])
def get_feedback(feedback_id: str, caller: CallerDep, store: StoreDep) -> FeedbackPublic:
    feedback = store.get_feedback(feedback_id)
    caller.check(feedback.project, "feedback", feedback_id)
    return feedback_public(feedback)


@router.delete(
    "/{feedback_id}",
    summary="Retract feedback (it stays in the history)",
    dependencies=[key_rule("log")],
)
def retract_feedback(
    feedback_id: str, caller: CallerDep, store: StoreDep, service: FeedbackDep
) -> FeedbackPublic:
    caller.check(store.get_feedback(feedback_id).project, "feedback", feedback_id)
    return feedback_public(service.retract(feedback_id))


# -- presigned tokens ---------------------------------------------------------------


@router.post(
    "/tokens",
    status_code=201,
    summary="A token that lets anyone rate one run",
    dependencies=[key_rule("log")],
)
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
    dependencies=[key_rule("public")],
)
async def feedback_with_token(
    token: str, body: TokenFeedback, api: ApiDep, service: FeedbackDep
) -> FeedbackPublic:
    return await _use_token(token, body, api, service)


@router.get(
    "/tokens/{token}",
    summary="The page a feedback link opens: the answer and its choices; it records nothing",
    response_class=HTMLResponse,
    responses={
        # The page's own answers are HTML; the rest keep the one JSON error shape.
        **{
            status: {
                "description": said["description"],
                "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
            }
            for status, said in error_responses(400, 403, 409, 413, 422, 429, 503).items()
        },
        200: {"description": "The page, with a button per choice that POSTs the rating."},
        401: {
            "description": "The link is forged, expired or its key was revoked (a page).",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        404: {
            "description": "The answer it rates is gone (a page).",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
    },
    dependencies=[key_rule("public")],
)
async def feedback_with_token_link(
    token: str,
    request: Request,
    api: ApiDep,
    store: StoreDep,
    value: Annotated[
        str | None, Query(max_length=200, description="The choice the page offers first.")
    ] = None,
    comment: Annotated[
        str | None, Query(max_length=2000, description="Fills in the comment field.")
    ] = None,
    user: Annotated[
        str | None, Query(max_length=200, description="Who rates: sent along with the rating.")
    ] = None,
) -> Response:
    # Mail scanners and link previewers open links by themselves: a GET only shows.
    found = await open_link(token, keys=api.keys, store=store)
    return link_page(request, token, found, suggested=value, comment=comment, user=user)


@router.post(
    "/tokens/{token}/form",
    status_code=201,
    name="feedback_with_token_form",
    include_in_schema=False,
    dependencies=[key_rule("public")],
)
async def feedback_with_token_form(
    token: str, request: Request, api: ApiDep, store: StoreDep, service: FeedbackDep
) -> Response:
    """The link page's buttons: the rating as a form, and the page again, thanking."""
    form = await read_form(request)
    found = await open_link(token, keys=api.keys, store=store)
    if isinstance(found, str):
        return link_page(request, token, found)
    chosen, comment, user = form.get("value", ""), form.get("comment", ""), form.get("user", "")
    again = {"comment": comment or None, "user": user or None, "suggested": chosen or None}
    try:
        fields = validate(
            TokenFeedback,
            {"value": link_value(chosen), "comment": comment or None, "user": user or None},
            what="rating",
        )
        await record(
            service,
            run_id=found.claims.run_id,
            key=found.claims.key,
            fields=fields,
            source="end_user",
            scope=found.claims.project,
        )
    except ValidationError as exc:
        return link_page(request, token, found, status_code=422, problem=exc.message, **again)
    return link_page(request, token, found, status_code=201, chosen=chosen, **again)
