"""What the API routers share besides the services: the cursor parameter and feedback's shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

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
