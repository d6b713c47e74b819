"""``POST /api/v1/ingest``: a batch of runs, feedback and comparisons, one result per item."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException

from tuneback.domain import Comparison, Run, new_id, validate
from tuneback.errors import TuneBackError, ValidationError
from tuneback.server.access import key_rule
from tuneback.server.api.deps import ApiDep
from tuneback.server.api.routes import resource_router
from tuneback.server.api.schemas import (
    FeedbackCreate,
    IngestBatch,
    IngestComparison,
    IngestFeedback,
    IngestItem,
    IngestResults,
    IngestRun,
    ItemResultPublic,
)
from tuneback.server.auth import Caller, CallerDep
from tuneback.services.ingest import FeedbackDraft, Item, ItemResult

router = resource_router("", "ingest")

ITEM: TypeAdapter[IngestRun | IngestFeedback | IngestComparison] = TypeAdapter(IngestItem)


def respond(results: list[ItemResult], response: Response) -> IngestResults:
    """200 when every item was stored, 207 Multi-Status when some were not."""
    successes = [ItemResultPublic.model_validate(r.__dict__) for r in results if r.status < 400]
    errors = [ItemResultPublic.model_validate(r.__dict__) for r in results if r.status >= 400]
    response.status_code = 207 if errors else 200
    return IngestResults(successes=successes, errors=errors)


def _invalid(index: int, raw: Any, exc: PydanticValidationError) -> ItemResult:
    problems = exc.errors(include_url=False, include_context=False, include_input=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"]) or "item"
    type_ = raw.get("type") if isinstance(raw, dict) else None
    item_id = raw.get("id") if isinstance(raw, dict) else None
    error = ValidationError(
        f"items.{index}.{where}: {first['msg']}",
        details=[
            {"loc": ["body", "items", index, *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in problems
        ],
    )
    return ItemResult.failed(
        index,
        type_ if isinstance(type_, str) else "unknown",
        item_id if isinstance(item_id, str) else None,
        error,
    )


def feedback_draft(item: FeedbackCreate) -> FeedbackDraft:
    """Feedback as a client sent it (alone or in a batch), with the id that makes resending safe."""
    return FeedbackDraft(
        id=item.id or new_id(),
        run_id=item.run_id,
        key=item.key,
        value=item.value,
        score=item.score,
        kind=item.kind,
        comment=item.comment,
        correction=item.correction,
        user=item.user,
        source=item.source,
        metadata=item.metadata,
    )


def item_from(parsed: IngestRun | IngestFeedback | IngestComparison, caller: Caller) -> Item:
    if isinstance(parsed, IngestFeedback):
        return feedback_draft(parsed)
    data = parsed.model_dump(exclude_none=True, exclude={"type", "project"})
    data["project"] = caller.project(parsed.project)
    data.setdefault("id", new_id())
    if isinstance(parsed, IngestRun):
        return validate(Run, data, what="run")
    return validate(Comparison, data, what="comparison")


@router.post(
    "/ingest",
    summary="Ingest a mixed batch; each item is checked and reported on its own",
    responses={207: {"model": IngestResults, "description": "Some items failed; see errors."}},
    dependencies=[key_rule("log")],
)
def ingest(body: IngestBatch, caller: CallerDep, api: ApiDep, response: Response) -> IngestResults:
    items: list[Item | ItemResult] = []
    for index, raw in enumerate(body.items):
        try:
            parsed = ITEM.validate_python(raw)
        except PydanticValidationError as exc:
            items.append(_invalid(index, raw, exc))
            continue
        try:
            items.append(item_from(parsed, caller))
        except TuneBackError as exc:
            items.append(ItemResult.failed(index, parsed.type, parsed.id, exc))
        except HTTPException as exc:  # a project this key may not write to
            error = {"type": "forbidden", "message": str(exc.detail), "details": None}
            items.append(ItemResult(index, parsed.type, parsed.id, exc.status_code, error))
    return respond(api.ingest.ingest(items, scope=caller.scope), response)
