"""What the API routers share besides the services: the cursor parameter, feedback's shape,
and the JSON body of the hottest routes read straight from its bytes."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any, TypeVar

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException

from tuneback.domain import FeedbackRecord
from tuneback.server.api.schemas import FeedbackPublic
from tuneback.server.deps import ServicesDep
from tuneback.storage.queries import CURSOR_PATTERN

ApiDep = ServicesDep
"""The app's services under the name the runs, feedback and ingest routes use."""

CursorQuery = Annotated[
    str | None,
    Query(
        pattern=CURSOR_PATTERN,
        max_length=84,
        description=(
            "Where the page starts: next_cursor of the previous page. A cursor is the last "
            "row's time in microseconds since 1970 (UTC), `~`, and its id; rows before it "
            "come next."
        ),
    ),
]


def feedback_public(feedback: FeedbackRecord) -> FeedbackPublic:
    return FeedbackPublic.model_validate({**feedback.__dict__, "current": feedback.current})


B = TypeVar("B", bound=BaseModel)


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its body with :func:`json_body`.

    It names the model's schema among the document's components, where FastAPI
    puts it for the other routes that take or answer the model (the committed
    document's test resolves every reference).
    """
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


async def json_body(request: Request, model: type[B]) -> B:
    """The request's JSON body as ``model``, answered as a body parameter of FastAPI's is.

    pydantic reads the bytes into the model in one pass, about a fifth of the
    request's time on the write path less than FastAPI's parse, decode, then
    validate. Anything else (no body, another media type, a body the model
    refuses) goes FastAPI's way, so every request gets the same answer and the
    same error either way (``tests/api/test_json_body.py`` holds FastAPI to it).
    Meant for models whose fields read the same from JSON text as from the values
    it decodes to (no dates, enums or bytes, which strict models read only from text).
    """
    raw = await request.body()
    is_json = _json_media(request.headers.get("content-type"))
    if raw and is_json:
        with contextlib.suppress(PydanticValidationError):
            return model.model_validate_json(raw)
    return _read_as_fastapi_does(raw, is_json, model)


def _json_media(content_type: str | None) -> bool:
    """Whether FastAPI reads a body sent as ``content_type`` as JSON (none given: no)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _read_as_fastapi_does(raw: bytes, is_json: bool, model: type[B]) -> B:
    if not raw:
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        raise RequestValidationError([missing])
    data: Any = raw
    if is_json:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from None
        except ValueError:  # not UTF-8
            raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return model.model_validate(data, from_attributes=True)
    except PydanticValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=data) from None
