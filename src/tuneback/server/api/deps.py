"""The services the API routers use on top of the app's shared ones, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from tuneback.domain import FeedbackRecord
from tuneback.server.api.schemas import FeedbackPublic
from tuneback.server.deps import Services
from tuneback.services.comparisons import ComparisonService
from tuneback.services.ingest import IngestService
from tuneback.services.keys import KeyService
from tuneback.services.runs import RunService
from tuneback.storage.queries import CURSOR_PATTERN, Queries


@dataclass
class ApiServices:
    keys: KeyService
    runs: RunService
    comparisons: ComparisonService
    ingest: IngestService
    queries: Queries

    @classmethod
    def build(cls, services: Services) -> ApiServices:
        store = services.store
        return cls(
            keys=KeyService(store),
            runs=RunService(store),
            comparisons=ComparisonService(store),
            ingest=IngestService(store, services.feedback),
            queries=Queries(store),
        )


async def get_api(request: Request) -> ApiServices:
    api: ApiServices = request.app.state.api
    return api


ApiDep = Annotated[ApiServices, Depends(get_api)]

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
