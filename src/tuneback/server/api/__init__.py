"""The JSON API under ``/api/v1``: one router per resource, gathered here."""

from fastapi import APIRouter

from tuneback.server.api import (
    comparisons,
    configs,
    conversations,
    datasets,
    events,
    feedback,
    health,
    ingest,
    keys,
    runs,
    stats,
)
from tuneback.server.api.schemas import error_responses

# Every operation can answer these, in the one error shape. (NUL in the URL is
# refused by each route's key guard, the one dependency the API's routes share.)
api_router = APIRouter(
    prefix="/api/v1",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
)
for _resource in (
    runs, feedback, configs, conversations, comparisons, datasets, events, ingest, keys, stats,
):  # fmt: skip
    api_router.include_router(_resource.router)

__all__ = ["api_router", "health"]
